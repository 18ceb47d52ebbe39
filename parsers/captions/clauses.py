"""Marker clauses: caption sentences about arrows, asterisks, boxes, insets ... and the panels they concern."""

from __future__ import annotations

import bisect
import re
from itertools import accumulate

from panel2patch.data import MarkerClause

from .assembly import Cut, _Piece, strip_span
from .sentences import semicolon_spans, sentence_starts
from .tokens import Mention

_MARKER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("arrowhead", re.compile(r"\barrow[\s-]?heads?\b|\bhead\s+arrows?\b", re.IGNORECASE)),
    ("arrow", re.compile(r"\barrows?\b(?![\s-]?heads?\b)", re.IGNORECASE)),
    (
        "asterisk",
        re.compile(
            r"\basterisks?\b|\(\s*\*+\s*\)|(?:^|(?<=[\s;,.]))\*+\s*(?=(?:denotes?|indicates?|marks?|shows?|"
            r"represents?|points?|highlights?)\b(?!\s*(?:a\s+)?(?:significan|[pP]\s*[<=\u2264])))",
            re.IGNORECASE,
        ),
    ),
    (
        "box",
        re.compile(
            r"\bbox(?:es|ed)?\b(?![\s-]*(?:and[\s-]+whiskers?|plots?|blots?))|\brectangles?\b|\brectangular\b|"
            r"\bframed?\b(?=\s+(?:area|region))|\boutlined\b|\b(?:dashed|dotted)\s+(?:lines?|squares?)\b",
            re.IGNORECASE,
        ),
    ),
    ("inset", re.compile(r"\binsets?\b|\binserts?\b", re.IGNORECASE)),
    ("circle", re.compile(r"\bcircles?\b|\b(?:en)?circled\b", re.IGNORECASE)),
    (
        "symbol",
        re.compile(
            r"(?<![\w#])#(?!\s*\d)(?!\s*[pP]\s*[<=])|[\u2020\u2021\u00a7]|\btriangles?\b|\bstars?\b|"
            r"\bsquares?\b|\bdiamonds?\b|\bcrosses\b",
            re.IGNORECASE,
        ),
    ),
)


