"""Marker detector ``shape_markers``: arrows, arrowheads, asterisks, symbols, boxes and insets in each panel.

Registered as marker detector ``"shape_markers"`` (:class:`ShapeMarkerDetector`). It is colour-agnostic: a
marker is recognised by being drawn in a flat colour that stands out from its surroundings and by its
shape, whatever the colour. Per panel:

1. *Layers.* A local background is estimated with a median filter much wider than a marker (run on a
   downscaled copy). Pixels whose colour is at least ``contrast`` away from it are *distinct*. Distinct
   pixels are split into layers that one drawn marker never straddles: light achromatic, dark
   achromatic, and one layer per dominant hue among saturated pixels (chroma ``>= min_chroma``).
2. *Blobs.* Connected components of each layer that are flat in colour and of marker size are
   measured: a filled triangle (:func:`cv2.minEnclosingTriangle`) is an ``arrowhead`` (or an upright
   ``symbol`` such as ▲ when equilateral); a thin straight shaft ending in a triangular head (width
   profile along the principal axis) is an ``arrow``; five to eight regular spokes make an
   ``asterisk``; a hash (#) or a dagger (†) standing alone is a ``symbol``.
3. *Rectangles.* Thin-line pixels (darker or lighter than the pixels a few rows above and below, or
   columns left and right, in any colour) are joined into straight strokes by morphological closing
   (bridging dashes) and opening, cut into bands of nearly constant extent, kept when drawn in one
   flat grey level, and paired at their corners into rectangles whose four sides share one colour.
   Grids, panel and plot frames and frames around text (legends) are rejected. A rectangle in a
   panel corner is an ``inset``, elsewhere a ``box``.
4. Shapes repeated more than ``max_repeats`` times in a panel (chart data markers) are dropped,
   duplicates across layers are removed with :func:`panel2patch.data.box_nms`, and anything inside the
   panel's ``label_box`` (the panel letter, its circle or patch) is left out.
5. With ``read_text``, a text line printed next to a marker (in the marker's colour; for an arrow,
   next to its tail) is read with RapidOCR's recognition model
   (:mod:`panel2patch.parsers.markers.text`).

All output coordinates are float pixels of the original figure image, origin top-left; ``tip`` is the
pointed-at point, ``direction`` degrees counter-clockwise from +x with y up (0 = right, 90 = up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from panel2patch.components import MarkerDetector
from panel2patch.data import Box, Marker, Panel
from panel2patch.parsers.boxes import box_inside_share, box_iou

from .cleanup import drop_repeats, non_max_suppression
from .found import FoundMarker
from .layers import Layers, component_texture, make_layers
from .rectangles import (
    crossed_by_stroke,
    find_ridges,
    frames_text,
    join_strokes,
    outline_flatness,
    pair_corners,
    stroke_colours,
    stroke_segments,
)
from .shapes import classify_blob, crispness
from .text import TextReader, nearest_line
from .words import in_words, isolated

#: Panels (after clipping to the image) with a side below this many pixels are skipped.
MIN_PANEL_SIDE = 12


class ShapeMarkerDetector(MarkerDetector):
    """Finds arrows, arrowheads, asterisks/symbols, boxes and insets by colour contrast and shape.

    Sizes are fractions of the panel's longer side unless stated in pixels. Arguments:

    - ``min_size`` / ``max_size``: longest side of an arrow, arrowhead, asterisk or symbol
      (default 0.012 / 0.4), and never below ``min_pixels`` (default 8 px).
    - ``contrast``: colour distance (max over RGB channels, 0-255) from the local background for a
      pixel to count as drawn on top of it, and from the pixels beside a line (default 60).
    - ``min_chroma``: max-min over RGB channels above which a pixel is coloured (default 90).
    - ``max_texture``: largest standard deviation of grey level inside a blob; drawn markers are flat,
      tissue is not (default 12).
    - ``min_crispness``: smallest contrast two pixels outside a blob relative to the contrast with its
      background; drawn markers have sharp edges, blurred texture does not (default 0.85).
    - ``dash_gap``: longest gap in px bridged along a dashed rectangle side (default 8).
    - ``max_line_width``: thickest rectangle outline in px (default 6).
    - ``min_box_size``: shortest rectangle side, fraction of the panel's shorter side (default 0.04).
    - ``max_box_size``: rectangles at least this fraction of the panel in both directions are panel
      or plot frames, not markers (default 0.85).
    - ``corner_margin``: a rectangle within this fraction of two adjacent panel edges is an inset
      (default 0.08) provided it spans ``inset_min_size`` of the panel (default 0.15).
    - ``max_repeats``: more identical blobs than this in one panel are chart data markers and are
      dropped (default 5).
    - ``read_text`` / ``text_score``: read text labels next to markers with RapidOCR and keep them at
      recognition confidence ``>= text_score`` (default True / 0.6).
    - ``ocr_threads``: ONNX Runtime threads of the recognition model (default 1: mining runs one
      figure per process and parallelises across processes).
    """

    def __init__(
        self,
        min_size: float = 0.012,
        max_size: float = 0.4,
        min_pixels: int = 8,
        contrast: float = 60.0,
        min_chroma: float = 90.0,
        max_texture: float = 12.0,
        min_crispness: float = 0.85,
        dash_gap: int = 8,
        max_line_width: int = 6,
        min_box_size: float = 0.04,
        max_box_size: float = 0.85,
        corner_margin: float = 0.08,
        inset_min_size: float = 0.15,
        max_repeats: int = 5,
        read_text: bool = True,
        text_score: float = 0.6,
        ocr_threads: int = 1,
    ) -> None:
        for name, value in (("min_size", min_size), ("max_size", max_size), ("min_box_size", min_box_size),
                            ("max_box_size", max_box_size), ("corner_margin", corner_margin),
                            ("inset_min_size", inset_min_size), ("text_score", text_score)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"marker detector 'shape_markers': {name}={value!r} must be a fraction in [0, 1]")
        if min_size >= max_size:
            raise ValueError(f"marker detector 'shape_markers': min_size={min_size} must be below max_size={max_size}")
        for name, value in (("min_pixels", min_pixels), ("dash_gap", dash_gap),
                            ("max_line_width", max_line_width), ("max_repeats", max_repeats),
                            ("ocr_threads", ocr_threads)):
            if value < 1:
                raise ValueError(f"marker detector 'shape_markers': {name}={value!r} must be at least 1")
        if not 0 < contrast <= 255 or not 0 < min_chroma <= 255:
            raise ValueError("marker detector 'shape_markers': contrast and min_chroma are 0-255 colour distances")
        self.min_size = min_size
        self.max_size = max_size
        self.min_pixels = min_pixels
        self.contrast = contrast
        self.min_chroma = min_chroma
        self.max_texture = max_texture
        self.min_crispness = min_crispness
        self.dash_gap = dash_gap
        self.max_line_width = max_line_width
        self.min_box_size = min_box_size
        self.max_box_size = max_box_size
        self.corner_margin = corner_margin
        self.inset_min_size = inset_min_size
        self.max_repeats = max_repeats
        self._reader = TextReader(min_score=text_score, threads=ocr_threads) if read_text else None

    # -- public -----------------------------------------------------------------------------------

    def detect(self, image: Any, panels: Sequence[Panel]) -> list[Marker]:
        """Markers inside ``panels`` of an RGB PIL image (or ``uint8`` array), in figure pixels.

        Each marker gets the id of the panel it was found in; with no panels the whole image is searched
        and ``panel_id`` is None. Panel boxes are clipped to the image; panels that end up smaller than
        :data:`MIN_PANEL_SIDE` pixels (or lie outside the image) are skipped.
        """
        rgb = _as_rgb(image)
        height, width = rgb.shape[:2]
        regions = [(p.id, p.box, p.label_box) for p in panels]
        if not regions:
            regions = [(None, (0.0, 0.0, float(width), float(height)), None)]
        markers: list[Marker] = []
        for panel_id, box, label in regions:
            clipped = _clip_box(box, width, height)
            if clipped is None:
                continue
            x0, y0, x1, y1 = clipped
            label_box = (label[0] - x0, label[1] - y0, label[2] - x0, label[3] - y0) if label is not None else None
            for f in self._detect_crop(np.ascontiguousarray(rgb[y0:y1, x0:x1]), label_box):
                markers.append(
                    Marker(
                        id=f"shape-{len(markers)}",
                        kind=f.kind,
                        box=(f.box[0] + x0, f.box[1] + y0, f.box[2] + x0, f.box[3] + y0),
                        panel_id=panel_id,
                        tip=(f.tip[0] + x0, f.tip[1] + y0) if f.tip is not None else None,
                        direction=f.direction,
                        text=f.text,
                        score=round(float(f.score), 4),
                    )
                )
        return markers

    # -- per panel --------------------------------------------------------------------------------

    def _detect_crop(self, rgb: np.ndarray, label_box: Box | None = None) -> list[FoundMarker]:
        """Markers in one panel crop (``uint8 [H, W, 3]``); ``label_box`` in crop pixels."""
        layers = make_layers(rgb, self.contrast, self.min_chroma)
        found: list[FoundMarker] = []
        for index in range(len(layers.masks)):
            found += self._blobs(layers, index)
        found = drop_repeats(found, self.max_repeats)
        found += self._rectangles(rgb, layers.gray)
        found = non_max_suppression(found, 0.5)
        if label_box is not None:  # the panel label's glyphs, circle or patch are not markers
            found = [f for f in found if box_inside_share(f.box, label_box) < 0.5]
        if self._reader is not None and found:
            self._attach_text(found, layers, label_box)
        return found

    def _blobs(self, layers: Layers, index: int) -> list[FoundMarker]:
        import cv2

        mask = layers.masks[index]
        h, w = mask.shape
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        layers.stats.append(stats)
        if n <= 1:
            return []
        bw, bh, area = stats[:, 2], stats[:, 3], stats[:, 4]
        longest = np.maximum(bw, bh)
        lo = max(self.min_pixels, self.min_size * max(h, w))
        hi = max(lo + 1, self.max_size * max(h, w))
        # Markers are drawn inside the panel; shapes cut by its edge are content or margins.
        inside = (stats[:, 0] > 0) & (stats[:, 1] > 0) & (stats[:, 0] + bw < w) & (stats[:, 1] + bh < h)
        keep = (longest >= lo) & (longest <= hi) & (area >= 16) & inside
        keep[0] = False
        if not keep.any():
            return []
        texture = component_texture(labels, mask, layers.gray, n)
        keep &= texture <= self.max_texture
        candidates = np.flatnonzero(keep)
        candidates = candidates[~in_words(stats, candidates, texture <= self.max_texture)]
        if len(candidates) > 300:  # a texture-dominated layer: look at the flattest components only
            candidates = candidates[np.argsort(texture[candidates])[:300]]
        found = []
        for i in candidates:
            x, y, cw, ch = (int(v) for v in stats[i, :4])
            sub = (labels[y : y + ch, x : x + cw] == i).astype(np.uint8)
            shape = classify_blob(sub)
            if shape is None:
                continue
            if crispness(layers.rgb, labels, int(i), (x, y, cw, ch)) < self.min_crispness:
                continue
            if shape.kind == "symbol" and not isolated(stats, i):
                continue
            shape.box = (shape.box[0] + x, shape.box[1] + y, shape.box[2] + x, shape.box[3] + y)
            if shape.tip is not None:
                shape.tip = (shape.tip[0] + x, shape.tip[1] + y)
            if shape.tail is not None:
                shape.tail = (shape.tail[0] + x, shape.tail[1] + y)
            shape.layer = index
            found.append(shape)
        return found

    def _rectangles(self, rgb: np.ndarray, gray: np.ndarray) -> list[FoundMarker]:
        h, w = gray.shape
        min_side = max(10, int(round(self.min_box_size * min(h, w))))
        if min(h, w) < min_side + 2:
            return []
        ridge_h, ridge_v = find_ridges(rgb, self.contrast, self.max_line_width)
        horiz, vert = join_strokes(ridge_h, ridge_v, self.dash_gap + 1, min_side)
        hs = stroke_segments(horiz, ridge_h, self.max_line_width)  # rows: y0, y1, x0, x1 (y1, x1 exclusive)
        vs = stroke_segments(vert.T, ridge_v.T, self.max_line_width)  # rows: x0, x1, y0, y1
        # Only strokes of one flat grey level can be sides of a drawn outline; dropping the others
        # (membranes, fibres, texture edges) before pairing keeps the corner search small.
        h_colour, h_flat = stroke_colours(rgb, gray, ridge_h, hs, vertical=False)
        v_colour, v_flat = stroke_colours(rgb, gray, ridge_v, vs, vertical=True)
        hs, h_colour = hs[h_flat], h_colour[h_flat]
        vs, v_colour = vs[v_flat], v_colour[v_flat]
        if len(hs) < 2 or len(vs) < 2:
            return []
        rects = pair_corners(hs, vs, self.max_line_width + (self.dash_gap + 1) // 2, min_side)
        if not rects:
            return []
        # One outline, one colour: compare the four strokes' colours for all candidates at once.
        sides = np.array([s for _, s in rects])
        colours = np.stack([v_colour[sides[:, 0]], h_colour[sides[:, 1]], v_colour[sides[:, 2]],
                            h_colour[sides[:, 3]]], axis=1)
        same_colour = (colours.max(axis=1) - colours.min(axis=1)).max(axis=1) <= 70
        boxes = np.array([rect for rect, _ in rects])
        rw, rh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        ok = same_colour & ~((rw >= self.max_box_size * w) & (rh >= self.max_box_size * h))
        ok[ok] = ~(crossed_by_stroke(hs, boxes[ok], self.max_line_width, vertical=False)
                   | crossed_by_stroke(vs, boxes[ok], self.max_line_width, vertical=True))
        found = []
        for ((x0, y0, x1, y1), sides), rw, rh in zip([rects[k] for k in np.flatnonzero(ok)], rw[ok], rh[ok]):
            if any(box_iou((x0, y0, x1, y1), f.box) >= 0.8 for f in found):
                continue  # the same outline seen through a neighbouring stroke band
            flat = outline_flatness(rgb, gray, ridge_h, ridge_v, (x0, y0, x1, y1), hs, vs, sides)
            if flat is None or frames_text(gray, (x0, y0, x1, y1), self.max_line_width):
                continue
            mx, my = self.corner_margin * w, self.corner_margin * h
            in_corner = (x0 <= mx or w - x1 <= mx) and (y0 <= my or h - y1 <= my)
            big = rw >= self.inset_min_size * w or rh >= self.inset_min_size * h
            kind = "inset" if in_corner and big else "box"
            found.append(FoundMarker(kind=kind, box=(float(x0), float(y0), float(x1), float(y1)), score=flat))
        return found

    def _attach_text(self, found: list[FoundMarker], layers: Layers, label_box: Box | None) -> None:
        h, w = layers.gray.shape
        # One read per text line, however many markers share it.
        owners: dict[tuple[int, int, int, int], list[FoundMarker]] = {}
        for f in found:
            if f.kind == "inset":
                continue
            line = nearest_line(f, layers, h, label_box)
            if line is None:
                continue
            x0, y0, x1, y1 = line.box
            pad = 0.25 * line.height + 2
            crop = (max(0, int(x0 - pad)), max(0, int(y0 - pad)), min(w, int(math.ceil(x1 + pad))),
                    min(h, int(math.ceil(y1 + pad))))
            owners.setdefault(crop, []).append(f)
        crops = [layers.rgb[cy0:cy1, cx0:cx1] for cx0, cy0, cx1, cy1 in owners]
        for shared, result in zip(owners.values(), self._reader.read(crops)):
            if result is not None:
                for f in shared:
                    f.text = result[0]


def _as_rgb(image: Any) -> np.ndarray:
    if hasattr(image, "mode") and hasattr(image, "convert"):
        from panel2patch.images import to_rgb

        arr = np.asarray(to_rgb(image))
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise ValueError(f"marker detector 'shape_markers' expects an RGB image, got an array of shape {arr.shape}")
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        raise ValueError(
            f"marker detector 'shape_markers' expects 8-bit pixels, got {arr.dtype}; convert with to_rgb()")
    return arr


def _clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        return None
    x0 = max(0, int(math.floor(float(box[0]))))
    y0 = max(0, int(math.floor(float(box[1]))))
    x1 = min(width, int(math.ceil(float(box[2]))))
    y1 = min(height, int(math.ceil(float(box[3]))))
    if x1 - x0 < MIN_PANEL_SIDE or y1 - y0 < MIN_PANEL_SIDE:
        return None
    return x0, y0, x1, y1
