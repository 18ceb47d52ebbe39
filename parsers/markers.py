"""Marker detector ``shapes``: arrows, arrowheads, asterisks, symbols, boxes and insets in each panel.

Registered as marker detector ``"shapes"`` (:class:`ShapeMarkerDetector`). It is colour-agnostic: a
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
   duplicates across layers are removed with :func:`cv2.dnn.NMSBoxes`, and anything inside the
   panel's ``label_box`` (the panel letter, its circle or patch) is left out.
5. With ``read_text``, a text line printed next to a marker (in the marker's colour; for an arrow,
   next to its tail) is read with RapidOCR's recognition model
   (:mod:`panel2patch.parsers.marker_text`).

All output coordinates are float pixels of the original figure image, origin top-left; ``tip`` is the
pointed-at point, ``direction`` degrees counter-clockwise from +x with y up (0 = right, 90 = up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panel2patch.components import MarkerDetector
from panel2patch.data import Box, Marker, Panel, box_inside_share, box_iou
from panel2patch.hookspecs import hookimpl

from .marker_text import TextLine, TextReader, text_lines

#: Panels (after clipping to the image) with a side below this many pixels are skipped.
MIN_PANEL_SIDE = 12

@dataclass
class _Found:
    """A marker in panel-crop pixels, before it is moved into figure coordinates."""

    kind: str
    box: tuple[float, float, float, float]
    score: float
    layer: int = -1  # index of the layer it came from; -1 for rectangles (line pixels of any colour)
    tip: tuple[float, float] | None = None
    direction: float | None = None
    tail: tuple[float, float] | None = None
    size: float = 0.0
    text: str | None = None


@dataclass
class _Layers:
    """Per-panel maps: ``masks[i]`` is a ``uint8`` 0/1 layer, ``stats[i]`` its component stats."""

    rgb: np.ndarray
    gray: np.ndarray
    masks: list[np.ndarray] = field(default_factory=list)
    stats: list[np.ndarray] = field(default_factory=list)


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
                raise ValueError(f"marker detector 'shapes': {name}={value!r} must be a fraction in [0, 1]")
        if min_size >= max_size:
            raise ValueError(f"marker detector 'shapes': min_size={min_size} must be below max_size={max_size}")
        for name, value in (("min_pixels", min_pixels), ("dash_gap", dash_gap),
                            ("max_line_width", max_line_width), ("max_repeats", max_repeats),
                            ("ocr_threads", ocr_threads)):
            if value < 1:
                raise ValueError(f"marker detector 'shapes': {name}={value!r} must be at least 1")
        if not 0 < contrast <= 255 or not 0 < min_chroma <= 255:
            raise ValueError("marker detector 'shapes': contrast and min_chroma are 0-255 colour distances")
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

    def _detect_crop(self, rgb: np.ndarray, label_box: Box | None = None) -> list[_Found]:
        """Markers in one panel crop (``uint8 [H, W, 3]``); ``label_box`` in crop pixels."""
        layers = _make_layers(rgb, self.contrast, self.min_chroma)
        found: list[_Found] = []
        for index in range(len(layers.masks)):
            found += self._blobs(layers, index)
        found = _drop_repeats(found, self.max_repeats)
        found += self._rectangles(rgb, layers.gray)
        found = _nms(found, 0.5)
        if label_box is not None:  # the panel label's glyphs, circle or patch are not markers
            found = [f for f in found if box_inside_share(f.box, label_box) < 0.5]
        if self._reader is not None and found:
            self._attach_text(found, layers, label_box)
        return found

    def _blobs(self, layers: _Layers, index: int) -> list[_Found]:
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
        texture = _texture(labels, mask, layers.gray, n)
        keep &= texture <= self.max_texture
        candidates = np.flatnonzero(keep)
        candidates = candidates[~_in_words(stats, candidates, texture <= self.max_texture)]
        if len(candidates) > 300:  # a texture-dominated layer: look at the flattest components only
            candidates = candidates[np.argsort(texture[candidates])[:300]]
        found = []
        for i in candidates:
            x, y, cw, ch = (int(v) for v in stats[i, :4])
            sub = (labels[y : y + ch, x : x + cw] == i).astype(np.uint8)
            shape = _classify(sub)
            if shape is None:
                continue
            if _crispness(layers.rgb, labels, int(i), (x, y, cw, ch)) < self.min_crispness:
                continue
            if shape.kind == "symbol" and not _isolated(stats, i):
                continue
            shape.box = (shape.box[0] + x, shape.box[1] + y, shape.box[2] + x, shape.box[3] + y)
            if shape.tip is not None:
                shape.tip = (shape.tip[0] + x, shape.tip[1] + y)
            if shape.tail is not None:
                shape.tail = (shape.tail[0] + x, shape.tail[1] + y)
            shape.layer = index
            found.append(shape)
        return found

    def _rectangles(self, rgb: np.ndarray, gray: np.ndarray) -> list[_Found]:
        h, w = gray.shape
        min_side = max(10, int(round(self.min_box_size * min(h, w))))
        if min(h, w) < min_side + 2:
            return []
        ridge_h, ridge_v = _ridges(rgb, self.contrast, self.max_line_width)
        horiz, vert = _strokes(ridge_h, ridge_v, self.dash_gap + 1, min_side)
        hs = _segments(horiz, ridge_h, self.max_line_width)  # rows: y0, y1, x0, x1 (y1, x1 exclusive)
        vs = _segments(vert.T, ridge_v.T, self.max_line_width)  # rows: x0, x1, y0, y1
        # Only strokes of one flat grey level can be sides of a drawn outline; dropping the others
        # (membranes, fibres, texture edges) before pairing keeps the corner search small.
        h_colour, h_flat = _stroke_colours(rgb, gray, ridge_h, hs, vertical=False)
        v_colour, v_flat = _stroke_colours(rgb, gray, ridge_v, vs, vertical=True)
        hs, h_colour = hs[h_flat], h_colour[h_flat]
        vs, v_colour = vs[v_flat], v_colour[v_flat]
        if len(hs) < 2 or len(vs) < 2:
            return []
        rects = _pair_corners(hs, vs, self.max_line_width + (self.dash_gap + 1) // 2, min_side)
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
        ok[ok] = ~(_crossed(hs, boxes[ok], self.max_line_width, vertical=False)
                   | _crossed(vs, boxes[ok], self.max_line_width, vertical=True))
        found = []
        for ((x0, y0, x1, y1), sides), rw, rh in zip([rects[k] for k in np.flatnonzero(ok)], rw[ok], rh[ok]):
            if any(box_iou((x0, y0, x1, y1), f.box) >= 0.8 for f in found):
                continue  # the same outline seen through a neighbouring stroke band
            flat = _outline_flatness(rgb, gray, ridge_h, ridge_v, (x0, y0, x1, y1), hs, vs, sides)
            if flat is None or _frames_text(gray, (x0, y0, x1, y1), self.max_line_width):
                continue
            mx, my = self.corner_margin * w, self.corner_margin * h
            in_corner = (x0 <= mx or w - x1 <= mx) and (y0 <= my or h - y1 <= my)
            big = rw >= self.inset_min_size * w or rh >= self.inset_min_size * h
            kind = "inset" if in_corner and big else "box"
            found.append(_Found(kind=kind, box=(float(x0), float(y0), float(x1), float(y1)), score=flat))
        return found

    def _attach_text(self, found: list[_Found], layers: _Layers, label_box: Box | None) -> None:
        h, w = layers.gray.shape
        # One read per text line, however many markers share it.
        owners: dict[tuple[int, int, int, int], list[_Found]] = {}
        for f in found:
            if f.kind == "inset":
                continue
            line = _nearest_line(f, layers, h, label_box)
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


# -- layers -------------------------------------------------------------------------------------------


def _as_rgb(image: Any) -> np.ndarray:
    if hasattr(image, "mode") and hasattr(image, "convert"):
        from panel2patch.images import to_rgb

        arr = np.asarray(to_rgb(image))
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise ValueError(f"marker detector 'shapes' expects an RGB image, got an array of shape {arr.shape}")
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        raise ValueError(f"marker detector 'shapes' expects 8-bit pixels, got {arr.dtype}; convert with to_rgb()")
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


def _make_layers(rgb: np.ndarray, contrast: float, min_chroma: float) -> _Layers:
    import cv2

    h, w = rgb.shape[:2]
    window = int(np.clip(0.2 * min(h, w), 27, 151))
    bg = _background(rgb, window)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    bg_gray = cv2.cvtColor(bg, cv2.COLOR_RGB2GRAY)
    r, g, b = cv2.split(rgb)
    dr, dg, db = cv2.split(cv2.absdiff(rgb, bg))
    distinct = cv2.max(cv2.max(dr, dg), db) >= contrast
    chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    achromatic = chroma < min_chroma
    lighter = cv2.subtract(gray, bg_gray) >= contrast
    darker = cv2.subtract(bg_gray, gray) >= contrast
    layers = _Layers(rgb=rgb, gray=gray)
    layers.masks.append((achromatic & lighter).view(np.uint8))
    layers.masks.append((achromatic & darker).view(np.uint8))
    coloured = distinct & ~achromatic
    if np.count_nonzero(coloured) >= 16:
        hue = np.zeros((h, w), np.int16)
        sel = rgb[coloured].reshape(-1, 1, 3)
        hue[coloured] = cv2.cvtColor(sel, cv2.COLOR_RGB2HSV_FULL)[:, 0, 0]
        for centre in _hue_peaks(hue[coloured]):
            dist = np.abs(hue - centre)
            dist = np.minimum(dist, 256 - dist)
            layers.masks.append((coloured & (dist <= 20)).view(np.uint8))
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


def _texture(labels: np.ndarray, mask: np.ndarray, gray: np.ndarray, n: int) -> np.ndarray:
    """Standard deviation of grey level per component inside its eroded core (0 without a core).

    The core leaves out the anti-aliased rim; strokes too thin to have a substantial core are judged by
    shape and edge sharpness alone.
    """
    import cv2

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
    return np.where((cnt >= 4) & (cnt >= 0.3 * area), std, 0.0)


# -- blob shapes --------------------------------------------------------------------------------------


def _crispness(rgb: np.ndarray, labels: np.ndarray, i: int, bbox: tuple[int, int, int, int]) -> float:
    """How sharply a component's colour gives way to its surroundings, about 1 for drawn markers.

    The colour distance between the component and the ring two pixels outside it, over the distance
    between the component and the background five to seven pixels out. A blurred texture blob still
    looks like itself two pixels beyond its mask (ratio about 0.5); a drawn shape does not.
    """
    import cv2

    x, y, w, h = bbox
    m = 8
    H, W = labels.shape
    ax0, ay0, ax1, ay1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
    comp = (labels[ay0:ay1, ax0:ax1] == i).astype(np.uint8)
    region = rgb[ay0:ay1, ax0:ax1].astype(np.int16)
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
    d_far = np.abs(np.median(region[far], axis=0) - colour).max()
    return float(d_near / max(d_far, 1.0))


def _classify(sub: np.ndarray) -> _Found | None:
    """Classify one component (``uint8`` 0/1 crop of its bounding box); coordinates in that crop."""
    import cv2

    shape = _contour_shape(sub)
    if shape is None:
        return None
    _, holes, solidity = shape
    ch, cw = sub.shape
    full = (0.0, 0.0, float(cw), float(ch))
    size = float(max(cw, ch))
    aspect = cw / ch
    # Spokes first: regular radial spokes are never an arrow, while an arrow profile can be read
    # along one spoke of a small asterisk.
    if not holes and solidity < 0.8 and 0.55 <= aspect <= 1.8 and min(cw, ch) >= 7:
        spokes = _spokes(sub)
        if spokes is not None and 5 <= spokes[0] <= 8:
            return _Found("asterisk", full, spokes[1], size=size)
    if not holes:
        # A shaft and barbs leave much of the hull empty.
        arrow = _arrow(sub) if solidity <= 0.8 else None
        if arrow is not None:
            tip, tail, score = arrow
            return _Found("arrow", _grow(full, tip), score, tip=tip, direction=_angle(tail, tip), tail=tail,
                          size=size)
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
                    return _Found("symbol", box, score, size=size)
                return _Found("arrowhead", box, score, tip=tip, direction=_angle(base_mid, tip), tail=base_mid,
                              size=size)
    if len(holes) == 1 and 0.55 <= aspect <= 1.8 and min(cw, ch) >= 7 and _is_hash(sub, holes[0]):
        return _Found("symbol", full, 0.7, size=size)
    if not holes and 1.3 <= ch / cw <= 4.0 and _is_dagger(sub):
        return _Found("symbol", full, 0.7, size=size)
    return None


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
    with a horizontal side is an upright symbol (▲/▼); other equilateral ones point at their sharpest
    corner.
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
    if a2 - a0 <= 22:
        for i in range(3):
            side = v[(i + 1) % 3] - v[i]
            slope = abs(math.degrees(math.atan2(side[1], side[0]))) % 180
            if min(slope, 180 - slope) <= 10:
                return "symbol", tuple(apex), tuple(base_mid), score
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
    _, vecs = np.linalg.eigh(d.T @ d / len(d))
    best = None
    for axis in (vecs[:, 1], vecs[:, 0]):
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
    shaft_w = float(np.median(shaft))
    if shaft_w < 0.6 or shaft_w > 0.4 * wmax:
        return None
    if np.percentile(shaft, 90) > max(1.7 * shaft_w, shaft_w + 2.5):
        return None
    if im - ib > 0.5 * head_len + 2:
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
    a = np.column_stack([s[in_shaft], np.ones(int(in_shaft.sum()))])
    coef, *_ = np.linalg.lstsq(a, t[in_shaft], rcond=None)
    resid = t[in_shaft] - a @ coef
    if resid.std() > 0.35 * shaft_w + 0.8:
        return None
    expected_t = coef[0] * s[in_head].mean() + coef[1]
    if abs(t[in_head].mean() - expected_t) > 0.15 * wmax + 1.0:
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


#: Sample angles of the rings read by :func:`_spokes`.
_SPOKE_ANGLES = np.linspace(0.0, 2 * np.pi, 120, endpoint=False)
_SPOKE_RINGS = np.array([0.9, 0.8, 0.7, 0.6])


def _centre_radius(sub: np.ndarray) -> tuple[float, float, float]:
    """Centroid of a mask's pixels (pixel centres) and the distance to its farthest pixel."""
    ys, xs = np.nonzero(sub)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    return cx, cy, float(np.sqrt(((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2).max()))


def _spokes(sub: np.ndarray) -> tuple[int, float] | None:
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


def _is_hash(sub: np.ndarray, hole: np.ndarray) -> bool:
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


def _is_dagger(sub: np.ndarray) -> bool:
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


def _in_words(stats: np.ndarray, candidates: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Which ``candidates`` (component indices) are letters inside a word or number.

    A letter inside a word has flat glyphs of about its height close by on both sides along the
    line (rows, or columns for rotated text), not all of its own size; a marker with its label has
    text on one side at most, and a row of identical marks (``***``) is not a word.
    """
    out = np.zeros(len(candidates), dtype=bool)
    glyphs = np.flatnonzero(flat)
    glyphs = glyphs[glyphs > 0]
    if len(candidates) == 0 or len(glyphs) < 2:
        return out
    c, g = stats[candidates][:, None, :4].astype(np.int64), stats[glyphs][None, :, :4].astype(np.int64)
    other = candidates[:, None] != glyphs[None, :]
    for along, across in ((0, 1), (1, 0)):  # words along rows, then along columns
        c0, c_len, c_a0, c_size = c[..., along], c[..., along + 2], c[..., across], c[..., across + 2]
        g0, g_len, g_a0, g_size = g[..., along], g[..., along + 2], g[..., across], g[..., across + 2]
        similar = other & (g_size >= 0.5 * c_size) & (g_size <= 2 * c_size)
        overlap = np.minimum(c_a0 + c_size, g_a0 + g_size) - np.maximum(c_a0, g_a0)
        near = similar & (overlap >= 0.5 * np.minimum(c_size, g_size))
        after = g0 - (c0 + c_len)
        before = c0 - (g0 + g_len)
        reach = np.minimum(0.5 * c_size, 8.0)  # letter spacing, not the gap between two shapes
        right = near & (after >= -0.2 * c_size) & (after <= reach)
        left = near & (before >= -0.2 * c_size) & (before <= reach)
        other_shape = (np.abs(g_size - c_size) > 0.15 * c_size) | (np.abs(g_len - c_len) > 0.15 * c_len)
        out |= right.any(axis=1) & left.any(axis=1) & ((right | left) & other_shape).any(axis=1)
    return out


def _isolated(stats: np.ndarray, i: int) -> bool:
    """No glyph-sized neighbour on the same text line within 0.6 of the component's height."""
    x, y, w, h = (int(v) for v in stats[i, :4])
    others = np.delete(np.arange(len(stats)), [0, i])
    if len(others) == 0:
        return True
    o = stats[others]
    tall = o[:, 3] >= 0.4 * h
    overlap = np.minimum(o[:, 1] + o[:, 3], y + h) - np.maximum(o[:, 1], y) >= 0.3 * h
    gap = np.maximum(o[:, 0] - (x + w), x - (o[:, 0] + o[:, 2]))
    return not np.any(tall & overlap & (gap <= 0.6 * h))


# -- rectangles ---------------------------------------------------------------------------------------


def _ridges(rgb: np.ndarray, contrast: float, max_width: int) -> tuple[np.ndarray, np.ndarray]:
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


def _strokes(ridge_h: np.ndarray, ridge_v: np.ndarray, gap: int, min_len: int) -> tuple[np.ndarray, np.ndarray]:
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


def _segments(mask: np.ndarray, distinct: np.ndarray, max_width: int) -> np.ndarray:
    """Thin horizontal strokes of ``mask`` as rows ``(y0, y1, x0, x1)`` (end-exclusive).

    A stroke is a band of runs in consecutive rows with nearly the same extent, at most ``max_width``
    rows thick; runs of a different extent touching it (texture, a neighbouring shape) start bands
    of their own instead of thickening it. Pass a transposed mask to get vertical strokes as
    ``(x0, x1, y0, y1)``.
    """
    h, w = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order: the i-th end closes the i-th start
    out = []
    open_bands: list[list[int]] = []  # [y0, last_row, x0, x1]
    bounds = [0, *(np.flatnonzero(np.diff(rows)) + 1).tolist(), len(rows)] if len(rows) else [0]
    row_of, starts, ends = rows.tolist(), starts.tolist(), ends.tolist()
    for i, j in zip(bounds[:-1], bounds[1:]):  # the runs of one row
        r = row_of[i]
        still_open = []
        for a, b in zip(starts[i:j], ends[i:j]):
            match = None
            for band in open_bands:
                if band[1] == r - 1:
                    overlap = min(b, band[3]) - max(a, band[2])
                    if overlap >= 0.85 * max(b - a, band[3] - band[2]):
                        match = band
                        break
            if match is not None:
                open_bands.remove(match)
                match[1] = r
                match[2], match[3] = min(a, match[2]), max(b, match[3])
                still_open.append(match)
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
    counts = np.zeros((h + 2, w + 1), np.int64)  # row y + 1 holds distinct[y]'s running count
    np.cumsum(distinct, axis=1, dtype=np.int64, out=counts[1:-1, 1:])
    y0, y1, x0, x1 = segs.T
    length = x1 - x0
    above = (counts[y0, x1] - counts[y0, x0]) / length  # row y0 - 1; zero outside the mask
    below = (counts[y1 + 1, x1] - counts[y1 + 1, x0]) / length
    return segs[np.minimum(above, below) <= 0.5]


def _stroke_colours(rgb: np.ndarray, gray: np.ndarray, distinct: np.ndarray, segs: np.ndarray,
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
        first, second = (_stroke_colours(rgb, gray, distinct, part, vertical) for part in (segs[:half], segs[half:]))
        return np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])
    owner = np.repeat(np.arange(n), area)
    k = np.arange(owner.size) - np.repeat(np.cumsum(area) - area, area)
    ys, xs = y0[owner] + k // width[owner], x0[owner] + k % width[owner]
    on = distinct[ys, xs].view(bool)
    owner, ys, xs = owner[on], ys[on], xs[on]
    luma = gray[ys, xs]
    size = np.bincount(owner, minlength=n)
    hist = np.bincount(owner * 256 + luma, minlength=n * 256).reshape(n, 256)
    # Pixels within 7 grey levels of each level (a 15-level window, as np.convolve(..., "same")).
    cum = np.zeros((n, 257), np.int64)
    np.cumsum(hist, axis=1, out=cum[:, 1:])
    levels = np.arange(256)
    counts = cum[:, np.minimum(levels + 8, 256)] - cum[:, np.maximum(levels - 7, 0)]
    peak = np.argmax(counts, axis=1)
    flat = (size > 0) & (counts[np.arange(n), peak] >= 0.5 * size)
    near = flat[owner] & (np.abs(luma.astype(np.int16) - peak[owner]) <= 7)
    owner, ys, xs = owner[near], ys[near], xs[near]
    total = np.bincount(owner, minlength=n)
    for c in range(3):
        sums = np.bincount(owner, weights=rgb[ys, xs, c].astype(np.float64), minlength=n)
        colours[flat, c] = sums[flat] / total[flat]
    return colours, flat


def _pair_corners(hs: np.ndarray, vs: np.ndarray, tol: int, min_side: int, limit: int = 4000):
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


def _outline_flatness(rgb: np.ndarray, gray: np.ndarray, ridge_h: np.ndarray, ridge_v: np.ndarray,
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
    colours = []
    for rows, cols, _, lines in bands:
        on = lines[rows, cols].view(bool)
        if not on.any():
            return None
        colours.append(np.median(rgb[rows, cols][on].astype(np.int16), axis=0))
    colour = np.median(np.array(colours), axis=0)
    if max(float(np.abs(c - colour).max()) for c in colours) > 45:
        return None
    # Drawn in one flat grey level: luma survives JPEG far better than chroma on thin lines.
    luma = np.concatenate([gray[r, c][m[r, c].view(bool)] for r, c, _, m in bands]).astype(np.int16)
    if np.median(np.abs(luma - np.median(luma))) > 7:
        return None
    shares = []
    for rows, cols, along, lines in bands:
        on = lines[rows, cols].view(bool)
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


def _frames_text(gray: np.ndarray, rect: tuple[int, int, int, int], line: int) -> bool:
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


def _crossed(strokes: np.ndarray, boxes: np.ndarray, line: int, vertical: bool) -> np.ndarray:
    """Whether a stroke spans most of each rectangle (``[R, 4]`` boxes) inside it: a grid cell or
    chart, not a box. ``strokes`` are horizontal ``(y0, y1, x0, x1)`` or vertical ``(x0, x1, y0, y1)``."""
    if len(boxes) == 0 or len(strokes) == 0:
        return np.zeros(len(boxes), dtype=bool)
    if len(boxes) > 512:  # bounded memory on busy panels
        parts = [_crossed(strokes, boxes[k : k + 512], line, vertical) for k in range(0, len(boxes), 512)]
        return np.concatenate(parts)
    x0, y0, x1, y1 = (boxes[:, k][:, None] for k in range(4))
    if vertical:  # swap the roles of x and y
        x0, y0, x1, y1 = y0, x0, y1, x1
    s0, s1, a0, a1 = (strokes[:, k][None, :] for k in range(4))
    inside = (s0 > y0 + line) & (s1 < y1 - line)
    span = np.minimum(a1, x1) - np.maximum(a0, x0)
    return (inside & (span >= 0.8 * (x1 - x0))).any(axis=1)


# -- clean-up and text --------------------------------------------------------------------------------


def _drop_repeats(found: list[_Found], max_repeats: int) -> list[_Found]:
    """Drop blobs that occur more than ``max_repeats`` times alike (same kind, layer, size, direction)."""
    keep = []
    for f in found:
        alike = 0
        for g in found:
            if g.kind != f.kind or g.layer != f.layer or abs(g.size - f.size) > 0.2 * max(f.size, 1.0):
                continue
            if f.direction is not None and g.direction is not None:
                diff = abs(f.direction - g.direction) % 360.0
                if min(diff, 360.0 - diff) > 15.0:
                    continue
            alike += 1
        if f.kind == "asterisk" or alike <= max_repeats:
            keep.append(f)
    return keep



def _nms(found: list[_Found], iou: float) -> list[_Found]:
    import cv2

    if len(found) <= 1:
        return found
    boxes = [[f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]] for f in found]
    scores = [float(f.score) for f in found]
    keep = cv2.dnn.NMSBoxes(boxes, scores, 0.0, iou)
    keep = sorted(int(k) for k in np.asarray(keep).reshape(-1))
    return [found[k] for k in keep]


def _nearest_line(f: _Found, layers: _Layers, panel_h: int, label_box: Box | None = None) -> TextLine | None:
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
            if f.kind in ("arrow", "arrowhead") and f.tail is not None:
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


@hookimpl
def register_marker_detectors(register):
    register("shapes", ShapeMarkerDetector)
