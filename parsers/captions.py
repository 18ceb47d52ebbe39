"""Caption splitter ``labels``: cut a figure caption by its panel labels.

The caption is scanned for label tokens: ``(A)``, ``A)``, ``A.``, ``A:``, ``A,``, Nature-style bare
``a`` / ``a, b`` / ``c–e``, groups ``(A and B)`` / ``(B, C)`` / ``((a), (b))``, ranges ``A–C`` / ``c-e`` /
``(i)–(iii)``, sub-panels ``B1`` / ``A1/A2`` and roman numerals. Which tokens are labels is decided by the
label series: the labels read from the image when given, else the longest run of consecutive letters
(or roman numerals) that the caption's unambiguous tokens name; easily confused tokens (bare letters,
``A,``, the article "A", the pronoun "I") count only where they continue that series in reading order,
and ``Fig. 2A``, ``S.D.``, ``H&E``, units and ``(n = 5)`` never do. Each token then plays one role:

* **prefix** opens a segment (``(B) Text``): the text after it, up to the next label token, belongs to
  the labels it names;
* **postfix** closes one (``Text (b); more text (c).``): the text since the previous token belongs to it;
* **inline** is a back-reference inside a segment (``same case as (A) with``) and cuts nothing. Inside a
  group segment, back-references that name disjoint parts of the group, in order and covering all of it,
  attach their phrases to those panels: ``c–e SEM images of BM (c), PM (d) and CM (e)`` gives ``c``
  "SEM images of BM", ``d`` "PM", ``e`` "and CM".

Contract (exact for prefix-style captions): ``preamble`` is the text before the first label token;
``segments[L]`` is the text after each token naming ``L`` up to the next label token, with the token
removed and whitespace stripped (texts of several tokens naming ``L`` are joined with single spaces; a
group or range gives the same text to each label it names); ``shared`` holds the trailing sentences of
the last segment that are notes for every panel (scale bars, magnification, statistics, stains,
abbreviation legends). Segments are keyed by the label as printed (or as given), in caption order. When
the caption names no panel label, position words (``Top:``, ``(left)``, ``Lower panels ...``) cut it
instead, keyed by the lower-case phrase (``"top"``, ``"upper left"``); a caption with neither is all
``preamble`` apart from its trailing shared notes.

Marker clauses ("arrows indicate ...", "(arrowheads)", "* denotes ...", "boxed area is enlarged in C",
"dashed box shows ...", "inset shows ...", "circles mark ...") become
:class:`~panel2patch.components.MarkerClause` records: ``kind`` one of arrow/arrowhead/asterisk/box/
inset/circle/symbol, ``text`` the sentence or ``;``-clause (label tokens cut out), ``labels`` the panels
it belongs to: labels written next to the marker (``(arrows, c)``, ``(arrows) (d)``, ``arrows in (d)``),
else the segment holding the marker, else every panel when it sits in the preamble or the shared text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from panel2patch.components import CaptionSplit, CaptionSplitter, MarkerClause
from panel2patch.hookspecs import hookimpl

# --------------------------------------------------------------------------------------------------
# Label tokens
# --------------------------------------------------------------------------------------------------

# One label: a letter with an optional sub-panel number (A, b, B1) or a roman numeral of 2+ letters.
_ATOM = r"(?<![A-Za-z0-9])(?:[ivx]{2,5}|[IVX]{2,5}|[A-Za-z]\d{0,2})(?![A-Za-z0-9])"
_DASH = r"(?:\s*[-\u2010\u2011\u2012\u2013\u2014]\s*|\s+(?:to|through)\s+)"
_RANGE = rf"{_ATOM}(?:{_DASH}{_ATOM})?"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+|&\s*)?|\s+(?:and|or)\s+|\s*[/&]\s*)"
_LIST = rf"{_RANGE}(?:{_SEP}{_RANGE})*"
_PANEL_WORD = r"(?:[Pp]anels?|[Ii]mages?|[Ff]igs?\.?\s*parts?)\s+"

# "(A)", "(B, C)", "(A-C)", "(panel a)", "(C, in red, 200x)": a label list, optionally followed by a note.
_PAREN_RE = re.compile(rf"\(\s*(?:{_PANEL_WORD})?(?P<list>{_LIST})\s*(?:(?P<note>[,;]\s*[^()]*?))?\)")
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
_ROMAN_RE = re.compile(r"^(?=[ivxIVX])(x{0,3}|X{0,3})(ix|iv|v?i{0,3}|IX|IV|V?I{0,3})$")
# Letter pairs that are never panel labels: the H&E stain (also "H and E"), R&D, AT&T.
_IDIOM_RE = re.compile(r"^(?:[Hh]\s*(?:&|and)\s*[Ee]|R\s*&\s*D)$")
_IDIOM_IN_TEXT_RE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]&[A-Z]|H\s+(?:&|and)\s+E)(?![A-Za-z0-9])")
_JOINERS = {"and", "or", "while", "whereas", "but", "&", "with", "vs", "versus"}

# Position words, used when the caption names no panel label.
_POS = r"(?:top|bottom|upper|lower|middle|center|centre|left|right)"
_POS_RE = re.compile(
    rf"(?<![A-Za-z])(?P<the>the\s+)?(?P<pos>{_POS}(?:[\s-]+(?:left|right|middle|center|centre))?)"
    rf"(?P<noun>\s+(?:panels?|rows?|columns?|images?|parts?|pictures?))?(?P<punct>\s*[:,]|\))?",
    re.IGNORECASE,
)


@dataclass
class _Mention:
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


def _items(list_text: str) -> list[tuple[str, str | None]]:
    """``"A, C-E and G"`` -> ``[("A", None), ("C", "E"), ("G", None)]``."""
    return [(m.group("a"), m.group("b")) for m in _RANGE_RE.finditer(list_text)]


def _consistent(items: list[tuple[str, str | None]]) -> bool:
    """All atoms of one list share a family: ``A, B`` or ``ii, iii``, never ``II, H``."""
    kinds: set[str] = set()
    for a, b in items:
        for x in (a, b):
            if x is None:
                continue
            case = "lower" if x[0].islower() else "upper"
            if len(x) > 1 and x.isalpha():
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


def _scan(caption: str) -> list[_Mention]:
    """Every candidate label token in caption order; where tokens overlap the longest wins."""
    # Search a copy in which "H&E"-like pairs are digits, so that no label list runs into them.
    text = _IDIOM_IN_TEXT_RE.sub(lambda m: "0" * len(m.group()), caption)
    found: list[_Mention] = []
    for m in _NESTED_RE.finditer(text):
        items = _items(re.sub(r"[()]", " ", m.group("inner")))
        if items and _consistent(items):
            found.append(_Mention(m.start(), m.end(), items, "paren"))
    for m, items in _matches(_PAREN_RE, text):
        found.append(_Mention(m.start(), m.end(), items, "paren"))
    for m, items in _matches(_TAIL_RE, text):
        found.append(_Mention(m.start("list"), m.end("list"), items, "tail"))
    has_partner = _closing_has_partner(text)
    for pattern in (_CLOSE_RE, _GLUED_CLOSE_RE):
        for m, items in _matches(pattern, text):
            if not has_partner[m.end() - 1]:
                found.append(_Mention(m.start(), m.end(), items, "close", weak=pattern is _GLUED_CLOSE_RE))
    for m, items in _matches(_PUNCT_RE, text):
        found.append(_Mention(m.start(), m.end(), items, "punct", weak=m.group("punct") == ","))
    for m, items in _matches(_BARE_RE, text):
        found.append(_Mention(m.start(), m.end(), items, "bare", weak=True))
    for m, items in _matches(_PANELWORD_RE, text):
        found.append(_Mention(m.start(), m.end(), items, "panelword"))
    found.sort(key=lambda x: (x.start, -(x.end - x.start)))
    kept: list[_Mention] = []
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


def _merge_adjacent(text: str, mentions: list[_Mention]) -> list[_Mention]:
    """``(B), (C), and (D)`` -> one group; ``(i)–(iii)`` -> one range; ``(B) and C)`` -> one group."""
    out: list[_Mention] = []
    for m in mentions:
        if out and m.style in ("paren", "close") and out[-1].style in ("paren", "close"):
            prev = out[-1]
            gap = text[prev.end : m.start]
            if prev.style == "paren" and _ADJ_DASH_RE.match(gap) and len(prev.items) == 1 and len(m.items) == 1:
                a, b = prev.items[0][0], m.items[0][0]
                out[-1] = _Mention(prev.start, m.end, [(a, b)], m.style)
                continue
            if prev.style == "paren" and _ADJ_SEP_RE.match(gap):
                out[-1] = _Mention(prev.start, m.end, prev.items + m.items, m.style)
                continue
        out.append(m)
    return out


# --------------------------------------------------------------------------------------------------
# The label series
# --------------------------------------------------------------------------------------------------

_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}


def _roman_value(s: str) -> int | None:
    if not s or not _ROMAN_RE.match(s) or not (s.islower() or s.isupper()):
        return None
    total, prev = 0, 0
    for ch in reversed(s.lower()):
        v = _ROMAN_VALUES[ch]
        total += -v if v < prev else v
        prev = max(prev, v)
    return total


def _to_roman(n: int, upper: bool) -> str:
    out = ""
    for value, sym in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out += sym
            n -= value
    return out.upper() if upper else out


class _Series:
    """The panel labels a caption is cut by, in order, and how caption tokens map onto them."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(dict.fromkeys(labels))
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        lower: dict[str, list[str]] = {}
        for lab in self.labels:
            lower.setdefault(lab.lower(), []).append(lab)
        self._folded = {k: v[0] for k, v in lower.items() if len(v) == 1}
        self.roman = bool(self.labels) and all(_roman_value(lab) is not None for lab in self.labels) and any(
            len(lab) > 1 for lab in self.labels
        )

    def lookup(self, atom: str) -> str | None:
        if atom in self.index:
            return atom
        return self._folded.get(atom.lower())

    def expand(self, a: str, b: str | None) -> list[str] | None:
        """Labels named by ``a`` or the range ``a``–``b``; None when the token is not of this series."""
        first = self.lookup(a)
        if b is None:
            return [first] if first else None
        last = self.lookup(b)
        if first and last and self.index[first] < self.index[last]:
            return self.labels[self.index[first] : self.index[last] + 1]
        names = _expand_range(a, b, roman=self.roman)
        if not names:
            return None
        mapped = [self.lookup(n) for n in names]
        got = [n for n in mapped if n]
        return got or None


