"""Step 2 of the detector: the shape of one flat blob, as an arrow, arrowhead, asterisk or symbol (or none)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .found import FoundMarker
from .symbols import count_spokes, is_dagger, is_hash


def crispness(rgb: np.ndarray, labels: np.ndarray, i: int, bbox: tuple[int, int, int, int]) -> float:
    """How sharply a component's colour gives way to its surroundings, about 1 for drawn markers.

    The colour distance between the component and the ring two pixels outside it, over the distance
    between the component and the background five to seven pixels out. A blurred texture blob still
    looks like itself two pixels beyond its mask (ratio about 0.5); a drawn shape does not. For a fill
    inside an outline, the share of the pixels one and two pixels out that differ from the fill by half
    that distance, when larger.
    """
    x, y, w, h = bbox
    m = 8
    H, W = labels.shape
    ax0, ay0, ax1, ay1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
    return window_crispness(rgb[ay0:ay1, ax0:ax1], (labels[ay0:ay1, ax0:ax1] == i).astype(np.uint8))


def window_crispness(region: np.ndarray, comp: np.ndarray) -> float:
    """:func:`crispness` of the component ``comp`` (``uint8`` 0/1) in an RGB window reaching 8 px beyond it."""
    import cv2

    region = region.astype(np.int16)
    d1 = cv2.dilate(comp, np.ones((3, 3), np.uint8))
    d2 = cv2.dilate(comp, np.ones((5, 5), np.uint8))
    d5 = cv2.dilate(comp, np.ones((11, 11), np.uint8))
    d7 = cv2.dilate(comp, np.ones((15, 15), np.uint8))
    near, far = (d2 > d1), (d7 > d5)
    if not near.any() or not far.any():
        return 1.0
    core = cv2.erode(comp, np.ones((3, 3), np.uint8))
    inside = core.astype(bool) if core.sum() >= 4 else comp.astype(bool)
    colour = np.median(region[inside], axis=0)
    d_near = np.abs(np.median(region[near], axis=0) - colour).max()
    d_far = max(float(np.abs(np.median(region[far], axis=0) - colour).max()), 1.0)
    # A fill inside an outline of another colour: the ring one and two pixels out is a mix of outline
    # and background, but every pixel of it differs sharply from the fill, as no blurred edge does.
    rim = (d2 > comp).view(bool)
    share = float(np.mean(np.abs(region[rim] - colour).max(axis=1) >= 0.5 * d_far))
    return max(float(d_near / d_far), share)


class ShapeCache:
    """:func:`classify_blob` remembering its answers for small masks: the glyphs of a figure's text
    repeat, pixel for pixel, many times over."""

    #: Largest mask (in pixels) remembered.
    MAX_PIXELS = 4096

    def __init__(self) -> None:
        self._known: dict[tuple, FoundMarker | None] = {}

    def classify(self, sub: np.ndarray, only: tuple[str, ...] | None = None) -> FoundMarker | None:
        """``classify_blob(sub, only)``, a fresh marker each call (callers move it)."""
        if sub.size > self.MAX_PIXELS:
            return classify_blob(sub, only)
        key = (sub.shape, sub.tobytes(), only)
        if key not in self._known:
            self._known[key] = classify_blob(sub, only)
        found = self._known[key]
        return dataclasses.replace(found) if found is not None else None


def classify_blob(sub: np.ndarray, only: tuple[str, ...] | None = None) -> FoundMarker | None:
    """Classify one component (``uint8`` 0/1 crop of its bounding box); coordinates in that crop.

    ``only``: the kinds wanted (``("arrow",)`` or ``("arrow", "arrowhead")``); the tests for the others
    are skipped, and a shape of another kind comes back as None.
    """

    shape = _contour_shape(sub)
    if shape is None:
        return None
    _, holes, solidity = shape
    ch, cw = sub.shape
    full = (0.0, 0.0, float(cw), float(ch))
    size = float(max(cw, ch))
    aspect = cw / ch
    if only is not None:
        if holes and len(holes) == 1 and min(cw, ch) >= 10:
            found = _outlined_triangle(sub, shape[0], holes[0]) if "arrowhead" in only else None
            found = found or _outlined_arrow(sub, shape[0], holes[0])
            return found if found is not None and found.kind in only else None
        if holes:
            return None
        found = _filled_shape(sub, solidity, full, size, "arrowhead" in only)
        return found if found is not None and found.kind in only else None
    # Spokes first: regular radial spokes are never an arrow, while an arrow profile can be read
    # along one spoke of a small asterisk.
    if not holes and solidity < 0.8 and 0.55 <= aspect <= 1.8 and min(cw, ch) >= 7:
        spokes = count_spokes(sub)
        if spokes is not None and 5 <= spokes[0] <= 8:
            return FoundMarker("asterisk", full, spokes[1], size=size)
    if not holes:
        found = _filled_shape(sub, solidity, full, size, True)
        if found is not None:
            return found
    if len(holes) == 1 and min(cw, ch) >= 10:
        outlined = _outlined_triangle(sub, shape[0], holes[0]) or _outlined_arrow(sub, shape[0], holes[0])
        if outlined is not None:
            return outlined
    if len(holes) == 1 and 0.55 <= aspect <= 1.8 and min(cw, ch) >= 7 and is_hash(sub, holes[0]):
        return FoundMarker("symbol", full, 0.7, size=size)
    if not holes and 1.3 <= ch / cw <= 4.0 and is_dagger(sub):
        return FoundMarker("symbol", full, 0.7, size=size)
    return None


def _filled_shape(sub: np.ndarray, solidity: float, full, size: float, triangles: bool) -> FoundMarker | None:
    """An arrow, or (with ``triangles``) a filled triangle (arrowhead or symbol), of a blob without holes."""
    import cv2

    # A shaft and barbs leave much of the hull empty.
    arrow = _arrow_marker(sub, full, size) if solidity <= 0.8 else None
    if arrow is not None:
        return arrow
    if not triangles:
        return None
    # One-pixel spurs (texture touching the marker) spoil a small triangle's outline: open first.
    core = cv2.morphologyEx(sub, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) if size >= 10 else sub
    pixels = sub.sum()
    if core.sum() < 0.75 * pixels:  # mostly strokes: not a filled shape
        core = None
    elif size >= 10:
        core = _largest(core)
        if core is not None and core.sum() < 0.75 * pixels:
            core = None
    core_shape = _contour_shape(core) if core is not None else None
    if core_shape is not None and not core_shape[1] and core_shape[2] >= 0.85:
        tri = _triangle(core_shape[0], float(core.sum()))
        if tri is not None:
            kind, apex, base_mid, score = tri
            # Contour points are pixel indices of the padded crop; pixel centres are at +0.5.
            apex = (apex[0] - 0.5, apex[1] - 0.5)
            base_mid = (base_mid[0] - 0.5, base_mid[1] - 0.5)
            tip = _snap(sub, apex)
            box = _grow(full, tip)
            if kind == "symbol":
                return FoundMarker("symbol", box, score, size=size)
            return FoundMarker("arrowhead", box, score, tip=tip, direction=_angle(base_mid, tip), tail=base_mid,
                          size=size)
    return None


def _outlined_triangle(sub: np.ndarray, outer: np.ndarray, hole: np.ndarray) -> FoundMarker | None:
    """An arrowhead drawn as an outline (a white or coloured fill inside a dark rim): the outer contour
    encloses one hole that takes a third of it or more, the filled outline is an arrowhead triangle and
    the hole a triangle pointing the same way."""
    import cv2

    outer_area, hole_area = cv2.contourArea(outer), cv2.contourArea(hole)
    if outer_area <= 0 or hole_area < 0.2 * outer_area:
        return None
    if cv2.convexHull(outer) is None or outer_area / max(cv2.contourArea(cv2.convexHull(outer)), 1.0) < 0.85:
        return None
    if hole_area < 0.3 * outer_area:  # a thin rim around the fill, not a letter's bowl (P, R, D)
        return None
    # A thin rim all round: nearly every rim pixel lies close to the fill (a letter's stem does not).
    if (rim := _rim(sub, outer)) is None or float(np.percentile(rim[1], 90)) > 0.2 * max(sub.shape):
        return None
    filled = rim[0]
    tri = _triangle(outer, float(filled.sum()))
    # Drawn outlines fill their triangle closely (0.92 and up); outlined letters (P, D) fit loosely.
    if tri is None or tri[3] < 0.9:
        return None
    kind, apex, base_mid, score = tri
    # The hole has the outline's shape too: a triangle inside a triangle pointing the same way.
    inner = _triangle(hole, hole_area + 0.5 * cv2.arcLength(hole, True))
    if inner is None:
        return None
    a = math.atan2(apex[1] - base_mid[1], apex[0] - base_mid[0])
    b = math.atan2(inner[1][1] - inner[2][1], inner[1][0] - inner[2][0])
    if abs((a - b + math.pi) % (2 * math.pi) - math.pi) > math.radians(30):
        return None
    apex = (apex[0] - 0.5, apex[1] - 0.5)
    base_mid = (base_mid[0] - 0.5, base_mid[1] - 0.5)
    tip = _snap(filled, apex)
    ch, cw = sub.shape
    box = _grow((0.0, 0.0, float(cw), float(ch)), tip)
    if kind == "symbol":
        return FoundMarker("symbol", box, score, size=float(max(cw, ch)))
    return FoundMarker("arrowhead", box, score, tip=tip, direction=_angle(base_mid, tip), tail=base_mid,
                       size=float(max(cw, ch)))


def _outlined_arrow(sub: np.ndarray, outer: np.ndarray, hole: np.ndarray) -> FoundMarker | None:
    """An arrow drawn as an outline (a white arrow with a dark rim on a grey scan, where only the rim
    differs from the ground): a thin rim round one hole that takes a quarter of it or more, whose
    filled outline is an arrow (:func:`_arrow`)."""
    import cv2

    outer_area, hole_area = cv2.contourArea(outer), cv2.contourArea(hole)
    if outer_area <= 0 or hole_area < 0.25 * outer_area:
        return None
    # A thin rim all round: every rim pixel lies close to the fill (a letter's stem or bar does not).
    if (rim := _rim(sub, outer)) is None or float(rim[1].max()) > max(3.0, 0.08 * max(sub.shape)):
        return None
    ch, cw = sub.shape
    return _arrow_marker(rim[0], (0.0, 0.0, float(cw), float(ch)), float(max(cw, ch)))


def _rim(sub: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The outline ``outer`` filled (``uint8`` 0/1, in ``sub``'s pixels) and, for each pixel of ``sub``,
    its distance to the fill it encloses; None when it encloses nothing."""
    import cv2

    filled = np.zeros((sub.shape[0] + 2, sub.shape[1] + 2), np.uint8)
    cv2.drawContours(filled, [outer], -1, 1, thickness=cv2.FILLED)
    filled = filled[1:-1, 1:-1]
    fill = filled & (1 - sub)
    if not fill.any():
        return None
    dist = cv2.distanceTransform((1 - fill).astype(np.uint8), cv2.DIST_L2, 3)
    return filled, dist[sub.view(bool)]


