"""Tolerant parsing of model answers and sanitising of the boxes they carry.

:func:`parse_answer` turns an answer text into a Python value without ever raising: it strips Markdown fences, prose
around the JSON and stray control characters, reads Python literals (``ast.literal_eval``, never ``eval``), recovers
the complete leading items of a list cut off by a token limit, and fits the value to the expected shape. Every change
is named in ``repairs``. :func:`sanitise_boxes` maps the boxes of the parsed items from a view's pixels to the
original image and drops the unusable ones, counting each drop by reason.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from panel2patch.data import Box

if TYPE_CHECKING:
    from .views import View

STATUSES = ("ok", "repaired", "empty", "unparseable")
#: Repairs that leave the status "ok": a Markdown fence (with or without prose around it) is Qwen2.5-VL's normal
#: answer format, not a defect.
BENIGN_REPAIRS = frozenset({"fenced"})
#: Reasons :func:`sanitise_boxes` drops an item for; every other counted signature is a fix of a kept item.
DROP_REASONS = ("not_an_item", "missing_box", "malformed_box", "non_finite", "outside_view", "too_small",
                "whole_image", "unknown_label", "missing_label")
FIX_REASONS = ("swapped", "clipped")
BOX_KEYS = ("bbox_2d", "bbox", "box")
LABEL_KEYS = ("label",)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+.-]*[ \t]*\r?\n?(.*?)(?:```|\Z)", re.S)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)\b", re.I)
_LABEL_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_LABEL_WORD = re.compile(r"^(?:panels?|fig(?:ure)?s?\.?|subfig(?:ure)?\.?)\s+", re.I)
_CLOSE = {"[": "]", "{": "}"}
_STRICT, _LAX = json.JSONDecoder(strict=True), json.JSONDecoder(strict=False)
_MAX_STARTS = 16  # JSON start positions tried in prose
_MAX_CUTS = 16  # truncation cut points tried, latest first
_MAX_LITERAL = 200_000  # characters; ast.literal_eval builds a syntax tree of the whole text


@dataclass
class ParsedAnswer:
    """The outcome of :func:`parse_answer`. ``status``: ``"ok"`` (well-formed, at most :data:`BENIGN_REPAIRS`),
    ``"repaired"`` (usable after the ``repairs`` named), ``"empty"`` (blank answer) or ``"unparseable"`` (``value``
    None, ``detail`` says why). ``value`` is JSON-like: dicts with str keys, lists, str, int, float, bool, None."""

    status: str
    value: Any = None
    repairs: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "repaired")


def parse_answer(text: Any, expect: str = "any", list_key: str | None = None) -> ParsedAnswer:
    """Parse a model answer into the shape ``expect``: ``"list"``, ``"object"`` or ``"any"`` (any JSON value).

    For ``"list"``, an object holding the list (``{"panels": [...]}``: under ``list_key``, or its only list of
    objects) is unwrapped (``"wrapped"``, except for an object of ``list_key`` alone: the shape schemas ask for) and a lone item object is wrapped in a list (``"single_object"``); for
    ``"object"``, a list of exactly one object is unwrapped (``"single_item_list"``). Never raises, whatever ``text``
    is (a non-string is unparseable).
    """
    try:
        return _parse(text, expect, list_key)
    except Exception as exc:  # a bug must not take a mining run down with one odd answer
        return ParsedAnswer("unparseable", detail=f"parser failure: {type(exc).__name__}: {exc}"[:300])


def _parse(text: Any, expect: str, list_key: str | None) -> ParsedAnswer:
    if expect not in ("list", "object", "any"):
        raise ValueError(f"expect must be 'list', 'object' or 'any', not {expect!r}")
    if not isinstance(text, str):
        return ParsedAnswer("unparseable", detail=f"answer is a {type(text).__name__}, not text")
    parsed = _parse_text(text.strip().lstrip("\ufeff").strip(), expect, list_key, [])
    if not parsed.usable and _CONTROL.search(text):  # control characters outside strings: drop them all
        retry = _parse_text(_CONTROL.sub("", text).strip(), expect, list_key, ["control_chars"])
        if retry.usable:
            return retry
    return parsed


def _parse_text(text: str, expect: str, list_key: str | None, repairs: list[str]) -> ParsedAnswer:
    if not text:
        return ParsedAnswer("empty", repairs=repairs, detail="blank answer")
    blocks = [m.group(1).strip() for m in _FENCE.finditer(text)] if "```" in text else []
    candidates = [(b, ["fenced"]) for b in blocks if b] + [(text, [])]
    if blocks and not any(blocks) and not _FENCE.sub("", text).strip():
        return ParsedAnswer("empty", repairs=repairs + ["fenced"], detail="empty fenced block")
    first_failure = None
    for body, extra in candidates:
        result = _parse_body(body, expect, list_key, repairs + extra)
        if result.usable:
            return result
        first_failure = first_failure or result
    return first_failure


def _parse_body(body: str, expect: str, list_key: str | None, repairs: list[str]) -> ParsedAnswer:
    """The first JSON-like value found in ``body`` (at its start, else at an outermost bracket), fitted to
    ``expect``."""
    starts = [0] + _outer_brackets(body)
    detail = "no JSON value found"
    for start in starts:
        found = _read_value(body[start:])
        if isinstance(found, str):
            if start == 0 or detail == "no JSON value found":
                detail = found
            continue
        value, how = found
        if not isinstance(value, (list, dict)) and "trailing_text" in how:
            continue  # a number or word that opens prose, not an answer
        fitted = _fit(value, expect, list_key)
        if isinstance(fitted, str):
            detail = fitted
            continue
        done = repairs + (["leading_text"] if start else []) + how + fitted[1]
        return ParsedAnswer("ok" if set(done) <= BENIGN_REPAIRS else "repaired", fitted[0], done)
    return ParsedAnswer("unparseable", repairs=repairs, detail=detail)


def _outer_brackets(body: str) -> list[int]:
    """Positions (past the first character) of the opening brackets that no earlier bracket encloses, so a broken
    JSON value is not mined for the lists inside it. Quotes are not tracked: prose has apostrophes."""
    starts, depth = [], 0
    for i, ch in enumerate(body):
        if ch in "[{":
            if depth == 0 and i:
                starts.append(i)
                if len(starts) == _MAX_STARTS:
                    break
            depth += 1
        elif ch in "]}" and depth:
            depth -= 1
    return starts


def _read_value(s: str) -> tuple[Any, list[str]] | str:
    """``(value, repairs)`` of the JSON or Python literal at the start of ``s``, or a message saying why not."""
    found = _decode(s)
    if found is not None:
        return found
    end, candidates = _scan(s)
    if end is not None:
        found = _literal(s[:end]) if s[end:].strip() else None
        return (found[0], [*found[1], "trailing_text"]) if found else "not JSON or a Python literal"
    for candidate in candidates:
        found = _decode(candidate)
        if found is not None:
            return found[0], ["truncated", *found[1]]
    return "malformed, or cut off before its first complete item" if s[:1] in ("[", "{") else "no JSON value found"


def _decode(s: str) -> tuple[Any, list[str]] | None:
    """The JSON value (strict, then with raw control characters allowed) at the start of ``s``, else ``s`` as a
    Python literal."""
    for decoder, how in ((_STRICT, []), (_LAX, ["control_chars"])):
        try:
            value, end = decoder.raw_decode(s)
        except ValueError:  # JSONDecodeError, and "exceeds the limit for integer string conversion"
            continue
        except RecursionError:
            return None
        return value, how + (["trailing_text"] if s[end:].strip() else [])
    return _literal(s)


def _literal(s: str) -> tuple[Any, list[str]] | None:
    if len(s) > _MAX_LITERAL:
        return None
    try:
        value = ast.literal_eval(s)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return None
    value = _jsonable(value)
    return None if value is _NOT_JSON else (value, ["python_literal"])


_NOT_JSON = object()


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A Python literal as JSON-like data (tuples become lists), or :data:`_NOT_JSON` (sets, bytes, complex)."""
    if depth > 200:
        return _NOT_JSON
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v, depth + 1) for v in value]
        return _NOT_JSON if any(v is _NOT_JSON for v in items) else items
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _jsonable(v, depth + 1)
            if v is _NOT_JSON or not (k is None or isinstance(k, (str, bool, int, float))):
                return _NOT_JSON
            out[k if isinstance(k, str) else json.dumps(k)] = v
        return out
    return _NOT_JSON