def _expand_range(a: str, b: str, roman: bool) -> list[str]:
    """Spell out ``a``–``b``: letters (``c-e``), sub-panels (``B1-B3``) or roman numerals (``i-iii``)."""
    ra, rb = _roman_value(a), _roman_value(b)
    if roman and ra and rb and ra < rb and a.islower() == b.islower():
        return [_to_roman(n, a.isupper()) for n in range(ra, rb + 1)]
    if len(a) == 1 and len(b) == 1 and a.isalpha() and b.isalpha() and a.islower() == b.islower():
        if ord(a) < ord(b) <= ord(a) + 25:
            return [chr(c) for c in range(ord(a), ord(b) + 1)]
        return []
    ma, mb = re.fullmatch(r"([A-Za-z])(\d+)", a), re.fullmatch(r"([A-Za-z])(\d+)", b)
    if ma and mb and ma.group(1) == mb.group(1) and int(ma.group(2)) < int(mb.group(2)) <= int(ma.group(2)) + 20:
        return [f"{ma.group(1)}{n}" for n in range(int(ma.group(2)), int(mb.group(2)) + 1)]
    return []


def _family(atom: str) -> str | None:
    if len(atom) > 1 and atom.isalpha():
        v = _roman_value(atom)
        if v is None:
            return None
        return "roman" if atom.islower() else "ROMAN"
    return "lower" if atom[0].islower() else "upper"


