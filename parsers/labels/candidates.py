"""Step 1 of label reading: glyphs near the corners of each panel box, as candidates with a position prior."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from panel2patch.data import Box
from panel2patch.parsers.boxes import box_inside_share, box_iou

from .glyphs import IBox, glyph_groups

#: Thresholds, as shares of a zone's tone range from its darkest (lightest) tone, that split glyphs
#: from their surround: the wide one keeps thin antialiased strokes whole, the tight one frees a
#: glyph printed on mid-tone texture that the wide one joins to the texture.
LEVELS = (0.45, 0.22)


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
    read: bool = False  # recognised yet


@dataclass
class Candidate:
    """A glyph seen from one panel: at ``corner`` (``"tl"``, ``"tr"``, ``"bl"``, ``"br"``) of panel
    ``panel`` (an index), with ``prior`` in ``[0, 1]`` growing toward the corner."""

    panel: int
    glyph: Glyph
    corner: str
    prior: float


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
    zones: list[list[tuple[str, int, int, IBox]]] = []
    searched: list[tuple[IBox, float]] = []  # each zone once, with its panel's largest glyph height
    for box in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        pw, ph = x1 - x0, y1 - y0
        mine: list[tuple[str, int, int, IBox]] = []
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

            def seen(ibox: IBox, dx: int = zx0, dy: int = zy0) -> bool:
                if not inks:
                    return False
                boxes_np = np.array(inks)
                iou, share = _overlaps((ibox[0] + dx, ibox[1] + dy, ibox[2] + dx, ibox[3] + dy), boxes_np)
                # a tighter threshold only adds glyphs the wider ones lost: its pieces of a glyph are
                # not new, unless that glyph is far taller (the letter joined to a line or texture)
                taller = (boxes_np[:known, 3] - boxes_np[:known, 1]) > 1.5 * (ibox[3] - ibox[1])
                return bool((iou >= 0.8).any() or ((share[:known] >= 0.5) & ~taller).any())

            for gbox, ibox, dark, crop, ink_h, patch, numeral in glyph_groups(
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