def _scan(s: str) -> tuple[int | None, list[str]]:
    """Brackets of the JSON-like value opening ``s``, outside strings: ``(end, [])`` when the value is complete and
    ends at ``end``; ``(None, candidates)`` when it is cut off, where each candidate closes the value after one of its
    last complete items, latest first. An item is an object or list that is an element of an outermost list (the
    value itself, or a list inside objects only, as in ``{"panels": [...]}``), so only whole items survive: an item
    cut inside is dropped, never kept with half its fields or children."""
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []
    quote, escaped = "", False
    for i, ch in enumerate(s):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}":
            if not stack or _CLOSE[stack[-1]] != ch:
                return None, []
            stack.pop()
            if not stack:
                return i + 1, []
            if stack[-1] == "[" and "[" not in stack[:-1]:
                cuts.append((i + 1, "".join(_CLOSE[c] for c in reversed(stack))))
        elif not stack and not ch.isspace():
            return None, []  # not a container
    return None, [s[:end] + closers for end, closers in reversed(cuts[-_MAX_CUTS:])]


def _fit(value: Any, expect: str, list_key: str | None) -> tuple[Any, list[str]] | str:
    """``(value, repairs)`` in the ``expect`` shape, or a message saying why it cannot be."""
    if isinstance(value, str) and expect != "any" and value.strip()[:1] in ("[", "{"):
        inner = _decode(value.strip())  # JSON encoded twice
        if inner is not None and isinstance(inner[0], (list, dict)):
            fitted = _fit(inner[0], expect, list_key)
            return fitted if isinstance(fitted, str) else (fitted[0], ["double_encoded", *inner[1], *fitted[1]])
    if expect == "any":
        return value, []
    if expect == "list":
        if isinstance(value, list):
            return value, []
        if isinstance(value, dict):
            if list_key is not None and isinstance(value.get(list_key), list):  # the asked shape when alone
                return value[list_key], [] if len(value) == 1 else ["wrapped"]
            lists = [v for v in value.values() if isinstance(v, list) and all(isinstance(x, dict) for x in v)]
            if len(value) == 1 and len(lists) == 1:
                return lists[0], ["wrapped"]
            return [value], ["single_object"]
        return f"expected a list, got {type(value).__name__}"
    if isinstance(value, dict):
        return value, []
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0], ["single_item_list"]
    return f"expected an object, got {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, list) else "")