def _letter_run(letters: set[int]) -> list[int]:
    """Letters (0 = a) from the first one, allowing single missing letters (J is often skipped)."""
    if not letters or min(letters) > 1:
        return []
    run = []
    gap = 0
    for i in range(0, 26):
        if i in letters:
            run.append(i)
            gap = 0
        elif run:
            gap += 1
            if gap > 1:
                break
    return run


def _infer_series(mentions: list[_Mention]) -> _Series:
    """Pick the label family (A.., a.., i.., I..) with the longest consecutive run of mentioned labels.

    Strong tokens (``(A)``, ``A)``, ``A.``, ``A:``) always count; tokens that are easily something else
    (bare letters, ``A,``, ``word B)``) count only where they continue the series in reading order.
    """
    pool = _in_order(mentions)
    atoms: dict[str, set[str]] = {"upper": set(), "lower": set(), "roman": set(), "ROMAN": set()}
    for m in pool:
        for a, b in m.items:
            for x in (a, b):
                if x is None:
                    continue
                fam = _family(x)
                if fam:
                    atoms[fam].add(x)
                if _roman_value(x) is not None and len(x) == 1:  # i, v, x may start a roman series
                    atoms["roman" if x.islower() else "ROMAN"].add(x)
            if b is not None:
                for x in _expand_range(a, b, roman=False) + _expand_range(a, b, roman=True):
                    fam = _family(x)
                    if fam:
                        atoms[fam].add(x)
    best: tuple[int, int, list[str]] = (0, 0, [])
    for rank, fam in enumerate(("upper", "lower", "roman", "ROMAN")):
        found = atoms[fam]
        if fam in ("roman", "ROMAN"):
            values = {_roman_value(x) for x in found} - {None}
            run = []
            for v in range(1, 40):
                if v not in values:
                    break
                run.append(v)
            letters_seen = atoms["lower" if fam == "roman" else "upper"] - set("ivxIVX")
            if not run or (len(run) == 1 and letters_seen):  # "(G) ... (H) ... (I)": letters, not roman
                continue
            labels = [_to_roman(v, fam == "ROMAN") for v in run]
        else:
            letters = {ord(x[0].lower()) - ord("a") for x in found}
            run = _letter_run(letters)
            base = "a" if fam == "lower" else "A"
            labels = []
            for i in run:
                letter = chr(ord(base) + i)
                numbers = {int(x[1:]) for x in found if x[0] == letter and len(x) > 1}
                run_n = 0
                while run_n + 1 in numbers:  # B1, B2, B3 ...; a lone "B6" is a name, not a sub-panel
                    run_n += 1
                subs = [f"{letter}{n}" for n in range(1, run_n + 1)]
                if letter in found or not subs:
                    labels.append(letter)
                labels.extend(subs)
        if (len(run), -rank) > (best[0], best[1]):
            best = (len(run), -rank, labels)
    return _Series(best[2])


def _in_order(mentions: list[_Mention]) -> list[_Mention]:
    """Strong tokens, and weak tokens that name the label right after the tokens before them (a, b ...;
    A1, A2, B1 ...; i, ii, iii ...)."""
    out: list[_Mention] = []
    last: dict[str, str] = {}  # per case: the last label named
    for m in mentions:
        first = m.items[0][0]
        case = "lower" if first[0].islower() else "upper"
        if m.weak and not _follows(last.get(case), first):
            continue
        out.append(m)
        end = m.items[-1][1] or m.items[-1][0]
        if case == ("lower" if end[0].islower() else "upper"):
            prev = last.get(case)
            if prev is None or _order_key(prev)[0] != _order_key(end)[0] or _order_key(end) > _order_key(prev):
                last[case] = end  # a back-reference to an earlier label does not move the series back
    return out


