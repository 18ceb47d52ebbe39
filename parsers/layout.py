"""The default CPU figure parser ``layout``: panel boxes from gutters, panel labels, panel kinds.

Pipeline (all boxes returned in original-image pixels, ``(x0, y0, x1, y1)``, origin top-left):

1. **Foreground.** The background (gutter) colour is the most common colour of the rows and columns
   that are of one colour across the whole figure (white, black or any other), else of the image
   border; a pixel is foreground when a channel differs from it by more than
   ``background_tolerance``. Figures above ``analysis_pixels`` are analysed on a grid of
   ``scale x scale`` cells, a cell being foreground when any of its pixels is, so a gutter
   ``2 * scale - 1`` pixels wide survives.
2. **Recursive XY-cut.** A block is trimmed to its ink and split at its widest gutter, recursively,
   into a binary tree. A gutter is a run of at least ``min_gutter`` background lines, a thinner run
   between two densely inked lines (hairline gutters of edge-to-edge mosaics) or, where there is
   none, a hairline of another uniform colour standing out from both sides. Leaves large enough
   (``min_panel_frac`` of the figure area, ``min_panel_side_frac`` of its shorter side) are panel
   candidates; a large leaf holding several disjoint large connected components (layouts without
   straight gutters) is split into them. Everything else is a fragment: tick labels, axis titles,
   legends, panel letters.
3. **Merging.** Bottom-up, each fragment joins the nearest candidate of the lowest tree node that has
   one, so a chart's axis labels and legend stay with their chart and do not cross into a
   neighbouring panel. Fragments larger than a glyph prefer a chart to a photo (text outside a photo
   belongs to a neighbouring chart far more often than to the photo) and may wait for a higher node
   to find it. A node made of fragments only becomes a panel when it is large and holds some
   non-text ink, and is absorbed by a larger neighbouring panel when it is much smaller (a row of
   rotated tick labels). Running text along the figure's top or bottom edge spanning most of its
   width (caption or body text carried over from a PDF page) is dropped.
4. **Labels** (:mod:`panel2patch.parsers.labels`): glyphs near panel corners are read with RapidOCR
   and assigned to the panels they head; a letter joins its panel's box and leaves any other. When
   at least two panels carry labels, an unlabelled candidate is a sub-panel, an inset strip or a
   legend of a labelled one and is merged into the nearest labelled candidate of its tree node,
   unless it shows an unreadable glyph at the label corner or lines up with the labelled panels as
   a grid cell of comparable size (its label was missed, it is a panel).
5. **Kind** (:mod:`panel2patch.parsers.panel_kind`): ``photo`` or ``chart`` from image statistics.

``Panel.score`` is a heuristic confidence in ``[0, 1]``: the share of the panel box covered by its
gutter-free core, averaged with the label's score when a label was read.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from panel2patch.components import FigureParser
from panel2patch.data import FigureParse, Panel, box_contains, box_union
from panel2patch.hookspecs import hookimpl
from panel2patch.images import to_rgb

if TYPE_CHECKING:
    from PIL import Image

    from .labels import LabelReader

#: Integer box in analysis-grid cells: (x0, y0, x1, y1), end-exclusive.
IBox = tuple[int, int, int, int]


@dataclass
class _Block:
    """A panel candidate in analysis-grid cells. ``core`` is its box before fragments joined it."""

    box: IBox
    core: IBox
    node: int
    label: str | None = None
    label_box: tuple[float, float, float, float] | None = None  # figure pixels
    label_score: float = 0.0
    unread: bool = False
    soft: bool = False  # made of fragments only (no gutter-free panel-sized part)
    solid: bool = False  # its core is mostly ink (a photo, a filled plot)
    content: IBox | None = None  # box before its label joined it
    members: list[IBox] = field(default_factory=list)


def _area(b: IBox) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _gap(a: IBox, b: IBox) -> tuple[int, int]:
    """Separation of two boxes along x and y (0 where their extents overlap)."""
    dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return dx, dy


def _distance(a: IBox, b: IBox) -> float:
    dx, dy = _gap(a, b)
    return float(np.hypot(dx, dy))


def _runs(empty: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Internal runs ``[start, end)`` of True in ``empty`` at least ``min_len`` long (ends excluded)."""
    if empty.size == 0:
        return []
    padded = np.concatenate(([False], empty, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts >= min_len) & (starts > 0) & (ends < empty.size)
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def background_colour(rgb: np.ndarray, tolerance: int = 16) -> np.ndarray:
    """The figure's background (gutter) colour of an ``H x W x 3`` uint8 array, as uint8 RGB.

    Rows and columns of one colour across the whole figure are gutters or margins: the most common
    colour among them wins. Figures without any (panels touching every edge and each other only
    through partial gutters) fall back to the most common colour of the one-pixel border.
    """
    lines = []
    for axis in (1, 0):
        spread = (rgb.max(axis=axis).astype(np.int16) - rgb.min(axis=axis)).max(axis=1)
        uniform = np.flatnonzero(spread <= tolerance)
        if uniform.size:
            lines.append(rgb[uniform, 0] if axis == 1 else rgb[0, uniform])
    if lines:
        colours = np.concatenate(lines)
    else:
        colours = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    # quantise so that JPEG noise does not split one background colour into many
    q = (colours.astype(np.uint32) // 8)
    packed = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    mode = values[np.argmax(counts)]
    return np.median(colours[packed == mode], axis=0).astype(np.uint8)


def foreground_mask(rgb: np.ndarray, background: np.ndarray, tolerance: int) -> np.ndarray:
    """Boolean ``H x W`` mask: some channel differs from ``background`` by more than ``tolerance``."""
    fg = np.zeros(rgb.shape[:2], dtype=bool)
    for c in range(3):
        channel = rgb[..., c]
        b = int(background[c])
        # uint8 arithmetic without widening: |x - b| > t  <=>  x > b + t  or  x < b - t
        if b + tolerance < 255:
            fg |= channel > b + tolerance
        if b - tolerance > 0:
            fg |= channel < b - tolerance
    return fg


def reduce_mask(mask: np.ndarray, scale: int) -> np.ndarray:
    """Any-pooling of ``mask`` over ``scale x scale`` blocks (edges padded with background)."""
    if scale <= 1:
        return mask
    h, w = mask.shape
    hp, wp = -(-h // scale) * scale, -(-w // scale) * scale
    padded = np.zeros((hp, wp), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(hp // scale, scale, wp // scale, scale).any(axis=(1, 3))


class _Segmenter:
    """XY-cut tree over a foreground mask, with bottom-up fragment merging (see module docstring)."""

    def __init__(self, mask: np.ndarray, min_gutter: int, min_area: int, min_side: int, text_height: int,
                 max_depth: int = 64, rgb: np.ndarray | None = None, tolerance: int = 16) -> None:
        self.mask = mask
        self.rgb = rgb  # the figure sampled on the mask's grid, for gutters of a second colour
        self.tolerance = tolerance
        self.min_gutter = max(1, min_gutter)
        self.min_area = min_area
        self.min_side = min_side
        self.text_height = text_height
        self.max_depth = max_depth
        self.parent: list[int] = []  # tree node -> parent node (-1 for the root)
        self.ink: IBox = (0, 0, mask.shape[1], mask.shape[0])  # box of all foreground, set by run()

    def _new_node(self, parent: int) -> int:
        self.parent.append(parent)
        return len(self.parent) - 1

    def is_panel_sized(self, box: IBox) -> bool:
        w, h = box[2] - box[0], box[3] - box[1]
        return w * h >= self.min_area and min(w, h) >= self.min_side

    def run(self) -> tuple[list[_Block], list[IBox]]:
        h, w = self.mask.shape
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return [], []
        self.ink = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return self._node((0, 0, w, h), -1, 0)

    def _node(self, box: IBox, parent: int, depth: int) -> tuple[list[_Block], list[IBox]]:
        x0, y0, x1, y1 = box
        sub = self.mask[y0:y1, x0:x1]
        rows = sub.any(axis=1)
        if not rows.any():
            return [], []
        cols = sub.any(axis=0)
        ry = np.flatnonzero(rows)
        rx = np.flatnonzero(cols)
        ty0, ty1 = int(ry[0]), int(ry[-1]) + 1
        tx0, tx1 = int(rx[0]), int(rx[-1]) + 1
        box = (x0 + tx0, y0 + ty0, x0 + tx1, y0 + ty1)
        node = self._new_node(parent)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if (bw < self.min_side and bh < self.min_side) or depth >= self.max_depth:
            return self._leaf(box, node, may_split=False)
        inner = sub[ty0:ty1, tx0:tx1]
        row_gaps = self._gutters(~rows[ty0:ty1], inner, axis=1)
        col_gaps = self._gutters(~cols[tx0:tx1], inner, axis=0)
        if not row_gaps and not col_gaps and self.rgb is not None:
            row_gaps, col_gaps = self._uniform_lines(box)
        best_row = max(row_gaps, key=lambda r: r[1] - r[0], default=None)
        best_col = max(col_gaps, key=lambda r: r[1] - r[0], default=None)
        if best_row is None and best_col is None:
            return self._leaf(box, node, may_split=True)
        row_w = best_row[1] - best_row[0] if best_row else -1
        col_w = best_col[1] - best_col[0] if best_col else -1
        if row_w >= col_w:
            s, e = best_row
            first = (box[0], box[1], box[2], box[1] + s)
            second = (box[0], box[1] + e, box[2], box[3])
        else:
            s, e = best_col
            first = (box[0], box[1], box[0] + s, box[3])
            second = (box[0] + e, box[1], box[2], box[3])
        p1, f1 = self._node(first, node, depth + 1)
        p2, f2 = self._node(second, node, depth + 1)
        if row_w >= col_w:
            # caption or body text carried along at the figure's top or bottom edge (whole lines,
            # so only where lines stack, never inside one line): not a panel part
            if not p1 and not p2 and (self._edge_text(f1 + f2, top=True) or self._edge_text(f1 + f2, top=False)):
                return [], []
            if not p1 and self._edge_text(f1, top=True):
                f1 = []
            if not p2 and self._edge_text(f2, top=False):
                f2 = []
        return self._combine(box, node, p1 + p2, f1 + f2)

    def _edge_text(self, frags: list[IBox], top: bool) -> bool:
        """Running text along the figure's top or bottom ink edge: text-only fragments spanning most
        of the ink width and covering most of the band's width (words, not a row of letters)."""
        if not frags or not self._text_only(frags):
            return False
        union = functools.reduce(box_union, frags)
        ink = self.ink
        at_edge = union[1] <= ink[1] if top else union[3] >= ink[3]
        width = union[2] - union[0]
        if not at_edge or width < 0.6 * (ink[2] - ink[0]) or (ink[3] - ink[1]) <= 3 * (union[3] - union[1]):
            return False
        # running text covers most of its line; a row of panel letters or column titles does not
        covered = np.zeros(width, dtype=bool)
        for f in frags:
            covered[f[0] - union[0]:f[2] - union[0]] = True
        return bool(covered.mean() >= 0.6)

    def _uniform_lines(self, box: IBox) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Gutters of another colour than the figure background: runs of rows (columns) of one colour
        across the block, between lines that are not of one colour (so never a photo's flat margin)."""
        x0, y0, x1, y1 = box
        sub = self.rgb[y0:y1, x0:x1].astype(np.int16)
        out = []
        for axis in (1, 0):
            spread = (sub.max(axis=axis) - sub.min(axis=axis)).max(axis=-1)
            flat = spread <= 6
            n = flat.size
            lines = sub if axis == 1 else sub.transpose(1, 0, 2)  # lines[k]: row (or column) k

            def stands_out(k: int, j: int) -> bool:
                # the hairline's colour differs clearly from the lines it separates
                return float(np.abs(lines[k] - lines[j]).max(axis=-1).mean()) >= 2 * self.tolerance

            # hairlines (at most 3 cells) of one colour, standing out from varied content on both
            # sides and cutting off no sliver; smooth photo shading has no such lines
            out.append([r for r in _runs(flat, 1)
                        if r[1] - r[0] <= 3 and r[0] >= self.min_side and n - r[1] >= self.min_side
                        and not flat[r[0] - 1] and not flat[r[1]]
                        and stands_out(r[0], r[0] - 1) and stands_out(r[1] - 1, r[1])])
        return out[0], out[1]

    def _gutters(self, empty: np.ndarray, inner: np.ndarray, axis: int) -> list[tuple[int, int]]:
        """Gutters along one axis of a trimmed block: background runs at least ``min_gutter`` long,
        and thinner runs (down to one cell) between two densely inked lines, the hairline gutters of
        edge-to-edge photo mosaics (a thin gap inside a chart or between text lines is not one)."""
        runs = _runs(empty, 1)
        thin = [r for r in runs if r[1] - r[0] < self.min_gutter]
        if not thin:
            return runs
        ink = inner.mean(axis=axis)
        return [r for r in runs if r[1] - r[0] >= self.min_gutter or (ink[r[0] - 1] >= 0.5 and ink[r[1]] >= 0.5)]

    def _leaf(self, box: IBox, node: int, may_split: bool) -> tuple[list[_Block], list[IBox]]:
        if not self.is_panel_sized(box):
            return [], [box]
        if may_split:
            parts = self._split_components(box)
            if parts is not None:
                big, small = parts
                blocks = [_Block(b, b, node, members=[b], solid=self._solid(b)) for b in big]
                return self._combine(box, node, blocks, small)
        return [_Block(box, box, node, members=[box], solid=self._solid(box))], []

    def _solid(self, box: IBox) -> bool:
        """Mostly ink: a photo or a filled plot, whose box is its panel's edge."""
        x0, y0, x1, y1 = box
        return bool(self.mask[y0:y1, x0:x1].mean() >= 0.85)

    def _split_components(self, box: IBox) -> tuple[list[IBox], list[IBox]] | None:
        """Disjoint panel-sized connected components of a gutter-free block, or None if not so."""
        from scipy import ndimage

        x0, y0, x1, y1 = box
        sub = self.mask[y0:y1, x0:x1]
        lab, n = ndimage.label(sub, structure=np.ones((3, 3), dtype=bool))
        if n < 2:
            return None
        big: list[IBox] = []
        small: list[IBox] = []
        for sl in ndimage.find_objects(lab):
            if sl is None:
                continue
            b = (x0 + sl[1].start, y0 + sl[0].start, x0 + sl[1].stop, y0 + sl[0].stop)
            (big if self.is_panel_sized(b) else small).append(b)
        if len(big) < 2:
            return None
        for i in range(len(big)):
            for j in range(i + 1, len(big)):
                dx, dy = _gap(big[i], big[j])
                if dx == 0 and dy == 0:  # overlapping extents: an inset or a wrapped chart, not a layout
                    return None
        return big, small

    def _text_only(self, frags: list[IBox]) -> bool:
        th = self.text_height
        return all((b[3] - b[1]) <= th or (b[2] - b[0]) <= th for b in frags)

    def _combine(self, box: IBox, node: int, blocks: list[_Block], frags: list[IBox]
                 ) -> tuple[list[_Block], list[IBox]]:
        if not blocks:
            if not frags:
                return [], []
            union = functools.reduce(box_union, frags)
            if self.is_panel_sized(union) and not self._text_only(frags):
                return [_Block(union, union, node, members=list(frags), soft=True)], []
            return [], frags
        hard = [b for b in blocks if not b.soft]
        if hard:
            # a panel-sized heap of fragments beside a much larger solid panel (a row of rotated tick
            # labels, a legend) belongs to it
            for b in [b for b in blocks if b.soft]:
                target = min(hard, key=lambda h: _distance(h.box, b.box))
                if _area(b.box) < 0.5 * _area(target.core) and _distance(target.box, b.box) <= self.min_side:
                    blocks.remove(b)
                    target.box = box_union(target.box, b.box)
                    target.members.extend(b.members)
        # Text outside a photo's edge rarely belongs to the photo (axis titles and tick labels
        # belong to charts): a fragment larger than a glyph prefers a non-solid block, and one that
        # is not right against a solid block waits for the parent node, where a chart beyond a wider
        # gap may claim it. Glyph-sized fragments (letters printed outside a photo) join the nearest
        # block; the label reader moves letters to the panel they head.
        root = self.parent[node] < 0
        deferred = []
        for f in frags:
            glyph = max(f[2] - f[0], f[3] - f[1]) <= self.text_height  # a letter or a short number
            penalty = 0 if glyph else 4 * self.min_side
            target = min(blocks, key=lambda b: (_distance(b.core, f) + (penalty if b.solid else 0),
                                                _distance(b.box, f)))
            if target.solid and not glyph and not root and _distance(target.box, f) > 2:
                deferred.append(f)
                continue
            target.box = box_union(target.box, f)
            target.members.append(f)
        return blocks, deferred


class LayoutParser(FigureParser):
    """Panel layout by recursive XY-cut and connected components, panel letters by OCR, panel kinds.

    Arguments (recipe ``args``):

    ``min_panel_frac``
        Smallest panel area as a fraction of the figure area (default 0.01).
    ``min_panel_side_frac``
        Smallest panel side as a fraction of the figure's shorter side (default 0.06).
    ``min_gutter``
        Narrowest gutter in original pixels (default 2). Thinner background gaps do not split panels.
    ``background_tolerance``
        Largest per-channel difference from the background colour still counted as background
        (0-255, default 16; raise it for noisy JPEGs).
    ``analysis_pixels``
        Figures larger than this many pixels are analysed on a coarser grid (default 2,000,000).
    ``text_height_frac``
        Tallest text line, as a fraction of the figure's shorter side (default 0.04); a fragment lower
        than this is treated as text.
    ``ocr``
        Read panel letters with RapidOCR (default True). When False, ``Panel.label`` stays None and no
        OCR model is loaded.
    ``min_label_confidence``
        Smallest OCR confidence (0-1, default 0.6) for a letter to count without support from the
        rest of the series (:func:`panel2patch.parsers.labels.apply_sequence_prior`).
    ``ocr_threads``
        onnxruntime intra-op threads for the recogniser (default 0: onnxruntime's choice).
    ``kinds``
        Tag each panel ``photo`` or ``chart`` (default True); otherwise ``kind`` is ``unknown``.
    """

    def __init__(
        self,
        min_panel_frac: float = 0.01,
        min_panel_side_frac: float = 0.06,
        min_gutter: int = 2,
        background_tolerance: int = 16,
        analysis_pixels: int = 2_000_000,
        text_height_frac: float = 0.04,
        ocr: bool = True,
        min_label_confidence: float = 0.6,
        ocr_threads: int = 0,
        kinds: bool = True,
    ) -> None:
        if not 0.0 < min_panel_frac < 1.0:
            raise ValueError(f"layout: min_panel_frac must be in (0, 1), got {min_panel_frac}")
        if not 0.0 < min_panel_side_frac < 1.0:
            raise ValueError(f"layout: min_panel_side_frac must be in (0, 1), got {min_panel_side_frac}")
        if min_gutter < 1:
            raise ValueError(f"layout: min_gutter must be at least 1 pixel, got {min_gutter}")
        if not 0 <= background_tolerance < 255:
            raise ValueError(f"layout: background_tolerance must be in [0, 255), got {background_tolerance}")
        self.min_panel_frac = min_panel_frac
        self.min_panel_side_frac = min_panel_side_frac
        self.min_gutter = min_gutter
        self.background_tolerance = background_tolerance
        self.analysis_pixels = max(10_000, analysis_pixels)
        self.text_height_frac = text_height_frac
        if not 0.0 <= min_label_confidence <= 1.0:
            raise ValueError(f"layout: min_label_confidence must be in [0, 1], got {min_label_confidence}")
        if ocr_threads < 0:
            raise ValueError(f"layout: ocr_threads must be >= 0, got {ocr_threads}")
        self.ocr = ocr
        self.min_label_confidence = min_label_confidence
        self.ocr_threads = ocr_threads
        self.kinds = kinds
        self._reader: LabelReader | None = None
        #: Seconds spent per stage (``layout``, ``labels``, ``kinds``) by the last :meth:`parse` call.
        self.last_timings: dict[str, float] = {}

    @property
    def reader(self) -> LabelReader:
        """The label reader; its OCR engine is created on first use and kept for this parser."""
        if self._reader is None:
            from .labels import LabelReader

            self._reader = LabelReader(min_confidence=self.min_label_confidence, threads=self.ocr_threads)
        return self._reader

    def parse(self, image: Image.Image, caption: str | None = None) -> FigureParse:
        """Panels of an image (any PIL mode is converted to RGB; ``caption`` is not used).

        Panels come in reading order (rows top to bottom, left to right), ids ``p0``, ``p1`` ...;
        boxes, label boxes in original-image pixels. An image with no separable panels (blank, tiny
        or a single picture) gives one panel covering its ink, or the whole image.
        """
        timings = self.last_timings = {}
        start = time.perf_counter()
        rgb = np.asarray(to_rgb(image))
        height, width = rgb.shape[:2]
        whole = Panel(id="p0", box=(0.0, 0.0, float(width), float(height)), score=0.0, provenance="layout")
        if width < 8 or height < 8:
            return FigureParse(width=width, height=height, panels=[whole])
        blocks, scale, parents = self.segment(rgb)
        timings["layout"] = time.perf_counter() - start
        if not blocks:
            return FigureParse(width=width, height=height, panels=[whole])
        if self.ocr:
            start = time.perf_counter()
            self._read_labels(rgb, blocks, scale)
            blocks = _merge_unlabelled(blocks, parents, max(2, round(0.01 * max(height, width) / scale)))
            timings["labels"] = time.perf_counter() - start
        from .labels import reading_order

        blocks = [blocks[i] for i in reading_order([b.box for b in blocks])]
        panels = [self._to_panel(i, b, scale, width, height) for i, b in enumerate(blocks)]
        if self.kinds:
            from .panel_kind import classify

            start = time.perf_counter()
            for p in panels:
                x0, y0, x1, y1 = (int(round(v)) for v in p.box)
                p.kind = classify(rgb[y0:y1, x0:x1]).kind
            timings["kinds"] = time.perf_counter() - start
        return FigureParse(width=width, height=height, panels=panels)

    def segment(self, rgb: np.ndarray) -> tuple[list[_Block], int, list[int]]:
        """Panel candidates of an ``H x W x 3`` uint8 array in analysis cells of ``scale`` pixels.

        Returns the candidates, ``scale`` and the XY-cut tree as a parent list (node -> parent node).
        """
        height, width = rgb.shape[:2]
        bg = background_colour(rgb, self.background_tolerance)
        fg = foreground_mask(rgb, bg, self.background_tolerance)
        scale = max(1, int(np.ceil(np.sqrt(height * width / self.analysis_pixels))))
        mask = reduce_mask(fg, scale)
        mh, mw = mask.shape
        short = min(mh, mw)
        seg = _Segmenter(
            mask,
            min_gutter=max(1, round(self.min_gutter / scale)),
            min_area=int(self.min_panel_frac * mh * mw),
            min_side=max(2, int(self.min_panel_side_frac * short)),
            text_height=max(2, int(self.text_height_frac * short)),
            rgb=rgb[::scale, ::scale][:mh, :mw],
            tolerance=self.background_tolerance,
        )
        blocks, frags = seg.run()
        if not blocks and frags:
            # Nothing panel-sized: the figure is one panel made of small parts (or text).
            union = functools.reduce(box_union, frags)
            blocks = [_Block(union, union, 0, members=frags, soft=True)]
        return blocks, scale, seg.parent

    def _read_labels(self, rgb: np.ndarray, blocks: list[_Block], scale: int) -> None:
        """Read each candidate's letter; a letter joins its panel's box and leaves any other box."""
        h, w = rgb.shape[:2]
        boxes = [_to_pixels(b.box, scale, w, h) for b in blocks]
        reading = self.reader.read_panels(rgb, boxes)
        for block, label, unread in zip(blocks, reading.labels, reading.unread):
            block.unread = unread
            if label is None:
                continue
            block.label = label.text
            block.label_box = label.box
            block.label_score = label.score
            lb = (int(label.box[0] // scale), int(label.box[1] // scale),
                  -(-int(np.ceil(label.box[2])) // scale), -(-int(np.ceil(label.box[3])) // scale))
            for other in blocks:
                if other is block:
                    continue
                kept = [m for m in other.members if not box_contains(lb, m, pad=2)]
                if kept and len(kept) < len(other.members):
                    other.members = kept
                    other.box = functools.reduce(box_union, kept, other.core)
            content = block.core
            for m in block.members:
                if not box_contains(lb, m, pad=2):
                    content = box_union(content, m)
            block.content = content
            block.box = box_union(block.box, lb)

    def _to_panel(self, i: int, block: _Block, scale: int, width: int, height: int) -> Panel:
        box = _to_pixels(block.box, scale, width, height)
        core = _area(block.core) / max(1, _area(block.box))
        score = core if block.label is None else 0.5 * (core + min(1.0, block.label_score))
        return Panel(
            id=f"p{i}",
            box=box,
            label=block.label,
            label_box=block.label_box,
            score=round(float(score), 3),
            provenance="layout",
        )


def _to_pixels(box: IBox, scale: int, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (float(x0 * scale), float(y0 * scale), float(min(width, x1 * scale)), float(min(height, y1 * scale)))


def _ancestors(node: int, parents: list[int]) -> list[int]:
    out = []
    while node >= 0:
        out.append(node)
        node = parents[node]
    return out


def _merge_unlabelled(blocks: list[_Block], parents: list[int], tolerance: int) -> list[_Block]:
    """Merge unlabelled candidates into the nearest labelled one of their lowest shared tree node.

    Applies only when at least two candidates carry a letter: an unlabelled candidate is then a
    sub-panel, an inset strip or a legend of a labelled panel. It stays a panel of its own when a
    glyph sits unread at its label corner, when it lines up with a labelled panel as a cell of the
    same grid row or column (both edges within ``tolerance`` cells) and is at least 0.3 times the
    median labelled panel's size (its letter was missed), or when the merge would swallow part of
    another labelled panel.
    """
    labelled = [b for b in blocks if b.label is not None]
    if len(labelled) < 2 or len(labelled) == len(blocks):
        return blocks
    typical = float(np.median([_area(b.core) for b in labelled]))
    anc = {id(b): _ancestors(b.node, parents) for b in blocks}
    keep = list(labelled)
    for b in blocks:
        if b.label is not None:
            continue
        grid_cell = _area(b.core) >= 0.3 * typical and any(
            _aligned(b.box, o.content or o.box, tolerance) for o in labelled)
        if b.unread or grid_cell:
            keep.append(b)
            continue
        target = None
        for node in anc[id(b)]:
            near = [lb for lb in labelled if node in anc[id(lb)]]
            if near:
                target = min(near, key=lambda lb: _distance(lb.box, b.box))
                break
        if target is None:
            keep.append(b)
            continue
        union = box_union(target.box, b.box)
        if any(_overlap(union, o.core) > 0.1 * _area(o.core) for o in labelled if o is not target):
            keep.append(b)
            continue
        target.box = union
        target.members.extend(b.members)
    return keep


def _aligned(a: IBox, b: IBox, tolerance: int) -> bool:
    """Same grid row (top and bottom edges match) or column (left and right edges match)."""
    row = abs(a[1] - b[1]) <= tolerance and abs(a[3] - b[3]) <= tolerance
    column = abs(a[0] - b[0]) <= tolerance and abs(a[2] - b[2]) <= tolerance
    return row or column


def _overlap(a: IBox, b: IBox) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


@hookimpl
def register_figure_parsers(register):
    register("layout", LayoutParser)
