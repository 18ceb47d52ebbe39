"""Panel labels: find glyphs near panel corners, read them with RapidOCR, assign them to panels.

Whole-image OCR misses most isolated single characters (and takes seconds per figure), so labels are
read in three steps:

1. **Candidates** (:func:`find_candidates`). In a zone at each corner of each panel box, reaching a
   little outside it, dark glyphs on a light surround and light glyphs on a dark surround are found
   as connected components of text-like size (thresholds near the zone's darkest and lightest
   tones). Components on one line, and the dot above an ``i``, are grouped; a group wider than a
   short label (a word, a long number) is not a candidate. A circle, frame or patch drawn around a
   group is decoration; the counter of a letter (the hole of an ``A``) is not a glyph. Every glyph
   found in any zone becomes a candidate of each panel whose zone holds it, with a prior that grows
   toward that panel's corner. Glyphs are split from their surround at two thresholds: a wide one
   that keeps thin strokes whole, and a tight one that frees letters printed on mid-tone texture.
2. **Recognition** (:meth:`LabelReader.recognise`). Candidates are cut out as dark glyphs on white
   (clutter blanked), scaled to the recogniser's line height, stretched 1.6x horizontally (CTC
   decoding otherwise merges repeated narrow letters such as ``iii``) and laid side by side on
   strips that RapidOCR's recognition model reads in one pass each; the CTC column of each decoded
   character tells which candidate it belongs to. Unless the series is already complete, unsure
   glyphs of the panels without a sure label get a second look at another scale.
3. **Sequence prior** (:func:`apply_sequence_prior`). Panel labels of a figure share one style
   (letters ``a, b, c``/``A, B, C``, roman numerals ``i, ii, iii``, or letter-digit ``A1, A2, B1``),
   one corner and one case, and usually form one consecutive series in reading order. The series
   settles what OCR alone cannot: the case of letters whose shapes do not show it (c, o, s, v, w, x,
   z ...; also decided from glyph heights), confusable reads (``l``/``I``/``1``/``|``, ``O``/``0``,
   ``S``/``5``, ``B``/``8``, ``g``/``9``, ``Z``/``2``; ``ll``/``u`` for ``ii``, ``m`` for ``iii``),
   letters that cannot belong to the series (text inside a panel), duplicates, and letters of
   panels whose glyph could not be read at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panel2patch.data import Box, box_contains, box_inside_share, box_iou, box_union

from .ocr import recognition_engine

_IBox = tuple[int, int, int, int]

#: Line height, in pixels, of RapidOCR's recognition model input (PP-OCRv4 rec: 3 x 48 x W).
REC_HEIGHT = 48
#: Height of a glyph on the recognition strip.
GLYPH_HEIGHT = 44
#: Horizontal stretch of glyphs on the strip, so that CTC keeps repeated narrow letters apart.
STRETCH = 1.6
#: White gap between two candidates on the strip, in pixels (three CTC columns of 8 pixels).
STRIP_GAP = 24
#: Zones with more connected components than this (per tone) are texture and are skipped.
MAX_COMPONENTS = 600
#: Thresholds, as shares of a zone's tone range from its darkest (lightest) tone, that split glyphs
#: from their surround: the wide one keeps thin antialiased strokes whole, the tight one frees a
#: glyph printed on mid-tone texture that the wide one joins to the texture.
LEVELS = (0.45, 0.22)
#: Longest strip read in one pass; longer strips are split (the recogniser's cost per pixel grows with width).
MAX_STRIP = 1200

ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii")
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


@dataclass
class Glyph:
    """A glyph group that may be a panel letter: ``box`` in figure pixels (a circle or patch drawn
    around it included), ``crop`` its glyphs dark-on-white, ``height`` their ink height in pixels."""

    box: Box
    crop: np.ndarray
    height: int = 0  # ink height in pixels, decoration excluded
    framed: bool = False  # its height is not the letter's: a patch read through its hole, or brackets
    numeral: str | None = None  # the roman numeral its glyph shapes spell, if any
    text: str = ""
    confidence: float = 0.0


@dataclass
class Candidate:
    """A glyph seen from one panel: at ``corner`` (``"tl"``, ``"tr"``, ``"bl"``, ``"br"``) of panel
    ``panel`` (an index), with ``prior`` in ``[0, 1]`` growing toward the corner."""

    panel: int
    glyph: Glyph
    corner: str
    prior: float


@dataclass
class PanelLabel:
    """The label read for one panel: text as printed (decoration removed), its box in figure pixels,
    a score in ``[0, 1]`` (OCR confidence x position prior) and the corner it sits at."""

    text: str
    box: Box
    score: float
    corner: str = ""
    glyph: int = 0  # id() of the Glyph it was read from


@dataclass
class LabelReading:
    """Result of :meth:`LabelReader.read_panels`, one entry per panel box.

    ``labels[i]`` is panel ``i``'s label or None; ``unread[i]`` is True when panel ``i`` has no label
    but a glyph sits right at the figure's label corner (a label the recogniser could not read).
    """

    labels: list[PanelLabel | None]
    unread: list[bool] = field(default_factory=list)
    corner: str | None = None
    style: str = "letter"


def normalise_read(text: str) -> str:
    """NFKC-fold a read (full-width letters) and strip decoration: spaces, brackets, dots, colons."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s()\[\]{}.:,;'\"`_\-~^]", "", text)


def is_label_text(text: str) -> bool:
    """True for a plausible panel label: one letter, a letter and up to two digits, or a roman numeral."""
    return bool(re.match(r"^[A-Za-z][0-9]{0,2}$", text)) or text.lower() in ROMAN


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)