def _order_key(atom: str) -> tuple[int, int, int]:
    """Sort key within a series: (kind, major, minor); kind 0 letters (B2 -> 1, 2), 1 roman (iv -> 4)."""
    if len(atom) > 1 and atom.isalpha():
        return (1, _roman_value(atom) or 0, 0)
    letter, num = _split_label(atom)
    return (0, letter or 0, num or 0)


def _follows(prev: str | None, cur: str) -> bool:
    """Whether label ``cur`` comes right after ``prev`` (None: ``cur`` starts a series)."""
    cur_letter, cur_num = _split_label(cur)
    rc = _roman_value(cur)
    if prev is None:
        return (cur_letter == 0 and cur_num in (None, 1)) or rc == 1
    prev_letter, prev_num = _split_label(prev)
    rp = _roman_value(prev)
    if rp is not None and rc is not None and rc == rp + 1:
        return True
    if cur_letter is None or prev_letter is None:
        return False
    if cur_letter == prev_letter + 1 and cur_num in (None, 1):
        return True
    return cur_letter == prev_letter and prev_num is not None and cur_num == prev_num + 1


def _split_label(atom: str) -> tuple[int | None, int | None]:
    """``"B2"`` -> (1, 2); ``"c"`` -> (2, None); roman or other -> (None, None)."""
    m = re.fullmatch(r"([A-Za-z])(\d+)?", atom)
    if not m:
        return None, None
    return ord(m.group(1).lower()) - ord("a"), int(m.group(2)) if m.group(2) else None


# --------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------

_ABBREV = {"fig", "figs", "e.g", "i.e", "vs", "al", "approx", "ca", "no", "nos", "dr", "st", "ref", "refs", "cf",
           "resp", "sp", "spp", "mag", "orig", "magn"}
_SENT_RE = re.compile(r"[.!?](?:[\"')\]]*)(?=\s+[\"'(\[]*[A-Z0-9*#\u00b1])|(?<=[a-z]{3})\.(?=[A-Z][a-z])")


def _sentence_starts(text: str) -> list[int]:
    """Offsets where sentences start (0 included); ``Fig.``, ``e.g.``, a label token such as ``A.`` and
    decimals do not end one."""
    return list(_sentence_starts_cached(text))


@functools.lru_cache(maxsize=64)
def _sentence_starts_cached(text: str) -> tuple[int, ...]:
    starts = [0]
    for m in _SENT_RE.finditer(text):
        word = re.search(r"([A-Za-z.]+)\.?$", text[max(0, m.start() - 12) : m.start() + 1])
        w = word.group(1).rstrip(".").lower() if word else ""
        if w in _ABBREV:
            continue
        if len(w) == 1 and text[m.start() - 1].isalpha():
            head = text[: m.start() - 1].rstrip()
            if not head or head[-1] in ".;:":  # "A. Text": the dot belongs to a label token
                continue
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text):
            starts.append(pos)
    return tuple(starts)


_SHARED_RE = re.compile(
    r"scale\s*bars?|\bbars?\s*[,:=]|\bbars?\s+(?:represents?|indicates?|=|in\b)|"
    r"magnifications?\b[^.]*?\d|\d[^.]*?magnifications?\b|\bmag\.|\d\s*[x\u00d7*]?\s*objectives?|"
    r"\boriginal\s+\w*\s*[x\u00d7*]|^[x\u00d7*]\s*\d|"
    r"\bdata\s+(?:are|is|were|represent|show)|\bmeans?\s*(?:\u00b1|\+/?-|\+)|\u00b1|\+/-|\bs\.?e\.?m\b|\bs\.d\b|"
    r"error\s+bars?|\bp\s*[<=>\u2264]|\bp[-\s]values?|statistic|significan|\bt[-\s]test|anova|"
    r"abbreviations?|\b(?:are|is|were)\s+representative\s+of\b|"
    r"\b(?:reproduced|adapted|reprinted|modified)\s+(?:with\s+permission\s+)?from\b|with\s+permission\b|"
    r"\ball\s+(?:images|panels|pictures|photos|micrographs|photographs|sections|graphs|figures)|"
    r"\beach\s+(?:panel|graph|image)|^\(?see\s+(?:also\s+)?(?:fig|text|supp)",
    re.IGNORECASE,
)
# Short notes that apply to every panel: "Hematoxylin-eosin staining.", "Representative of 3 mice."
_NOTE_RE = re.compile(
    r"\bstain(?:ing|ed)?\b|counterstain|h\s*&\s*e\b|hematoxylin|haematoxylin|\beosin|representative",
    re.IGNORECASE,
)
# "AR, androgen receptor; BPH, benign ..." -- abbreviation legends
_LEGEND_RE = re.compile(r"^(?:[A-Za-z][\w+\-/]{0,12}\s*[,:=]\s*[^;]+;\s*){1,}")


def _is_shared_sentence(sentence: str) -> bool:
    if _SHARED_RE.search(sentence) or _LEGEND_RE.match(sentence):
        return True
    return len(sentence.split()) <= 12 and bool(_NOTE_RE.search(sentence))


# --------------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------------


