"""What one OCR read may stand for: label text, the style and case it votes for, the labels it may spell."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..series import ROMAN

if TYPE_CHECKING:
    from .candidates import Glyph

# Single-glyph reads and the letters of the same shape; the series picks the letter it misses.
_CONFUSABLE: dict[str, tuple[str, ...]] = {
    "1": ("l", "I"), "|": ("l", "I"), "!": ("i", "l", "I"), "l": ("I",), "I": ("l",), "i": ("l", "I"),
    "j": ("i",), "0": ("o", "O", "D"), "O": ("D",), "o": ("O",), "Q": ("O",), "D": ("O",), "5": ("s", "S"),
    "8": ("B",), "9": ("g", "q"), "6": ("b", "G"), "2": ("z", "Z"), "4": ("A",), "7": ("T",),
    "n": ("h",), "h": ("n",), "u": ("v",), "e": ("c",), "c": ("e",), "<": ("v", "V"), "√": ("v", "V"),
    "y": ("v",), "U": ("V",), "€": ("e", "C"), "P": ("p", "D"), "R": ("B",), "E": ("F",), "F": ("E",),
    "3": ("B",), "$": ("S",), "@": ("a",),
}
# Letters whose lower- and upper-case glyphs differ mostly by size.
_CASELESS = set("cosuvwxzkp")
_ROMAN_READS = {"ll": "ii", "11": "ii", "u": "ii", "n": "ii", "ü": "ii", "m": "iii", "lll": "iii", "111": "iii",
                "w": "vi", "y": "v", "<": "v", "√": "v", "x": "x", "ix": "ix", "lx": "ix", "1x": "ix"}
_DIGIT_AS_LETTER = {"8": "B", "0": "D", "5": "S", "4": "A", "6": "G", "2": "Z", "1": "I", "3": "B"}
_NUMBERED_RE = re.compile(r"^([A-Za-z0-9])([0-9]{1,2})$")


def normalise_read(text: str) -> str:
    """NFKC-fold a read (full-width letters), drop accents (the recogniser puts them on lone Latin
    letters: ``é`` for ``e``) and strip decoration: spaces, brackets, dots, colons."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s()\[\]{}.:,;'\"`_\-~^]", "", text)


def is_label_text(text: str) -> bool:
    """True for a plausible panel label: one letter, a letter and up to two digits, or a roman numeral."""
    return bool(re.match(r"^[A-Za-z][0-9]{0,2}$", text)) or text.lower() in ROMAN


def series_style(reads: Sequence[tuple[str, float]]) -> str:
    """``"roman"``, ``"numbered"`` or ``"letter"``: the label style the ``(text, weight)`` reads
    follow, by a weighted vote. Single ``i``/``v``/``x`` fit both letters and numerals, so they vote
    for neither.
    """
    votes = style_votes(reads)
    roman, numbered, letter = votes["roman"], votes["numbered"], votes["letter"]
    if roman > letter and roman >= numbered:
        return "roman"
    if numbered > letter:
        return "numbered"
    return "letter"