def _arrow_marker(mask: np.ndarray, full, size: float) -> FoundMarker | None:
    """An ``arrow`` marker where ``mask`` passes :func:`_arrow`."""
    arrow = _arrow(mask)
    if arrow is None:
        return None
    tip, tail, score = arrow
    return FoundMarker("arrow", _grow(full, tip), score, tip=tip, direction=_angle(tail, tip), tail=tail, size=size)


def _contour_shape(sub: np.ndarray):
    """``(outer contour, hole contours, solidity)`` of a 0/1 mask, contours in 1-px padded coordinates."""
    import cv2

    pad = cv2.copyMakeBorder(sub, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(pad, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    hierarchy = hierarchy[0]
    outer_i = max((i for i in range(len(contours)) if hierarchy[i][3] < 0), key=lambda i: len(contours[i]))
    outer = contours[outer_i]
    c_area = cv2.contourArea(outer)
    # Pinholes left where texture touches a marker are not holes of the shape.
    min_hole = max(3.0, 0.03 * c_area)
    holes = [c for i, c in enumerate(contours) if hierarchy[i][3] == outer_i and cv2.contourArea(c) >= min_hole]
    hull_area = cv2.contourArea(cv2.convexHull(outer))
    if c_area <= 4 or hull_area <= 0:
        return None
    return outer, holes, c_area / hull_area


def _largest(mask: np.ndarray) -> np.ndarray | None:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, 4]))
    x, y, w, h = stats[i, :4]
    out = np.zeros_like(mask)
    out[y : y + h, x : x + w] = labels[y : y + h, x : x + w] == i
    return out