def _context(text: str, m: _Mention) -> None:
    """Set ``before`` (what precedes the token) and ``after`` (what follows it)."""
    head = text[: m.start].rstrip()
    if not head:
        m.before = "strong"
    elif head[-1] in ".;:!?":
        m.before = "strong"
    elif head[-1] == ",":
        m.before = "weak"
    elif head[-1] == "(" and m.style == "punct" and text[m.end - 1] == ":":
        m.before = "strong"  # "(A and C: 100x; B and D: 400x)"
    elif m.style == "paren" and head[-1].isalpha() and m.start > 0 and not text[m.start - 1].isspace():
        m.before = "weak"  # "...tumorigenesis(a) H&E staining": a title glued to the first label
    else:
        word = re.search(r"([A-Za-z&]+)$", head)
        m.before = "weak" if word and word.group(1).lower() in _JOINERS else "none"
    rest = text[m.end :]
    if m.style in ("punct",):
        m.after = "text" if rest.strip() else "end"
        return
    stripped = rest.lstrip()
    if not stripped:
        m.after = "end"
    elif rest[:1] and not rest[:1].isspace() and m.style in ("paren", "close") and rest[0] in "-\u2013'":
        m.after = "other"
    elif stripped[0] in ".;,:":
        m.after = "punct"
    elif stripped[0] == ")":
        m.after = "other"
    else:
        m.after = "text"


def _next_word(text: str, pos: int) -> str:
    w = re.match(r"\s*([^\s]+)", text[pos:])
    return w.group(1) if w else ""


def _assign_labels(mentions: list[_Mention], series: _Series) -> list[_Mention]:
    """Map each token onto the series; drop tokens that are not labels of it."""
    out = []
    for m in mentions:
        labels: list[str] = []
        ok = True
        for a, b in m.items:
            got = series.expand(a, b)
            if got is None:
                ok = False
                break
            labels.extend(got)
        if not ok or not labels:
            continue
        m.labels = tuple(dict.fromkeys(labels))
        out.append(m)
    return out


_OTHER_FIGURE_RE = re.compile(r"(?:\b(?:Fig(?:ure)?s?|Supplementary|Suppl)\.?\s*S?\d+\s*|\d)$", re.IGNORECASE)


def _plausible(text: str, m: _Mention) -> bool:
    """Reject tokens that are ordinary words or abbreviations: the article "A"/"a" and the pronoun "I"
    (before a lowercase word or after a comma), ``S.D.``, bare letters and ``A.`` inside a sentence (``5 A``,
    ``in A.``). Tokens believable only as the next label of the series are marked weak."""
    if _OTHER_FIGURE_RE.search(text[: m.start]):
        return False  # "Figure 2(A)", "Fig. 3 A": a panel of another figure
    if m.style == "bare" and m.before == "none":
        return False
    if m.style == "punct" and m.before == "none" and text[m.end - 1] != ":":
        return False
    if m.style == "punct" and text[: m.start].rstrip()[-1:] == "(" and text[m.end - 1] != ":":
        return False
    if m.style == "bare":
        if m.before == "weak" and text[: m.start].rstrip()[-1:] != ",":
            return False
        nxt = _next_word(text, m.end)
        first = m.items[0][0]
        if first in ("A", "a", "I") and len(m.items) == 1 and m.items[0][1] is None:
            if not nxt or nxt[0].islower() or m.before != "strong":  # ", a 4-mm metastasis": an article
                return False
        if nxt[:1] in ".,;:)" or not nxt:
            return False
    if m.style == "close" and m.before == "none":
        m.weak = True  # "... tissue B) Text": believable only as the next label of the series
    if m.style == "punct" and m.before == "none" and text[m.end - 1] == ":":
        if text[: m.start].rstrip()[-1:] not in (")", "]"):
            return False
        m.before, m.weak = "strong", True  # "(neurons and microglia) B: Colon": a missing full stop
    if m.style in ("punct", "bare", "close") and m.start >= 2 and text[m.start - 1] == ".":
        if text[m.start - 2].isalpha() and (m.start < 3 or not text[m.start - 3].isalpha()):
            return False  # "S.D.", "U.S." -- an abbreviation, not a label after a sentence
    return True


