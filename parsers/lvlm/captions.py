"""Caption splitter ``lvlm_splitter``: the caption cut into minimal units at the panel identifiers, each unit assigned
to panel labels by an LVLM, with the rule-based ``label_splitter`` as the fallback.

Units are the caption's sentences, cut again before every label token that opens a statement (``(B) Images ...``,
``C. Quantification ...``); a token that closes or sits inside a phrase (``... at day 3 (F) and ...``) cuts nothing.
The model gets the numbered units and the labels (those the parser read, else those the caption names) in one
text-only request and answers which labels each unit describes. A unit of several labels goes to each; units of no
label before the first labelled one form the ``preamble``, later ones the ``shared`` text, except boilerplate
("Source data ...") which belongs to no panel. The marker clauses come from the rules. The rules' split is returned
instead, counted as ``lvlm.splitter.fallback.<why>``, when there is nothing to assign (fewer than two labels), or
when the answer stays unusable or assigns no unit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from panel2patch.components import CaptionSplitter
from panel2patch.data import CaptionSplit, Figure
from panel2patch.mining import count_diagnostic

from .answers import normalise_label
from .engine import parsed, shared_engine
from .prompts import SPLIT_SCHEMA, split_prompt

COMPONENT = "splitter"
_OPENER = re.compile(r"\s*[A-Z0-9(\"']")


def caption_units(caption: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the caption's minimal units, in order, covering its text (whitespace trimmed)."""
    from panel2patch.parsers.captions.sentences import sentence_starts
    from panel2patch.parsers.captions.tokens import scan_tokens

    cuts = set(sentence_starts(caption))
    for m in scan_tokens(caption):
        if m.style in ("paren", "punct", "close", "nested") and _OPENER.match(caption, m.end):
            cuts.add(m.start)
    bounds = sorted(cuts | {len(caption)})
    spans = []
    for start, end in zip(bounds, bounds[1:]):
        s, e = start, end
        while s < e and caption[s].isspace():
            s += 1
        while e > s and caption[e - 1].isspace():
            e -= 1
        if s < e:
            spans.append((s, e))
    return spans


class LVLMCaptionSplitter(CaptionSplitter):
    """Caption units assigned to labels by an LVLM (see the module docstring)."""

    def __init__(self, engine: dict[str, Any], max_tokens: int = 512, shared_by_length: bool = False) -> None:
        from panel2patch.parsers.captions.splitter import LabelCaptionSplitter

        self.engine = shared_engine(engine)
        self.max_tokens = max_tokens
        self.rules = LabelCaptionSplitter(shared_by_length=shared_by_length)

    def split(self, caption: str, labels: Sequence[str] | None) -> CaptionSplit:
        rules = self.rules.split(caption, labels)
        given = [str(lab) for lab in labels or () if str(lab).strip()] or [k for k in rules.segments if k.isalnum()]
        if len(given) < 2:
            return self._fallback(rules, "too_few_labels")
        spans = caption_units(caption)
        units = [caption[s:e] for s, e in spans]
        request = self.engine.request(split_prompt(units, given), schema=SPLIT_SCHEMA, max_tokens=self.max_tokens,
                                      task=COMPONENT, caption=caption, units=units)
        result = parsed(self.engine.ask([request], COMPONENT)[0], COMPONENT, "list", "units")
        if not result.usable:
            return self._fallback(rules, result.status)
        assigned = self._assignments(result.value, len(units), given)
        if not any(assigned):
            return self._fallback(rules, "no_assignment")
        return _assemble(caption, units, spans, assigned, given, rules)

    def _fallback(self, rules: CaptionSplit, why: str) -> CaptionSplit:
        count_diagnostic(f"lvlm.{COMPONENT}.fallback.{why}")
        return rules

    @staticmethod
    def _assignments(items: Any, n_units: int, given: list[str]) -> list[list[str]]:
        by_key = {normalise_label(lab): lab for lab in given}
        assigned: list[list[str]] = [[] for _ in range(n_units)]
        for item in items if isinstance(items, list) else []:
            unit = item.get("unit") if isinstance(item, dict) else None
            if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit < n_units:
                count_diagnostic(f"lvlm.{COMPONENT}.bad_unit")
                continue
            raw = item.get("labels")
            for value in raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []:
                label = by_key.get(normalise_label(str(value)))
                if label is None:
                    count_diagnostic(f"lvlm.{COMPONENT}.unknown_label")
                elif label not in assigned[unit]:
                    assigned[unit].append(label)
        return assigned

    def assign(self, split: CaptionSplit, figure: Figure) -> dict[str, str]:
        return self.rules.assign(split, figure)


def _assemble(caption: str, units: list[str], spans: list[tuple[int, int]], assigned: list[list[str]],
              given: list[str], rules: CaptionSplit) -> CaptionSplit:
    from panel2patch.parsers.captions.sentences import is_boilerplate

    first = next(i for i, labs in enumerate(assigned) if labs)
    preamble = [units[i] for i in range(first) if not assigned[i]]
    shared = [units[i] for i in range(first, len(units)) if not assigned[i] and not is_boilerplate(units[i])]
    parts: dict[str, list[str]] = {lab: [] for lab in given}
    for i, labs in enumerate(assigned):
        text = without_opening_token(caption, spans[i]) if labs else ""
        for lab in labs:
            if text:
                parts[lab].append(text)
    segments = {lab: " ".join(texts) for lab, texts in parts.items() if texts}
    return CaptionSplit(caption=caption, preamble=" ".join(preamble), segments=segments, shared=" ".join(shared),
                        clauses=rules.clauses)


def without_opening_token(caption: str, span: tuple[int, int]) -> str:
    """The unit's text without the label token it opens with (``(B) Images`` -> ``Images``)."""
    from panel2patch.parsers.captions.tokens import scan_tokens

    start, end = span
    text = caption[start:end]
    for m in scan_tokens(text):
        if m.start == 0 and m.style in ("paren", "punct", "close", "nested"):
            return text[m.end:].lstrip(" ,.:;)").strip() or text
        break
    return text