def _triangle(contour: np.ndarray, pixels: float):
    """A filled triangle: ``(kind, apex, base_midpoint, score)`` or None.

    Isosceles with a clearly sharper apex is an arrowhead pointing at the apex; an equilateral triangle
    with a horizontal side is an upright symbol (▲/▼), one with an upright side points away from it
    (◀/▶, as beside blot bands); other equilateral ones point at their sharpest corner.
    """
    import cv2

    tri_area, tri = cv2.minEnclosingTriangle(contour.astype(np.float32))
    if tri is None or tri_area <= 0:
        return None
    # Pixel count over the area of the triangle enclosing the boundary pixel centres: about 1 for a
    # drawn triangle at any size, about 0.7 for a disc.
    fill = pixels / tri_area
    if fill < 0.82:
        return None
    v = tri.reshape(3, 2).astype(float)
    sides = [float(np.linalg.norm(v[(i + 1) % 3] - v[i])) for i in range(3)]
    # Bars and stroke fragments a few pixels thick fit thin triangles well; a marker has body.
    if min(sides) < 6.0 or 2.0 * tri_area / sum(sides) < 2.0:
        return None
    angles = []
    for i in range(3):
        a, b = v[(i + 1) % 3] - v[i], v[(i + 2) % 3] - v[i]
        cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    order = np.argsort(angles)
    a0, a1, a2 = (angles[i] for i in order)
    apex = v[order[0]]
    base_mid = (v[order[1]] + v[order[2]]) / 2.0
    score = float(min(1.0, fill))
    # Slivers are wedges, ramps and cut-off stroke ends; an arrowhead's point is not that sharp.
    if a0 < 25.0:
        return None
    if a0 <= 55 and a1 - a0 >= 12 and a2 - a1 <= 18:  # a clearly sharper apex, whatever the slopes
        return "arrowhead", tuple(apex), tuple(base_mid), score
    if a2 - a0 <= 22:
        # Nearly equilateral (the enclosing triangle's angles are good to a few degrees): a level side
        # makes an upright symbol; a clearly sharpest corner is the apex; else an upright side (a band
        # marker beside a blot) points sideways, away from it.
        slopes = []
        for i in range(3):  # side i joins vertices i and i + 1 and faces vertex i + 2
            side = v[(i + 1) % 3] - v[i]
            slopes.append(abs(math.degrees(math.atan2(side[1], side[0]))) % 180)
        if any(min(sl, 180 - sl) <= 10 for sl in slopes):
            return "symbol", tuple(apex), tuple(base_mid), score
        if a1 - a0 < 4:
            for i, sl in enumerate(slopes):
                if abs(sl - 90.0) <= 10:
                    return "arrowhead", tuple(v[(i + 2) % 3]), tuple((v[i] + v[(i + 1) % 3]) / 2.0), score
        return "arrowhead", tuple(apex), tuple(base_mid), score
    if a0 <= 55 and a1 - a0 >= 8 and a2 - a1 <= 18:
        return "arrowhead", tuple(apex), tuple(base_mid), score
    return None