def _choose_roles(text: str, mentions: list[_Mention], series: _Series) -> list[_Mention]:
    """Decide prefix / postfix / inline for each token; return the anchors (prefix and postfix)."""
    starts = _sentence_starts(text)
    order = {lab: i for i, lab in enumerate(series.labels)}

    for m in mentions:
        if m.style in ("punct",):
            m.role = "prefix" if m.before == "strong" and m.after == "text" else "inline"
        elif m.style == "bare":
            m.role = "prefix" if m.before in ("strong", "weak") and m.after == "text" else "inline"
        elif m.style == "close":
            m.role = "prefix" if m.after == "text" else "inline"
        else:  # paren, panelword
            if m.before in ("strong", "weak") and (m.after == "text" or _punct_then_text(text, m)):
                m.role = "prefix"
                if m.after == "punct":
                    m.end = _skip_punct(text, m.end)
            elif m.before == "none" and (m.after in ("punct", "end") or _conjunction_follows(text, m)):
                m.role = "postfix"
            else:
                m.role = "inline"

    # Tokens that only continue a series in reading order (bare letters, "A,") must come next in it.
    anchors: list[_Mention] = []
    top = -1
    for m in mentions:
        if m.role == "inline":
            continue
        first = order[m.labels[0]]
        if m.weak and first != top + 1:
            m.role = "inline"
            continue
        anchors.append(m)
        top = max(top, max(order[lab] for lab in m.labels))

    anchors = _drop_backrefs(anchors, starts)
    anchors = _drop_global(anchors, series)
    anchored = {lab for a in anchors for lab in a.labels}
    # A label named only inline ("... from the prostate (a) and ...", "The case in (E) and (F) has ...")
    # is anchored at its first mention: before any other anchor or after a postfix one it closes the
    # text before it; inside the first sentence of a segment it starts the rest of that sentence;
    # elsewhere it claims its whole sentence.
    promoted = False
    for m in mentions:
        if m.role != "inline" or m.weak or m.style not in ("paren", "close", "panelword", "tail"):
            continue
        if set(m.labels) & anchored:
            continue
        before = [a for a in anchors if a.start < m.start]
        prev = max(before, key=lambda a: a.start) if before else None
        if prev is None or prev.role == "postfix":
            m.role = "postfix"
        elif _sentence_of(starts, m.start) <= prev.start:
            m.role = "prefix"
        else:
            m.role = "postfix" if m.after in ("punct", "end") else "sentence"
        anchors.append(m)
        anchored |= set(m.labels)
        promoted = True
    if promoted:
        anchors.sort(key=lambda a: a.start)
        anchors = _drop_backrefs(anchors, starts)
    return anchors


_CONJUNCTIONS = ("and", "or", "but", "whereas", "while", "respectively")


def _conjunction_follows(text: str, m: _Mention) -> bool:
    """``the prostate (a) and the penile specimen (b)``: the token closes a clause."""
    return _next_word(text, m.end).lower().strip(",;") in _CONJUNCTIONS


def _punct_then_text(text: str, m: _Mention) -> bool:
    """``(i), 100 um`` / ``(C): text`` -- a comma or colon after the token, then text."""
    rest = text[m.end :]
    return bool(re.match(r"\s*[,:]\s*[^\s.;,:)]", rest))


def _skip_punct(text: str, pos: int) -> int:
    m = re.match(r"\s*[,:]", text[pos:])
    return pos + m.end() if m else pos


def _sentence_of(starts: list[int], pos: int) -> int:
    """Start offset of the sentence holding ``pos``."""
    s = 0
    for st in starts:
        if st <= pos:
            s = st
        else:
            break
    return s


def _drop_backrefs(anchors: list[_Mention], starts: list[int]) -> list[_Mention]:
    """Postfix tokens that refer back do not cut the caption: those naming only labels of the open
    segment or labels that already opened a segment earlier, and those in the first sentence of the
    open segment."""
    out: list[_Mention] = []
    active: _Mention | None = None
    opened: set[str] = set()
    for a in anchors:
        if a.role in ("prefix", "sentence"):
            out.append(a)
            active = a
            opened |= set(a.labels)
            continue
        if set(a.labels) <= opened:
            a.role = "inline"
            continue
        if active is not None and _sentence_of(starts, a.start) <= active.start:
            a.role = "inline"
            continue
        out.append(a)
        active = None
    return out


def _drop_global(anchors: list[_Mention], series: _Series) -> list[_Mention]:
    """A group naming every label (``Right kidney (A-F)``) is no cut when each label has its own token."""
    if len(series.labels) < 2:
        return anchors
    own = {lab for a in anchors if len(a.labels) < len(series.labels) for lab in a.labels}
    out = []
    for a in anchors:
        if len(a.labels) >= 2 and set(a.labels) >= set(series.labels) and set(a.labels) <= own:
            a.role = "inline"
            continue
        out.append(a)
    return out


# --------------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------------


#: ``shared_by_length``: at least this many other segments are needed before sentences of the last
#: segment beyond the longest of them are taken as shared notes.
MIN_SEGMENTS_FOR_LENGTH_RULE = 2


@dataclass
class _Piece:
    start: int
    end: int
    labels: tuple[str, ...]


@dataclass
class _Cut:
    preamble: tuple[int, int] = (0, 0)
    pieces: list[_Piece] = field(default_factory=list)
    shared: tuple[int, int] | None = None


