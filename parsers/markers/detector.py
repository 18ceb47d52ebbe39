"""Marker detector ``shape_markers``: arrows, arrowheads, band markers, connectors, asterisks, symbols,
boxes and insets in each panel.

Registered as marker detector ``"shape_markers"`` (:class:`ShapeMarkerDetector`). It is colour-agnostic: a
marker is recognised by being drawn in a flat colour that stands out from its surroundings and by its
shape, whatever the colour. Each panel is searched with a small margin beyond its box (panel boxes
are a few pixels off at times); blobs must be centred inside it. Per panel:

1. *Layers.* A local background is estimated with a median filter much wider than a marker (run on a
   downscaled copy). Pixels whose colour is at least ``contrast`` away from it are *distinct*. Distinct
   pixels are split into layers that one drawn marker never straddles: light achromatic, dark
   achromatic, and one layer per dominant hue among saturated pixels (chroma ``>= min_chroma``).
2. *Blobs.* Connected components of each layer that are flat in colour and of marker size are
   measured: a filled triangle (:func:`cv2.minEnclosingTriangle`), or a triangle drawn as a dark rim
   around a white or coloured fill, is an ``arrowhead`` (or an upright ``symbol`` such as ▲ when
   equilateral with a level side); a thin straight shaft ending in a symmetric triangular head (width
   profile along the principal axis) is an ``arrow``; five to eight regular spokes make an
   ``asterisk``; a hash (#) or a dagger (†) standing alone is a ``symbol``. Letters inside words may
   only be arrows.
3. *Touching markers* (:mod:`~panel2patch.parsers.markers.heads`). Flat components that gave no shape
   (a marker joined to a frame line, a gutter between sub-images, a blot's border) are opened with a
   3 x 3 square, small holes filled first, and the pieces classified again; an arrowhead found so gets
   its shaft traced back in the layer as drawn.
4. *Roles* (:mod:`~panel2patch.parsers.markers.roles`). Where an arrow is drawn tells what it is for
   (:mod:`~panel2patch.parsers.markers.context`): on a picture it is a pointer (``arrow`` /
   ``arrowhead``); a column of triangles on paper beside a greyscale picture marks blot bands
   (``band_marker``); an arrow on paper that points at no picture is a diagram ``connector``; a bare
   triangle on the paper of a chart is a chart glyph (dropped), and so is a bare arrowhead smaller
   than ``min_head_size``.
5. Shapes repeated more than ``max_repeats`` times in a chart panel (data markers) are dropped.
6. *Rectangles.* Thin-line pixels (darker or lighter than the pixels a few rows above and below, or
   columns left and right, in any colour) are joined into straight strokes by morphological closing
   (bridging dashes) and opening, cut into bands of nearly constant extent, kept when drawn in one
   flat grey level (read on a one-pixel line's core, without its anti-aliased neighbours), and paired
   at their corners into rectangles whose four sides share one colour. Grids, panel and plot frames,
   frames around text (legends) and, in panels of known kind, boxes framing plain paper are rejected.
   A rectangle in a panel corner is an ``inset``, elsewhere a ``box``.
7. Duplicates across layers are removed with :func:`panel2patch.data.box_nms`, anything inside the
   panel's ``label_box`` (the panel letter, its circle or patch) is left out, and a marker found in
   two overlapping panels is kept once (in the smaller panel).
8. With ``read_text``, a text line printed next to a marker (in the marker's colour; for an arrow,
   next to its tail) is read with RapidOCR's recognition model
   (:mod:`panel2patch.parsers.markers.text`).

All output coordinates are float pixels of the original figure image, origin top-left; ``tip`` is the
pointed-at point, ``direction`` degrees counter-clockwise from +x with y up (0 = right, 90 = up).
``band_marker`` and ``connector`` carry ``tip`` and ``direction`` too; region mining does not mine them.
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
from .heads import detached_pieces, trace_shaft, triangular_fill
from .layers import TEXTURE_PER_CONTRAST, Layers, component_contrast, component_texture, components, make_layers
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
from .roles import assign_roles, drop_paper_boxes
from .shapes import ShapeCache, crispness, window_crispness
from .text import TextReader, nearest_line
from .words import in_words, isolated

#: Panels (after clipping to the image) with a side below this many pixels are skipped.
MIN_PANEL_SIDE = 12
#: Most pixels searched beyond a panel's box on each side (2% of its longer side, at least 4 px).
PANEL_MARGIN = 16


class ShapeMarkerDetector(MarkerDetector):
    """Finds arrows, arrowheads, band markers, connectors, asterisks/symbols, boxes and insets by colour
    contrast, shape and where they are drawn (``Panel.kind`` and the pixels around them).

    Sizes are fractions of the panel's longer side unless stated in pixels. Arguments:

    - ``min_size`` / ``max_size``: longest side of an arrow, arrowhead, asterisk or symbol
      (default 0.012 / 0.4), and never below ``min_pixels`` (default 8 px). The lower bound is at most
      ``min_head_size`` of the figure: a panel covering most of a figure does not enlarge its markers.
    - ``contrast``: colour distance (max over RGB channels, 0-255) from the local background for a
      pixel to count as drawn on top of it, and from the pixels beside a line (default 60).
    - ``min_chroma``: max-min over RGB channels above which a pixel is coloured (default 90).
    - ``max_texture``: largest standard deviation of grey level inside a blob; drawn markers are flat,
      tissue is not (default 10). A blob of high contrast may vary by a tenth of its contrast
      (:data:`~.layers.TEXTURE_PER_CONTRAST`): JPEG ringing grows with the edge it rings around.
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
      dropped (default 5); arrows with a shaft, band markers, connectors and the arrowheads of photo
      panels are never dropped so (pointers repeat too: one per band, cell or frame).
    - ``min_head_size``: smallest longest side of a bare arrowhead (no shaft), as a fraction of the
      geometric mean of the figure's width and height (default 0.008): chart data markers and specks
      are smaller; pointers are drawn about as large as the figure's text.
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
        max_texture: float = 10.0,
        min_crispness: float = 0.85,
        dash_gap: int = 8,
        max_line_width: int = 6,
        min_box_size: float = 0.04,
        max_box_size: float = 0.85,
        corner_margin: float = 0.08,
        inset_min_size: float = 0.15,
        max_repeats: int = 5,
        min_head_size: float = 0.008,
        read_text: bool = True,
        text_score: float = 0.6,
        ocr_threads: int = 1,
    ) -> None:
        for name, value in (("min_size", min_size), ("max_size", max_size), ("min_box_size", min_box_size),
                            ("max_box_size", max_box_size), ("corner_margin", corner_margin),
                            ("inset_min_size", inset_min_size), ("text_score", text_score),
                            ("min_head_size", min_head_size)):
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
        self.min_head_size = min_head_size
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
        regions = [(p.id, p.box, p.label_box, p.kind) for p in panels]
        if not regions:
            regions = [(None, (0.0, 0.0, float(width), float(height)), None, "unknown")]
        scale = math.sqrt(width * height)
        markers: list[Marker] = []
        shapes = ShapeCache()
        for panel_id, box, label, kind in regions:
            clipped = _clip_box(box, width, height)
            if clipped is None:
                continue
            # Panel boxes are a few pixels off at times: search a margin beyond them, keep what is
            # centred inside (rectangles: the panel itself).
            px0, py0, px1, py1 = clipped
            pad = int(min(PANEL_MARGIN, max(4, round(0.02 * max(px1 - px0, py1 - py0)))))
            x0, y0 = max(0, px0 - pad), max(0, py0 - pad)
            x1, y1 = min(width, px1 + pad), min(height, py1 + pad)
            inner = (px0 - x0, py0 - y0, px1 - x0, py1 - y0)
            label_box = (label[0] - x0, label[1] - y0, label[2] - x0, label[3] - y0) if label is not None else None
            crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            for f in self._detect_crop(crop, label_box, kind, scale, inner, shapes):
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
        return _across_panels(markers, {p.id: p.box for p in panels})

    # -- per panel --------------------------------------------------------------------------------

    def _detect_crop(self, rgb: np.ndarray, label_box: Box | None = None, panel_kind: str = "unknown",
                     figure_scale: float | None = None,
                     inner: tuple[int, int, int, int] | None = None,
                     shapes: ShapeCache | None = None) -> list[FoundMarker]:
        """Markers in one panel crop (``uint8 [H, W, 3]``); ``label_box`` in crop pixels; ``figure_scale``:
        the geometric mean of the figure's sides (the crop's by default); ``inner``: the panel itself
        within the crop (the whole crop by default): blobs must be centred in it, rectangles lie in it;
        ``shapes``: the figure's shape cache, shared by its panels."""
        if figure_scale is None:
            figure_scale = math.sqrt(rgb.shape[0] * rgb.shape[1])
        if inner is None:
            inner = (0, 0, rgb.shape[1], rgb.shape[0])
        layers = make_layers(rgb, self.contrast, self.min_chroma)
        shapes = shapes if shapes is not None else ShapeCache()
        found: list[FoundMarker] = []
        for index in range(len(layers.masks)):
            found += self._blobs(layers, index, figure_scale, shapes)
        ix0, iy0, ix1, iy1 = inner
        found = [f for f in found
                 if ix0 <= (f.box[0] + f.box[2]) / 2 < ix1 and iy0 <= (f.box[1] + f.box[3]) / 2 < iy1]
        found = assign_roles(found, layers, panel_kind, self.min_head_size * figure_scale)
        found = drop_repeats(found, self.max_repeats, photo=panel_kind == "photo")
        rects = self._rectangles(np.ascontiguousarray(rgb[iy0:iy1, ix0:ix1]),
                                 np.ascontiguousarray(layers.gray[iy0:iy1, ix0:ix1]))
        for f in rects:
            f.box = (f.box[0] + ix0, f.box[1] + iy0, f.box[2] + ix0, f.box[3] + iy0)
        found += drop_paper_boxes(rects, layers, panel_kind)
        found = non_max_suppression(found, 0.5)
        if label_box is not None:  # the panel label's glyphs, circle or patch are not markers
            found = [f for f in found if box_inside_share(f.box, label_box) < 0.5]
        if self._reader is not None and found:
            self._attach_text(found, layers, label_box)
        return found

    def _blobs(self, layers: Layers, index: int, figure_scale: float, shapes: ShapeCache) -> list[FoundMarker]:
        mask = layers.masks[index]
        h, w = mask.shape
        n, labels, stats = components(mask)
        layers.stats.append(stats)
        if n <= 1:
            return []
        lo, hi = self._size_range(h, w, figure_scale)
        texture, core = component_texture(labels, mask, layers.gray, n, with_core=True)
        flat = texture <= np.maximum(self.max_texture, TEXTURE_PER_CONTRAST * component_contrast(labels, mask, layers, n))
        keep = self._sized(stats, lo, hi, h, w) & flat
        candidates = np.flatnonzero(keep)
        # Letters inside words can look like triangles and glyphs, but not like arrows with a shaft.
        found, shaped = self._classify(layers, index, labels, stats, candidates, texture,
                                       in_words(stats, candidates, flat), shapes)
        # A flat component that gave no shape (too big, cut by the panel edge, or of no shape) may hold a
        # marker touching a line or gutter: look again with thin strokes opened away. A filled head
        # keeps a core when eroded; text and line art hardly do.
        longest = np.maximum(stats[:, 2], stats[:, 3])
        # (A marker merged with a blot's frame and bands takes the blot's texture: big ones qualify anyway.)
        rest = (flat | (longest >= 4 * lo)) & (stats[:, 4] >= 30) & (longest >= lo)
        rest[0] = False
        rest[shaped] = False
        # Opening leaves something of marker size only of a component with a core that long, or with
        # holes to fill (an outlined triangle): one whose box is not too big, and that it does not fill.
        bw, bh = stats[:, 2], stats[:, 3]
        hollow = (bw * bh <= (16 * lo) ** 2) & (np.minimum(bw, bh) >= 0.5 * lo) & (stats[:, 4] <= 0.6 * bw * bh)
        rest &= (core >= max(12.0, lo - 2)) | hollow
        # Letters with their bowls filled make triangles too; big components are no letters.
        glyphs = np.flatnonzero(rest & (longest < 4 * lo))
        rest[glyphs[in_words(stats, glyphs, flat)]] = False
        rest = np.flatnonzero(rest)
        if len(rest) > 300:
            rest = rest[np.argsort(-core[rest])[:300]]
        for x, y, piece, fill in detached_pieces(labels, stats, rest, lo, hi):
            ph, pw = piece.shape
            # What opening cuts out is mostly bars, blocks and blobs: a head is compact, not a block.
            if max(ph, pw) > 4 * min(ph, pw) or np.count_nonzero(piece) > 0.92 * ph * pw:
                continue
            # An outlined shape: its rim is the layer's, flat by construction; its fill must be flat and
            # of the same shape too (the bowl of a "p" or a "D" is round). (Tested before the shape,
            # which costs more.)
            if fill is not None and fill.sum() >= 16:
                if not triangular_fill(fill, piece):
                    continue
                flat_part = fill
            else:
                flat_part = piece
            if _piece_texture(layers.gray[y : y + ph, x : x + pw], flat_part) > self.max_texture:
                continue
            shape = shapes.classify(piece, ("arrow", "arrowhead"))
            if shape is None:
                continue
            m = 8
            ax0, ay0 = max(0, x - m), max(0, y - m)
            ax1, ay1 = min(w, x + pw + m), min(h, y + ph + m)
            window = np.zeros((ay1 - ay0, ax1 - ax0), np.uint8)
            window[y - ay0 : y - ay0 + ph, x - ax0 : x - ax0 + pw] = piece
            if window_crispness(layers.rgb[ay0:ay1, ax0:ax1], window) < self.min_crispness:
                continue
            _shift(shape, x, y)
            shape.layer = index
            found.append(trace_shaft(mask, shape) if shape.kind == "arrowhead" else shape)
        return found

    def _size_range(self, h: int, w: int, figure_scale: float) -> tuple[float, float]:
        # A marker is drawn to the figure's scale: a panel that covers most of the figure (or a missed
        # split) does not make its markers larger.
        lo = max(self.min_pixels, min(self.min_size * max(h, w), self.min_head_size * figure_scale))
        return lo, max(lo + 1, self.max_size * max(h, w))

    @staticmethod
    def _sized(stats: np.ndarray, lo: float, hi: float, h: int, w: int) -> np.ndarray:
        bw, bh, area = stats[:, 2], stats[:, 3], stats[:, 4]
        longest = np.maximum(bw, bh)
        # Markers are drawn inside the panel; shapes cut by its edge are content or margins.
        inside = (stats[:, 0] > 0) & (stats[:, 1] > 0) & (stats[:, 0] + bw < w) & (stats[:, 1] + bh < h)
        keep = (longest >= lo) & (longest <= hi) & (area >= 16) & inside
        keep[0] = False
        return keep

    def _classify(self, layers: Layers, index: int, labels: np.ndarray, stats: np.ndarray, candidates: np.ndarray,
                  texture: np.ndarray, in_word: np.ndarray,
                  shapes: ShapeCache) -> tuple[list[FoundMarker], list[int]]:
        """Shapes of the ``candidates`` components, and the components that gave one; a component
        ``in_word`` (a letter inside a word) may only be an arrow."""
        if len(candidates) > 300:  # a texture-dominated layer: look at the flattest components only
            order = np.argsort(texture[candidates])[:300]
            candidates, in_word = candidates[order], in_word[order]
        found, shaped = [], []
        for i, word in zip(candidates, in_word):
            x, y, cw, ch = (int(v) for v in stats[i, :4])
            sub = (labels[y : y + ch, x : x + cw] == i).astype(np.uint8)
            shape = shapes.classify(sub, ("arrow",) if word else None)
            if shape is None:
                continue
            if crispness(layers.rgb, labels, int(i), (x, y, cw, ch)) < self.min_crispness:
                continue
            if shape.kind == "symbol" and not isolated(stats, i):
                continue
            _shift(shape, x, y)
            shape.layer = index
            found.append(shape)
            shaped.append(int(i))
        return found, shaped

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