def _overlaps(box: Sequence[float], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU of ``box`` with each row of ``boxes`` (``N x 4``), and the share of ``box`` inside each."""
    ix = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = ix * iy
    area = max(1e-9, (box[2] - box[0]) * (box[3] - box[1]))
    union = area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, 1e-9), inter / area


# --------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------


def find_candidates(
    rgb: np.ndarray,
    boxes: Sequence[Box],
    per_panel: int = 6,
    zone_frac: float = 0.22,
    min_glyph: int = 6,
    min_prior: float = 0.3,
) -> list[Candidate]:
    """Label candidates near the corners of each panel box (figure pixels), at most ``per_panel`` each.

    ``rgb`` is the ``H x W x 3`` uint8 figure. A zone spans ``zone_frac`` of the panel's width and
    height at each corner (at least 24 pixels) and reaches beyond the box by 20% of the panel's
    shorter side or 6% of the figure's (at least 10 pixels), where letters printed outside a panel sit.
    Glyphs are at least ``min_glyph`` pixels high and searched in every zone first, at the wide
    threshold (:data:`LEVELS`) and then at the tight one, which adds only glyphs the wide one lost; a
    glyph inside a larger one of its tone is a piece of it and dropped. Then every glyph centred in a
    panel's zone is a candidate of that panel (a glyph seen from several panels is one :class:`Glyph`
    shared by their candidates), so a zone whose own thresholds missed a letter still gets it from a
    neighbouring zone. Candidates have a prior of at least ``min_prior``.
    """
    import cv2

    gray = _luminance(rgb)
    height, width = gray.shape
    max_glyph = max(10.0, 0.1 * min(height, width))
    zones: list[list[tuple[str, int, int, _IBox]]] = []
    searched: list[tuple[_IBox, float]] = []  # each zone once, with its panel's largest glyph height
    for box in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        pw, ph = x1 - x0, y1 - y0
        mine: list[tuple[str, int, int, _IBox]] = []
        zones.append(mine)
        if pw < 8 or ph < 8:
            continue
        max_h = min(max_glyph, max(10.0, 0.3 * min(pw, ph)))
        # a label sits within a few glyph heights of its corner, however long the panel
        zw = int(min(max(24, zone_frac * pw), 8 * max_h))
        zh = int(min(max(24, zone_frac * ph), 8 * max_h))
        reach = int(max(10, 0.2 * min(pw, ph), 0.06 * min(height, width)))
        for corner, cx, cy in (("tl", x0, y0), ("tr", x1, y0), ("bl", x0, y1), ("br", x1, y1)):
            if cx == x0:
                zx0, zx1 = max(0, x0 - reach), min(width, x0 + zw)
            else:
                zx0, zx1 = max(0, x1 - zw), min(width, x1 + reach)
            if cy == y0:
                zy0, zy1 = max(0, y0 - reach), min(height, y0 + zh)
            else:
                zy0, zy1 = max(0, y1 - zh), min(height, y1 + reach)
            mine.append((corner, cx, cy, (zx0, zy0, zx1, zy1)))
            if zy1 - zy0 >= min_glyph and zx1 - zx0 >= 2:
                searched.append(((zx0, zy0, zx1, zy1), max_h))
    glyphs: list[Glyph] = []
    inks: list[Box] = []  # each glyph's box without its decoration
    tones: list[bool] = []
    for level in LEVELS:
        known = len(glyphs)  # glyphs of the wider thresholds
        for (zx0, zy0, zx1, zy1), max_h in searched:
            # a component touching a zone side (other than the image border) is cut off, not a glyph
            cut = (zx0 > 0, zy0 > 0, zx1 < width, zy1 < height)
            zone = gray[zy0:zy1, zx0:zx1]

            def seen(ibox: _IBox, dx: int = zx0, dy: int = zy0) -> bool:
                if not inks:
                    return False
                boxes_np = np.array(inks)
                iou, share = _overlaps((ibox[0] + dx, ibox[1] + dy, ibox[2] + dx, ibox[3] + dy), boxes_np)
                # a tighter threshold only adds glyphs the wider ones lost: its pieces of a glyph are
                # not new, unless that glyph is far taller (the letter joined to a line or texture)
                taller = (boxes_np[:known, 3] - boxes_np[:known, 1]) > 1.5 * (ibox[3] - ibox[1])
                return bool((iou >= 0.8).any() or ((share[:known] >= 0.5) & ~taller).any())

            for gbox, ibox, dark, crop, ink_h, patch, numeral in _glyph_groups(
                    cv2, zone, min_glyph, max_h, cut, level, seen):
                key = (gbox[0] + zx0, gbox[1] + zy0, gbox[2] + zx0, gbox[3] + zy0)
                ink = (float(ibox[0] + zx0), float(ibox[1] + zy0), float(ibox[2] + zx0), float(ibox[3] + zy0))
                glyph = Glyph(tuple(float(v) for v in key), crop, ink_h, patch, numeral=numeral)
                shared = next((k for k, g in enumerate(glyphs) if box_iou(g.box, key) >= 0.8), None)
                if shared is not None:
                    # one decoration, two glyphs, one inside the other: the outer one is the letter and
                    # the inner its counter (a light letter on a dark patch), unless the outer one
                    # fills the decoration (the disk inside a ring, the letter on it)
                    if ((box_inside_share(inks[shared], ink) >= 0.9 and box_iou(key, ink) < 0.8)
                            or (box_inside_share(ink, inks[shared]) >= 0.9 and box_iou(key, inks[shared]) >= 0.8)):
                        glyphs[shared], inks[shared], tones[shared] = glyph, ink, dark
                    continue
                glyphs.append(glyph)
                inks.append(ink)
                tones.append(dark)
    # a glyph inside a larger one of its tone is a piece of it (one stem of "iii", seen from a zone
    # that holds only that stem), unless that one is far taller (the letter joined to a line)
    if glyphs:
        ink_boxes, dark_tone = np.array(inks), np.array(tones)
        area = (ink_boxes[:, 2] - ink_boxes[:, 0]) * (ink_boxes[:, 3] - ink_boxes[:, 1])
        tall = ink_boxes[:, 3] - ink_boxes[:, 1]
        glyphs = [g for k, g in enumerate(glyphs) if not (
            (_overlaps(inks[k], ink_boxes)[1] >= 0.9) & (dark_tone == tones[k]) & (area > area[k])
            & (tall <= 1.5 * tall[k])).any()]
    out: list[Candidate] = []
    for index, mine in enumerate(zones):
        found: dict[int, Candidate] = {}
        for corner, cx, cy, (zx0, zy0, zx1, zy1) in mine:
            zw, zh = max(1, zx1 - zx0), max(1, zy1 - zy0)
            for glyph in glyphs:
                gx0, gy0, gx1, gy1 = glyph.box
                # a glyph found from a neighbouring zone may stick out of this one (a letter printed
                # left of its panel, in the gutter)
                if not (zx0 <= (gx0 + gx1) / 2 <= zx1 and zy0 <= (gy0 + gy1) / 2 <= zy1):
                    continue
                # prior: 1 at the corner, falling with the distance of the glyph's near edges from it
                ex = min(abs(gx0 - cx), abs(gx1 - cx))
                ey = min(abs(gy0 - cy), abs(gy1 - cy))
                prior = float(max(0.0, 1.0 - (ex / zw + ey / zh)))
                if id(glyph) not in found or found[id(glyph)].prior < prior:
                    found[id(glyph)] = Candidate(index, glyph, corner, prior)
        # the best candidate of each corner first (tick labels crowd the lower corners of charts),
        # then the next best overall
        # glyphs at the far end of a zone are rarely labels and not worth reading
        ranked = sorted((c for c in found.values() if c.prior >= min_prior), key=lambda c: -c.prior)
        firsts = [next(c for c in ranked if c.corner == k) for k in ("tl", "tr", "bl", "br")
                  if any(c.corner == k for c in ranked)]
        rest = [c for c in ranked if all(c is not f for f in firsts)]
        out.extend((sorted(firsts, key=lambda c: -c.prior) + rest)[:per_panel])
    return out


@dataclass
class _Group:
    box: _IBox
    ids: list[int]
    dark: bool
    fill: float  # ink share of the box
    enclosure: bool = False  # only considered as a circle, frame or patch around a group
    rim: float = 0.0  # ink share of the box's border (1 for a filled patch or a frame)
    letter_h: int = 0  # height of the letters, brackets excluded
    units: list[list[list[int]]] = field(default_factory=list)  # its glyphs, each its components


def _glyph_groups(cv2: Any, zone: np.ndarray, min_h: int, max_h: float, cut: tuple[bool, bool, bool, bool],
                  level: float = 0.45, seen: Callable[[_IBox], bool] | None = None):
    """Yield ``(box, ink box, dark, crop, letter height, patch, numeral)`` for label-like glyph groups
    of either tone (``dark``: dark glyphs on a light surround) in a gray zone.

    ``cut`` flags the zone sides (left, top, right, bottom) that are not the image border. ``level``
    sets the thresholds, as a share of the zone's tone range from its darkest (lightest) tone.
    ``box`` is in zone pixels and includes a circle, frame or patch drawn around the glyphs, ``ink
    box`` does not; ``crop`` shows the glyphs dark on white; ``patch`` is True for a filled patch
    read through its letter-shaped hole; ``numeral`` is the roman numeral spelled by the glyph
    shapes, if any (:func:`_numeral`). Groups whose ink box ``seen`` accepts are not yielded.
    """
    lo, hi = (int(v) for v in np.percentile(zone, (0.5, 99.5)))
    if hi - lo < 40:
        return
    zh, zw = zone.shape
    passes = []
    for dark in (True, False):
        # glyphs are the extreme tone of their surround: split near the zone's darkest (or lightest) tones
        mask = (zone < lo + level * (hi - lo)) if dark else (zone > hi - level * (hi - lo))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        comps, enclosures, truncated = [], [], []
        if n > MAX_COMPONENTS:  # texture or noise, not a corner with a label on it
            continue
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if (cut[0] and x == 0) or (cut[1] and y == 0) or (cut[2] and x + w == zw) or (cut[3] and y + h == zh):
                truncated.append((x, y, x + w, y + h))
                continue
            if h > 1.6 * max_h or w > 3.5 * max_h or h < 2:
                continue
            fill = area / float(w * h)
            if h > max_h or w > 1.6 * h + 2 or (h >= min_h and (fill < 0.12 or (fill > 0.9 and w > 0.45 * h))):
                # not a letter (a frame, a block, a wide patch) but maybe drawn around one
                if h >= min_h:
                    enclosures.append(_Group((x, y, x + w, y + h), [i], dark, fill, True, -1.0))
                continue
            comps.append([x, y, x + w, y + h, i])
        groups = []
        for units in _group_line(comps):
            g = [k for unit in units for k in unit]
            box = _unit_box(g)
            if any(_next_on_line(box, t) for t in truncated):
                continue  # the run goes on beyond the zone: a longer text, or a label seen cut off
            area = sum(int(stats[c[4]][4]) for c in g)
            # brackets are thin units at the ends of a run: leave them out of the letter height
            boxes = [_unit_box(u) for u in units]
            inner = [b for k, b in enumerate(boxes)
                     if len(boxes) < 3 or 0 < k < len(boxes) - 1 or b[2] - b[0] >= 0.4 * (b[3] - b[1])]
            letter_h = max(b[3] - b[1] for b in (inner or boxes))
            ids = [c[4] for c in g]
            groups.append(_Group(box, ids, dark, area / max(1, (box[2] - box[0]) * (box[3] - box[1])),
                                 rim=-1.0, letter_h=letter_h, units=units))
        passes.append((dark, lab, groups + enclosures))
    labels_of = {dark: lab for dark, lab, _ in passes}

    def rim(g: _Group) -> float:
        if g.rim < 0:  # measured when needed: most groups never contain another
            g.rim = _rim(labels_of[g.dark], g.ids, g.box)
        return g.rim

    every = [g for p in passes for g in p[2]]
    dropped: set[int] = set()
    around: dict[int, _IBox] = {}  # id(group) -> box of its decoration
    if not every:
        return
    b = np.array([g.box for g in every]).reshape(-1, 4)
    # holds[i, j]: group j's box holds group i's (and is another box)
    holds = ((b[None, :, 0] <= b[:, None, 0]) & (b[None, :, 1] <= b[:, None, 1]) & (b[None, :, 2] >= b[:, None, 2])
             & (b[None, :, 3] >= b[:, None, 3]) & (b[None, :, :] != b[:, None, :]).any(axis=2))
    # a group inside a ring or frame of its own tone is a decorated letter, never a letter's counter
    ringed = {id(g) for i, g in enumerate(every) if not g.enclosure and any(
        every[j].dark == g.dark for j in np.flatnonzero(holds[i]))}
    for i, g in enumerate(every):
        if g.enclosure:
            continue
        gh = max(1, g.box[3] - g.box[1])
        for j in np.flatnonzero(holds[i]):
            e = every[j]
            eh = max(1, e.box[3] - e.box[1])
            ratio = (g.box[2] - g.box[0]) * gh / max(1, (e.box[2] - e.box[0]) * eh)
            if e.dark == g.dark or (ratio >= 0.1 and rim(e) >= 0.9):
                # a circle or frame of the same tone around the group, or a filled patch under it
                dropped.add(id(e))
                prev = around.get(id(g))
                around[id(g)] = e.box if prev is None else box_union(prev, e.box)
            elif ratio < 0.3 and e.fill <= 0.55 and id(g) not in ringed:
                dropped.add(id(g))  # the counter of a letter (the hole of an "A" or an "e")
            # otherwise either may be the glyph (an "o" and its hole, a letter on a disk): keep both
    for dark, lab, groups in passes:
        for g in groups:
            if g.enclosure or id(g) in dropped:
                continue
            gx0, gy0, gx1, gy1 = g.box
            gh = gy1 - gy0
            if gh < min_h or gx1 - gx0 > 2.4 * gh or (seen is not None and seen(g.box)):
                continue
            px, py = max(2, int(0.3 * gh)), max(2, int(0.25 * gh))
            rx0, ry0 = max(0, gx0 - px), max(0, gy0 - py)
            rx1, ry1 = min(zw, gx1 + px), min(zh, gy1 + py)
            own = np.isin(lab[ry0:ry1, rx0:rx1], g.ids)
            patch = zone[ry0:ry1, rx0:rx1]
            surround, ink = patch[~own], patch[own]
            if surround.size == 0 or ink.size == 0:
                continue
            contrast = float(np.median(surround)) - float(np.median(ink))
            if (contrast if dark else -contrast) < 50:
                continue
            box = box_union(g.box, around[id(g)]) if id(g) in around else g.box
            # a group whose whole rim is ink is a filled patch, read through its letter-shaped hole
            crop = _render(patch, own, dark, (gx0 - rx0, gy0 - ry0, gx1 - rx0, gy1 - ry0))
            yield box, g.box, dark, crop, g.letter_h, rim(g) >= 0.9, _numeral(g.units, lab)


def _numeral(units: list[list[list[int]]], labels: np.ndarray) -> str | None:
    """The roman numeral (i ... xii) a run of glyphs spells by shape, or None.

    The recogniser merges repeated narrow letters (``iii`` read as ``ii``), but their shapes are
    plain: an ``i`` is a narrow stem with a dot above it, a ``v`` a wide glyph whose foot is one point
    in the middle, an ``x`` a wide glyph standing on both feet. Thin undotted glyphs at the ends are
    brackets. At least one dotted ``i`` is required, so a lone v or x (also letters) gives None.
    """
    boxes = [_unit_box(u) for u in units]
    letters = []
    for k, (u, (x0, y0, x1, y1)) in enumerate(zip(units, boxes)):
        w, h = x1 - x0, y1 - y0
        if len(u) == 2:
            stem, dot = sorted(u, key=lambda c: c[1], reverse=True)
            sw, sh = stem[2] - stem[0], stem[3] - stem[1]
            if dot[3] <= stem[1] + 1 and sw <= 0.45 * sh:
                letters.append("i")
                continue
            return None
        if len(u) != 1:
            return None
        if w <= 0.35 * h and k in (0, len(units) - 1):
            continue  # a bracket
        if w < 0.5 * h:
            return None
        part = np.isin(labels[y0:y1, x0:x1], [u[0][4]])
        foot = part[-max(1, h // 5):].any(axis=0)
        cols = np.flatnonzero(foot)
        if cols.size == 0:
            return None
        both_sides = cols[0] < 0.3 * w and cols[-1] > 0.7 * w
        letters.append("x" if both_sides else "v")
    text = "".join(letters)
    return text if "i" in text and text in ROMAN else None


def _rim(labels: np.ndarray, ids: list[int], box: _IBox) -> float:
    """Share of the border pixels of ``box`` that belong to the components ``ids``."""
    x0, y0, x1, y1 = box
    part = np.isin(labels[y0:y1, x0:x1], ids)
    return float(np.concatenate([part[0], part[-1], part[:, 0], part[:, -1]]).mean())


def _group_line(comps: list[list[int]]) -> list[list[list[list[int]]]]:
    """Group components into short text runs: each run a list of glyphs, each glyph its components.

    A small component right above a narrow taller one (the dot of ``i`` or ``j``) first joins it;
    then glyphs of similar height on one line, within half a glyph of each other, form a run.
    """
    units: list[list[list[int]]] = [[c] for c in comps]
    boxes: list[_IBox] = [tuple(c[:4]) for c in comps]
    alive = [True] * len(units)
    for d in sorted(range(len(comps)), key=lambda k: comps[k][3] - comps[k][1]):
        dot = comps[d]
        if not alive[d] or len(units[d]) != 1:
            continue
        dh, dw = dot[3] - dot[1], dot[2] - dot[0]
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            if k == d or not alive[k]:
                continue
            h, sw = y1 - y0, x1 - x0  # an i or j stem is narrow, its dot small and right above it
            overlap = min(x1, dot[2]) - max(x0, dot[0])
            if (dh <= 0.4 * h and sw <= 0.5 * h and dw <= 2 * max(3, sw) and overlap >= 0.5 * min(dw, sw)
                    and dot[3] <= y0 + 1 and y0 - dot[3] <= 0.5 * h):
                units[k].append(dot)
                boxes[k] = box_union(boxes[k], tuple(dot[:4]))
                alive[d] = False
                break
    order = sorted((k for k in range(len(units)) if alive[k]), key=lambda k: boxes[k][0])
    groups: list[list[list[list[int]]]] = []
    gboxes: list[_IBox] = []
    for k in order:
        u, (ux0, uy0, _, uy1) = units[k], boxes[k]
        for gi in range(len(groups) - 1, -1, -1):
            gx0, gy0, gx1, gy1 = gboxes[gi]
            if gx1 < ux0 - (uy1 - uy0):
                continue  # ends too far left to continue this line
            if box_contains(gboxes[gi], boxes[k]) or box_contains(boxes[k], gboxes[gi]):
                continue  # a letter inside a circle or frame: decoration, not the same line
            gh, uh = gy1 - gy0, uy1 - uy0
            v_overlap = min(gy1, uy1) - max(gy0, uy0)
            similar = max(gh, uh) <= 1.8 * max(1, min(gh, uh))
            if similar and ux0 - gx1 <= 0.5 * min(gh, uh) and v_overlap >= 0.3 * min(gh, uh):
                groups[gi].append(u)
                gboxes[gi] = box_union(gboxes[gi], boxes[k])
                break
        else:
            groups.append([u])
            gboxes.append(boxes[k])
    return [g for g in groups if len(g) <= 6]


def _next_on_line(box: _IBox, other: _IBox) -> bool:
    """True when ``other``, of similar height, sits on ``box``'s text line within half a line height."""
    h = box[3] - box[1]
    oh = other[3] - other[1]
    if not 0.5 * h <= oh <= 1.6 * h:
        return False
    v_overlap = min(box[3], other[3]) - max(box[1], other[1])
    gap = max(other[0] - box[2], box[0] - other[2])
    return v_overlap >= 0.3 * min(h, other[3] - other[1]) and gap <= 0.5 * h


