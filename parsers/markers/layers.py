"""Step 1 of the detector: a panel's distinct pixels as colour layers, and how flat each layer component is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Layers:
    """Per-panel maps: ``masks[i]`` is a ``uint8`` 0/1 layer, ``stats[i]`` its component stats."""

    rgb: np.ndarray
    gray: np.ndarray
    background: np.ndarray  #: the local background's grey level
    masks: list[np.ndarray] = field(default_factory=list)
    stats: list[np.ndarray] = field(default_factory=list)


def _background(rgb: np.ndarray, window: int) -> np.ndarray:
    """Median colour over a ``window``-pixel neighbourhood, computed on a subsampled copy."""
    import cv2

    h, w = rgb.shape[:2]
    k = 9
    scale = max(1, window // k)
    # Subsample rather than average: an averaged block mixes thin lines into the background, a
    # sampled one misses them (or hits them in one sample, which the median ignores).
    small = rgb if scale == 1 else cv2.resize(
        rgb, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_NEAREST)
    # medianBlur replicates edge pixels; a line along the panel edge would then fill the window.
    r = k // 2
    border = cv2.BORDER_REFLECT_101 if min(small.shape[:2]) > r else cv2.BORDER_REPLICATE
    small = cv2.copyMakeBorder(small, r, r, r, r, border)
    small = cv2.medianBlur(small, k)[r:-r, r:-r]
    return small if scale == 1 else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def make_layers(rgb: np.ndarray, contrast: float, min_chroma: float) -> Layers:
    import cv2

    h, w = rgb.shape[:2]
    window = int(np.clip(0.2 * min(h, w), 27, 151))
    bg = _background(rgb, window)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    bg_gray = cv2.cvtColor(bg, cv2.COLOR_RGB2GRAY)
    r, g, b = cv2.split(rgb)
    dr, dg, db = cv2.split(cv2.absdiff(rgb, bg))

    def at_least(values: np.ndarray, level: float, below: bool = False) -> np.ndarray:
        """``uint8`` 0/1: ``values >= level`` (``values < level`` with ``below``)."""
        return cv2.threshold(values, math.ceil(level) - 1, 1, cv2.THRESH_BINARY_INV if below else cv2.THRESH_BINARY)[1]

    distinct = at_least(cv2.max(cv2.max(dr, dg), db), contrast)
    chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    chromatic = at_least(chroma, min_chroma)
    achromatic = at_least(chroma, min_chroma, below=True)
    lighter = at_least(cv2.subtract(gray, bg_gray), contrast)
    darker = at_least(cv2.subtract(bg_gray, gray), contrast)
    layers = Layers(rgb=rgb, gray=gray, background=bg_gray)
    layers.masks.append(cv2.bitwise_and(achromatic, lighter))
    layers.masks.append(cv2.bitwise_and(achromatic, darker))
    coloured = np.flatnonzero(cv2.bitwise_and(distinct, chromatic))
    if len(coloured) >= 16:
        hue = cv2.cvtColor(rgb.reshape(-1, 3)[coloured].reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL)[:, 0, 0]
        hue = hue.astype(np.int16)
        for centre in _hue_peaks(hue):
            dist = np.abs(hue - centre)
            mask = np.zeros(h * w, np.uint8)
            mask[coloured[np.minimum(dist, 256 - dist) <= 20]] = 1
            layers.masks.append(mask.reshape(h, w))
    return layers


def _hue_peaks(hues: np.ndarray, max_peaks: int = 6, min_count: int = 16) -> list[int]:
    """Centres (0-255 hue units) of the dominant hues, at least 24 units apart."""
    hist = np.bincount(hues.astype(np.int64) // 8, minlength=32).astype(float)
    smooth = 0.5 * hist + 0.25 * (np.roll(hist, 1) + np.roll(hist, -1))
    peaks = []
    for b in np.argsort(-smooth):
        if smooth[b] < min_count or len(peaks) >= max_peaks:
            break
        if all(min(abs(b - p), 32 - abs(b - p)) >= 3 for p in peaks):
            peaks.append(int(b))
    return [p * 8 + 4 for p in peaks]


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=8)``'s count, labels and stats.

    Layers are sparse: the labelling runs on the box around the mask's pixels alone, aligned to even
    rows and columns so that the block-based labelling numbers the components as it does on the whole
    mask.
    """
    import cv2

    h, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(mask)
    x0, y0, x1, y1 = x - x % 2, y - y % 2, x + bw, y + bh
    if bw == 0 or (x0, y0, x1, y1) == (0, 0, w, h):
        return cv2.connectedComponentsWithStats(mask, connectivity=8)[:3]
    n, box_labels, stats, _ = cv2.connectedComponentsWithStats(mask[y0:y1, x0:x1], connectivity=8)
    labels = np.zeros((h, w), np.int32)
    labels[y0:y1, x0:x1] = box_labels
    stats[1:, 0] += x0
    stats[1:, 1] += y0
    # The background: everything outside the box, and the box's own unmarked pixels.
    inside = mask[y0:y1, x0:x1].view(bool)
    rows = np.ones(h, bool)
    rows[y0:y1] = (x0 > 0) | (x1 < w) | ~inside.all(axis=1)
    cols = np.ones(w, bool)
    cols[x0:x1] = (y0 > 0) | (y1 < h) | ~inside.all(axis=0)
    rows, cols = np.flatnonzero(rows), np.flatnonzero(cols)
    stats[0] = (cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1, h * w - int(stats[1:, 4].sum()))
    return n, labels, stats


#: Grey-level variation inside a drawn blob per unit of its contrast with the ground (JPEG ringing).
TEXTURE_PER_CONTRAST = 0.1


def component_contrast(labels: np.ndarray, mask: np.ndarray, layers: Layers, n: int) -> np.ndarray:
    """Per component, how far its mean grey level lies from the local background's under it."""
    on = mask.view(bool)
    lab = labels[on]
    cnt = np.maximum(np.bincount(lab, minlength=n), 1)
    own = np.bincount(lab, layers.gray[on].astype(np.float64), minlength=n)
    ground = np.bincount(lab, layers.background[on].astype(np.float64), minlength=n)
    return np.abs(own - ground) / cnt


def component_texture(labels: np.ndarray, mask: np.ndarray, gray: np.ndarray, n: int,
                      with_core: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Standard deviation of grey level per component inside its eroded core (0 without a core).

    The core leaves out the anti-aliased rim; strokes too thin to have a substantial core are judged by
    shape and edge sharpness alone. With ``with_core``, also the core's pixel count per component.
    """
    import cv2

    # Only the box around the mask's pixels, and a pixel beyond it for the erosion, holds anything.
    x, y, bw, bh = cv2.boundingRect(mask)
    rows = slice(max(0, y - 1), min(mask.shape[0], y + bh + 1))
    cols = slice(max(0, x - 1), min(mask.shape[1], x + bw + 1))
    labels, mask, gray = labels[rows, cols], mask[rows, cols], gray[rows, cols]
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    lab = labels[inner]
    vals = gray[inner].astype(np.float64)
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    s1 = np.bincount(lab, vals, minlength=n)
    s2 = np.bincount(lab, vals * vals, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.maximum(s2 / cnt - (s1 / cnt) ** 2, 0.0))
    area = np.bincount(labels[mask.view(bool)], minlength=n)
    # A core under a third of the shape is mostly rim, where compression ringing dominates.
    texture = np.where((cnt >= 4) & (cnt >= 0.3 * area), std, 0.0)
    return (texture, cnt) if with_core else texture
