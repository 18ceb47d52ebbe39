"""Step 3 of the detector: drawn rectangles (boxes and insets) from thin straight strokes of one flat colour."""

from __future__ import annotations

import numpy as np


def find_ridges(rgb: np.ndarray, contrast: float, max_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of thin horizontal and vertical lines (``uint8`` 0/1 masks), whatever their colour.

    A pixel lies on a horizontal line up to ``max_width`` px thick when, for some offset ``k`` up to
    that width, the pixels ``k`` rows above and ``k`` rows below both differ from it by ``contrast``
    (max over RGB). Unlike contrast with a smoothed background, this holds next to insets and panel
    edges, and never inside filled areas.
    """
    import cv2

    h, w = rgb.shape[:2]
    channels = cv2.split(rgb)
    out = []
    for axis in (0, 1):
        ridge = np.zeros((h, w), np.uint8)
        for k in range(1, max_width + 1):
            if (h if axis == 0 else w) <= 2 * k:
                break
            target = ridge[k:-k] if axis == 0 else ridge[:, k:-k]
            d1 = d2 = None
            for c in channels:
                if axis == 0:
                    mid, before, after = c[k:-k], c[: -2 * k], c[2 * k :]
                else:
                    mid, before, after = c[:, k:-k], c[:, : -2 * k], c[:, 2 * k :]
                a, b = cv2.absdiff(mid, before), cv2.absdiff(mid, after)
                d1 = a if d1 is None else cv2.max(d1, a)
                d2 = b if d2 is None else cv2.max(d2, b)
            target[...] = cv2.max(target, cv2.min(d1, d2))
        out.append((ridge >= contrast).view(np.uint8))
    return out[0], out[1]


def join_strokes(ridge_h: np.ndarray, ridge_v: np.ndarray, gap: int, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical strokes at least ``min_len`` long, gaps up to ``gap`` px bridged."""
    import cv2

    # Outside the panel is empty: pad with zeros, as OpenCV's border handling in erosion would
    # otherwise let strokes near the edge run on into it.
    pad = max(gap, min_len)

    def lines(mask: np.ndarray, close: tuple[int, int], open_: tuple[int, int]) -> np.ndarray:
        out = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones(close, np.uint8))
        out = cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones(open_, np.uint8))
        return np.ascontiguousarray(out[pad:-pad, pad:-pad])

    return lines(ridge_h, (1, gap), (1, min_len)), lines(ridge_v, (gap, 1), (min_len, 1))


def stroke_segments(mask: np.ndarray, distinct: np.ndarray, max_width: int) -> np.ndarray:
    """Thin horizontal strokes of ``mask`` as rows ``(y0, y1, x0, x1)`` (end-exclusive).

    A stroke is a band of runs in consecutive rows with nearly the same extent, at most ``max_width``
    rows thick; runs of a different extent touching it (texture, a neighbouring shape) start bands
    of their own instead of thickening it. Pass a transposed mask to get vertical strokes as
    ``(x0, x1, y0, y1)``.
    """
    h, w = mask.shape
    # Runs from the line pixels alone (row-major, read in the rows holding any): a run breaks where the
    # next pixel is not its right neighbour.
    lined = np.flatnonzero(mask.any(axis=1))
    ys, xs = np.nonzero(mask[lined].view(bool))
    ys = lined[ys]
    breaks = np.flatnonzero((np.diff(xs) != 1) | (np.diff(ys) != 0)) + 1
    first = np.concatenate(([0], breaks)) if len(xs) else breaks
    last = np.concatenate((breaks - 1, [len(xs) - 1])) if len(xs) else breaks
    rows, starts, ends = ys[first], xs[first], xs[last] + 1
    out = []
    open_bands: list[list[int]] = []  # [y0, last_row, x0, x1]
    bounds = [0, *(np.flatnonzero(np.diff(rows)) + 1).tolist(), len(rows)] if len(rows) else [0]
    row_of, starts, ends = rows.tolist(), starts.tolist(), ends.tolist()
    previous = None
    for i, j in zip(bounds[:-1], bounds[1:]):  # the runs of one row
        r = row_of[i]
        if previous != r - 1:  # every open band ends at a row without runs
            out += open_bands
            open_bands = []
        previous = r
        still_open = []
        for a, b in zip(starts[i:j], ends[i:j]):
            for k, band in enumerate(open_bands):
                overlap = min(b, band[3]) - max(a, band[2])
                if overlap >= 0.85 * max(b - a, band[3] - band[2]):
                    del open_bands[k]
                    band[1] = r
                    band[2], band[3] = min(a, band[2]), max(b, band[3])
                    still_open.append(band)
                    break
            else:
                still_open.append([r, r, a, b])
        out += open_bands
        open_bands = still_open
    out += open_bands
    segs = np.array([(b[0], b[1] + 1, b[2], b[3]) for b in out if b[1] + 1 - b[0] <= max_width], dtype=np.int64)
    segs = segs.reshape(-1, 4)
    if len(segs) == 0:
        return segs
    # A stroke has background on at least one side (an inset's outer side may touch other content);
    # a band cut out of the inside of a filled area has none.
    y0, y1, x0, x1 = segs.T
    # Running counts of distinct pixels along the rows just above and below the strokes (none outside).
    rows = np.unique(np.concatenate([y0 - 1, y1]))
    rows = rows[(rows >= 0) & (rows < h)]
    counts = np.zeros((len(rows) + 1, w + 1), np.int64)  # the last row stays zero: outside the mask
    np.cumsum(distinct[rows], axis=1, dtype=np.int64, out=counts[:-1, 1:])

    def at(y: np.ndarray) -> np.ndarray:
        k = np.searchsorted(rows, y)
        return np.where((y >= 0) & (y < h), k, len(rows))

    length = x1 - x0
    above, below = at(y0 - 1), at(y1)
    above = (counts[above, x1] - counts[above, x0]) / length
    below = (counts[below, x1] - counts[below, x0]) / length
    return segs[np.minimum(above, below) <= 0.5]