def style_votes(reads: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The weight of the reads that vote for each style (see :func:`series_style`)."""
    return {"roman": sum(c for t, c in reads if len(t) > 1 and as_roman(t) is not None),
            "numbered": sum(c for t, c in reads if _NUMBERED_RE.match(t) and t[0].isalpha()),
            "letter": sum(c for t, c in reads if len(t) == 1 and t.isalpha() and t.lower() not in "ivxl")}


def as_roman(text: str) -> str | None:
    t = text.lower()
    if t in _ROMAN_READS:
        return _ROMAN_READS[t]
    t = re.sub(r"[l1|!j/]", "i", t).replace("y", "v")
    return t if t in ROMAN else None


_X_HEIGHT = set("acemnorsuvwxz")
_TALL = set("bdfhklt")


def series_upper(glyphs: Sequence[Glyph], style: str) -> bool:
    """Whether a series reads as upper case: the reads' vote weighted by confidence (shapes without
    case, ``c, o, s ...`` and ``i``/``l``, do not vote)."""
    return case_vote(glyphs, style) > 0


def case_vote(glyphs: Sequence[Glyph], style: str) -> float:
    """Confidence of the upper-case reads minus that of the lower-case ones (see :func:`series_upper`)."""
    letters = [g for g in glyphs if g.text[:1].isalpha()]
    if style == "letter":
        letters = [g for g in letters if g.text.lower() not in _CASELESS | {"i", "l"}]
    up = sum(g.confidence for g in letters if g.text[0].isupper())
    down = sum(g.confidence for g in letters if g.text[0].islower())
    return up - down


def case_from_heights(labels: Sequence[tuple[str, int]], roman: bool = False) -> bool | None:
    """Upper case (True), lower case (False) or unknown (None) from ``(label, ink height)`` pairs.

    Upper-case letters share one height, while lower-case ``a, c, e ...`` are markedly shorter than
    ``b, d, f ...``; the recogniser sees every glyph scaled to one height and often misses the case.
    The median ratio of short-letter heights to the tall letters' median height decides: above 0.85
    upper case, below 0.8 lower case; a "short" letter more than 1.1 times as tall is ignored.
    For ``roman`` numerals a lone ``v`` or ``x`` is short and a numeral with an ``i`` tall (its dot);
    equal heights do not tell (the dot of a small ``i`` is often lost), so only lower case is told.
    """
    if roman:
        short = [h for t, h in labels if t.lower() in ("v", "x")]
        tall = [h for t, h in labels if "i" in t.lower()]
    else:
        short = [h for t, h in labels if len(t) == 1 and t.lower() in _X_HEIGHT]
        tall = [h for t, h in labels if len(t) == 1 and t.lower() in _TALL]
    if not short or not tall:
        return None
    ratios = [h / max(1.0, float(np.median(tall))) for h in short]
    # a "short" glyph taller than the tall ones was measured with something attached: no evidence
    ratios = [r for r in ratios if r <= 1.1]
    if not ratios:
        return None
    ratio = float(np.median(ratios))
    if roman:
        return False if ratio < 0.8 else None
    return True if ratio > 0.85 else False if ratio < 0.8 else None


def interpretations(text: str, style: str, upper: bool) -> list[tuple[str, float]]:
    """Labels a read may stand for in a series of ``style``, each with a plausibility in ``(0, 1]``.

    An exact read of the style scores 1; a read through a confusable shape scores less.
    """
    if not text:
        return []
    if style == "roman":
        r = as_roman(text)
        if r is None:
            return []
        exact = text.lower() == r
        return [(r.upper() if upper else r, 1.0 if exact else 0.6)]
    if style == "numbered":
        m = _NUMBERED_RE.match(text)
        if not m:
            return []
        head, digits = m.group(1), m.group(2)
        if head.isalpha():
            return [((head.upper() if upper else head.lower()) + digits, 1.0)]
        return [(_DIGIT_AS_LETTER[head] + digits, 0.6)] if upper and head in _DIGIT_AS_LETTER else []
    if len(text) != 1:
        return []
    out: list[tuple[str, float]] = []
    if text.isalpha() and text.isascii():
        label = _to_case(text, upper)
        # labels of one figure share a case: a case-distinct letter read in the other case is a
        # misread of size, kept in the series' case as a weaker reading
        if label.isupper() == upper or label.lower() in _CASELESS or label in "lI":
            out.append((label, 1.0))
        else:
            out.append((label.upper() if upper else label.lower(), 0.8))
    for alt in _CONFUSABLE.get(text, ()):
        label = _to_case(alt, upper)
        if label.isalpha() and all(label != o for o, _ in out):
            out.append((label, 0.5))
    return out


def _to_case(text: str, upper: bool) -> str:
    """A single letter whose shape hides its case, in the series' case (``l``/``I`` included)."""
    if len(text) != 1:
        return text
    if text in "lI|1!":
        return "I" if upper else "l"
    if text.lower() in _CASELESS:
        return text.upper() if upper else text.lower()
    return text


def series_rank(label: str, style: str) -> int:
    """Position of a label in its series (0 for ``a``, ``A``, ``i``; ``A1`` -> row 0)."""
    if style == "roman":
        return ROMAN.index(label.lower())
    return ord(label[0].lower()) - ord("a")
