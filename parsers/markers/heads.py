"""Arrowheads that touch other drawing: detached by a morphological opening, shafts traced back from the base.

A marker drawn against a frame line, a gutter between sub-images or a blot's border joins that line in
its layer and is lost among its pixels as one big component. Opening the layer with a 3 x 3 square
removes strokes one or two pixels thick (frame lines, and the arrow's own shaft) and leaves the filled
head standing alone. The head is classified as usual; its shaft, if any, is then traced in the layer as
drawn: a run of pixels of nearly constant, thin width straight back from the head's base, ending where
the layer ends or where the run widens into the line or gutter the arrow touches.
"""

from __future__ import annotations

import math

import numpy as np

from .found import FoundMarker


def detached_pieces(labels: np.ndarray, stats: np.ndarray, components: np.ndarray, lo: float, hi: float):
    """Pieces that opening with a 3 x 3 square cuts out of each of ``components`` (raw component ids).

    In components whose box is at most ``(16 lo)^2`` pixels, holes of 4 to ``(3 lo)^2`` pixels are filled
    first (the fill of an outlined triangle joins its rim). Yields ``(x, y, piece, fill)``: the piece's top-left corner
    in ``labels`` coordinates, its ``uint8`` 0/1 mask and the part of it that was a filled hole (None
    when none was), for pieces whose longest side lies in ``[lo, hi]``, of 16 pixels or more, that the
    opening changed (by more than two pixels, or by a filled hole: unchanged ones were classified
    already) and that do not touch the panel's edge.
    """
    import cv2

    height, width = labels.shape
    kernel = np.ones((3, 3), np.uint8)
    for i in components:
        x, y, w, h = (int(v) for v in stats[i, :4])
        sub = cv2.copyMakeBorder((labels[y : y + h, x : x + w] == i).view(np.uint8), 1, 1, 1, 1,
                                 cv2.BORDER_CONSTANT, value=0)
        raw = sub.copy() if w * h <= (16 * lo) ** 2 else None
        filled = raw is not None and _fill_small_holes(sub, (3.0 * lo) ** 2)
        whole = int(np.count_nonzero(sub))
        core = cv2.morphologyEx(sub, cv2.MORPH_OPEN, kernel)
        if cv2.countNonZero(core) < 16:  # no piece can be large enough
            continue
        n, lab, st, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
        for j in range(1, n):
            px, py, pw, ph, area = (int(v) for v in st[j])
            if area < 16 or (area >= whole - 2 and not filled) or not lo <= max(pw, ph) <= hi:
                continue
            gx, gy = x + px - 1, y + py - 1
            if gx <= 0 or gy <= 0 or gx + pw >= width or gy + ph >= height:
                continue
            piece = (lab[py : py + ph, px : px + pw] == j).view(np.uint8)
            fill = piece & (1 - raw[py : py + ph, px : px + pw]) if filled else None
            yield gx, gy, piece, (fill if fill is not None and fill.any() else None)


def _fill_small_holes(sub: np.ndarray, max_area: float) -> bool:
    """Fill, in place, the holes of a padded 0/1 mask of 4 to ``max_area`` pixels (whether there were
    any): the inside of an outlined triangle becomes part of it, a frame's inside does not."""
    import cv2

    n, lab, st, _ = cv2.connectedComponentsWithStats((sub == 0).view(np.uint8), connectivity=4)
    if n <= 2:
        return False
    outside = lab[0, 0]
    # Pinholes (a pixel or two where texture touches a stroke) change nothing worth a second look.
    small = np.flatnonzero((st[:, 4] <= max_area) & (st[:, 4] >= 4) & (np.arange(n) != outside))
    if len(small):
        hole = np.zeros(n, bool)
        hole[small] = True
        sub[hole[lab]] = 1
    return bool(len(small))


def triangular_fill(fill: np.ndarray, piece: np.ndarray) -> bool:
    """Whether the filled hole of an outlined piece is itself a triangle taking a fifth of it at least."""
    import cv2

    count = int(np.count_nonzero(fill))
    if count < 0.2 * int(np.count_nonzero(piece)):
        return False
    ys, xs = np.nonzero(fill)
    pts = np.column_stack([xs, ys]).astype(np.float32).reshape(-1, 1, 2)
    area, _ = cv2.minEnclosingTriangle(pts)
    # Pixel centres span one pixel less than the pixels: compare with the area grown by half a pixel.
    return area > 0 and count >= 0.78 * (area + 0.5 * cv2.arcLength(cv2.convexHull(pts), True))


