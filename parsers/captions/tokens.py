"""Label tokens of a caption: every span that may name panel labels (``(A)``, ``b)``, ``C.``, ``d-f`` ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# One label: a letter with an optional sub-panel number (A, b, B1) or numeral (Ai, Biii), or a roman
# numeral of 2+ letters.
_ATOM = (
    r"(?<![A-Za-z0-9])(?:[ivx]{2,5}|[IVX]{2,5}|[A-Z](?:i{1,3}|iv|vi{0,3}|ix|x)|[A-Za-z]\d{0,2})"
    r"(?![A-Za-z0-9])"
)
_DASH = r"(?:\s*[-\u2010\u2011\u2012\u2013\u2014]\s*|\s+(?:to|through)\s+)"
_RANGE = rf"{_ATOM}(?:{_DASH}{_ATOM})?"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+|&\s*)?|\s+(?:and|or)\s+|\s*[/&]\s*)"
#: The most label items one token lists (``A, B, C-E`` is three). Longer runs (``A, A, A, ...``) are read
#: as several tokens; the cap keeps the token search linear in the caption length.
MAX_LIST_ITEMS = 32
_LIST = rf"{_RANGE}(?:{_SEP}{_RANGE}){{0,{MAX_LIST_ITEMS - 1}}}"
_PANEL_WORD = r"(?:[Pp]anels?|[Ii]mages?|[Ff]igs?\.?\s*parts?)\s+"

# "(A)", "(a.)", "(B, C)", "(A-C)", "(panel a)", "(C, in red, 200x)": a label list, optionally followed by a note.
_PAREN_RE = re.compile(rf"\(\s*(?:{_PANEL_WORD})?(?P<list>{_LIST})\.?\s*(?:(?P<note>[,;]\s*[^()]*?))?\)")
# "(anti-CD34, E-H)", "(white arrow, b)", "(PSA; image C)": labels closing a parenthetical note.
_TAIL_RE = re.compile(rf"\([^()]*?[,;]\s*(?:{_PANEL_WORD})?(?P<list>{_LIST})\s*\)")
# "((a), (b))", "((C) and (D))"
_NESTED_RE = re.compile(rf"\(\s*(?P<inner>\(\s*{_LIST}\s*\)(?:(?:{_SEP}|{_DASH})\(\s*{_LIST}\s*\))*)\s*\)")
# "A)", "b)", "A and B)" -- the closing parenthesis has no opening partner.
_CLOSE_RE = re.compile(rf"(?<![A-Za-z0-9(\[\-/])(?P<list>{_LIST})\)")
# "...tissuesA) Text": a title glued to the first label (common in PubMed captions).
_GLUED_CLOSE_RE = re.compile(r"(?<=[a-z]{3})(?P<list>[A-Z])\)(?=\s+[A-Z])")
# "A.", "A:", "A and C:", "D-F:", "A," at a sentence start.
_PUNCT_RE = re.compile(rf"(?<![A-Za-z0-9\[\-/'])(?P<list>{_LIST})(?P<punct>\s?[.:]|,)(?=\s)")
# Nature style "a Text", "a, b Text", "c-e Text".
_BARE_RE = re.compile(rf"(?<![A-Za-z0-9(\[\-/'])(?P<list>{_LIST})(?=\s+\S)")
# "panel A", "panels B and C" outside parentheses.
_PANELWORD_RE = re.compile(rf"(?<![A-Za-z])(?:[Pp]anels?|[Ii]mages?)\s+(?P<list>{_LIST})")

_RANGE_RE = re.compile(rf"(?P<a>{_ATOM})(?:{_DASH}(?P<b>{_ATOM}))?")
# Letter pairs that are never panel labels: the H&E stain (also "H and E"), R&D, AT&T.
_IDIOM_RE = re.compile(r"^(?:[Hh]\s*(?:&|and)\s*[Ee]|R\s*&\s*D)$")
_IDIOM_IN_TEXT_RE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]&[A-Z]|H\s+(?:&|and)\s+E)(?![A-Za-z0-9])")


@dataclass
class Mention:
    """A label token in the caption: ``labels`` named (expanded, in series spelling), span ``[start, end)``."""

    start: int
    end: int
    items: list[tuple[str, str | None]]
    style: str  # paren | tail | close | punct | bare | panelword | position
    labels: tuple[str, ...] = ()
    before: str = "none"  # strong | weak | none
    after: str = "text"  # text | punct | end | other
    role: str = "inline"  # prefix | postfix | sentence | inline
    weak: bool = False  # needs the series order to be believed (bare letters, "A,")
    merged: bool = False  # a token of an enumeration that does not cut (roles.merge_enumerations)
    run_on: bool = False  # a bare letter inside running text: "... collagen B Kidney ..." (roles.plausible)


_SUB_RE = re.compile(r"([A-Z])(\d+|[ivx]+)|([a-z])(\d+)")


def sub_panel(atom: str) -> tuple[str, str] | None:
    """``"B2"`` -> ``("B", "2")``, ``"Aii"`` -> ``("A", "ii")``; None for a plain letter or numeral."""
    if len(atom) < 2:
        return None
    m = _SUB_RE.fullmatch(atom)
    if m is None:
        return None
    return (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))


def _items(list_text: str) -> list[tuple[str, str | None]]:
    """``"A, C-E and G"`` -> ``[("A", None), ("C", "E"), ("G", None)]``; a range of sub-panels may leave
    the letter out of its end: ``"Ai-iii"`` -> ``[("Ai", "Aiii")]``."""
    out = []
    for m in _RANGE_RE.finditer(list_text):
        a, b = m.group("a"), m.group("b")
        sub = sub_panel(a)
        if b is not None and sub is not None and (b.isdigit() if sub[1].isdigit() else b.islower() and b.isalpha()):
            b = sub[0] + b
        out.append((a, b))
    return out


def _consistent(items: list[tuple[str, str | None]]) -> bool:
    """All atoms of one list share a family: ``A, B`` or ``ii, iii``, never ``II, H``."""
    kinds: set[str] = set()
    for a, b in items:
        for x in (a, b):
            if x is None:
                continue
            case = "lower" if x[0].islower() else "upper"
            if sub_panel(x):
                kinds.add("letter-" + case)
            elif len(x) > 1 and x.isalpha():
                kinds.add("roman-" + case)
            elif x in "ivxIVX":
                kinds.add("either-" + case)
            else:
                kinds.add("letter-" + case)
    cases = {k.split("-")[1] for k in kinds}
    kinds_only = {k.split("-")[0] for k in kinds} - {"either"}
    return len(cases) <= 1 and len(kinds_only) <= 1


def _matches(pattern: re.Pattern[str], text: str):
    """Like ``finditer``, but a match whose label list mixes families is retried one character later."""
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return
        items = _items(m.group("list"))
        if not items or not _consistent(items) or _IDIOM_RE.match(m.group("list").strip()):
            pos = m.start() + 1
            continue
        yield m, items
        pos = m.end()


def scan_tokens(caption: str) -> list[Mention]:
    """Every candidate label token in caption order; where tokens overlap the longest wins."""
    # Search a copy in which "H&E"-like pairs are digits, so that no label list runs into them.
    text = _IDIOM_IN_TEXT_RE.sub(lambda m: "0" * len(m.group()), caption)
    found: list[Mention] = []
    for m in _NESTED_RE.finditer(text):
        items = _items(re.sub(r"[()]", " ", m.group("inner")))
        if items and _consistent(items):
            found.append(Mention(m.start(), m.end(), items, "paren"))
    for m, items in _matches(_PAREN_RE, text):
        found.append(Mention(m.start(), m.end(), items, "paren"))
    for m, items in _matches(_TAIL_RE, text):
        found.append(Mention(m.start("list"), m.end("list"), items, "tail"))
    has_partner = _closing_has_partner(text)
    for pattern in (_CLOSE_RE, _GLUED_CLOSE_RE):
        for m, items in _matches(pattern, text):
            if not has_partner[m.end() - 1]:
                found.append(Mention(m.start(), m.end(), items, "close", weak=pattern is _GLUED_CLOSE_RE))
    for m, items in _matches(_PUNCT_RE, text):
        found.append(Mention(m.start(), m.end(), items, "punct", weak=m.group("punct") == ","))
    for m, items in _matches(_BARE_RE, text):
        found.append(Mention(m.start(), m.end(), items, "bare", weak=True))
    for m, items in _matches(_PANELWORD_RE, text):
        found.append(Mention(m.start(), m.end(), items, "panelword"))
    found.sort(key=lambda x: (x.start, -(x.end - x.start)))
    kept: list[Mention] = []
    for cand in found:
        if kept and cand.start < kept[-1].end:
            continue
        kept.append(cand)
    return _merge_adjacent(text, kept)


def _closing_has_partner(text: str) -> list[bool]:
    """For each ``)``, whether an earlier ``(`` is still open (a label token ``A)`` has none)."""
    partner = [False] * len(text)
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            partner[i] = depth > 0
            depth = max(0, depth - 1)
    return partner


_ADJ_SEP_RE = re.compile(rf"^(?:{_SEP})$")
_ADJ_DASH_RE = re.compile(rf"^(?:{_DASH})$")


def _merge_adjacent(text: str, mentions: list[Mention]) -> list[Mention]:
    """``(B), (C), and (D)`` -> one group; ``(i)–(iii)`` -> one range; ``(B) and C)`` -> one group."""
    out: list[Mention] = []
    grown: Mention | None = None  # the group this loop built last: its item list is extended in place
    for m in mentions:
        if out and m.style in ("paren", "close") and out[-1].style in ("paren", "close"):
            prev = out[-1]
            gap = text[prev.end : m.start]
            if prev.style == "paren" and _ADJ_DASH_RE.match(gap) and len(prev.items) == 1 and len(m.items) == 1:
                a, b = prev.items[0][0], m.items[0][0]
                out[-1] = Mention(prev.start, m.end, [(a, b)], m.style)
                continue
            if prev.style == "paren" and _ADJ_SEP_RE.match(gap):
                if prev is grown:
                    prev.items.extend(m.items)
                    prev.end, prev.style = m.end, m.style
                else:
                    grown = out[-1] = Mention(prev.start, m.end, prev.items + m.items, m.style)
                continue
        out.append(m)
    return out


_NUMBER_RE = re.compile(
    r"\(\s*(?P<pa>\d{1,2})(?:\s*[-\u2010-\u2014]\s*(?P<pb>\d{1,2}))?\s*\)|"
    r"(?<![\w.,/\-(])(?P<a>\d{1,2})(?:\s*[-\u2010-\u2014]\s*(?P<b>\d{1,2}))?(?P<punct>[.:)])(?=\s)"
)


def scan_numbers(caption: str) -> list[Mention]:
    """Numbered steps or panels: ``1. Text``, ``2) Text``, ``(3) Text``, ``(4-6)`` -- scanned only when the
    figure's labels are numbers."""
    has_partner = _closing_has_partner(caption)
    out = []
    for m in _NUMBER_RE.finditer(caption):
        if m.group("pa") is not None:
            out.append(Mention(m.start(), m.end(), [(m.group("pa"), m.group("pb"))], "paren"))
        elif m.group("punct") == ")":
            if not has_partner[m.end() - 1]:
                out.append(Mention(m.start(), m.end(), [(m.group("a"), m.group("b"))], "close"))
        else:
            out.append(Mention(m.start(), m.end(), [(m.group("a"), m.group("b"))], "punct"))
    return out