def stroke_colours(rgb: np.ndarray, gray: np.ndarray, distinct: np.ndarray, segs: np.ndarray,
                    vertical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Colour of each stroke (``[N, 3]``) and whether it is drawn in one flat grey level.

    Flat: at least half of the stroke's distinct pixels lie within 7 grey levels of the most common
    level (robust to texture touching part of the stroke); the colour is their mean.
    """
    n = len(segs)
    colours = np.zeros((n, 3), np.float64)
    flat = np.zeros(n, dtype=bool)
    if n == 0:
        return colours, flat
    a0, a1, b0, b1 = segs.T
    y0, y1, x0, x1 = (b0, b1, a0, a1) if vertical else (a0, a1, b0, b1)
    # Every pixel of every stroke's band at once: owner stroke and coordinates.
    width = x1 - x0
    area = (y1 - y0) * width
    if n > 1 and area.sum() > 2_000_000:  # bounded memory on huge panels
        half = n // 2
        first, second = (stroke_colours(rgb, gray, distinct, part, vertical) for part in (segs[:half], segs[half:]))
        return np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])
    owner = np.repeat(np.arange(n), area)
    k = np.arange(owner.size) - np.repeat(np.cumsum(area) - area, area)
    ys, xs = y0[owner] + k // width[owner], x0[owner] + k % width[owner]
    on = distinct[ys, xs].view(bool)
    owner, ys, xs = owner[on], ys[on], xs[on]
    luma = gray[ys, xs]
    size = np.bincount(owner, minlength=n)
    peak, at_peak = _grey_mode(owner, luma, n)
    flat = (size > 0) & (at_peak >= 0.5 * size)
    near = flat[owner] & (np.abs(luma.astype(np.int16) - peak[owner]) <= 7)
    colours[flat] = _mean_colours(rgb, owner[near], ys[near], xs[near], n)[flat]
    # A one-pixel line with its anti-aliased neighbours is three grey levels: judge its core alone.
    thin = np.flatnonzero(~flat & ((a1 - a0) <= 3) & ((b1 - b0) >= 8))[:2000]
    if len(thin):
        thin_colours, thin_flat = _core_colours(rgb, gray, distinct, segs[thin], vertical)
        flat[thin] = thin_flat
        colours[thin[thin_flat]] = thin_colours[thin_flat]
    return colours, flat


def _core_colours(rgb: np.ndarray, gray: np.ndarray, distinct: np.ndarray, segs: np.ndarray,
                  vertical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Colour and flatness of strokes at most three pixels thick, read on their :func:`core_line`:
    flat when at least 8 core pixels, half of them within 7 grey levels of the most common level."""
    n = len(segs)
    length = segs[:, 3] - segs[:, 2]
    if n > 1 and length.sum() > 500_000:  # bounded memory on huge panels
        half = n // 2
        first, second = (_core_colours(rgb, gray, distinct, part, vertical) for part in (segs[:half], segs[half:]))
        return np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])
    # One row per position along a stroke, one column per pixel across it (up to three).
    owner = np.repeat(np.arange(n), length)
    along = segs[owner, 2] + np.arange(owner.size) - np.repeat(np.cumsum(length) - length, length)
    offsets = np.arange(3)
    valid = offsets[None, :] < (segs[owner, 1] - segs[owner, 0])[:, None]
    across = np.where(valid, segs[owner, 0][:, None] + offsets[None, :], segs[owner, 0][:, None])
    ys, xs = (along[:, None], across) if vertical else (across, along[:, None])
    ys, xs = np.broadcast_arrays(ys, xs)
    g = gray[ys, xs].astype(np.int16)
    on = distinct[ys, xs].view(bool) & valid
    # Each band's median grey level, truncated as int(np.median(band)) does.
    keys = np.sort((owner[:, None] * 256 + g)[valid])
    size = (segs[:, 1] - segs[:, 0]) * length
    start = np.cumsum(size) - size
    middle = (keys[start + (size - 1) // 2] + keys[start + size // 2]) - 512 * np.arange(n)
    median = middle // 2
    dev = np.where(on, np.abs(g - median[owner][:, None]), -1)
    dev[~valid] = -2
    pick = np.argmax(dev, axis=1)
    rows = np.arange(len(owner))
    core = on[rows, pick]
    owner, cy, cx = owner[core], ys[rows, pick][core], xs[rows, pick][core]
    luma = g[rows, pick][core]
    count = np.bincount(owner, minlength=n)
    mode, _ = _grey_mode(owner, luma, n)
    good = np.abs(luma - mode[owner]) <= 7
    total = np.bincount(owner[good], minlength=n)
    flat = (count >= 8) & (total / np.maximum(count, 1) >= 0.5)
    return _mean_colours(rgb, owner[good], cy[good], cx[good], n), flat


def _grey_mode(owner: np.ndarray, luma: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per stroke (``owner`` of each pixel, ``luma`` its grey level), the level with the most of the stroke's
    pixels within 7 grey levels of it (a 15-level window, as ``np.convolve(..., "same")``) and that count."""
    hist = np.bincount(owner * 256 + luma, minlength=n * 256).reshape(n, 256)
    cum = np.zeros((n, 257), np.int64)
    np.cumsum(hist, axis=1, out=cum[:, 1:])
    levels = np.arange(256)
    window = cum[:, np.minimum(levels + 8, 256)] - cum[:, np.maximum(levels - 7, 0)]
    mode = np.argmax(window, axis=1)
    return mode, window[np.arange(n), mode]


def _mean_colours(rgb: np.ndarray, owner: np.ndarray, ys: np.ndarray, xs: np.ndarray, n: int) -> np.ndarray:
    """Mean colour (``[n, 3]``) of each stroke's pixels ``(ys, xs)``; NaN for a stroke without pixels."""
    total = np.bincount(owner, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([np.bincount(owner, weights=rgb[ys, xs, c].astype(np.float64), minlength=n) / total
                         for c in range(3)], axis=1)


def pair_corners(hs: np.ndarray, vs: np.ndarray, tol: int, min_side: int, limit: int = 4000):
    """Rectangles whose four sides are strokes meeting at the corners (within ``tol`` px).

    Returns ``[((x0, y0, x1, y1), (left, top, right, bottom))]``: the outer edges and the indices of the
    vertical (left, right) and horizontal (top, bottom) strokes.

    A stroke may run past a corner by half its length (texture touching it), but at most two corners
    may be crossed that way: lines that continue through three or four corners belong to grids,
    tables and charts, not to drawn boxes.
    """
    hy0, hy1, hx0, hx1 = (hs[:, k][None, :] for k in range(4))  # shape [1, H]
    vx0, vx1, vy0, vy1 = (vs[:, k][:, None] for k in range(4))  # shape [V, 1]
    ov_h = tol + 0.5 * (hx1 - hx0)
    ov_v = tol + 0.5 * (vy1 - vy0)

    def near(a, b, over):  # a - b in [-over, tol]
        diff = a - b
        return (diff <= tol) & (diff >= -over)

    top_left = near(hx0, vx0, ov_h) & near(vy0, hy0, ov_v)
    top_right = near(vx1, hx1, ov_h) & near(vy0, hy0, ov_v)
    bottom_left = near(hx0, vx0, ov_h) & near(hy1, vy1, ov_v)
    bottom_right = near(vx1, hx1, ov_h) & near(hy1, vy1, ov_v)
    # Every (left, top, right) triple, in the order left-top pair, then right; only the first
    # ``limit + 1`` are looked at. Pairs go in chunks to bound memory on busy panels.
    left, top = np.nonzero(top_left)
    none = np.zeros(0, dtype=np.intp)
    lefts, tops, rights = [none], [none], [none]
    count = 0
    for c in range(0, len(left), 256):
        i, j = left[c : c + 256], top[c : c + 256]
        p, r = np.nonzero(top_right[:, j].T & (vs[None, :, 0] >= vs[i, 1][:, None] + min_side))
        lefts.append(i[p])
        tops.append(j[p])
        rights.append(r)
        count += len(p)
        if count > limit:
            break
    i, j, r = (np.concatenate(a)[: limit + 1] for a in (lefts, tops, rights))
    # Every bottom for each triple, in the order triple, then bottom.
    at, bottoms = [none], [none]
    for c in range(0, len(i), 512):
        below = hs[None, :, 0] >= hs[j[c : c + 512], 1][:, None] + min_side
        t, k = np.nonzero(bottom_left[i[c : c + 512]] & bottom_right[r[c : c + 512]] & below)
        at.append(c + t)
        bottoms.append(k)
    t, k = np.concatenate(at), np.concatenate(bottoms)
    i, j, r = i[t], j[t], r[t]
    x0, y0, x1, y1 = vs[i, 0], hs[j, 0], vs[r, 1], hs[k, 1]
    crossed = (
        ((x0 - hs[j, 2] > tol) | (y0 - vs[i, 2] > tol)).astype(np.int64)  # top-left
        + ((hs[j, 3] - x1 > tol) | (y0 - vs[r, 2] > tol))  # top-right
        + ((x0 - hs[k, 2] > tol) | (vs[i, 3] - y1 > tol))  # bottom-left
        + ((hs[k, 3] - x1 > tol) | (vs[r, 3] - y1 > tol))  # bottom-right
    )
    keep = crossed <= 2
    rects: dict[tuple[int, int, int, int], tuple[int, int, int, int]] = {}
    for rect, sides in zip(np.column_stack([x0, y0, x1, y1])[keep].tolist(),
                           np.column_stack([i, j, r, k])[keep].tolist()):
        rects.setdefault(tuple(rect), tuple(sides))
    return sorted(rects.items())


def outline_flatness(rgb: np.ndarray, gray: np.ndarray, ridge_h: np.ndarray, ridge_v: np.ndarray,
                      rect: tuple[int, int, int, int], hs: np.ndarray, vs: np.ndarray,
                      sides: tuple[int, int, int, int]) -> float | None:
    """Whether four strokes are one drawn outline: the same flat colour all round, drawn along most of
    each side (dashes included). Returns the share of positions along the sides showing that colour,
    or None.

    Cell membranes, fibres and chart gridlines make straight strokes too, but not of one flat colour
    on all four sides.
    """
    h, w = gray.shape
    x0, y0, x1, y1 = rect
    left, top, right, bottom = sides

    def across(a: int, b: int, limit: int) -> slice:  # the stroke's band, one pixel wider each side
        return slice(max(0, int(a) - 1), min(limit, int(b) + 1))

    bands = [  # (rows, cols, axis along the side, line pixels)
        (across(hs[top, 0], hs[top, 1], h), slice(x0, x1), 1, ridge_h),
        (across(hs[bottom, 0], hs[bottom, 1], h), slice(x0, x1), 1, ridge_h),
        (slice(y0, y1), across(vs[left, 0], vs[left, 1], w), 0, ridge_v),
        (slice(y0, y1), across(vs[right, 0], vs[right, 1], w), 0, ridge_v),
    ]
    # Positions where anything stands out bound those showing the outline colour (tested below).
    ons = []
    for rows, cols, along, lines in bands:  # side by side: most candidates fail on their first sides
        on = lines[rows, cols].view(bool)
        if not on.any() or np.count_nonzero(on.any(axis=1 - along)) < 0.4 * on.shape[along]:
            return None
        ons.append(on)
    colours, cores = [], []
    for (rows, cols, along, _), on in zip(bands, ons):
        core = core_line(gray[rows, cols], on, along)
        cores.append(core)
        colours.append(_median(rgb[rows, cols][core].astype(np.int16)))
    colour = _median(np.array(colours))
    if max(float(np.abs(c - colour).max()) for c in colours) > 45:
        return None
    # Drawn in one flat grey level: luma survives JPEG far better than chroma on thin lines. (Read on
    # each line's core: the anti-aliased rows beside a one-pixel line are mixtures.)
    luma = np.concatenate([gray[r, c][k] for (r, c, _, _), k in zip(bands, cores)]).astype(np.int16)
    if _median(np.abs(luma - _median(luma))) > 7:
        return None
    shares = []
    for (rows, cols, along, _), on in zip(bands, ons):
        same = on & (np.abs(rgb[rows, cols].astype(np.int16) - colour).max(axis=2) <= 60)
        drawn = same.any(axis=1 - along)
        seen = on.any(axis=1 - along)
        # Dashes cover at least ~40% of a side; where anything stands out, it is the outline colour;
        # and the pieces are dashes, not dots: bridged rows of glyphs, scatter rings and texture
        # specks make sides of short pieces.
        if drawn.mean() < 0.4 or drawn.sum() < 0.7 * seen.sum():
            return None
        pieces = int(np.count_nonzero(np.diff(np.concatenate(([0], drawn.astype(np.int8)))) == 1))
        if drawn.sum() < 4.0 * pieces:
            return None
        shares.append(float(drawn.mean()))
    return float(np.mean(shares))


def _median(values: np.ndarray):
    """``np.median(values, axis=0)``, without its overhead on the small arrays read here."""
    k = len(values)
    part = np.partition(values, [(k - 1) // 2, k // 2], axis=0)
    return (part[(k - 1) // 2] + part[k // 2]) / 2


def core_line(gray: np.ndarray, on: np.ndarray, along: int) -> np.ndarray:
    """The core of a line band: at each position along it (``along`` = 1: columns of a horizontal band),
    the one line pixel (of ``on``) whose grey level is farthest from the band's median."""
    g = gray.astype(np.int16)
    dev = np.where(on, np.abs(g - int(_median(g.ravel()))), -1)
    pick = np.argmax(dev, axis=1 - along)
    core = np.zeros_like(on)
    if along == 1:
        cols = np.arange(g.shape[1])
        core[pick, cols] = on[pick, cols]
    else:
        rows = np.arange(g.shape[0])
        core[rows, pick] = on[rows, pick]
    return core


def frames_text(gray: np.ndarray, rect: tuple[int, int, int, int], line: int) -> bool:
    """Whether a rectangle frames text on a flat ground (a chart legend, a text box), not an area."""
    import cv2

    x0, y0, x1, y1 = rect
    inner = gray[y0 + line + 1 : y1 - line - 1, x0 + line + 1 : x1 - line - 1]
    if inner.size < 16:
        return False
    counts = np.convolve(np.bincount(inner.ravel(), minlength=256), np.ones(21, np.int64), mode="same")
    peak = int(np.argmax(counts))
    if counts[peak] < 0.75 * inner.size:
        return False
    ink = (np.abs(inner.astype(np.int16) - peak) > 40).view(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    hgt, wid = stats[1:, 3], stats[1:, 2]
    glyphs = (hgt >= 5) & (hgt <= 0.6 * inner.shape[0]) & (wid <= 3 * hgt)
    return int(glyphs.sum()) >= 3


def crossed_by_stroke(strokes: np.ndarray, boxes: np.ndarray, line: int, vertical: bool) -> np.ndarray:
    """Whether a stroke spans most of each rectangle (``[R, 4]`` boxes) inside it: a grid cell or
    chart, not a box. ``strokes`` are horizontal ``(y0, y1, x0, x1)`` or vertical ``(x0, x1, y0, y1)``."""
    if len(boxes) == 0 or len(strokes) == 0:
        return np.zeros(len(boxes), dtype=bool)
    if len(boxes) > 512:  # bounded memory on busy panels
        parts = [crossed_by_stroke(strokes, boxes[k : k + 512], line, vertical) for k in range(0, len(boxes), 512)]
        return np.concatenate(parts)
    x0, y0, x1, y1 = (boxes[:, k][:, None] for k in range(4))
    if vertical:  # swap the roles of x and y
        x0, y0, x1, y1 = y0, x0, y1, x1
    s0, s1, a0, a1 = (strokes[:, k][None, :] for k in range(4))
    inside = (s0 > y0 + line) & (s1 < y1 - line)
    span = np.minimum(a1, x1) - np.maximum(a0, x0)
    return (inside & (span >= 0.8 * (x1 - x0))).any(axis=1)