def trace_shaft(mask: np.ndarray, head: FoundMarker) -> FoundMarker:
    """``head`` (an arrowhead in ``mask`` coordinates) with its drawn shaft, as an ``arrow`` when it has one.

    The shaft is read along the head's axis from the base backwards: at each step the run of layer
    pixels across the axis that contains the axis (within a pixel) gives the width. The shaft must be
    at most ``0.45`` of the head's width and at least ``0.4`` of its length; it ends at the first gap of
    two steps or where the run widens (the line or bulk the marker touches). The tip moves forward to
    the last drawn pixel (opening rounds a sharp apex off).
    """
    if head.tip is None or head.tail is None:
        return head
    h, w = mask.shape
    tip = np.asarray(head.tip, np.float64)
    base = np.asarray(head.tail, np.float64)
    axis = tip - base
    head_len = float(np.hypot(*axis))
    if head_len < 3.0:
        return head
    u = axis / head_len
    normal = np.array([-u[1], u[0]])
    x0, y0, x1, y1 = head.box
    head_width = max(2.0, _width_across(head.box, u))
    limit = max(2.0, 0.45 * head_width)
    reach = int(math.ceil(0.5 * head_width)) + 1
    max_len = int(min(6.0 * head_len + 10, 2.0 * max(h, w)))

    def sample(points: np.ndarray) -> np.ndarray:
        xs = np.floor(points[..., 0]).astype(np.int64)
        ys = np.floor(points[..., 1]).astype(np.int64)
        ok = (xs >= 0) & (ys >= 0) & (xs < w) & (ys < h)
        out = np.zeros(xs.shape, bool)
        out[ok] = mask[ys[ok], xs[ok]] > 0
        return out

    # The tip: forward from the apex while drawn, at most 3 px.
    ahead = sample(tip[None, :] + np.arange(1, 4)[:, None] * u[None, :])
    step = int(np.argmin(ahead)) if not ahead.all() else 3
    tip = tip + step * u
    ts = np.arange(-reach, reach + 1)
    ss = np.arange(0, max_len)
    grid = base[None, None, :] - ss[:, None, None] * u[None, None, :] + ts[None, :, None] * normal[None, None, :]
    on = sample(grid)  # [steps, across]
    centre = reach
    widths = np.zeros(len(ss))
    for k in range(len(ss)):
        row = on[k]
        c = next((centre + d for d in (0, -1, 1) if row[centre + d]), None)
        if c is None:
            continue
        a = c
        while a > 0 and row[a - 1]:
            a -= 1
        b = c
        while b < len(row) - 1 and row[b + 1]:
            b += 1
        # A run reaching the edge of the window is a line crossing the axis or the bulk, not the shaft.
        widths[k] = (b - a + 1) if a > 0 and b < len(row) - 1 else np.inf
    # Skip the head's own base (still wide), then read the shaft.
    start = 0
    while start < min(len(ss), int(0.4 * head_len) + 3) and not 0 < widths[start] <= limit:
        start += 1
    length, gap = 0, 0
    for k in range(start, len(ss)):
        wk = widths[k]
        if 0 < wk <= limit:
            length, gap = k + 1, 0
        elif wk == 0 and gap == 0:
            gap = 1
        else:
            break
    if length - start < max(3.0, 0.4 * head_len) or start > 0.5 * head_len + 3:
        return _moved(head, tip)
    shaft_w = float(np.median(widths[start:length][np.isfinite(widths[start:length]) & (widths[start:length] > 0)]))
    tail = base - length * u
    half = 0.5 * shaft_w
    xs = [x0, x1, tail[0] - half, tail[0] + half, tip[0]]
    ys = [y0, y1, tail[1] - half, tail[1] + half, tip[1]]
    box = (float(max(0.0, min(xs))), float(max(0.0, min(ys))), float(min(w, max(xs))), float(min(h, max(ys))))
    return FoundMarker("arrow", box, head.score, layer=head.layer, tip=(float(tip[0]), float(tip[1])),
                       direction=head.direction, tail=(float(tail[0]), float(tail[1])), size=head.size)


def _moved(head: FoundMarker, tip: np.ndarray) -> FoundMarker:
    x0, y0, x1, y1 = head.box
    head.tip = (float(tip[0]), float(tip[1]))
    head.box = (min(x0, head.tip[0]), min(y0, head.tip[1]), max(x1, head.tip[0]), max(y1, head.tip[1]))
    return head


def _width_across(box: tuple[float, float, float, float], u: np.ndarray) -> float:
    """The extent of ``box`` across direction ``u`` (exact for axis-parallel heads, a bound otherwise)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    return float(abs(u[1]) * bw + abs(u[0]) * bh)
