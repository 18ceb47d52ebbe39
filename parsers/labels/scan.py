"""Panel letters found anywhere in a figure, without panel boxes: the label series as a layout skeleton.

Reading letters at the corners of panel candidates fails where the candidates are wrong (touching
panels, panels made of many pictures), which is where the letters are needed most. This scan looks for
lone glyphs over the whole figure (one connected component each, alone on its line, so words and
numbers are left out), reads the tallest of them on shared strips, and keeps the
one series of letters a figure's panel labels form: ``A, B, C ...`` (or lower case) from the first
letter on, one glyph per letter, of one height (within 25 %).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from panel2patch.data import Box
from panel2patch.parsers.boxes import box_area, box_inside_share, box_iou

from ..series import ROMAN
from .candidates import _luminance
from .reads import normalise_read
from .sequence import read_before

if TYPE_CHECKING:
    from .reader import LabelReader

#: Letters whose upper- and lower-case shapes differ only in size: OCR cannot tell their case.
SAME_SHAPE = set("cosuvwxz")
#: Height of a lower-case letter without ascender relative to one with it.
X_HEIGHT = 0.7
#: Capitals that reach below the baseline in many serif faces, and by how much of a capital's height.
DESCENDING, DESCENT = set("JQ"), 0.2
#: OCR confidence of a sure letter read (the scan keeps letters read down to 0.35).
SURE = 0.8
#: A label word: a letter and a numeral (``A1``, ``b12``, ``Aii``), as sub-panels are lettered.
LABEL_WORD = re.compile(r"^[A-Za-z](?:[1-9][0-9]?|(?:i{1,3}|iv|vi{0,3}|ix|x))$")


@dataclass
class FoundLabel:
    """A panel letter: ``text`` as printed, ``box`` its ink in figure pixels, ``score`` the OCR confidence."""

    text: str
    box: tuple[float, float, float, float]
    score: float


def scan_labels(rgb: np.ndarray, reader: LabelReader, min_confidence: float = 0.35, max_height_frac: float = 0.04,
                min_glyph: int = 8, most: int = 48, known: Sequence[FoundLabel] = (),
                seen: Sequence[tuple[Box, str, float]] = ()) -> list[FoundLabel]:
    """The figure's panel-letter series, in series order (empty when no series of two letters or more).

    ``rgb`` is the ``H x W x 3`` uint8 figure. Candidates are glyphs of either tone (dark on a light
    surround, light on a dark one) that are one connected component ``min_glyph`` pixels to
    ``max_height_frac`` of the figure's shorter side high (at least 32 pixels), not wider than 1.7
    times their height (``m``), on a surround of the other tone (80 % of the pixels around them, a
    circle drawn round them aside; a letter touching its circle is the ink inside it: :func:`_in_ring`) and
    alone on their line (no glyph of text size within half their height beside them, brackets and a
    full stop apart: not part of a word or a number; a bracket reaches below the letter's baseline).
    A dark letter touching a thin rule or frame line (:func:`_without_rules`) counts too, and so do a
    stem and the dot above it (``i``, ``j``: :func:`_tittles`); such glyphs and wide ones are read
    apart, and may only extend the series the others form (:func:`_grown`); so are, last, glyphs of the series' height that stand out only from their local surround (a black
    letter on a grey picture, a white one on red: :func:`_on_pictures`).
    At most ``most`` are read, the tallest first and none below the x-height of the tallest quarter:
    panel letters are set larger than tick labels and most other text; then, for the members missing
    inside the series, the glyphs lined up with its letters (:func:`_lined_up`), which a series of small
    letters may need. Reads of ``min_confidence`` or more count: the recogniser is unsure of lone
    letters, and the series (one height, consecutive letters) is the stronger evidence.

    ``known``: letters already read (at panel corners). The scan then only looks for more of their
    series: glyphs of their height (within 25 %) that none of them covers and that line up with one of
    them (left edge or top within a third of their height) are read, and the series is formed from both.
    ``seen``: glyphs read already (box, text, confidence: :attr:`LabelReading.seen`); a glyph on one of
    those boxes (IoU 0.8) read surely as something other than a letter is not read again.
    """
    gray = _luminance(rgb)
    max_h = max(32.0, max_height_frac * min(gray.shape))
    # glyph heights looked at: with known letters, only theirs can join them (:func:`_lined_up`; a label
    # word's box reaches a little above its letter)
    shortest, tallest = min_glyph, max_h
    if known:
        lo, hi = _heights(known)
        shortest, tallest = max(min_glyph, int(lo / 1.2)), min(max_h, hi)
    (dark, dark_dotted, dark_words), (light, light_dotted, light_words) = (
        _glyphs(gray, tone, shortest, tallest) for tone in (True, False))
    # ``i`` and ``j`` with their dot are read on their own (their stem alone may be a glyph already),
    # and so are label words (``A1``, ``Bii``)
    glyphs, dotted, words = dark + light, dark_dotted + light_dotted, dark_words + light_words
    boxes = {g[0] for g in glyphs}
    # wide glyphs (m, w) and glyphs freed from a rule are read apart, after the others: OCR reads a
    # glyph in the company of those it is read with, and those reads are not to change
    apart = [g for g in glyphs if _wide(g[0])] + [
        g for g in _lone_glyphs(gray, True, shortest, tallest, ink=_without_rules(gray < 128, max_h))
        if g[0] not in boxes]
    glyphs = [g for g in glyphs if not _wide(g[0])]
    if len(glyphs) + len(apart) + len(dotted) + len(words) < 2 and not known:
        return []
    # a glyph read surely as something else than a letter (a digit, a symbol) at a panel corner is
    # not read again; letters are, on the scan's own crop, so that the series is read alike
    sure = [(b, t, c) for b, t, c in seen if c >= 0.9 and not _letter(normalise_read(t))]
    if known:
        letters = list(known) + _read(_lined_up(glyphs, known)[:most], reader, sure, min_confidence)
        found, letters = _grown(letters, _read(_lined_up(apart, known)[:most], reader, sure, min_confidence))
        found, letters = _grown(letters, _read(_lined_up(dotted, known)[:most], reader, sure, min_confidence))
        found, letters = _grown(letters, _read(_lined_up(words, known, covered=True)[:most], reader, sure, min_confidence, True))
        local = _lined_up(_on_pictures(gray, glyphs + apart, known, min_glyph, max_h), known)
        return _grown(letters, _read(local[:most // 3], reader, sure, min_confidence))[0]
    # x-height letters (a, c, e) are about 0.7 of the ascender letters (b, d) of one series
    floor = X_HEIGHT * float(np.percentile([g[0][3] - g[0][1] for g in glyphs or apart or dotted or words], 75))
    chosen = _tallest(glyphs, floor, most)
    later = _tallest(apart, floor, most // 3)
    found, letters = _grown(_read(chosen, reader, sure, min_confidence), _read(later, reader, sure, min_confidence))
    dots = _tallest(dotted, floor, most // 3)
    found, letters = _grown(letters, _read(dots, reader, sure, min_confidence))
    found, letters = _grown(letters, _read(_tallest(words, floor, most // 3), reader, sure, min_confidence, True))
    chosen += later + dots
    glyphs += apart + dotted
    # a member missing inside the series may be shorter than the glyphs read (x-height a, c, e of a
    # series of small letters): the glyphs lined up with the series's letters are read for the gaps
    read = {id(g) for g in chosen}
    more = _lined_up([g for g in glyphs if id(g) not in read], found)[:most] if found else []
    ranks = {label_rank(f.text)[0] for f in found}
    gaps = [f for f in _read(more, reader, sure, min_confidence)
            if label_rank(f.text)[0] not in ranks and label_rank(f.text)[0] < max(ranks)]
    if gaps:
        found = _series(letters + gaps)
        letters = letters + gaps
    if not found:
        return found
    # letters printed on a mid-tone picture (black on grey, white on red) are not of one tone at the
    # global threshold: glyphs standing out from their local surround, of the series' height, are
    # read last and may only extend the series
    local = _on_pictures(gray, glyphs, found, min_glyph, max_h)
    return _grown(letters, _read(local[:most // 3], reader, sure, min_confidence))[0]


def _on_pictures(gray: np.ndarray, glyphs: list, series: Sequence[FoundLabel], min_glyph: int, max_h: float) -> list:
    """Glyphs of the series' height (within 25 %) that stand out from a mid-tone surround only
    (:func:`_local_glyphs`) and are not among ``glyphs``, nearest that height first."""
    tall = float(np.median([f.box[3] - f.box[1] for f in series]))
    have = [g[0] for g in glyphs]
    local = [g for g in _local_glyphs(gray, max_h, (max(min_glyph, int(np.ceil(0.8 * tall))), 1.25 * tall))
             if not any(box_iou(g[0], b) >= 0.3 for b in have)]
    return sorted(local, key=lambda g: abs(g[0][3] - g[0][1] - tall))


def _grown(letters: list[FoundLabel], extra: list[FoundLabel]) -> tuple[list[FoundLabel], list[FoundLabel]]:
    """The series of ``letters``, grown by ``extra`` letters only where it keeps all its members (the
    extra glyphs may continue the series, never replace it by another), mends its reading order or,
    as long, holds two label words or more (``Ai, Aii``: the numerals show the series), and the
    letters it was formed of."""
    found = _series(letters)
    if extra:
        # a glyph read again on more of its ink (a stem with its dot) is read as what the more says
        parts = {f.box for f in letters
                 if any(box_inside_share(f.box, e.box) >= 0.8 and box_area(e.box) > box_area(f.box) for e in extra)}
        whole = [f for f in letters if f.box not in parts] + extra
        grown = _series(whole)
        kept = {(f.text, f.box) for f in grown}
        if (all((f.text, f.box) in kept for f in found if f.box not in parts) or _mended(found, grown)
                or (len(grown) >= len(found) and sum(len(f.text) > 1 for f in grown) >= 2)):
            return grown, whole
    return found, letters


def _mended(found: list[FoundLabel], grown: list[FoundLabel]) -> bool:
    """Whether ``grown`` holds every letter of ``found`` and, where it reads one of them elsewhere, breaks
    the reading order less (a junk glyph read as ``A`` in a picture, the printed ``A`` found later)."""
    by_rank = {label_rank(f.text): f for f in grown}
    old = {label_rank(f.text): f for f in found}
    if not found or any(r not in by_rank or by_rank[r].text != f.text for r, f in old.items()):
        return False
    new = {r: by_rank[r] for r in old}

    def broken(pick: dict[tuple[int, int], FoundLabel]) -> int:
        return sum(order_conflicts(r, f, pick) for r, f in pick.items())

    return broken(new) < broken(old)


def _wide(box: tuple[int, int, int, int]) -> bool:
    return box[2] - box[0] > 1.3 * (box[3] - box[1])


def _tallest(glyphs: list, floor: float, most: int) -> list:
    """The ``most`` tallest glyphs no lower than ``floor``."""
    return sorted((g for g in glyphs if g[0][3] - g[0][1] >= floor), key=lambda g: g[0][1] - g[0][3])[:most]


def _lined_up(glyphs: list, letters: Sequence[FoundLabel], covered: bool = False) -> list:
    """The glyphs of the letters' height (within 25 %; lower case: down to x-height) that none of them
    covers (``covered``: or that one does, as a label word read as its letter) and that line up with
    one of them (left edge or top within a third of their height)."""
    lo, hi = _heights(letters)
    near = float(np.median([f.box[3] - f.box[1] for f in letters])) / 3
    return [g for g in glyphs if lo <= g[0][3] - g[0][1] <= hi
            and (covered or not any(box_inside_share(g[0], f.box) >= 0.5 for f in letters))
            and _in_line(g[0], [f.box for f in letters], near)]


def _heights(letters: Sequence[FoundLabel]) -> tuple[float, float]:
    """The glyph heights of more letters of the series of ``letters``: theirs within 25 % (lower case:
    down to x-height)."""
    tall = [f.box[3] - f.box[1] for f in letters]
    lower = any(f.text.islower() for f in letters)
    return (X_HEIGHT if lower else 1.0) * min(tall) / 1.25, 1.25 * max(tall)


def _read(glyphs: list, reader: LabelReader, sure: list, min_confidence: float,
          words: bool = False) -> list[FoundLabel]:
    """The glyphs read as single letters (``words``: as label words, :data:`LABEL_WORD`) of
    ``min_confidence`` or more (``sure`` reads are reused)."""
    reads = [next(((t, c) for b, t, c in sure if box_iou(g[0], b) >= 0.8), None) for g in glyphs]
    fresh = iter(reader.recognise([g[1] for g, r in zip(glyphs, reads) if r is None]))
    out = []
    for g, (text, conf) in zip(glyphs, [r if r is not None else next(fresh) for r in reads]):
        box, text = g[0], normalise_read(text)
        if words:
            text = _suffix(text, g[2])
        if (LABEL_WORD.match(text) if words else _letter(text)) and conf >= min_confidence:
            out.append(FoundLabel(text, tuple(float(v) for v in box), float(conf)))
    return out


def _letter(text: str) -> bool:
    return len(text) == 1 and text.isascii() and text.isalpha()


def label_rank(text: str) -> tuple[int, int]:
    """The member of a series a label stands for: its letter's place in the alphabet and its numeral's
    (0 for a bare letter): ``B`` is (1, 0), ``A2`` and ``Aii`` are (0, 2)."""
    head, tail = text[:1].lower(), text[1:]
    return ord(head) - ord("a"), int(tail) if tail.isdigit() else (ROMAN.index(tail) + 1 if tail in ROMAN else 0)


def _without_rules(ink: np.ndarray, max_h: float) -> np.ndarray:
    """``ink`` less its thin straight lines (rules, frame edges, axes: under 4 pixels thick and over three
    letter heights long), so that a letter printed against one is a component of its own."""
    import cv2

    src = ink.astype(np.uint8)
    long = max(3, int(3 * max_h))

    def opened(shape: tuple[int, int]) -> np.ndarray:  # the ink that a shape x solid block fits in
        return cv2.morphologyEx(src, cv2.MORPH_OPEN, np.ones(shape, np.uint8)) > 0

    lines = (opened((1, long)) & ~opened((4, long))) | (opened((long, 1)) & ~opened((long, 4)))
    return src.astype(bool) & ~lines


def _local_glyphs(gray: np.ndarray, max_h: float, heights: tuple[int, float], contrast: int = 60) -> list:
    """Lone glyphs ``heights`` pixels high (least, most), darker (lighter) by ``contrast`` than the
    surround their strokes are printed on: the grey level a closing (opening) wider than the strokes of
    letters up to ``max_h`` high puts in their place."""
    import cv2

    k = np.ones((max(5, int(0.35 * max_h)),) * 2, np.uint8)
    dark = cv2.subtract(cv2.morphologyEx(gray, cv2.MORPH_CLOSE, k), gray) > contrast
    light = cv2.subtract(gray, cv2.morphologyEx(gray, cv2.MORPH_OPEN, k)) > contrast
    return (_lone_glyphs(gray, True, *heights, ink=dark, contrast=contrast)
            + _lone_glyphs(gray, False, *heights, ink=light, contrast=contrast))


Glyph = tuple[tuple[int, int, int, int], np.ndarray]


def _lone_glyphs(gray: np.ndarray, dark: bool, min_glyph: int, max_h: float, ink: np.ndarray | None = None,
                 contrast: int | None = None) -> list[Glyph]:
    """Lone letter-sized glyphs of one tone (see :func:`scan_labels`): ``(box, crop)`` pairs, the crop
    the glyph alone, dark on white. ``ink``: the pixels of that tone, when not all of them count.
    ``contrast``: the surround must be this much lighter (darker) than the glyph's own grey level,
    rather than light (dark) outright."""
    return _glyphs(gray, dark, min_glyph, max_h, ink, contrast)[0]


def _glyphs(gray: np.ndarray, dark: bool, min_glyph: int, max_h: float, ink: np.ndarray | None = None,
            contrast: int | None = None) -> tuple[list[Glyph], list[Glyph], list[Glyph]]:
    """The lone glyphs of :func:`_lone_glyphs`, and from the same components those of a stem and the
    dot above it (``i``, ``j``: :func:`_tittles`), whose stem alone may be among the first, and the
    lone label words (a letter and its numeral, ``A1``, ``Bii``: :func:`_suffixed`)."""
    import cv2

    if ink is None:
        ink = gray < 128 if dark else gray >= 128
    n, lab, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n < 3:
        return [], [], []
    x, y, w, h, area = (stats[1:, k].astype(np.int64) for k in range(5))
    fill = area / np.maximum(1, w * h)
    # a solid component is a block, unless it is a stem (``I``)
    cand = np.flatnonzero((h >= min_glyph) & (h <= max_h) & (w <= 1.7 * h) & (w >= 0.15 * h)
                          & (fill >= 0.12) & ((fill <= 0.85) | (w <= 0.35 * h)))
    plain = _judged(gray, lab, (x, y, w, h), cand, dark, contrast, {})
    dots = _tittles(lab, x, y, w, h, min_glyph, max_h)
    words, hints = _suffixed(lab, x, y, w, h, cand), {}
    wx, wy, ww, wh = x.copy(), y.copy(), w.copy(), h.copy()
    for k, (parts, hint) in words.items():
        members = [k, *parts]
        wx[k], wy[k] = x[members].min(), y[members].min()
        ww[k], wh[k] = (x[members] + w[members]).max() - wx[k], (y[members] + h[members]).max() - wy[k]
        hints[(int(wx[k]), int(wy[k]), int(wx[k] + ww[k]), int(wy[k] + wh[k]))] = hint
    words_found = [(box, crop, hints[box]) for box, crop in _judged(
        gray, lab, (wx, wy, ww, wh), np.array(sorted(words), dtype=np.int64), dark, contrast,
        {k: parts for k, (parts, _) in words.items()})]
    if not dots:
        return plain, [], words_found
    stems = np.array(sorted(dots))
    y, h, area = y.copy(), h.copy(), area.copy()
    for k, d in dots.items():
        y[k], h[k], area[k] = y[d], y[k] + h[k] - y[d], area[k] + area[d]
    fill = area / np.maximum(1, w * h)
    # a thin stem is a rule, unless dotted
    stems = stems[(h[stems] <= max_h) & (h[stems] >= min_glyph) & (fill[stems] >= 0.12)]
    return plain, _judged(gray, lab, (x, y, w, h), stems, dark, contrast,
                          {k: (d,) for k, d in dots.items()}), words_found


def _suffixed(lab: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray,
              heads: np.ndarray) -> dict[int, tuple[tuple[int, ...], str]]:
    """Letters followed on their baseline by one to four narrower glyphs set close after them, or a
    space apart (a numeral: ``1``, ``12``, ``ii`` with their dots): maps the letter's component to those of its
    suffix and what their shapes tell of it (:func:`_suffix`). Whether the word is a label is for
    the recogniser to say."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    out: dict[int, tuple[tuple[int, ...], str]] = {}
    for k in heads:
        hk = int(h[k])
        base, right, parts = y[k] + hk, x[k] + w[k], []
        while len(parts) < 4:
            # the numeral may be set a space apart (``A ii``), its glyphs close together
            gap = max(2, int((0.4 if parts else 0.7) * hk))
            lo, hi = np.searchsorted(xs, right - 1), np.searchsorted(xs, right + gap, side="right")
            near = order[lo:hi]
            near = near[(np.abs(y[near] + h[near] - base) <= max(1, 0.12 * hk)) & (h[near] >= 0.45 * hk)
                        & (h[near] <= 1.05 * hk) & (w[near] <= 0.8 * hk) & (near != k)]
            nxt = [int(j) for j in near if j not in parts]
            if not nxt:
                break
            parts.append(min(nxt, key=lambda j: x[j]))
            right = x[parts[-1]] + w[parts[-1]]
        if parts:
            # a narrow glyph (a serif ``i`` is wider than a bare stem) with a dot is an ``i``
            dots = {j: d for j in parts if w[j] <= 0.7 * h[j] and (d := _dot(lab, x, y, w, h, j)) is not None}
            hint = "".join("i" if j in dots else "?" for j in parts)
            out[int(k)] = tuple(parts) + tuple(dots.values()), hint
    # a glyph that follows a letter heads no word of its own (the ``2`` of ``A12``)
    followers = {j for parts, _ in out.values() for j in parts}
    return {k: v for k, v in out.items() if k not in followers}


