"""The label series a caption is cut by, and how caption tokens (ranges, sub-panels, numerals) map onto it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..series import roman_numeral, roman_value
from .tokens import sub_panel

if TYPE_CHECKING:
    from .tokens import Mention


class LabelSeries:
    """The panel labels a caption is cut by, in order, and how caption tokens map onto them.

    A token names a label as spelled, or in the other case when that is unambiguous. Sub-panels and their
    letter stand in for each other when the series has only one of them: with labels ``A, B`` the tokens
    ``A1``, ``A2`` and ``Aii`` name ``A``; with labels ``A1, A2, B`` the token ``A`` names ``A1`` and ``A2``.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(dict.fromkeys(labels))
        self.index = {lab: i for i, lab in enumerate(self.labels)}
        lower: dict[str, list[str]] = {}
        for lab in self.labels:
            lower.setdefault(lab.lower(), []).append(lab)
        self._folded = {k: v[0] for k, v in lower.items() if len(v) == 1}
        self.roman = bool(self.labels) and all(roman_value(lab) is not None for lab in self.labels) and any(
            len(lab) > 1 for lab in self.labels
        )
        self._children: dict[str, list[str]] = {}  # letter -> its sub-panel labels, when the letter is none
        for lab in self.labels:
            sub = sub_panel(lab)
            if sub is not None:
                self._children.setdefault(sub[0], []).append(lab)

    def lookup(self, atom: str) -> str | None:
        if atom in self.index:
            return atom
        folded = self._folded.get(atom.lower())
        if folded is not None:
            return folded
        sub = sub_panel(atom)
        if sub is not None and sub[0] in self.index and sub[0] not in self._children:
            return sub[0]  # "A1", "Aii" where the figure prints "A"
        return None

    def expand(self, a: str, b: str | None) -> list[str] | None:
        """Labels named by ``a`` or the range ``a``–``b``; None when the token is not of this series."""
        first = self.lookup(a)
        if b is None:
            if first is None and a in self._children and a not in self.index:
                return list(self._children[a])  # "A" where the figure prints "A1", "A2"
            return [first] if first else None
        last = self.lookup(b)
        if first and last and self.index[first] < self.index[last]:
            return self.labels[self.index[first] : self.index[last] + 1]
        names = _expand_range(a, b, roman=self.roman)
        if not names:
            return None
        got: list[str] = []
        for n in names:
            mapped = self.expand(n, None)
            got.extend(lab for lab in mapped or [] if lab not in got)
        return got or None


def _expand_range(a: str, b: str, roman: bool) -> list[str]:
    """Spell out ``a``–``b``: letters (``c-e``), sub-panels (``B1-B3``) or roman numerals (``i-iii``)."""
    if a.isdigit() and b.isdigit():
        return [str(n) for n in range(int(a), int(b) + 1)] if int(a) < int(b) <= int(a) + 25 else []
    ra, rb = roman_value(a), roman_value(b)
    if roman and ra and rb and ra < rb and a.islower() == b.islower():
        return [roman_numeral(n, a.isupper()) for n in range(ra, rb + 1)]
    if len(a) == 1 and len(b) == 1 and a.isalpha() and b.isalpha() and a.islower() == b.islower():
        if ord(a) < ord(b) <= ord(a) + 25:
            return [chr(c) for c in range(ord(a), ord(b) + 1)]
        return []
    ma, mb = re.fullmatch(r"([A-Za-z])(\d+)", a), re.fullmatch(r"([A-Za-z])(\d+)", b)
    if ma and mb and ma.group(1) == mb.group(1) and int(ma.group(2)) < int(mb.group(2)) <= int(ma.group(2)) + 20:
        return [f"{ma.group(1)}{n}" for n in range(int(ma.group(2)), int(mb.group(2)) + 1)]
    sa, sb = sub_panel(a), sub_panel(b)
    if sa and sb and sa[0] == sb[0] and not sa[1].isdigit() and not sb[1].isdigit():
        va, vb = roman_value(sa[1]), roman_value(sb[1])
        if va and vb and va < vb:
            return [sa[0] + roman_numeral(n) for n in range(va, vb + 1)]  # "Ai-Aiii"
    return []


def _family(atom: str) -> str | None:
    if sub_panel(atom):
        return "lower" if atom[0].islower() else "upper"
    if len(atom) > 1 and atom.isalpha():
        v = roman_value(atom)
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


def infer_series(mentions: list[Mention]) -> LabelSeries:
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
                if roman_value(x) is not None and len(x) == 1:  # i, v, x may start a roman series
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
            values = {roman_value(x) for x in found} - {None}
            run = []
            for v in range(1, 40):
                if v not in values:
                    break
                run.append(v)
            letters_seen = atoms["lower" if fam == "roman" else "upper"] - set("ivxIVX")
            if not run or (len(run) == 1 and letters_seen):  # "(G) ... (H) ... (I)": letters, not roman
                continue
            labels = [roman_numeral(v, fam == "ROMAN") for v in run]
        else:
            letters = {ord(x[0].lower()) - ord("a") for x in found}
            run = _letter_run(letters)
            base = "a" if fam == "lower" else "A"
            labels = []
            for i in run:
                letter = chr(ord(base) + i)
                numbers = {int(x[1:]) for x in found if x[0] == letter and len(x) > 1 and x[1:].isdigit()}
                run_n = 0
                while run_n + 1 in numbers:  # B1, B2, B3 ...; a lone "B6" is a name, not a sub-panel
                    run_n += 1
                subs = [f"{letter}{n}" for n in range(1, run_n + 1)]
                if letter in found or not subs:
                    labels.append(letter)
                labels.extend(subs)
        if (len(run), -rank) > (best[0], best[1]):
            best = (len(run), -rank, labels)
    return LabelSeries(best[2])


def _in_order(mentions: list[Mention]) -> list[Mention]:
    """Strong tokens, and weak tokens that name the label right after the tokens before them (a, b ...;
    A1, A2, B1 ...; i, ii, iii ...)."""
    out: list[Mention] = []
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
        return (1, roman_value(atom) or 0, 0)
    letter, num = _split_label(atom)
    return (0, letter or 0, num or 0)


def _follows(prev: str | None, cur: str) -> bool:
    """Whether label ``cur`` comes right after ``prev`` (None: ``cur`` starts a series)."""
    cur_letter, cur_num = _split_label(cur)
    rc = roman_value(cur)
    if prev is None:
        return (cur_letter == 0 and cur_num in (None, 1)) or rc == 1
    prev_letter, prev_num = _split_label(prev)
    rp = roman_value(prev)
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
        sub = sub_panel(atom)  # "Aii" -> (0, 2)
        return (ord(sub[0].lower()) - ord("a"), roman_value(sub[1])) if sub else (None, None)
    return ord(m.group(1).lower()) - ord("a"), int(m.group(2)) if m.group(2) else None
