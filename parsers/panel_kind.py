"""Panel kind from image statistics: ``"photo"`` (micrographs, scans, photographs, renderings) or
``"chart"`` (plots, bar charts, diagrams: flat paper, thin strokes, text).

The crop is subsampled to at most :data:`SIDE` pixels on its longer side. Statistics
(:func:`features`):

* ``background``: share of pixels within 2 levels of the most common exact colour (a chart's paper
  is one colour; smooth photo shading, even of low contrast, is not);
* ``marks``: number of small connected components of non-paper pixels (tick labels, text glyphs,
  data markers); a flat synthetic image (a phantom) has paper but few marks;
* ``colours`` (distinct colours covering 95% of the pixels) and ``stroke`` (share of non-paper
  pixels on an edge) are reported for inspection.

:func:`classify` calls a crop a chart when at least :data:`MIN_CHART_BACKGROUND` of it is paper and
it carries at least :data:`MIN_CHART_MARKS` marks, otherwise a photo; ``score`` in ``[0.5, 1]`` grows
with the margin from the nearer threshold. The thresholds were set on the panels of the demo
generator (``panel2patch demo-data``: 99% agreement on its ground-truth boxes) and checked by eye on
the real development figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Longer side, in pixels, of the reduced crop the statistics are computed on.
SIDE = 160
#: Smallest background share of a chart.
MIN_CHART_BACKGROUND = 0.58
#: Fewest small marks (tick labels, markers, text glyphs) on a chart.
MIN_CHART_MARKS = 10


@dataclass
class KindFeatures:
    """Statistics of one panel crop (see the module docstring); ``background`` and ``stroke`` are
    shares in ``[0, 1]``, ``colours`` and ``marks`` counts."""

    background: float
    colours: int
    stroke: float
    marks: int


@dataclass
class PanelKind:
    """A panel's kind (``"photo"``, ``"chart"`` or ``"unknown"`` for empty crops) and a score."""

    kind: str
    score: float
    features: KindFeatures | None = None


def features(rgb: np.ndarray) -> KindFeatures:
    """Statistics of an ``H x W x 3`` uint8 crop (any size, at least 1 x 1)."""
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / SIDE)))
    small = rgb[::step, ::step].astype(np.int32)
    codes = (small[..., 0] << 16) | (small[..., 1] << 8) | small[..., 2]
    values, counts = np.unique(codes, return_counts=True)
    order = np.argsort(counts)[::-1]
    total = float(codes.size)
    colours = int(np.searchsorted(np.cumsum(counts[order]), 0.95 * total) + 1)
    mode = values[order[0]]
    paper = np.array([(mode >> 16) & 255, (mode >> 8) & 255, mode & 255])
    # a chart's paper is one exact colour (give or take compression noise); smooth photo shading is not
    ink = np.abs(small - paper).max(axis=-1) > 2
    background = 1.0 - float(ink.mean())
    edge = np.zeros_like(ink)
    across = codes[:, 1:] != codes[:, :-1]
    edge[:, 1:] |= across
    edge[:, :-1] |= across
    down = codes[1:, :] != codes[:-1, :]
    edge[1:, :] |= down
    edge[:-1, :] |= down
    n_ink = int(ink.sum())
    stroke = float((edge & ink).sum() / n_ink) if n_ink else 0.0
    marks = 0
    if n_ink:
        from scipy import ndimage

        labels, n = ndimage.label(ink)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            marks = int(((sizes >= 2) & (sizes <= max(4, 0.005 * codes.size))).sum())
    return KindFeatures(background=background, colours=colours, stroke=stroke, marks=marks)


def classify(rgb: np.ndarray) -> PanelKind:
    """Kind of an ``H x W x 3`` uint8 panel crop; ``"unknown"`` when the crop is empty."""
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        return PanelKind("unknown", 0.0)
    f = features(rgb)
    chart = f.background >= MIN_CHART_BACKGROUND and f.marks >= MIN_CHART_MARKS
    margin = min(abs(f.background - MIN_CHART_BACKGROUND) / 0.3, abs(f.marks - MIN_CHART_MARKS) / 10.0, 1.0)
    # score: 0.5 on a threshold, 1 when both statistics are well clear of theirs
    return PanelKind("chart" if chart else "photo", round(0.5 + 0.5 * margin, 3), f)