def _suffix(read: str, hint: str) -> str:
    """A label word's read with its numeral mended by the shapes of its glyphs (``hint``: per glyph
    ``i`` for a dotted one, else ``?``): the recogniser confuses ``i``, ``l`` and ``1``, the dot does
    not, and ``l`` or ``I`` is no numeral."""
    head, tail = read[:1], read[1:]
    if hint and set(hint) == {"i"}:
        return head + hint
    if len(tail) == len(hint):
        tail = "".join("i" if h == "i" and c in "il1I|!" else c for c, h in zip(tail, hint))
    return head + "".join("1" if c in "lI|" else c for c in tail)


def _judged(gray: np.ndarray, lab: np.ndarray, xywh: tuple[np.ndarray, ...], cand: np.ndarray, dark: bool,
            contrast: int | None, parts: dict[int, tuple[int, ...]]) -> list[Glyph]:
    """The candidate components (``cand``, each with its ``parts``: a dot, a suffix; ``xywh`` their
    joint extent) that stand lone on a plain surround."""
    height, width = gray.shape
    x, y, w, h = xywh
    x1, y1 = x + w, y + h
    out = []
    for k in cand:
        # a printed letter stands on paper, a patch or a dark picture of the other tone, unlike the
        # specks of a picture's texture
        pad = max(2, int(0.25 * h[k]))
        ys, xs = slice(max(0, y[k] - pad), min(height, y1[k] + pad)), slice(max(0, x[k] - pad), min(width, x1[k] + pad))
        mine = _members(lab[ys, xs], k, parts)
        level = float(np.median(gray[ys, xs][mine])) if contrast is not None else 0.0
        if not _plain(gray[ys, xs][~mine], dark, contrast, level):
            # a circle or box drawn tight round the letter is no part of its surround
            rings = np.flatnonzero((x <= x[k]) & (y <= y[k]) & (x1 >= x1[k]) & (y1 >= y1[k]) & (h <= 2 * h[k]))
            rings = rings[rings != k]
            if not rings.size or not _plain(gray[ys, xs][~(mine | np.isin(lab[ys, xs], rings + 1))], dark,
                                            contrast, level):
                continue
        # a component of text size beside it makes it part of a word or number; a picture, a frame or
        # an axis beside it does not, nor do brackets around it
        gap = 0.5 * h[k]
        # the tests run on the components within reach only (most of a figure's are far away)
        idx = np.flatnonzero((x < x1[k] + gap) & (x1 > x[k] - gap))
        idx = idx[(y1[idx] > y[k] + 0.3 * h[k]) & (y[idx] < y1[k] - 0.3 * h[k])
                  & (h[idx] >= 0.25 * h[k]) & (h[idx] <= 2 * h[k])]
        for j in (k, *parts.get(k, ())):
            idx = idx[idx != j]
        if idx.size:
            cx, cy, cw, ch, cx1, cy1 = x[idx], y[idx], w[idx], h[idx], x1[idx], y1[idx]
            # a bracket reaches below the baseline of the letter it encloses (or, beside a descender,
            # is bowed); a ``1``, ``l`` or ``t`` of the same word does neither
            tall = (cw <= 0.4 * ch) & (ch >= 0.9 * h[k]) & (ch <= 2.0 * h[k])
            bracket = tall & (cy1 >= y1[k] + max(1, 0.05 * h[k]))
            for i in np.flatnonzero(~bracket & tall):
                j = idx[i]
                bracket[i] = _bowed(lab[y[j]:y1[j], x[j]:x1[j]] == j + 1)
            # nor does the full stop of ``a.``: a small round blob on the baseline just after the letter
            # (a descender, as in ``g.``, reaches below the baseline; a hyphen is flat)
            stop = ((cw <= 0.45 * h[k]) & (ch <= 0.45 * h[k]) & (2 * ch >= cw) & (2 * cw >= ch)
                    & (cy1 <= y1[k] + max(2, 0.1 * h[k])) & (cy1 >= y1[k] - 0.35 * h[k])
                    & (cy >= y[k] + 0.35 * h[k]) & (cx >= x1[k] - max(1, 0.05 * h[k])))
            holds = (cx <= x[k]) & (cy <= y[k]) & (cx1 >= x1[k]) & (cy1 >= y1[k])
            if (~holds & ~bracket & ~stop).any():
                continue
        pad = max(2, int(0.15 * h[k]))
        x0, y0 = max(0, x[k] - pad), max(0, y[k] - pad)
        own = _members(lab[y0:min(height, y1[k] + pad), x0:min(width, x1[k] + pad)], k, parts)
        box = (int(x[k]), int(y[k]), int(x1[k]), int(y1[k]))
        # a circled letter touching its circle is one component: the letter is what the circle holds
        ringed = None if k in parts else _in_ring(lab[y[k]:y1[k], x[k]:x1[k]] == k + 1)
        if ringed is not None:
            (a, b, c, d), letter = ringed
            box = (box[0] + a, box[1] + b, box[0] + c, box[1] + d)
            own = np.pad(letter[b:d, a:c], max(2, int(0.15 * (d - b))))
        out.append((box, np.where(own, 0, 255).astype(np.uint8)))
    return out