def _arrow(sub: np.ndarray):
    """A straight thin shaft with a triangular head at one end: ``(tip, tail, score)`` or None.

    The component's width profile along its principal axes must read: a shaft of nearly constant width,
    an abrupt widening at the head's base (at least twice the shaft width) and a near-linear taper to
    a point. The tip is the head's far end, refined with the head's enclosing triangle.
    """
    ys, xs = np.nonzero(sub)
    if len(xs) < 20:
        return None
    pts = np.column_stack([xs, ys]).astype(np.float64) + 0.5
    centre = pts.mean(axis=0)
    d = pts - centre
    vals, vecs = np.linalg.eigh(d.T @ d / len(d))
    best = None
    # An arrow runs along its principal axis unless it is about as wide (its head) as it is long.
    axes = (vecs[:, 1],) if vals[1] >= 4.0 * max(vals[0], 1e-9) else (vecs[:, 1], vecs[:, 0])
    for axis in axes:
        normal = np.array([-axis[1], axis[0]])
        # _arrow_along needs 10 one-pixel slices along the axis and a head 6 px wide across it.
        s, t = d @ axis, d @ normal
        if s.max() - s.min() < 9.0 or t.max() - t.min() < 4.99:
            continue
        for sign in (1.0, -1.0):
            res = _arrow_along(d, axis * sign, normal)
            if res is not None and (best is None or res[2] > best[2]):
                best = res
    if best is None:
        return None
    tip, tail, score, head_sel = best
    head = _head_triangle(pts[head_sel], tip + centre)
    if head is None:
        return None
    tip = head
    return (float(tip[0]), float(tip[1])), (float(tail[0] + centre[0]), float(tail[1] + centre[1])), score


