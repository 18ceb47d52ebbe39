"""Steps 2 and 3 of the layout: recursive XY-cut of a foreground mask into panel candidates, fragments merged."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from panel2patch.parsers.boxes import box_union

#: Integer box in analysis-grid cells: (x0, y0, x1, y1), end-exclusive.
IBox = tuple[int, int, int, int]


@dataclass
class Block:
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


def area(b: IBox) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _gap(a: IBox, b: IBox) -> tuple[int, int]:
    """Separation of two boxes along x and y (0 where their extents overlap)."""
    dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return dx, dy


def distance(a: IBox, b: IBox) -> float:
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


class Segmenter:
    """XY-cut tree over a foreground mask, with bottom-up fragment merging (see
    :mod:`panel2patch.parsers.layout.parser`)."""

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

    def run(self) -> tuple[list[Block], list[IBox]]:
        h, w = self.mask.shape
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return [], []
        self.ink = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return self._node((0, 0, w, h), -1, 0)

    def _node(self, box: IBox, parent: int, depth: int) -> tuple[list[Block], list[IBox]]:
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

    def _leaf(self, box: IBox, node: int, may_split: bool) -> tuple[list[Block], list[IBox]]:
        if not self.is_panel_sized(box):
            return [], [box]
        if may_split:
            parts = self._split_components(box)
            if parts is not None:
                big, small = parts
                blocks = [Block(b, b, node, members=[b], solid=self._solid(b)) for b in big]
                return self._combine(box, node, blocks, small)
        return [Block(box, box, node, members=[box], solid=self._solid(box))], []

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

    def _combine(self, box: IBox, node: int, blocks: list[Block], frags: list[IBox]
                 ) -> tuple[list[Block], list[IBox]]:
        if not blocks:
            if not frags:
                return [], []
            union = functools.reduce(box_union, frags)
            if self.is_panel_sized(union) and not self._text_only(frags):
                return [Block(union, union, node, members=list(frags), soft=True)], []
            return [], frags
        hard = [b for b in blocks if not b.soft]
        if hard:
            # a panel-sized heap of fragments beside a much larger solid panel (a row of rotated tick
            # labels, a legend) belongs to it
            for b in [b for b in blocks if b.soft]:
                target = min(hard, key=lambda h: distance(h.box, b.box))
                if area(b.box) < 0.5 * area(target.core) and distance(target.box, b.box) <= self.min_side:
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
            target = min(blocks, key=lambda b: (distance(b.core, f) + (penalty if b.solid else 0),
                                                distance(b.box, f)))
            if target.solid and not glyph and not root and distance(target.box, f) > 2:
                deferred.append(f)
                continue
            target.box = box_union(target.box, f)
            target.members.append(f)
        return blocks, deferred
