"""Glyph groups of one corner zone: short text runs of either tone, told from decorations, drawn dark on white."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panel2patch.parsers.boxes import box_contains, box_union

from ..series import ROMAN

IBox = tuple[int, int, int, int]

#: Zones with more connected components than this (per tone) are texture and are skipped.
MAX_COMPONENTS = 600


@dataclass
class _Group:
    box: IBox
    ids: list[int]
    dark: bool
    fill: float  # ink share of the box
    enclosure: bool = False  # only considered as a circle, frame or patch around a group
    rim: float = 0.0  # ink share of the box's border (1 for a filled patch or a frame)
    letter_h: int = 0  # height of the letters, brackets excluded
    units: list[list[list[int]]] = field(default_factory=list)  # its glyphs, each its components


def glyph_groups(cv2: Any, zone: np.ndarray, min_h: int, max_h: float, cut: tuple[bool, bool, bool, bool],
                  level: float = 0.45, seen: Callable[[IBox], bool] | None = None):
    """Yield ``(box, ink box, dark, crop, letter height, patch, numeral)`` for label-like glyph groups
    of either tone (``dark``: dark glyphs on a light surround) in a gray zone.

    ``cut`` flags the zone sides (left, top, right, bottom) that are not the image border. ``level``
    sets the thresholds, as a share of the zone's tone range from its darkest (lightest) tone.
    ``box`` is in zone pixels and includes a circle, frame or patch drawn around the glyphs, ``ink
    box`` does not; ``crop`` shows the glyphs dark on white; ``patch`` is True for a filled patch
    read through its letter-shaped hole; ``numeral`` is the roman numeral spelled by the glyph
    shapes, if any (:func:`_numeral`). Groups whose ink box ``seen`` accepts are not yielded.
    """
    lo, hi = _percentiles(zone, (0.5, 99.5))
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
        rows = stats.tolist()
        for i in range(1, n):
            x, y, w, h, area = rows[i]
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
    around: dict[int, IBox] = {}  # id(group) -> box of its decoration
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


def _rim(labels: np.ndarray, ids: list[int], box: IBox) -> float:
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
    boxes: list[IBox] = [tuple(c[:4]) for c in comps]
    alive = [True] * len(units)
    tallest = max((b[3] - b[1] for b in boxes), default=0)
    for d in sorted(range(len(comps)), key=lambda k: comps[k][3] - comps[k][1]):
        dot = comps[d]
        if not alive[d] or len(units[d]) != 1:
            continue
        dh, dw = dot[3] - dot[1], dot[2] - dot[0]
        if dh > 0.4 * tallest:
            break  # no stem is tall enough for this dot, nor for the taller components after it
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            if k == d or not alive[k]:
                continue
            h, sw = y1 - y0, x1 - x0  # an i or j stem is narrow, its dot small and right above it
            overlap = min(x1, dot[2]) - max(x0, dot[0])
            if (dh <= 0.4 * h and sw <= 0.5 * h and dw <= 2 * max(3, sw) and overlap >= 0.5 * min(dw, sw)
                    and dot[3] <= y0 + 1 and y0 - dot[3] <= 0.5 * h):
                units[k].append(dot)
                boxes[k] = box_union(boxes[k], tuple(dot[:4]))
                tallest = max(tallest, boxes[k][3] - boxes[k][1])
                alive[d] = False
                break
    order = sorted((k for k in range(len(units)) if alive[k]), key=lambda k: boxes[k][0])
    groups: list[list[list[list[int]]]] = []
    gboxes: list[IBox] = []
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


def _next_on_line(box: IBox, other: IBox) -> bool:
    """True when ``other``, of similar height, sits on ``box``'s text line within half a line height."""
    h = box[3] - box[1]
    oh = other[3] - other[1]
    if not 0.5 * h <= oh <= 1.6 * h:
        return False
    v_overlap = min(box[3], other[3]) - max(box[1], other[1])
    gap = max(other[0] - box[2], box[0] - other[2])
    return v_overlap >= 0.3 * min(h, other[3] - other[1]) and gap <= 0.5 * h


def _unit_box(unit: list[list[int]]) -> IBox:
    return (min(k[0] for k in unit), min(k[1] for k in unit), max(k[2] for k in unit), max(k[3] for k in unit))


def _render(patch: np.ndarray, own: np.ndarray, dark: bool, tight: IBox) -> np.ndarray:
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


def _percentiles(gray: np.ndarray, qs: tuple[float, ...]) -> tuple[int, ...]:
    """``int(np.percentile(gray, q))`` for each ``q`` of a ``uint8`` array, from its histogram (the same
    linear interpolation between order statistics, at a fraction of the cost on small zones)."""
    cum = np.bincount(gray.ravel(), minlength=256).cumsum()
    n = int(cum[-1])
    out = []
    for q in qs:
        pos = q / 100 * (n - 1)
        i, frac = int(pos), pos - int(pos)
        a, b = (float(v) for v in np.searchsorted(cum, (i, min(i + 1, n - 1)), side="right"))
        out.append(int(a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1 - frac)))
    return tuple(out)
