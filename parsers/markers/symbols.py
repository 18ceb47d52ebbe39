"""Glyph-like blob shapes: the regular spokes of an asterisk, a hash (#) and a dagger (†)."""

from __future__ import annotations

import numpy as np


def _ring(sub: np.ndarray, cx: float, cy: float, radius: float, n: int = 120) -> np.ndarray:
    import cv2

    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    mx = (cx + radius * np.cos(theta) - 0.5).astype(np.float32).reshape(1, -1)
    my = (cy + radius * np.sin(theta) - 0.5).astype(np.float32).reshape(1, -1)
    vals = cv2.remap(sub.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return vals.reshape(-1) >= 0.5


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """Circular runs of True as ``(start, length)``."""
    n = len(on)
    if on.all() or not on.any():
        return []
    shift = int(np.argmin(on))  # start scanning at an off sample so no run wraps
    edges = np.diff(np.concatenate(([0], np.roll(on, -shift).astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(((starts + shift) % n).tolist(), (ends - starts).tolist()))


def _run_counts(rings: np.ndarray) -> np.ndarray:
    """Number of circular runs of True in each row of a boolean ``[K, N]`` array (0 when all True)."""
    return np.count_nonzero(rings & ~np.roll(rings, 1, axis=1), axis=1)


#: Sample angles of the rings read by :func:`count_spokes`.
_SPOKE_ANGLES = np.linspace(0.0, 2 * np.pi, 120, endpoint=False)
_SPOKE_RINGS = np.array([0.9, 0.8, 0.7, 0.6])


def _centre_radius(sub: np.ndarray) -> tuple[float, float, float]:
    """Centroid of a mask's pixels (pixel centres) and the distance to its farthest pixel."""
    ys, xs = np.nonzero(sub)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    return cx, cy, float(np.sqrt(((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2).max()))


def count_spokes(sub: np.ndarray) -> tuple[int, float] | None:
    """Number of regular spokes radiating from the component's centre, and a regularity score."""
    import cv2

    cx, cy, radius = _centre_radius(sub)
    if radius < 3.5:
        return None
    yc, xc = int(cy), int(cx)
    if not sub[max(0, yc - 1) : yc + 2, max(0, xc - 1) : xc + 2].any():
        return None
    n = len(_SPOKE_ANGLES)
    # All rings in one lookup: row k samples the circle of radius _SPOKE_RINGS[k] * radius.
    r = (_SPOKE_RINGS * radius)[:, None]
    mx = (cx + r * np.cos(_SPOKE_ANGLES) - 0.5).astype(np.float32)
    my = (cy + r * np.sin(_SPOKE_ANGLES) - 0.5).astype(np.float32)
    subf = sub.astype(np.float32)
    on = cv2.remap(subf, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0) >= 0.5
    counts = _run_counts(on)
    candidates = (counts >= 5) & (counts <= 8)
    if not candidates.any():
        return None
    # Near the centre thick spokes merge, so count on the outermost regular ring; the spoke pattern
    # must persist on a second ring, and every spoke must run straight back to the centre (letters
    # such as S or G cross a ring several times too, but not along radii).
    for k in np.flatnonzero(candidates):
        runs = _runs(on[k])
        centres = np.sort(np.array([(st + ln / 2.0) % n for st, ln in runs]) * (2 * np.pi / n))
        gaps = np.diff(centres, append=centres[0] + 2 * np.pi)
        irregularity = float(gaps.std() / gaps.mean())
        if irregularity > 0.3:
            continue
        if np.count_nonzero(counts >= 4) < 2:
            return None
        radii = np.linspace(0.15, _SPOKE_RINGS[k], 8) * radius
        xs_ = (cx + np.outer(np.cos(centres), radii) - 0.5).astype(np.float32)
        ys_ = (cy + np.outer(np.sin(centres), radii) - 0.5).astype(np.float32)
        along = cv2.remap(subf, xs_, ys_, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if (along >= 0.5).mean(axis=1).min() < 0.75:
            return None
        return int(counts[k]), float(np.clip(1.0 - irregularity, 0.0, 1.0))
    return None


def is_hash(sub: np.ndarray, hole: np.ndarray) -> bool:
    """A '#': one central hole and eight stroke ends around it."""
    import cv2

    ch, cw = sub.shape
    x, y, w, h = cv2.boundingRect(hole)
    hx, hy = x - 1 + w / 2.0, y - 1 + h / 2.0
    if abs(hx - cw / 2.0) > 0.2 * cw or abs(hy - ch / 2.0) > 0.2 * ch:
        return False
    if not 0.03 <= (w * h) / float(cw * ch) <= 0.4:
        return False
    cx, cy, radius = _centre_radius(sub)
    return len(_runs(_ring(sub, cx, cy, 0.85 * radius, 160))) == 8


def is_dagger(sub: np.ndarray) -> bool:
    """A '†': a stem through the full height, one crossbar in the upper half, nothing else wide."""
    ch, cw = sub.shape
    cols = sub.sum(axis=0)
    rows = sub.sum(axis=1)
    stem = int(np.argmax(cols))
    if cols[stem] < 0.85 * ch or abs(stem + 0.5 - cw / 2.0) > 0.2 * cw:
        return False
    wide = rows >= 0.7 * cw
    if not wide.any():
        return False
    idx = np.flatnonzero(wide)
    if idx[-1] - idx[0] + 1 != len(idx) or len(idx) > 0.25 * ch:
        return False
    centre = (idx[0] + idx[-1] + 1) / 2.0
    if not 0.12 * ch <= centre <= 0.45 * ch:
        return False
    others = np.delete(rows, idx)
    return bool(others.max(initial=0) <= 0.45 * cw)