def _unit_box(unit: list[list[int]]) -> _IBox:
    return (min(k[0] for k in unit), min(k[1] for k in unit), max(k[2] for k in unit), max(k[3] for k in unit))


def _render(patch: np.ndarray, own: np.ndarray, dark: bool, tight: _IBox) -> np.ndarray:
    """Dark-on-white crop of a glyph group: contrast stretched, clutter outside the glyph blanked,
    cut to the group's box plus one pixel."""
    import cv2

    p = patch.astype(np.float32)
    if not dark:
        p = 255.0 - p
    ink = float(np.median(p[own]))
    paper = float(np.median(p[~own])) if (~own).any() else 255.0
    span = max(1.0, paper - ink)
    p = np.clip((p - ink) / span * 255.0, 0, 255)
    near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=1).astype(bool)
    p[~near] = 255.0
    x0, y0, x1, y1 = tight
    h, w = p.shape
    return p[max(0, y0 - 1):min(h, y1 + 1), max(0, x0 - 1):min(w, x1 + 1)].astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Recognition
# --------------------------------------------------------------------------------------------------


class LabelReader:
    """Reads panel labels with RapidOCR's recognition model; the engine is built on first use.

    ``min_confidence``: smallest OCR confidence for a read to count on its own (weaker reads are used
    only where the series needs them). ``threads``: onnxruntime intra-op threads (0: its default).
    ``per_panel``: candidates read per panel.
    """

    def __init__(self, min_confidence: float = 0.6, threads: int = 0, per_panel: int = 6) -> None:
        self.min_confidence = min_confidence
        self.threads = threads
        self.per_panel = per_panel
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        """The shared RapidOCR engine (:func:`panel2patch.parsers.ocr.recognition_engine`)."""
        if self._engine is None:
            self._engine = recognition_engine(self.threads)
        return self._engine

    def recognise(self, crops: Sequence[np.ndarray], height: int = GLYPH_HEIGHT, stretch: float = STRETCH
                  ) -> list[tuple[str, float]]:
        """Text and confidence (``[0, 1]``) for each dark-on-white uint8 crop, read on shared strips.

        Each crop is scaled to ``height`` pixels (of the recogniser's :data:`REC_HEIGHT`) and
        stretched ``stretch`` times horizontally.
        """
        import cv2

        height = int(min(max(8, height), REC_HEIGHT))
        reads: list[tuple[str, float]] = []
        cells, spans, x = [], [], 0
        for crop in crops:
            h, w = crop.shape
            nw = max(4, int(round(w * height / max(1, h) * stretch)))
            glyph = cv2.resize(crop, (nw, height), interpolation=cv2.INTER_CUBIC if h < height else cv2.INTER_AREA)
            if cells and x + nw + STRIP_GAP > MAX_STRIP:
                reads += self._read_strip(cells, spans)
                cells, spans, x = [], [], 0
            top = (REC_HEIGHT - height) // 2
            cell = np.full((REC_HEIGHT, nw + STRIP_GAP), 255, np.uint8)
            cell[top:top + height, STRIP_GAP // 2:STRIP_GAP // 2 + nw] = glyph
            cells.append(cell)
            spans.append((x + STRIP_GAP // 2, x + STRIP_GAP // 2 + nw))
            x += nw + STRIP_GAP
        if cells:
            reads += self._read_strip(cells, spans)
        return reads

    def _read_strip(self, cells: list[np.ndarray], spans: list[tuple[int, int]]) -> list[tuple[str, float]]:
        import cv2

        strip = cv2.cvtColor(np.concatenate(cells, axis=1), cv2.COLOR_GRAY2BGR)
        # RapidOCR's recognition-only call (engine(img, use_det=False, use_cls=False, use_rec=True))
        # returns text without character positions; its recogniser returns each character's CTC column
        # when asked for word boxes, which is what maps characters back to candidates.
        (text, _, info), = self.engine.text_rec([strip], True)[0]
        total_cols, words, word_cols, confs = info[0], info[1], info[2], info[4]
        chars = [ch for word in words for ch in word]
        cols = [c for col in word_cols for c in col]
        width = strip.shape[1]
        per: list[list[tuple[str, float]]] = [[] for _ in spans]
        for k, (ch, col) in enumerate(zip(chars, cols)):
            if not ch.strip():
                continue
            cx = (col + 0.5) * width / max(1e-6, total_cols)
            best = min(range(len(spans)), key=lambda i: _span_distance(spans[i], cx))
            if _span_distance(spans[best], cx) <= STRIP_GAP / 2:
                per[best].append((ch, float(confs[k]) if k < len(confs) else 0.0))
        return [("".join(c for c, _ in p), min(q for _, q in p)) if p else ("", 0.0) for p in per]

    def read_panels(self, rgb: np.ndarray, boxes: Sequence[Box]) -> LabelReading:
        """Labels of the panel boxes (figure pixels), one entry per box."""
        candidates = find_candidates(rgb, boxes, per_panel=self.per_panel)
        glyphs = list({id(c.glyph): c.glyph for c in candidates}.values())
        for glyph, (text, conf) in zip(glyphs, self.recognise([g.crop for g in glyphs])):
            glyph.text, glyph.confidence = normalise_read(text), conf
            glyph.framed = glyph.framed or bool(re.search(r"[()\[\]{}]", text))
        per_panel: list[list[Candidate]] = [[] for _ in boxes]
        for cand in candidates:
            per_panel[cand.panel].append(cand)
        rows = reading_rows(boxes)
        _count_numerals(glyphs)
        reading = apply_sequence_prior(per_panel, self.min_confidence, rows)
        if _complete(reading):
            return reading
        # a second look, smaller and less stretched, at the unsure glyphs of panels without a sure
        # label: the recogniser's errors on lone letters depend on scale, so the two looks rarely
        # fail together
        unsettled = [i for i, p in enumerate(reading.labels)
                     if p is None or next(c.glyph.confidence for c in per_panel[i] if id(c.glyph) == p.glyph) < 0.9]
        unsure = list({id(c.glyph): c.glyph for i in unsettled for c in per_panel[i]
                       if c.glyph.confidence < 0.9 and len(c.glyph.text) <= 3}.values())
        if not unsure:
            return reading
        for glyph, (text, conf) in zip(unsure, self.recognise([g.crop for g in unsure], height=32, stretch=1.2)):
            text = normalise_read(text)
            if is_label_text(text) and (not is_label_text(glyph.text) or conf > glyph.confidence):
                glyph.text, glyph.confidence = text, conf
        _count_numerals(unsure)
        return apply_sequence_prior(per_panel, self.min_confidence, rows)


def _complete(reading: LabelReading) -> bool:
    """True when every panel has a label and together they are the first members of their series
    (``a`` to ``d`` on four panels; letter-digit labels: every row starts at 1 and counts up)."""
    labels = [p.text for p in reading.labels if p is not None]
    if not labels or len(labels) < len(reading.labels):
        return False
    if reading.style == "numbered":
        rows: dict[str, list[int]] = {}
        for text in labels:
            rows.setdefault(text[0], []).append(int(text[1:]))
        return all(sorted(v) == list(range(1, len(v) + 1)) for v in rows.values())
    return sorted(_rank(t, reading.style) for t in labels) == list(range(len(labels)))


def _count_numerals(glyphs: Sequence[Glyph]) -> None:
    """Read glyphs whose shapes spell a roman numeral as that numeral: dotted stems counted one by one
    beat a reading that merged or split them. A sure read of something else (``B1`` or ``d``, shapes
    that only looked like stems), or of another ``v``/``x``, stands."""
    for glyph in glyphs:
        if glyph.numeral is None or glyph.text.lower() == glyph.numeral:
            continue
        read = _as_roman(glyph.text) if glyph.text else None
        if glyph.text and read is None and glyph.confidence >= 0.5:
            continue
        if read is not None and read.replace("i", "") != glyph.numeral.replace("i", "") and glyph.confidence >= 0.8:
            continue
        glyph.text, glyph.confidence = glyph.numeral, max(glyph.confidence, 0.7)


def _span_distance(span: tuple[int, int], x: float) -> float:
    return 0.0 if span[0] <= x <= span[1] else min(abs(x - span[0]), abs(x - span[1]))


# --------------------------------------------------------------------------------------------------
# Sequence prior
# --------------------------------------------------------------------------------------------------


def reading_rows(boxes: Sequence[Box]) -> list[list[int]]:
    """Indices of ``boxes`` by rows, top to bottom (a box joins a row when it starts above the middle
    of the row's first box), each row left to right."""
    rest = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    rows: list[list[int]] = []
    while rest:
        top = boxes[rest[0]]
        mid = (top[1] + top[3]) / 2
        rows.append(sorted((i for i in rest if boxes[i][1] < mid), key=lambda i: boxes[i][0]))
        rest = [i for i in rest if boxes[i][1] >= mid]
    return rows


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """Indices of ``boxes`` in reading order (:func:`reading_rows`, row after row)."""
    return [i for row in reading_rows(boxes) for i in row]


def series_style(reads: Sequence[tuple[str, float]]) -> str:
    """``"roman"``, ``"numbered"`` or ``"letter"``: the label style the ``(text, weight)`` reads
    follow, by a weighted vote. Single ``i``/``v``/``x`` fit both letters and numerals, so they vote
    for neither.
    """
    votes = _style_votes(reads)
    roman, numbered, letter = votes["roman"], votes["numbered"], votes["letter"]
    if roman > letter and roman >= numbered:
        return "roman"
    if numbered > letter:
        return "numbered"
    return "letter"


def _style_votes(reads: Sequence[tuple[str, float]]) -> dict[str, float]:
    """The weight of the reads that vote for each style (see :func:`series_style`)."""
    return {"roman": sum(c for t, c in reads if len(t) > 1 and _as_roman(t) is not None),
            "numbered": sum(c for t, c in reads if _NUMBERED_RE.match(t) and t[0].isalpha()),
            "letter": sum(c for t, c in reads if len(t) == 1 and t.isalpha() and t.lower() not in "ivxl")}


def _as_roman(text: str) -> str | None:
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
    return _case_vote(glyphs, style) > 0


def _case_vote(glyphs: Sequence[Glyph], style: str) -> float:
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
        r = _as_roman(text)
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
            return [(head.upper() + digits, 1.0)]
        return [(_DIGIT_AS_LETTER[head] + digits, 0.6)] if head in _DIGIT_AS_LETTER else []
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


def _rank(label: str, style: str) -> int:
    """Position of a label in its series (0 for ``a``, ``A``, ``i``; ``A1`` -> row 0)."""
    if style == "roman":
        return ROMAN.index(label.lower())
    return ord(label[0].lower()) - ord("a")


def apply_sequence_prior(per_panel: Sequence[Sequence[Candidate]], min_confidence: float = 0.6,
                         rows: Sequence[Sequence[int]] | None = None) -> LabelReading:
    """Choose one label per panel from its read candidates, using the figure's label conventions.

    ``per_panel[i]`` lists panel ``i``'s candidates with their glyphs read; ``rows`` groups the panel
    indices by rows in reading order (default: one row in index order). Steps:

    1. The style (letters, roman numerals, letter-digit) is voted by the reads near panel corners,
       weighted by confidence and position, and the case by the reads' confidence; another style
       with votes wins when its selection (below) explains more than 1.2 times as much.
    2. For each corner convention (labels at the top-left, top-right, bottom-left or bottom-right of
       their panels) a selection is made, candidates at other corners counting for 0.6 of their score;
       the convention whose selection explains the most (sum of scores, plus 0.1 when two labels or
       more include the first member) wins. A selection:
    3. gives each panel its best confident read that is exactly a label of the style (score = OCR
       confidence x position prior; a letter read in the other case counts 0.8 times); a glyph
       wanted by two panels stays with the higher score;
    4. drops a label whose glyph is far smaller or larger than the others' (with three labels or
       more), a label far from every other label of the series (more places away than there are
       other panels, at least 2) or beyond the series of ``n`` panels (with three panels or more):
       text inside a panel; and of a label read on two panels, the weaker read, whose glyph is then
       free for a member the series misses. Without any confident read, weak and confusable reads
       at the corner that spell distinct members of one short run are taken;
    5. lets the series run from its first member to the last one plus one place per unlabelled panel;
       unlabelled panels take weak or confusable reads at the label corner (``1`` for ``l``, ``0`` for
       ``o``, ``8`` for ``B``, ``m`` for ``iii`` ...) that are members the series misses, strongest
       first.
    6. When as many panels lack a label as the first ``n`` members of the series lack (``n`` panels),
       and each of those panels has an unreadable glyph at the label corner, they take the missing
       members in reading order (provided the labelled panels follow reading order). Letter-digit
       labels are row letter plus column number: an unread cell of a row whose labels agree takes
       its own.
    7. The case is decided again from the glyphs the series took (their heights, see
       :func:`case_from_heights`, else their reads) and, if it changed, the selection is redone in
       that case. When the heights of the confidently read labels show their case, all are put into
       that case; numerals with a dotted ``i`` are lower case.
    """
    glyphs = list({id(c.glyph): c.glyph for cands in per_panel for c in cands}.values())
    # weak reads vote too (multi-letter numerals are often read with low confidence), weighted by
    # how close to a panel corner they sit: data markers and tick labels inside plots do not vote
    near = {}
    for cands in per_panel:
        for c in cands:
            near[id(c.glyph)] = max(near.get(id(c.glyph), 0.0), c.prior)
    reads = [(g.text, g.confidence * near[id(g)]) for g in glyphs if g.confidence >= 0.25 and near[id(g)] >= 0.5]
    voters = [g for g in glyphs if g.confidence >= 0.25 and is_label_text(g.text) and near[id(g)] >= 0.5]
    rows = [list(r) for r in rows] if rows is not None else [list(range(len(per_panel)))]
    style = series_style(reads)
    upper = series_upper(voters, style)
    best, total = _best_corner(per_panel, style, upper, min_confidence, rows)
    # letters of text near the corners (axis names, units) may outvote a series of another style:
    # a style whose series explains clearly more wins
    for other, vote in _style_votes(reads).items():
        if other == style or vote <= 0:
            continue
        other_upper = series_upper(voters, other)
        reading, other_total = _best_corner(per_panel, other, other_upper, min_confidence, rows)
        if other_total > 1.2 * total:
            best, total, style, upper = reading, other_total, other, other_upper
    by_id = {id(g): g for g in glyphs}
    # a patch read through its letter-shaped hole, or a letter in brackets, does not show the
    # letter's height
    heights = {id(c.glyph): c.glyph.height for cands in per_panel for c in cands
               if not c.glyph.framed and c.glyph.confidence >= min_confidence}

    def series_case(reading: LabelReading) -> bool | None:
        # the glyphs the series took tell its case, free of other text near the corners: by their
        # heights, else by their reads
        by_height = None
        if style != "numbered":
            by_height = case_from_heights([(p.text, heights[p.glyph]) for p in reading.labels
                                           if p is not None and p.glyph in heights], style == "roman")
        if by_height is not None:
            return by_height
        vote = _case_vote([by_id[p.glyph] for p in reading.labels if p is not None], style)
        return None if not vote else vote > 0

    case = series_case(best)
    if case is not None and case != upper:
        upper = case
        best = _best_corner(per_panel, style, upper, min_confidence, rows)[0]
    if style == "roman" and any(p is not None and by_id[p.glyph].numeral for p in best.labels):
        for p in best.labels:  # a dotted i is lower case
            if p is not None:
                p.text = p.text.lower()
    if style != "numbered":
        by_height = case_from_heights([(p.text, heights[p.glyph]) for p in best.labels
                                       if p is not None and p.glyph in heights], style == "roman")
        if by_height is not None and by_height != upper:
            for p in best.labels:
                if p is not None:
                    p.text = p.text.upper() if by_height else p.text.lower()
    return best


def _best_corner(per_panel: Sequence[Sequence[Candidate]], style: str, upper: bool, min_confidence: float,
                 rows: list[list[int]]) -> tuple[LabelReading, float]:
    best: LabelReading | None = None
    best_total = -1.0
    for corner in ("tl", "tr", "bl", "br"):
        if not any(c.corner == corner for cands in per_panel for c in cands):
            continue
        reading, total = _select(per_panel, corner, style, upper, min_confidence, rows)
        if total > best_total + 1e-9:
            best, best_total = reading, total
    if best is None:
        return LabelReading([None] * len(per_panel), [False] * len(per_panel), None, style), 0.0
    return best, best_total


def _select(per_panel: Sequence[Sequence[Candidate]], corner: str, style: str, upper: bool,
            min_confidence: float, rows: list[list[int]]) -> tuple[LabelReading, float]:
    """Steps 3-6 of :func:`apply_sequence_prior` for one corner convention; returns the total score."""
    n = len(per_panel)
    order = [i for row in rows for i in row]

    def weight(c: Candidate) -> float:
        return (0.5 + 0.5 * c.prior) * (1.0 if c.corner == corner else 0.6)

    options: list[list[tuple[float, str, Candidate]]] = []
    for cands in per_panel:
        ok = []
        for c in cands:
            if c.glyph.confidence < min_confidence:
                continue
            for label, plaus in interpretations(c.glyph.text, style, upper):
                if plaus >= 1.0 or (style == "letter" and c.glyph.text in ("l", "I") and label in ("l", "I")):
                    ok.append((c.glyph.confidence * weight(c), label, c))
                elif plaus >= 0.8:  # a letter read in the other case: a misread of size only
                    ok.append((c.glyph.confidence * weight(c) * plaus, label, c))
        options.append(sorted(ok, key=lambda t: -t[0]))

    chosen: list[PanelLabel | None] = [None] * n
    taken: dict[int, int] = {}  # glyph id -> panel index
    pending = list(range(n))
    while pending:
        i = pending.pop(0)
        while options[i]:
            score, label, c = options[i].pop(0)
            owner = taken.get(id(c.glyph))
            if owner is not None and owner != i:
                held = chosen[owner]
                if held is not None and held.score >= score:
                    continue
                chosen[owner] = None
                pending.append(owner)
            taken[id(c.glyph)] = i
            chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
            break

    # labels of one figure share a font size: a read far smaller or larger than the others is other text
    sizes = {id(c.glyph): c.glyph.height for cands in per_panel for c in cands}
    picked = [sizes[p.glyph] for p in chosen if p is not None]
    if len(picked) >= 3:
        typical = float(np.median(picked))
        for i, p in enumerate(chosen):
            if p is not None and not 0.55 * typical <= sizes[p.glyph] <= 1.8 * typical:
                chosen[i] = None
    # weakest first, so that of two distant labels the stronger stays
    for i in sorted((k for k in range(n) if chosen[k] is not None), key=lambda k: chosen[k].score):
        others = [_rank(p.text, style) for j, p in enumerate(chosen) if p is not None and j != i]
        r = _rank(chosen[i].text, style)
        if (others and min(abs(r - o) for o in others) > max(2, n - 1)) or (n >= 3 and r > n):
            chosen[i] = None
    seen: set[str] = set()
    for i in sorted(range(n), key=lambda k: -(chosen[k].score if chosen[k] else 0.0)):
        p = chosen[i]
        if p is None:
            continue
        if p.text in seen:
            # a second read of one label is a misread: its glyph is free for the letter it misses
            taken.pop(p.glyph, None)
            chosen[i] = None
        else:
            seen.add(p.text)

    if all(p is None for p in chosen):
        # no confident read at all: a run of weaker reads at this corner may still spell the series
        # (three panels reading D, E, F at 0.5 each)
        weak_first = {}
        for i, cands in enumerate(per_panel):
            for c in cands:
                if c.corner != corner or c.prior < 0.5 or c.glyph.confidence < 0.3 or id(c.glyph) in taken:
                    continue
                for label, plaus in interpretations(c.glyph.text, style, upper):
                    # reads through a confusable shape count when they spell the series together
                    # (a small "ii" read as "11"), single-letter look-alikes ("1" for "l") do not
                    score = c.glyph.confidence * weight(c) * plaus
                    if plaus >= 0.6 and (i not in weak_first or weak_first[i][0] < score):
                        weak_first[i] = (score, label, c)
        ranks = sorted({_rank(label, style) for _, label, _ in weak_first.values()})
        if len(ranks) >= 2 and len(ranks) == len(weak_first) and ranks[-1] - ranks[0] < n:
            for i, (score, label, c) in weak_first.items():
                chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
                taken[id(c.glyph)] = i

    members = {_rank(p.text, style) for p in chosen if p is not None}
    # weak reads must look like the chosen ones
    typical = float(np.median([sizes[p.glyph] for p in chosen if p is not None])) if members else 0.0

    def label_sized(c: Candidate) -> bool:
        return 0.6 * typical <= c.glyph.height <= 1.6 * typical

    if members and style != "numbered":
        unlabelled = sum(p is None for p in chosen)
        limit = len(ROMAN) if style == "roman" else 26
        missing = set(range(min(limit, max(members) + 1 + unlabelled))) - members
        weak = []
        for i in range(n):
            if chosen[i] is not None:
                continue
            for c in per_panel[i]:
                # a weak or confusable read is evidence only where this figure prints its labels
                if id(c.glyph) in taken or c.corner != corner or c.prior < 0.5 or not label_sized(c):
                    continue
                for label, plaus in interpretations(c.glyph.text, style, upper):
                    if _rank(label, style) in missing:
                        weak.append((max(c.glyph.confidence, 0.05) * weight(c) * plaus * 0.5, i, label, c))
        for score, i, label, c in sorted(weak, key=lambda t: -t[0]):
            r = _rank(label, style)
            if chosen[i] is not None or id(c.glyph) in taken or r not in missing:
                continue
            chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
            taken[id(c.glyph)] = i
            missing.discard(r)

    def unreadable(c: Candidate) -> bool:
        # a glyph right at the label corner whose read is weak or label-sized (not a confident word)
        g = c.glyph
        return (id(g) not in taken and c.corner == corner and c.prior >= 0.75 and (not typical or label_sized(c))
                and (g.confidence < min_confidence or (len(g.text) <= 2 and not g.text.isdigit())))

    unread = [chosen[i] is None and any(unreadable(c) for c in per_panel[i]) for i in range(n)]
    members = {_rank(p.text, style) for p in chosen if p is not None}
    limit = len(ROMAN) if style == "roman" else 26
    if members and style != "numbered" and max(members) < n <= limit:
        gaps = sorted(set(range(n)) - members)
        open_panels = [i for i in order if unread[i]]
        ranked = [_rank(chosen[i].text, style) for i in order if chosen[i] is not None]
        if gaps and len(gaps) == len(open_panels) and (len(gaps) == 1 or ranked == sorted(ranked)):
            for i, r in zip(open_panels, gaps):
                c = max((c for c in per_panel[i] if unreadable(c)), key=lambda c: c.prior, default=None)
                if c is None:  # its glyph went to a panel before it
                    continue
                label = ROMAN[r] if style == "roman" else chr(ord("a") + r)
                label = label.upper() if upper else label
                chosen[i] = PanelLabel(label, c.glyph.box, 0.25 * weight(c), c.corner, id(c.glyph))
                taken[id(c.glyph)] = i
                unread[i] = False
    if style == "numbered":
        # row letter + column number: a row whose read labels agree gives its unread cells theirs
        for row in rows:
            read = [(k, chosen[i].text) for k, i in enumerate(row) if chosen[i] is not None]
            heads = {t[0] for _, t in read}
            if len(heads) != 1 or any(t[1:] != str(k + 1) for k, t in read):
                continue
            head = heads.pop()
            for k, i in enumerate(row):
                c = max((c for c in per_panel[i] if unread[i] and unreadable(c)), key=lambda c: c.prior, default=None)
                if c is None:
                    continue
                chosen[i] = PanelLabel(f"{head}{k + 1}", c.glyph.box, 0.25 * weight(c), c.corner, id(c.glyph))
                taken[id(c.glyph)] = i
                unread[i] = False
    total = sum(p.score for p in chosen if p is not None)
    if sum(p is not None for p in chosen) >= 2 and any(p is not None and _rank(p.text, style) == 0 for p in chosen):
        total += 0.1  # of two conventions that explain as much, the one whose series starts at its start
    return LabelReading(chosen, unread, corner, style), total