def _piece_texture(gray: np.ndarray, piece: np.ndarray) -> float:
    """:func:`~.layers.component_texture` of one piece (``uint8`` 0/1 mask over the ``gray`` crop)."""
    import cv2

    inner = cv2.erode(cv2.copyMakeBorder(piece, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
                      np.ones((3, 3), np.uint8))[1:-1, 1:-1].view(bool)
    count = int(np.count_nonzero(inner))
    if count < 4 or count < 0.3 * int(np.count_nonzero(piece)):
        return 0.0
    return float(gray[inner].std())


def _shift(f: FoundMarker, x: float, y: float) -> None:
    """Move ``f`` from the coordinates of its component's crop by ``(x, y)``."""
    f.box = (f.box[0] + x, f.box[1] + y, f.box[2] + x, f.box[3] + y)
    if f.tip is not None:
        f.tip = (f.tip[0] + x, f.tip[1] + y)
    if f.tail is not None:
        f.tail = (f.tail[0] + x, f.tail[1] + y)


def _across_panels(markers: list[Marker], boxes: dict[str | None, Box]) -> list[Marker]:
    """One marker where overlapping panels each found it (IoU >= 0.5, same kind): the one in the smaller
    panel, which is the more specific; ids are renumbered in order."""
    if len({m.panel_id for m in markers}) <= 1:
        return markers

    def area(m: Marker) -> float:
        b = boxes.get(m.panel_id)
        return (b[2] - b[0]) * (b[3] - b[1]) if b is not None else math.inf

    kept: list[Marker] = []
    for m in sorted(markers, key=area):
        if not any(k.kind == m.kind and k.panel_id != m.panel_id and box_iou(k.box, m.box) >= 0.5 for k in kept):
            kept.append(m)
    order = {id(m): i for i, m in enumerate(markers)}
    kept.sort(key=lambda m: order[id(m)])
    for i, m in enumerate(kept):
        m.id = f"shape-{i}"
    return kept


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
