"""Step 5 of the detector: text labels printed next to markers ("Stent", "Site A"), read with RapidOCR.

The text line next to a marker is found from the glyph components of its layer.

Only RapidOCR's recognition model runs (no detection stage): the caller crops one text line, which is
far cheaper than detecting text in the whole panel. Coordinates here are pixels of the array handed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from panel2patch.data import Box

from ..ocr import recognition_engine

if TYPE_CHECKING:
    from .found import FoundMarker
    from .layers import Layers


@dataclass
class TextLine:
    """A horizontal run of glyph-sized components: ``box`` is ``(x0, y0, x1, y1)``, ``height`` in px."""

    box: Box
    height: float
    glyphs: int


def text_lines(boxes: np.ndarray, min_height: float, max_height: float, gap: float = 0.9) -> list[TextLine]:
    """Group glyph boxes (``[N, 4]`` array of ``x0, y0, x1, y1``) into horizontal text lines.

    Glyphs are components at most ``max_height`` tall and at most four times as wide as tall; two glyphs
    join a line when they overlap vertically by half the smaller height and the horizontal gap between
    them is below ``gap`` times the larger height (word spaces join, column gaps do not). Lines lower than
    ``min_height`` are dropped.
    """
    b = np.asarray(boxes, dtype=float).reshape(-1, 4)
    hgt = b[:, 3] - b[:, 1]
    wid = b[:, 2] - b[:, 0]
    ok = (hgt <= max_height) & (wid <= 4 * np.maximum(hgt, 1))
    b, hgt = b[ok], hgt[ok]
    n = len(b)
    if n == 0:
        return []
    overlap = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hgap = np.maximum(b[:, None, 0], b[None, :, 0]) - np.minimum(b[:, None, 2], b[None, :, 2])
    hmin = np.minimum(hgt[:, None], hgt[None, :])
    hmax = np.maximum(hgt[:, None], hgt[None, :])
    adjacent = (overlap >= 0.5 * hmin) & (hgap <= gap * hmax)
    from scipy.sparse.csgraph import connected_components

    _, group = connected_components(adjacent, directed=False)
    lines = []
    for g in np.unique(group):
        m = b[group == g]
        height = float(hgt[group == g].max())
        if height < min_height:
            continue
        box = (float(m[:, 0].min()), float(m[:, 1].min()), float(m[:, 2].max()), float(m[:, 3].max()))
        lines.append(TextLine(box=box, height=height, glyphs=len(m)))
    return lines


class TextReader:
    """Reads cropped single text lines with RapidOCR's recognition model (PP-OCR, CPU, offline).

    The engine (:func:`panel2patch.parsers.ocr.recognition_engine`) is fetched on first use.
    ``threads``: onnxruntime intra-op threads (0: its default).
    """

    def __init__(self, min_score: float = 0.6, threads: int = 1) -> None:
        self.min_score = min_score
        self.threads = threads

    @property
    def engine(self) -> Any:
        return recognition_engine(self.threads)

    def read(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float] | None]:
        """Read each RGB ``uint8 [H, W, 3]`` crop; None where nothing scores ``>= min_score``."""
        out: list[tuple[str, float] | None] = []
        for crop in crops:
            if crop.size == 0 or min(crop.shape[:2]) < 4:
                out.append(None)
                continue
            bgr = np.ascontiguousarray(crop[:, :, ::-1])
            result, _ = self.engine(bgr, use_det=False, use_cls=False, use_rec=True)
            out.append(_best(result, self.min_score))
        return out


#: Characters a marker label may contain: Latin letters, digits, Greek letters, common punctuation.
_ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -+.,:;'()/%#&µ"
               "αβγδεζηθικλμνξοπρστυφχψωΔΣΩ")


def _best(result, min_score: float) -> tuple[str, float] | None:
    """The recognised text when it reads as a label: two letters or more, Latin/Greek script only.

    The recognition model also knows CJK characters and reads stray strokes as them; single
    letters and bare numbers next to markers are panel labels and tick labels far more often than
    marker labels.
    """
    if not result:
        return None
    text, score = result[0][0], float(result[0][1])
    text = " ".join(str(text).split())
    if score < min_score or not set(text) <= _ALLOWED or sum(ch.isalpha() for ch in text) < 2:
        return None
    return text, score


def nearest_line(f: FoundMarker, layers: Layers, panel_h: int, label_box: Box | None = None) -> TextLine | None:
    """The text line printed next to a marker, in the marker's layer (or any layer for rectangles)."""
    x0, y0, x1, y1 = f.box
    size = max(x1 - x0, y1 - y0)
    max_h = min(0.15 * panel_h, max(12.0, 1.2 * size))
    reach = max(12.0, 1.2 * size) if f.kind != "box" else max(12.0, 0.25 * size)
    layer_ids = [f.layer] if f.layer >= 0 else list(range(len(layers.stats)))
    best, best_d = None, math.inf
    for li in layer_ids:
        st = layers.stats[li][1:]
        if len(st) == 0:
            continue
        gx0, gy0 = st[:, 0].astype(float), st[:, 1].astype(float)
        gx1, gy1 = gx0 + st[:, 2], gy0 + st[:, 3]
        # Lines run sideways: take glyphs from a wider strip so that a line starting near the marker
        # is read whole.
        wide = reach + 8.0 * max_h
        near = (gx1 >= x0 - wide) & (gx0 <= x1 + wide) & (gy1 >= y0 - reach) & (gy0 <= y1 + reach)
        own = (gx0 >= x0 - 1) & (gy0 >= y0 - 1) & (gx1 <= x1 + 1) & (gy1 <= y1 + 1)
        # Small anti-aliased glyphs break into pieces (an S into two arcs); the line grouping joins them.
        boxes = np.column_stack([gx0, gy0, gx1, gy1])[near & ~own & (st[:, 3] >= 2) & (st[:, 4] >= 3)]
        if label_box is not None:  # the panel label is not a marker's text
            lb = label_box
            clear = (boxes[:, 2] <= lb[0]) | (boxes[:, 0] >= lb[2]) | (boxes[:, 3] <= lb[1]) | (boxes[:, 1] >= lb[3])
            boxes = boxes[clear]
        if f.kind == "box":  # text inside a box is content, not its label
            outside = ((boxes[:, 2] <= x0 + 1) | (boxes[:, 0] >= x1 - 1)
                       | (boxes[:, 3] <= y0 + 1) | (boxes[:, 1] >= y1 - 1))
            boxes = boxes[outside]
        for line in text_lines(boxes, min_height=6.0, max_height=max_h):
            lx0, ly0, lx1, ly1 = line.box
            if f.kind in ("arrow", "arrowhead", "band_marker", "connector") and f.tail is not None:
                px, py = f.tail
                d = math.hypot(max(lx0 - px, 0.0, px - lx1), max(ly0 - py, 0.0, py - ly1))
                limit = 1.5 * line.height + 4.0
            else:
                d = math.hypot(max(lx0 - x1, 0.0, x0 - lx1), max(ly0 - y1, 0.0, y0 - ly1))
                limit = 1.2 * line.height + 4.0
            # A label has two letters at least: one glyph, or a line no wider than tall, is not read.
            if d <= limit and d < best_d and line.glyphs >= 2 and lx1 - lx0 >= line.height:
                best, best_d = line, d
    return best