def _clause_units(text: str, tokens: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentences, cut further at top-level ``;`` and around the label tokens ``tokens`` (spans)."""
    starts = sentence_starts(text)
    bounds = starts + [len(text)]
    spans = [span for i in range(len(starts)) for span in semicolon_spans(text, bounds[i], bounds[i + 1])]
    ordered = sorted(tokens)
    token_starts = [t0 for t0, _ in ordered]
    reach = list(accumulate((t1 for _, t1 in ordered), max))  # furthest end among the first k+1 tokens
    units = []
    for s, e in spans:
        cur = s
        for k in range(bisect.bisect_right(reach, s), bisect.bisect_left(token_starts, e)):
            t0, t1 = ordered[k]
            if t1 <= cur:
                continue
            units.append((cur, t0))
            cur = max(cur, t1)
        units.append((cur, e))
    out = [strip_span(text, s, e, lead_punct=True) for s, e in units]
    return [(s, e) for s, e in out if e > s and re.search(r"\w", text[s:e])]


class _Parens:
    """Parenthesis structure of a caption, read once."""

    def __init__(self, text: str) -> None:
        self.closes = [i for i, ch in enumerate(text) if ch == ")"]
        self._open_before: list[int] = []  # per offset: the innermost "(" still open there, or -1
        stack: list[int] = []
        for i, ch in enumerate(text):
            self._open_before.append(stack[-1] if stack else -1)
            if ch == "(":
                stack.append(i)
            elif ch == ")" and stack:
                stack.pop()
        self._open_before.append(stack[-1] if stack else -1)

    def enclosing(self, pos: int) -> tuple[int, int] | None:
        """The innermost ``(`` open at ``pos`` and the first ``)`` at or after ``pos`` (as ``[open, close + 1)``)."""
        opening = self._open_before[pos]
        if opening < 0:
            return None
        k = bisect.bisect_left(self.closes, pos)
        return (opening, self.closes[k] + 1) if k < len(self.closes) else None


def marker_clauses(
    text: str, cut: Cut | None, mentions: list[Mention], all_labels: list[str]
) -> list[MarkerClause]:
    inline = [m for m in mentions if m.role == "inline" and m.labels]  # caption order
    tokens = [(m.start, m.end) for m in mentions if m.role in ("prefix", "postfix")]
    where = _Where(text, cut, inline, all_labels)
    clauses: dict[tuple[str, str], MarkerClause] = {}
    for us, ue in _clause_units(text, tokens):
        unit = text[us:ue]
        clause_text = unit.strip().rstrip(",;:").rstrip()
        taken_starts: list[int] = []  # hits kept in this unit: disjoint spans, by start
        taken_ends: list[int] = []
        for kind, pattern in _MARKER_PATTERNS:
            for hit in pattern.finditer(unit):
                hs, he = us + hit.start(), us + hit.end()
                k = bisect.bisect_left(taken_starts, he)  # spans starting before the hit ends
                if k and taken_ends[k - 1] > hs:
                    continue
                taken_starts.insert(k, hs)
                taken_ends.insert(k, he)
                labels = where.labels(hs, he, ue)
                key = (kind, clause_text)
                if key in clauses:
                    c = clauses[key]
                    c.labels = list(dict.fromkeys(c.labels + labels))
                    continue
                clauses[key] = MarkerClause(kind=kind, text=clause_text, labels=labels)
    return list(clauses.values())


class _Where:
    """The panels a marker hit concerns, looked up by offset."""

    def __init__(self, text: str, cut: Cut | None, inline: list[Mention], all_labels: list[str]) -> None:
        self.text = text
        self.parens = _Parens(text)
        self.inline = inline
        self.inline_starts = [m.start for m in inline]
        self.all_labels = all_labels
        self.pieces = cut.pieces if cut is not None else None
        self._in_paren: dict[tuple[int, int], list[str]] = {}
        self._piece_starts: list[int] | None = None
        if self.pieces and all(a.end <= b.start for a, b in zip(self.pieces, self.pieces[1:])):
            self._piece_starts = [p.start for p in self.pieces]  # disjoint and in order: searchable

    def labels(self, hs: int, he: int, unit_end: int) -> list[str]:
        """Labels next to the hit ``[hs, he)`` (inside its parentheses or right after it), else the segment
        holding it, else every panel."""
        paren = self.parens.enclosing(hs)
        if paren:
            if paren not in self._in_paren:
                inside = []
                for k in range(bisect.bisect_left(self.inline_starts, paren[0]), len(self.inline)):
                    m = self.inline[k]
                    if m.start > paren[1]:
                        break
                    if m.end <= paren[1]:
                        inside.extend(m.labels)
                self._in_paren[paren] = list(dict.fromkeys(inside))
            if self._in_paren[paren]:
                return list(self._in_paren[paren])
        k = bisect.bisect_left(self.inline_starts, he)
        if k < len(self.inline) and self.inline[k].start <= unit_end:
            m = self.inline[k]
            between = self.text[he : m.start]
            if len(between) <= 80 and _NEAR_LABEL_RE.fullmatch(between):
                return list(m.labels)
        if self.pieces is not None:
            for p in self._pieces_at(hs):
                if p.start <= hs < p.end:
                    return list(p.labels)
        return list(self.all_labels)

    def _pieces_at(self, pos: int) -> list[_Piece]:
        if self._piece_starts is None:
            return self.pieces or []
        k = bisect.bisect_right(self._piece_starts, pos)
        return self.pieces[k - 1 : k] if k else []


_NEAR_LABEL_RE = re.compile(r"[\w\s\-]*\)?\s*(?:in|on|of)?\s*")