@dataclass
class BoxItem:
    """A kept item: ``box`` in original-image pixels, ``label`` as the caption prints it when it matched a caption
    label (else the answer's label, stripped; None when absent), ``raw_label`` the answer's label, ``extra`` the
    item's other fields."""

    box: Box
    label: str | None
    raw_label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def normalise_label(label: str) -> str:
    """A label's comparable form: ``"(a)"``, ``"A."``, ``"a"`` and ``"Panel A"`` all give ``"a"``."""
    text = _LABEL_EDGES.sub("", " ".join(label.split()))
    text = _LABEL_WORD.sub("", text)
    return _LABEL_EDGES.sub("", text).casefold()


def sanitise_boxes(items: Any, view: View, image_size: tuple[int, int] | None = None,
                   caption_labels: Sequence[str] | None = None, min_size: float = 4.0,
                   whole_iou: float | None = 0.95, require_label: bool = False,
                   box_keys: Sequence[str] = BOX_KEYS, label_keys: Sequence[str] = LABEL_KEYS,
                   ) -> tuple[list[BoxItem], Counter[str]]:
    """The usable items of a parsed answer and a count of what was dropped or fixed, by signature.

    ``items``: a list of ``{"bbox_2d": [x0, y0, x1, y1], "label": ...}`` in ``view``'s pixels (a lone item, a bare
    box and boxes as strings, nested lists or numbers in strings are accepted). Per box: inverted corners are swapped
    (``swapped``), the box is clipped to the view (``clipped``), mapped to original pixels and clipped to the image
    (``image_size``, default the view's); it is dropped (see :data:`DROP_REASONS`) when it is not finite, lies outside
    the view, has a side under ``min_size`` original pixels, or covers the image the model saw (IoU with the view's
    region >= ``whole_iou``; None keeps such boxes). With ``caption_labels``, a label that matches none of them after
    :func:`normalise_label` and is no sub-panel of one (``Aii`` of ``A``) drops the item (``unknown_label``); an item without a label is kept with label None
    unless ``require_label`` (``missing_label``). Never raises on malformed items.
    """
    from panel2patch.parsers.boxes import box_iou

    counts: Counter[str] = Counter()
    if items is None:
        return [], counts
    if isinstance(items, dict):
        items = [items]
    elif not isinstance(items, list):
        counts["not_an_item"] += 1
        return [], counts
    width, height = image_size or view.image_size
    known = {}
    for printed in caption_labels or ():
        known.setdefault(normalise_label(str(printed)), str(printed))
    vw, vh = view.size
    kept = []
    for item in items:
        if isinstance(item, dict):
            box_key = next((k for k in box_keys if k in item), None)
            label_key = next((k for k in label_keys if k in item), None)
            raw_box = item[box_key] if box_key is not None else None
            raw_label = _label_text(item[label_key]) if label_key is not None else None
            extra = {k: v for k, v in item.items() if k not in (box_key, label_key)}
        elif isinstance(item, (list, tuple, str)):
            box_key, raw_box, raw_label, extra = "", item, None, {}
        else:
            counts["not_an_item"] += 1
            continue
        if box_key is None:
            counts["missing_box"] += 1
            continue
        numbers = _box_numbers(raw_box)
        if numbers is None:
            counts["malformed_box"] += 1
            continue
        if not all(map(math.isfinite, numbers)):
            counts["non_finite"] += 1
            continue
        x0, y0, x1, y1 = numbers
        if x0 > x1 or y0 > y1:
            x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
            counts["swapped"] += 1
        clipped = (max(0.0, x0), max(0.0, y0), min(float(vw), x1), min(float(vh), y1))
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
            counts["outside_view"] += 1
            continue
        if clipped != (x0, y0, x1, y1):
            counts["clipped"] += 1
        b = view.to_original(clipped)
        box = (max(0.0, b[0]), max(0.0, b[1]), min(float(width), b[2]), min(float(height), b[3]))
        if box[2] - box[0] < min_size or box[3] - box[1] < min_size:
            counts["too_small"] += 1
            continue
        if whole_iou is not None and box_iou(box, view.crop) >= whole_iou:
            counts["whole_image"] += 1
            continue
        label = raw_label
        if raw_label is None:
            if require_label:
                counts["missing_label"] += 1
                continue
        elif known:
            label = _caption_spelling(raw_label, known)
            if label is None:
                counts["unknown_label"] += 1
                continue
        kept.append(BoxItem(box, label, raw_label, extra))
    return kept, counts