def _plain(around: np.ndarray, dark: bool, contrast: int | None, level: float) -> bool:
    """Whether 80 % of the ``around`` pixels are of the other tone than a glyph: light (dark) outright,
    or with ``contrast``, that much lighter (darker) than the glyph's grey ``level``."""
    if not around.size:
        return False
    if contrast is None:
        plain = (around >= 160) if dark else (around <= 95)
    else:
        plain = (around >= level + contrast) if dark else (around <= level - contrast)
    return bool(np.count_nonzero(plain) >= 0.8 * plain.size)


def _in_ring(ink: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The letter inside a circle drawn round it and touching it (``ink``: the one component of both,
    cropped to it): the letter's box in the crop and the crop's ink less the circle. None unless the
    component is a thin closed circle (its filled shape a disc) holding ink of at least a third of its
    height."""
    import cv2
    from scipy import ndimage

    h, w = ink.shape
    if h < 12 or not 0.85 * h <= w <= 1.18 * h:
        return None
    disc = ndimage.binary_fill_holes(ink)
    # a disc fills pi/4 of its bounding box; a filled letter (B, D, O) fills more or is not round
    if not 0.7 <= disc.sum() / (h * w) <= 0.86:
        return None
    # the circle's thickness: the ink run from the disc's edge inwards, across the middle rows and
    # columns (where the letter touches the circle, the run is longer: the median of the shorter side)
    runs = []
    for line in (*ink[h // 3:2 * h // 3], *ink.T[w // 3:2 * w // 3]):
        on = np.flatnonzero(line)
        if on.size:
            gaps = np.flatnonzero(~line[on[0]:on[-1] + 1])
            runs.append(int(gaps[0]) if gaps.size else on.size)
    thick = float(np.median(runs)) if runs else 0.0
    if not 1 <= thick <= 0.2 * h:
        return None
    # the letter is the ink deeper inside the disc than the circle's line and, where the letter
    # touches the circle and their joint band is thicker, inside the circle's inner radius
    depth = cv2.distanceTransform(np.pad(disc, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ys, xs = np.nonzero(disc)
    radius = np.hypot(np.arange(h)[:, None] - ys.mean(), np.arange(w)[None, :] - xs.mean())
    letter = ink & (depth > thick + 1) & (radius < np.sqrt(disc.sum() / np.pi) - thick - 1)
    rows, cols = np.flatnonzero(letter.any(axis=1)), np.flatnonzero(letter.any(axis=0))
    if rows.size == 0 or rows[-1] + 1 - rows[0] < h / 3:
        return None
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1), letter


def _members(lab: np.ndarray, k: int, parts: dict[int, tuple[int, ...]]) -> np.ndarray:
    """The pixels of ``lab`` (a crop of the component labels) that belong to glyph ``k``: its
    component and its parts."""
    own = lab == k + 1
    for j in parts.get(k, ()):
        own |= lab == j + 1
    return own


def _tittles(lab: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, min_glyph: int,
             max_h: float) -> dict[int, int]:
    """Stems (a component at most a third as wide as high) with a dot just above them: a component
    at most ``0.4`` of the stem's height, at most half of it above the stem, centred over it. Maps
    the stem's component to its dot's (indices into the stats, label - 1)."""
    out: dict[int, int] = {}
    for k in np.flatnonzero((h >= 0.6 * min_glyph) & (h <= max_h) & (w <= h / 3)):
        if (d := _dot(lab, x, y, w, h, int(k))) is not None:
            out[int(k)] = d
    return out


def _dot(lab: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, k: int) -> int | None:
    """The one dot just above component ``k`` (at most ``0.4`` of its height, at most half of it
    above, centred over it), or None."""
    gap = max(2, int(0.5 * h[k]))
    above = lab[max(0, y[k] - gap):y[k], max(0, x[k] - 1):x[k] + w[k] + 1]
    labels = np.unique(above[above > 0]) - 1
    dots = [d for d in labels if d != k and h[d] <= 0.4 * h[k] and w[d] <= max(w[k] + 2, 0.4 * h[k])
            and y[d] + h[d] <= y[k] and 2 * x[k] - w[d] <= 2 * x[d] <= 2 * x[k] + 2 * w[k] - w[d]]
    return int(dots[0]) if len(dots) == 1 else None


def _bowed(mask: np.ndarray) -> bool:
    """Whether a thin upright component bows like a bracket: the middle of its height is shifted to one
    side of both its ends by a quarter of its width or more."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) < 6:
        return False
    cols = np.arange(mask.shape[1])
    centre = [float((mask[r] * cols).sum() / mask[r].sum()) for r in rows]
    n = max(1, len(rows) // 7)
    top, mid, bottom = np.mean(centre[:n]), np.mean(centre[len(rows) // 2 - n // 2:][:n]), np.mean(centre[-n:])
    shift = max(1.0, 0.25 * mask.shape[1])
    return bool(min(mid - top, mid - bottom) >= shift or min(top - mid, bottom - mid) >= shift)


def _series(letters: list[FoundLabel]) -> list[FoundLabel]:
    """The series ``A, B, C ...`` with the most evidence (its letters' confidences weighted by their
    heights; then the longest) among the letters read. A series has one case and one height (within
    25 %, ``J`` and ``Q`` with their descent; for lower case, x-height and ascender letters, up to
    1.55 times the shortest, ``j`` twice); members may be missing, but the series starts at its first
    letter and at least two thirds of the members up to its last one are present. One height means one
    case: a lone letter read in the other case (OCR has no context to tell ``d`` from ``D``) counts, at
    half its confidence, unless its shape shows the case."""
    best: list[FoundLabel] = []
    for upper in (True, False):
        own = []
        for f in letters:
            ch, tail = f.text[0], f.text[1:]  # the case is the letter's; a numeral keeps its own
            same = ch.lower() in SAME_SHAPE or ch.isupper() == upper
            own.append(FoundLabel((ch.upper() if upper else ch.lower()) + tail, f.box,
                                  f.score if same else 0.5 * f.score))
        for ref in {round(f.box[3] - f.box[1]) for f in own}:
            # lower case mixes x-height letters (a, c, e) with ascenders and descenders (b, d, g), up
            # to about 1.5 times as tall (``j``, dot and descender, up to twice); the band runs up
            # from the shortest of them
            lo, hi, tall, tallest = (0.8, 1.25, DESCENDING, 1.25 + DESCENT) if upper else (1.0, 1.55, {"j"}, 2.0)
            band = [f for f in own if lo * ref <= f.box[3] - f.box[1] <= (tallest if f.text in tall else hi) * ref]
            chosen = _in_order(band)
            # a bare stem is a member only where it lines up with another, as panel letters do
            stems = [f for f in band if stray_stem(f, chosen)]
            if stems:
                chosen = _in_order([f for f in band if f not in stems])
            # the series with the most evidence: sure reads of tall letters (panel letters are set
            # larger than the letters of a diagram or an axis title); then the longer, the taller
            if (_evidence(chosen), len(chosen), _height(chosen)) > (_evidence(best), len(best), _height(best)):
                best = chosen
    return _unswapped(best) if len(best) >= 2 else []


def _evidence(series: list[FoundLabel]) -> float:
    """How strongly letters spell a series: their confidences weighted by their heights."""
    return sum(f.score * (f.box[3] - f.box[1]) for f in series)


#: Narrow letters the recogniser confuses with one another on their own (a dot lost, a tail unseen).
NARROW = "ijl"


def _unswapped(series: list[FoundLabel]) -> list[FoundLabel]:
    """``series`` with the unsure reads of its narrow letters (:data:`NARROW`) exchanged where that puts
    them in reading order with all other members (``l`` read on the ``i``, ``i`` on the ``l``)."""
    # (unsure reads only: a sure one is the recogniser's word on that glyph)
    narrow = [k for k, f in enumerate(series) if len(f.text) == 1 and f.text.lower() in NARROW and f.score < SURE]
    if len(narrow) < 2:
        return series

    def broken(members: list[FoundLabel], among: list[int]) -> int:
        pick = {label_rank(f.text): f for f in members}
        return sum(order_conflicts(label_rank(members[k].text), members[k], pick) for k in among)

    # an exchange must put the narrow letters in order with every other member: with a member missing
    # (the ``i`` unread), fewer conflicts alone would shift the reads along
    if broken(series, narrow) == 0:
        return series
    for texts in itertools.permutations([series[k].text for k in narrow]):
        trial = list(series)
        for k, text in zip(narrow, texts):
            trial[k] = FoundLabel(text, series[k].box, series[k].score)
        if broken(trial, narrow) == 0:
            return trial
    return series


def lines_up(letter: FoundLabel, letters: Sequence[FoundLabel]) -> bool:
    """Whether another of ``letters`` shares the letter's left edge or top (within a third of its height)."""
    return _in_line(letter.box, [f.box for f in letters if f is not letter], (letter.box[3] - letter.box[1]) / 3)


def stray_stem(letter: FoundLabel, letters: Sequence[FoundLabel]) -> bool:
    """Whether ``letter`` is a bare stem read as I, l or i (a rule, a bar, a 1 may be one) off the rows and
    columns of the other ``letters``."""
    x0, y0, x1, y1 = letter.box
    return letter.text in ("I", "i", "l") and x1 - x0 <= 0.35 * (y1 - y0) and not lines_up(letter, letters)


def _in_line(box: Sequence[float], boxes: Sequence[Sequence[float]], near: float) -> bool:
    """Whether one of ``boxes`` has its left edge or top within ``near`` of ``box``'s."""
    return any(abs(b[0] - box[0]) <= near or abs(b[1] - box[1]) <= near for b in boxes)


def _height(letters: list[FoundLabel]) -> int:
    """Median letter height, rounded to a tenth of it: series within 10 % count as one size."""
    if not letters:
        return 0
    h = float(np.median([f.box[3] - f.box[1] for f in letters]))
    return round(np.log(max(h, 1.0)) / np.log(1.1))


def _in_order(band: list[FoundLabel]) -> list[FoundLabel]:
    """Letters from ``a`` on, one read each (a letter printed with numerals, ``A1, A2`` or ``Ai, Aii``:
    one read of each such word, and no bare read of it); one letter may be missing between two found
    ones (a letter the scan could not read), no more.

    Of several reads of one member, the one that keeps the series in reading order wins (the fewest
    pairs of members read in the wrong order: a later one wholly above, or left on the same line),
    then the most confident. Labels also run down columns, so order is a preference, not a rule.
    """
    by_member: dict[tuple[int, int], list[FoundLabel]] = {}
    for f in band:
        by_member.setdefault(label_rank(f.text), []).append(f)
    worded = {r for r, sub in by_member if sub}
    present = {r for r, _ in by_member}
    ranks: list[int] = []
    missing = 0
    for rank in range(26):
        if rank in present:
            ranks.append(rank)
            missing = 0
        elif not ranks or missing == 1:
            break
        else:
            missing += 1
    members = sorted(m for m in by_member if m[0] in ranks and (m[1] or m[0] not in worded))
    if not members:
        return []
    pick = {m: max(by_member[m], key=lambda f: f.score) for m in members}
    for _ in range(2):
        for m in members:
            if len(by_member[m]) > 1:
                pick[m] = min(by_member[m], key=lambda f: (order_conflicts(m, f, pick), -f.score))
    return [pick[m] for m in members]


def order_conflicts(rank: tuple[int, int], f: FoundLabel, pick: dict[tuple[int, int], FoundLabel]) -> int:
    """Members of ``pick`` (keyed by :func:`label_rank`) read in the wrong order with ``f`` standing for
    member ``rank``."""
    return sum((r < rank and read_before(f.box, g.box)) or (r > rank and read_before(g.box, f.box))
               for r, g in pick.items() if r != rank)
