"""Marker clauses: caption sentences about arrows, asterisks, boxes, insets ... and the panels they concern."""

from __future__ import annotations

import re

from panel2patch.data import MarkerClause

from .assembly import Cut, strip_span
from .sentences import sentence_starts
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
    spans = []
    for i in range(len(starts)):
        s, e = bounds[i], bounds[i + 1]
        depth = 0
        cur = s
        for j in range(s, e):
            ch = text[j]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth = max(0, depth - 1)
            elif ch == ";" and depth == 0:
                spans.append((cur, j + 1))
                cur = j + 1
        spans.append((cur, e))
    units = []
    for s, e in spans:
        cur = s
        for t0, t1 in sorted(tokens):
            if t1 <= cur or t0 >= e:
                continue
            units.append((cur, t0))
            cur = max(cur, t1)
        units.append((cur, e))
    out = [strip_span(text, s, e, lead_punct=True) for s, e in units]
    return [(s, e) for s, e in out if e > s and re.search(r"\w", text[s:e])]


def _enclosing_paren(text: str, pos: int) -> tuple[int, int] | None:
    depth = 0
    for i in range(pos - 1, -1, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                close = text.find(")", pos)
                return (i, close + 1) if close != -1 else None
            depth -= 1
    return None


def marker_clauses(
    text: str, cut: Cut | None, mentions: list[Mention], all_labels: list[str]
) -> list[MarkerClause]:
    inline = [m for m in mentions if m.role == "inline" and m.labels]
    tokens = [(m.start, m.end) for m in mentions if m.role in ("prefix", "postfix")]
    clauses: list[MarkerClause] = []
    seen: set[tuple[str, str]] = set()
    for us, ue in _clause_units(text, tokens):
        unit = text[us:ue]
        taken: list[tuple[int, int]] = []
        for kind, pattern in _MARKER_PATTERNS:
            for hit in pattern.finditer(unit):
                hs, he = us + hit.start(), us + hit.end()
                if any(hs < t1 and t0 < he for t0, t1 in taken):
                    continue
                taken.append((hs, he))
                labels = _clause_labels(text, hs, he, ue, cut, inline, all_labels)
                key = (kind, unit.strip().rstrip(",;:").rstrip())
                if key in seen:
                    for c in clauses:
                        if (c.kind, c.text) == key:
                            c.labels = list(dict.fromkeys(c.labels + labels))
                    continue
                seen.add(key)
                clauses.append(MarkerClause(kind=kind, text=key[1], labels=labels))
    return clauses


def _clause_labels(
    text: str, hs: int, he: int, unit_end: int, cut: Cut | None, inline: list[Mention], all_labels: list[str]
) -> list[str]:
    paren = _enclosing_paren(text, hs)
    if paren:
        inside = [m for m in inline if paren[0] <= m.start and m.end <= paren[1]]
        if inside:
            return list(dict.fromkeys(lab for m in inside for lab in m.labels))
    for m in inline:
        if he <= m.start <= unit_end:
            between = text[he : m.start]
            if re.fullmatch(r"[\w\s\-]*\)?\s*(?:in|on|of)?\s*", between) and len(between) <= 80:
                return list(m.labels)
            break
    if cut is not None:
        for p in cut.pieces:
            if p.start <= hs < p.end:
                return list(p.labels)
    return list(all_labels)
