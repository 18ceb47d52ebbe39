"""What an arrow or arrowhead sits on and points at: picture (texture, noise, shading) or flat paper.

A pointer is drawn on a picture, or beside one pointing into it (a triangle beside a blot band, an
arrow from the margin). Arrows drawn on flat paper that point at more paper are diagram arrows: the
connectors of flow charts and schematics, timelines, axis arrows, vectors in plots.

Two samples are read around each marker, in the panel crop, both without the drawn pixels (distinct
pixels of every layer, grown by a pixel or two): what is left is the ground things are drawn on.

* the *surround*: the marker's box grown by half its size;
* the *target*: a strip straight ahead of the tip, as long as the marker and 0.8 of it wide (a box or a
  label at the end of a connector is drawn, and left out with the rest).

Each is summarised by its *flat share*, the share of pixels within 2 grey levels of the sample's most
common level (for the surround, of its two most common levels: paper beside a box's pastel fill):
paper, even JPEG-compressed, is almost all one level; a micrograph, a blot, a rendering or a
photograph is not. The target also tells how much of it is *off* the surround's level, and
whether that part is one flat light tone (a diagram box's pastel fill, not a picture). A strip ahead
that leaves the panel, or is nearly all drawn, reads as paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .found import FoundMarker
from .layers import Layers

#: Grey level from which a flat tone is light: paper, or the pastel fill of a diagram's box.
LIGHT = 200


@dataclass
class Context:
    """``surround`` / ``target``: flat shares of the ground around the marker and ahead of its tip (1: all
    one grey level); ``target_off``: share of the ground ahead at least 6 grey levels off ``paper``, the
    surround's most common level; ``fill_ahead``: that off-paper ground is one flat light tone."""

    surround: float
    target: float
    target_off: float = 0.0
    paper: int = 255
    fill_ahead: bool = False

    @property
    def at_picture(self) -> bool:
        """The tip points at a picture: most of the ground ahead is off the paper's level, and not one
        flat light tone (the pastel fill of a diagram's box)."""
        return self.target_off >= 0.5 and not self.fill_ahead


def flat_share(gray: np.ndarray, tones: int = 1) -> float:
    """Share of pixels within 2 grey levels of the most common level, or of the ``tones`` most common
    levels 5 apart or more (1 for tiny samples)."""
    if gray.size < 8:
        return 1.0
    hist = np.bincount(gray.ravel(), minlength=256)
    window = np.convolve(hist, np.ones(5, np.int64), mode="same")
    total = 0
    for _ in range(tones):
        peak = int(np.argmax(window))
        total += int(window[peak])
        window[max(0, peak - 4) : peak + 5] = 0  # the next tone's window does not overlap this one
    return float(total / gray.size)


def mode_level(gray: np.ndarray) -> int:
    """The most common grey level (in a 5-level window)."""
    hist = np.bincount(gray.ravel(), minlength=256)
    return int(np.argmax(np.convolve(hist, np.ones(5, np.int64), mode="same")))


def _drawn(layers: Layers, x0: int, y0: int, x1: int, y1: int, grow: int) -> np.ndarray:
    """Pixels of any layer in the window, grown by ``grow`` px (``bool``)."""
    import cv2

    drawn = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for m in layers.masks:
        drawn |= m[y0:y1, x0:x1]
    return cv2.dilate(drawn, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).view(bool)


def marker_context(layers: Layers, f: FoundMarker) -> Context:
    """The :class:`Context` of arrow or arrowhead ``f`` (crop coordinates, ``f.tip`` set)."""
    gray = layers.gray
    h, w = gray.shape
    x0, y0, x1, y1 = f.box
    size = max(x1 - x0, y1 - y0, 4.0)
    pad = max(4.0, 0.5 * size)
    ax0, ay0 = max(0, int(x0 - pad)), max(0, int(y0 - pad))
    ax1, ay1 = min(w, int(math.ceil(x1 + pad))), min(h, int(math.ceil(y1 + pad)))
    around = gray[ay0:ay1, ax0:ax1][~_drawn(layers, ax0, ay0, ax1, ay1, 2)]
    if around.size < 16:  # all drawn: judge the whole window
        around = gray[ay0:ay1, ax0:ax1].ravel()
    # Paper and the pastel fills of a diagram's boxes: two flat tones at most.
    surround = flat_share(around, tones=2)
    paper = mode_level(around) if around.size else 255

    # The strip ahead of the tip: from 2 px beyond it, one marker length long, 0.8 of its size wide.
    tip = np.asarray(f.tip if f.tip is not None else ((x0 + x1) / 2, (y0 + y1) / 2), np.float64)
    rad = math.radians(f.direction or 0.0)
    u = np.array([math.cos(rad), -math.sin(rad)])
    normal = np.array([-u[1], u[0]])
    half = max(3.0, 0.4 * size)
    ss = np.arange(2.0, 2.0 + max(8.0, size))
    ts = np.arange(-half, half + 1.0)
    pts = tip[None, None, :] + ss[:, None, None] * u[None, None, :] + ts[None, :, None] * normal[None, None, :]
    xs = np.floor(pts[..., 0]).astype(np.int64).ravel()
    ys = np.floor(pts[..., 1]).astype(np.int64).ravel()
    inside = (xs >= 0) & (ys >= 0) & (xs < w) & (ys < h)
    if inside.mean() < 0.5:
        return Context(surround, 1.0, 0.0, paper)
    xs, ys = xs[inside], ys[inside]
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    drawn = _drawn(layers, bx0, by0, bx1, by1, 1)[ys - by0, xs - bx0]
    if np.count_nonzero(~drawn) < 0.25 * len(drawn):
        return Context(surround, 1.0, 0.0, paper)
    ground = gray[ys, xs][~drawn]
    off = np.abs(ground.astype(np.int16) - paper) >= 6
    fill = bool(off.sum() >= 8 and flat_share(ground[off]) >= 0.8 and mode_level(ground[off]) >= LIGHT)
    return Context(surround, flat_share(ground), float(off.mean()), paper, fill)