def _arrow_along(d: np.ndarray, u: np.ndarray, v: np.ndarray):
    s = d @ u
    t = d @ v
    s0 = s.min()
    idx = np.floor(s - s0).astype(np.int64)
    nb = int(idx.max()) + 1
    if nb < 10:
        return None
    # Width per 1-px slice as the extent across the axis: pixel counts alias badly on diagonals.
    tmax = np.full(nb, -np.inf)
    tmin = np.full(nb, np.inf)
    np.maximum.at(tmax, idx, t)
    np.minimum.at(tmin, idx, t)
    w = np.where(np.isfinite(tmax), tmax - tmin + 1.0, 0.0)
    ws_ = np.convolve(w, np.ones(3) / 3.0, mode="same")
    ws_[0], ws_[-1] = w[0], w[-1]
    start = int(0.3 * nb)
    im = start + int(np.argmax(ws_[start:]))
    wmax = ws_[im]
    head_len = nb - 1 - im
    if head_len < 4 or wmax < 6:  # smaller "heads" are line ends and glyph serifs
        return None
    ib = im
    while ib > 0 and ws_[ib - 1] >= 0.6 * wmax:
        ib -= 1
    shaft = w[: max(ib - 1, 0)]
    if len(shaft) < max(4.0, 0.4 * head_len):
        return None
    ordered = np.sort(shaft)  # (median and 90th percentile as numpy's, without their overhead)
    k = len(ordered)
    shaft_w = float(ordered[k // 2] if k % 2 else 0.5 * (ordered[k // 2 - 1] + ordered[k // 2]))
    # (block arrows, as office drawing tools make them, have a shaft half as wide as the head)
    if shaft_w < 0.6 or shaft_w > 0.6 * wmax:
        return None
    pos = 0.9 * (k - 1)
    lo_i = int(pos)
    p90 = ordered[lo_i] + (pos - lo_i) * (ordered[min(lo_i + 1, k - 1)] - ordered[lo_i])
    if p90 > max(1.7 * shaft_w, shaft_w + 2.5):
        return None
    if im - ib > 0.5 * head_len + 2:
        return None
    # A head narrows slowly to its point and ends abruptly at its base (barbs swept back a little); a
    # disc on a line (a legend's line-and-marker sample) narrows alike both ways from its widest slice.
    # (Raw widths: smoothing spreads an abrupt base over three slices.)
    iw = start + int(np.argmax(w[start:]))
    a, b = iw, iw
    while a > 0 and w[a - 1] >= 0.9 * w[iw]:
        a -= 1
    while b < nb - 1 and w[b + 1] >= 0.9 * w[iw]:
        b += 1
    iw = (a + b) // 2  # the middle of the widest stretch: a disc's centre, a head's base
    # (halfway down to the shaft: a block arrow's shaft is half as wide as its head)
    cut = 0.5 * (w[iw] + shaft_w)
    ahead_half = int(np.argmax(np.append(w[iw:] < cut, True)))
    back_half = int(np.argmax(np.append(w[iw::-1] < cut, True)))
    if back_half >= max(3, 0.6 * ahead_half):
        return None
    seg = ws_[im:]
    expect = wmax * (1.0 - np.arange(len(seg)) / len(seg))
    dev = np.abs(seg - expect) / wmax
    err = float(dev.mean())
    middle = dev[len(dev) // 10 : max(len(dev) // 10 + 1, len(dev) - len(dev) // 10)]
    # Straight flanks everywhere, not only on average: a round chart marker on a line tapers fast
    # and then runs on as a thin line.
    if err > 0.22 or float(middle.max()) > 0.3:
        return None
    if float(np.mean(w[-max(2, head_len // 4) :])) > 0.45 * wmax:
        return None
    if not 0.35 <= head_len / wmax <= 3.0:
        return None
    in_shaft = s < s0 + ib - 1
    in_head = s >= s0 + ib
    if in_shaft.sum() < 3 or in_head.sum() < 6:
        return None
    # The shaft's centre line t = slope * s + offset, by least squares.
    ss, ts = s[in_shaft], t[in_shaft]
    sm, tm = ss.mean(), ts.mean()
    var = float(((ss - sm) ** 2).sum())
    slope = float(((ss - sm) * (ts - tm)).sum() / var) if var > 1e-12 else 0.0
    coef = (slope, float(tm - slope * sm))
    resid = ts - (coef[0] * ss + coef[1])
    if resid.std() > 0.35 * shaft_w + 0.8:
        return None
    expected_t = coef[0] * s[in_head].mean() + coef[1]
    if abs(t[in_head].mean() - expected_t) > 0.15 * wmax + 1.0:
        return None
    # Barbs on both sides of the shaft: a head reaching out on one side only is a glyph's flag or
    # serif (the "1" and "t" of tick labels and words), not an arrow.
    wide = np.arange(ib, min(nb, im + max(2, head_len // 2) + 1))
    line = coef[0] * (s0 + wide + 0.5) + coef[1]
    left = float(np.max(line - tmin[wide]))
    right = float(np.max(tmax[wide] - line))
    if min(left, right) < 0.6 * max(left, right):
        return None
    far = s >= s.max() - 1.0
    near = s <= s0 + 1.0
    tip = d[far].mean(axis=0)
    tail = d[near].mean(axis=0)
    score = float(np.clip(1.0 - err, 0.0, 1.0))
    return tip, tail, score, in_head


def _head_triangle(head_pts: np.ndarray, tip: np.ndarray) -> np.ndarray | None:
    """The refined tip of a head that is a filled triangle, or None for a round or ragged head.

    The head's pixels must fill their enclosing triangle (a disc fills about 0.6 of it: a line ending
    in a round chart marker is not an arrow). The tip moves halfway to that triangle's apex when the
    apex is close by: anti-aliasing drops the last pixels of a sharp tip, the triangle recovers them.
    """
    import cv2

    if len(head_pts) < 6:
        return tip
    area, tri = cv2.minEnclosingTriangle(head_pts.astype(np.float32).reshape(-1, 1, 2))
    if tri is None or area <= 0:
        return tip
    if len(head_pts) < 0.75 * area:
        return None
    v = tri.reshape(3, 2).astype(np.float64)
    j = int(np.argmin(np.linalg.norm(v - tip, axis=1)))
    if np.linalg.norm(v[j] - tip) <= 3.0:
        return (v[j] + tip) / 2.0
    return tip


def _snap(sub: np.ndarray, apex: tuple[float, float]) -> tuple[float, float]:
    """The apex of an enclosing triangle, pulled to within 2 px of the nearest drawn pixel."""
    ys, xs = np.nonzero(sub)
    pts = np.column_stack([xs, ys]).astype(np.float64) + 0.5
    a = np.asarray(apex, dtype=np.float64) + 0.5
    dist = np.linalg.norm(pts - a, axis=1)
    j = int(np.argmin(dist))
    if dist[j] <= 2.0:
        return float(a[0]), float(a[1])
    p = pts[j] + (a - pts[j]) * (2.0 / dist[j])
    return float(p[0]), float(p[1])


def _grow(box: tuple[float, float, float, float], p: tuple[float, float]) -> tuple[float, float, float, float]:
    return (min(box[0], p[0]), min(box[1], p[1]), max(box[2], p[0]), max(box[3], p[1]))


def _angle(src: tuple[float, float], dst: tuple[float, float]) -> float:
    """Direction from ``src`` to ``dst`` in degrees counter-clockwise from +x, image y pointing down."""
    return float(math.degrees(math.atan2(-(dst[1] - src[1]), dst[0] - src[0])) % 360.0)