def _strip_span(text: str, start: int, end: int, lead_punct: bool) -> tuple[int, int]:
    while start < end and (text[start].isspace() or (lead_punct and text[start] in ",;:.")):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _assemble(text: str, anchors: list[_Mention], n_labels: int, by_length: bool) -> _Cut:
    """Cut the caption at the anchors into preamble, labelled pieces and the shared tail."""
    starts = _sentence_starts(text)
    cut = _Cut()
    cursor = 0  # end of the text already given out
    open_piece: _Piece | None = None  # the segment a prefix or sentence anchor opened
    prev: _Mention | None = None
    for a in anchors:
        sent = _sentence_of(starts, a.start)
        if a.role == "prefix":
            if prev is None:
                cut.preamble = (0, a.start)
            elif open_piece is not None:
                open_piece.end = a.start
            else:  # text after a postfix token, before this one: continues that panel
                cut.pieces.append(_Piece(cursor, a.start, prev.labels))
            open_piece = _Piece(a.end, len(text), a.labels)
            cut.pieces.append(open_piece)
            cursor = a.end
        elif a.role == "sentence":
            if prev is None:
                cut.preamble = (0, sent)
                begin = sent
            elif open_piece is not None:
                begin = max(cursor, sent)
                open_piece.end = begin
            else:
                begin = cursor
            open_piece = _Piece(begin, len(text), a.labels)
            cut.pieces.append(open_piece)
            cursor = begin
        else:  # postfix
            if prev is None:
                cut.preamble = (0, sent)
                cut.pieces.append(_Piece(sent, a.start, a.labels))
            elif open_piece is not None:
                split = max(cursor, sent)
                open_piece.end = split
                cut.pieces.append(_Piece(split, a.start, a.labels))
            else:
                cut.pieces.append(_Piece(cursor, a.start, a.labels))
            open_piece = None
            cursor = a.end
        prev = a
    if prev is None:
        return cut
    if open_piece is not None:
        if n_labels >= 2:
            others = [p for p in cut.pieces if p is not open_piece and p.end > p.start]
            typical = 0
            if by_length and len(others) >= MIN_SEGMENTS_FOR_LENGTH_RULE:
                typical = max(_count_sentences(text, p.start, p.end) for p in others)
            shared_from = _shared_start(text, open_piece.start, open_piece.end, typical)
            if shared_from is not None:
                open_piece.end = shared_from
                cut.shared = (shared_from, len(text))
    else:
        # Postfix captions: the rest of the sentence continues the last panel; later sentences are shared.
        later = [st for st in starts if st > cursor]
        end_of_sentence = later[0] if later else len(text)
        cut.pieces.append(_Piece(cursor, end_of_sentence, prev.labels))
        if end_of_sentence < len(text):
            cut.shared = (end_of_sentence, len(text))
    return cut


def _head_end(text: str, start: int, end: int) -> int | None:
    """End of the common head of a group segment: its last sentence end or colon before ``end``."""
    best = None
    for st in _sentence_starts(text):
        if start < st < end:
            best = st
    for m in re.finditer(r":\s", text[start:end]):
        best = max(best or 0, start + m.end())
    return best


def _partition_groups(text: str, cut: _Cut, inline: list[_Mention]) -> None:
    """Attach phrases to panels inside a group segment: ``(b-d) Staining at 1 month (b), at 3 months (c)
    and at 6 months (d). Note ...`` gives ``b`` "Staining at 1 month", ``c`` "at 3 months", ``d`` "and at
    6 months" and the rest of the segment to all three. Only when the inline tokens name disjoint parts
    of the group, in order, and together all of it; otherwise the group keeps one text."""
    out: list[_Piece] = []
    for piece in cut.pieces:
        group = set(piece.labels)
        refs = [m for m in inline if piece.start <= m.start and m.end <= piece.end]
        parts: list[_Mention] = []
        covered: set[str] = set()
        for m in refs:
            names = set(m.labels)
            if names < group and not names & covered:
                parts.append(m)
                covered |= names
        if len(group) < 2 or len(parts) < 2 or covered != group:
            out.append(piece)
            continue
        begin = piece.start
        head = _head_end(text, piece.start, parts[0].start)
        if head is not None:  # "Sections were stained. Staining pattern: area (A), nuclei (B)"
            out.append(_Piece(piece.start, head, piece.labels))
            begin = head
        for m in parts:
            out.append(_Piece(begin, m.start, m.labels))
            begin = m.end
        if begin < piece.end:
            out.append(_Piece(begin, piece.end, piece.labels))
    cut.pieces = out


def _count_sentences(text: str, start: int, end: int) -> int:
    if not text[start:end].strip():
        return 0
    return 1 + sum(1 for s in _sentence_starts(text) if start < s < end and text[s:end].strip())


def _shared_start(text: str, start: int, end: int, typical: int) -> int | None:
    """Offset where the trailing shared sentences of the last segment begin (None: there are none).

    Trailing sentences that read as shared notes (scale bars, statistics, stains, abbreviations) are
    shared; so are sentences beyond ``typical``, the most sentences any other segment has (0: unknown),
    when that leaves the last segment as long as the others. The first sentence always stays.
    """
    starts = [s for s in _sentence_starts(text) if start < s < end]
    bounds = [start] + starts + [end]
    n = len(bounds) - 1  # sentences in the segment
    shared_from = None
    for i in range(n - 1, 0, -1):
        sentence = text[bounds[i] : bounds[i + 1]].strip()
        if _is_shared_sentence(sentence) or (typical and i >= typical):
            shared_from = bounds[i]
        else:
            break
    return shared_from


def _segment_texts(text: str, cut: _Cut, order: list[str]) -> tuple[str, dict[str, str], str]:
    pre = text[cut.preamble[0] : cut.preamble[1]].strip()
    parts: dict[str, list[str]] = {}
    for p in cut.pieces:
        s, e = _strip_span(text, p.start, p.end, lead_punct=True)
        chunk = text[s:e]
        for lab in p.labels:
            parts.setdefault(lab, [])
            if chunk:
                parts[lab].append(chunk)
    shared = text[cut.shared[0] : cut.shared[1]].strip() if cut.shared else ""
    first_seen: dict[str, int] = {}
    for i, p in enumerate(cut.pieces):
        for lab in p.labels:
            first_seen.setdefault(lab, i)
    ordered = sorted(parts, key=lambda lab: (first_seen[lab], order.index(lab) if lab in order else 0))
    return pre, {lab: " ".join(parts[lab]) for lab in ordered}, shared