def _caption_spelling(printed: str, known: dict[str, str]) -> str | None:
    """``printed`` as the caption spells it (``known``: normalised -> caption label), or as printed when it is a
    sub-panel of a caption label (``Aii`` where the caption names ``(Ai–ii)``, which reads as ``A``)."""
    from panel2patch.parsers.captions.tokens import sub_panel

    label = known.get(normalise_label(printed))
    if label is not None:
        return label
    text = "".join(printed.split()).strip("()[]{}.,:;")
    parent = sub_panel(text)
    return text if parent is not None and normalise_label(parent[0]) in known else None


def _label_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value == int(value)):
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _box_numbers(raw: Any) -> list[float] | None:
    """Four floats from a box as models write it (flat or nested list, numbers as strings, one string), or None."""
    if isinstance(raw, str):
        parts: list[Any] = _NUMBER.findall(raw)
    elif isinstance(raw, (list, tuple)):
        parts = _flatten(raw, 0)
        if parts is None:
            return None
    else:
        return None
    if len(parts) != 4:
        return None
    numbers = []
    for part in parts:
        if isinstance(part, bool):
            return None
        try:
            numbers.append(float(part.strip() if isinstance(part, str) else part))
        except (TypeError, ValueError, OverflowError):
            return None
    return numbers


def _flatten(raw: Sequence[Any], depth: int) -> list[Any] | None:
    out: list[Any] = []
    for part in raw:
        if isinstance(part, (list, tuple)):
            inner = _flatten(part, depth + 1) if depth < 3 else None
            if inner is None:
                return None
            out.extend(inner)
        else:
            out.append(part)
        if len(out) > 4:
            return None
    return out