# --------------------------------------------------------------------------------------------------
# Position words
# --------------------------------------------------------------------------------------------------


def _position_mentions(text: str) -> list[_Mention]:
    out = []
    for m in _POS_RE.finditer(text):
        punct = m.group("punct")
        noun = m.group("noun")
        if not punct and not noun or (m.group("the") and not noun):
            continue
        mention = _Mention(m.start(), m.end(), [], "position")
        key = re.sub(r"[\s-]+", " ", m.group("pos").lower())
        mention.labels = (key,)
        _context(text, mention)
        paren_open = text[: m.start()].rstrip()[-1:] == "("
        if punct and punct.strip() == ")" and not paren_open:
            continue
        if paren_open and punct and punct.strip() == ")":
            mention.start = text.rindex("(", 0, m.start())
            after = text[m.end() :].lstrip()[:1]
            mention.after = "text" if after and after not in ".;,:)" else "punct"
            head = text[: mention.start].rstrip()
            mention.before = "strong" if not head or head[-1] in ".;:," else "none"
        if mention.before == "strong" and mention.after == "text":
            mention.role = "prefix"
            out.append(mention)
    return out


# --------------------------------------------------------------------------------------------------
# Marker clauses
# --------------------------------------------------------------------------------------------------

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
    starts = _sentence_starts(text)
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
    out = [_strip_span(text, s, e, lead_punct=True) for s, e in units]
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


def _marker_clauses(
    text: str, cut: _Cut | None, mentions: list[_Mention], all_labels: list[str]
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
    text: str, hs: int, he: int, unit_end: int, cut: _Cut | None, inline: list[_Mention], all_labels: list[str]
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


# --------------------------------------------------------------------------------------------------
# The splitter
# --------------------------------------------------------------------------------------------------


class LabelCaptionSplitter(CaptionSplitter):
    """Label-anchored caption splitter (registered as ``labels``, the default).

    ``split(caption, labels)``: ``labels`` are the panel labels read from the image (``["A", "B"]``),
    matched to caption tokens exactly or, when unambiguous, ignoring case; segments are keyed by those
    spellings. Labels the caption never names get no segment. With ``labels=None`` the label series is
    inferred from the caption. Never raises on text input; an empty caption gives an empty split.

    ``shared_by_length``: also treat the sentences of the last segment beyond the longest other segment
    (counted in sentences, with at least :data:`MIN_SEGMENTS_FOR_LENGTH_RULE` other segments) as shared,
    as in ``(A) Liver. (B) Lung. (C) Spleen. Arrows mark vessels.``. Off by default: it also moves a
    last panel's own extra sentences ("(C) Spleen. Arrows mark the capsule.") out of its segment.
    """

    def __init__(self, *, shared_by_length: bool = False) -> None:
        self.shared_by_length = shared_by_length

    def split(self, caption: str, labels: Sequence[str] | None) -> CaptionSplit:
        text = caption or ""
        if not text.strip():
            return CaptionSplit(caption=caption or "")
        mentions = _scan(text)
        for m in mentions:
            _context(text, m)
        mentions = [m for m in mentions if _plausible(text, m)]
        if labels:
            series = _Series([str(lab) for lab in labels if str(lab).strip()])
        else:
            series = _infer_series(mentions)
        mentions = _assign_labels(mentions, series) if series.labels else []
        anchors = _choose_roles(text, mentions, series) if mentions else []
        if not anchors:
            anchors = _position_mentions(text)
            mentions = list(anchors)
        if not anchors:
            return self._unlabelled(text, list(series.labels) if labels else [])
        cut = _assemble(text, anchors, len({lab for a in anchors for lab in a.labels}), self.shared_by_length)
        _partition_groups(text, cut, [m for m in mentions if m.role == "inline" and m.style in ("paren", "tail")])
        preamble, segments, shared = _segment_texts(text, cut, list(series.labels))
        clauses = _marker_clauses(text, cut, mentions, list(segments))
        return CaptionSplit(caption=text, preamble=preamble, segments=segments, shared=shared, clauses=clauses)

    @staticmethod
    def _unlabelled(text: str, labels: list[str]) -> CaptionSplit:
        """No label token: the caption is the preamble, minus trailing shared notes ("Scale bar, 1 mm.")."""
        end = len(text.rstrip())
        shared_from = _shared_start(text, 0, end, 0)
        cut = _Cut(preamble=(0, shared_from if shared_from is not None else end))
        if shared_from is not None:
            cut.shared = (shared_from, end)
        preamble, _, shared = _segment_texts(text, cut, [])
        return CaptionSplit(caption=text, preamble=preamble, shared=shared,
                            clauses=_marker_clauses(text, None, [], labels))


@hookimpl
def register_caption_splitters(register):
    register("labels", LabelCaptionSplitter)
