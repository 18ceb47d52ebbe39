"""Step 4 of the layout: unlabelled candidates that belong to a labelled panel (sub-panels, legends) join it."""

from __future__ import annotations

import numpy as np

from panel2patch.parsers.boxes import box_union

from ..labels.sequence import read_before
from .segmenter import Block, IBox, area, distance


def _ancestors(node: int, parents: list[int]) -> list[int]:
    out = []
    while node >= 0:
        out.append(node)
        node = parents[node]
    return out


def merge_unlabelled(blocks: list[Block], parents: list[int], tolerance: int, series: Series | None = None
                     ) -> list[Block]:
    """Merge unlabelled candidates into the nearest labelled one of their lowest shared tree node.

    Applies only when at least two candidates carry a letter: an unlabelled candidate is then a
    sub-panel, an inset strip or a legend of a labelled panel. It stays a panel of its own when a
    glyph sits unread at its label corner, when it lines up with a labelled panel as a cell of the
    same grid row or column (both edges within ``tolerance`` cells), is at least 0.3 times the
    median labelled panel's size and could be a panel whose letter was missed (:meth:`Series.fills_gap`),
    or when the merge would swallow part of another labelled panel.
    """
    labelled = [b for b in blocks if b.label is not None]
    if len(labelled) < 2 or len(labelled) == len(blocks):
        return blocks
    typical = float(np.median([area(b.core) for b in labelled]))
    anc = {id(b): _ancestors(b.node, parents) for b in blocks}
    keep = list(labelled)
    for b in blocks:
        if b.label is not None:
            continue
        grid_cell = area(b.core) >= 0.3 * typical and any(
            _aligned(b.box, o.content or o.box, tolerance) for o in labelled) and (series is None or series.fills_gap(b))
        if b.unread or grid_cell:
            keep.append(b)
            continue
        target = None
        for node in anc[id(b)]:
            near = [lb for lb in labelled if node in anc[id(lb)]]
            if near:
                target = min(near, key=lambda lb: distance(lb.box, b.box))
                break
        if target is None:
            keep.append(b)
            continue
        union = box_union(target.box, b.box)
        if any(_overlap(union, o.core) > 0.1 * area(o.core) for o in labelled if o is not target):
            keep.append(b)
            continue
        target.box = union
        target.members.extend(b.members)
    return keep


def _ranks(blocks: list[Block], style: str) -> list[int] | None:
    """Series positions of the blocks' labels (None when a label is not a single letter or numeral)."""
    from ..labels.reads import series_rank

    if style not in ("letter", "roman"):
        return None
    try:
        return [series_rank(b.label, style) for b in blocks]
    except (ValueError, IndexError, TypeError):
        return None


def anchor(block: Block, scale: int, size: float) -> tuple[float, float, float, float]:
    """Where the block's letter is or would be printed, in figure pixels: its label box, else at its
    top-left corner, ``size`` pixels wide and reaching ``size`` above and below the corner (letters
    sit just above a panel or just inside it)."""
    if block.label_box is not None:
        return block.label_box
    x, y = block.box[0] * scale, block.box[1] * scale
    return (x, y - size, x + size, y + size)


class Series:
    """The labels read on a figure's panel candidates, placed in reading order by their positions.

    One panel per printed label, labels in reading order: where the letters read run on without a gap
    around an unlabelled candidate, that candidate is part of a labelled panel; where they skip
    members, the candidates in between are panels whose letters were missed. Reading order is judged
    pairwise (above, or left on one line), not by rows, so that tall panels spanning several rows do
    not reorder their neighbours. Only single letters and roman numerals are placed (``ranks`` None
    otherwise).
    """

    def __init__(self, blocks: list[Block], style: str, scale: int) -> None:
        self.blocks, self.style, self.scale = blocks, style, scale
        heights = [b.label_box[3] - b.label_box[1] for b in blocks if b.label_box is not None]
        self.size = float(np.median(heights)) if heights else 1.0
        self.ranks: dict[int, int] | None = None
        self.refresh()

    def refresh(self) -> None:
        from ..labels.reads import series_rank

        self.ranks = None
        if self.style not in ("letter", "roman"):
            return
        try:
            self.ranks = {id(b): series_rank(b.label, self.style) for b in self.blocks if b.label is not None}
        except (ValueError, IndexError, TypeError):
            self.ranks = None

    def labelled(self) -> list[Block]:
        return [b for b in self.blocks if b.label is not None]

    def _conflicts(self, labelled: list[Block]) -> list[int]:
        anchors = [anchor(b, self.scale, self.size) for b in labelled]
        ranks = [self.ranks[id(b)] for b in labelled]
        counts = [0] * len(labelled)
        for i in range(len(labelled)):
            for j in range(len(labelled)):
                if ranks[i] > ranks[j] and read_before(anchors[i], anchors[j]):
                    counts[i] += 1
                    counts[j] += 1
        return counts

    def drop_out_of_order(self, most: int = 2) -> None:
        """Unlabel up to ``most`` letters that break the reading order on their own (text inside a
        panel read as a letter): a label taking part in at least half of all order conflicts, and in
        three or more. Column-major layouts spread their conflicts and are left alone."""
        for _ in range(most):
            if self.ranks is None:
                return
            labelled = self.labelled()
            if len(labelled) < 4:
                return
            counts = self._conflicts(labelled)
            total = sum(counts) // 2
            worst = max(range(len(labelled)), key=lambda k: counts[k])
            if counts[worst] < 3 or counts[worst] < 0.5 * total:
                return
            b = labelled[worst]
            b.label, b.label_box, b.label_score = None, None, 0.0
            self.refresh()

    def neighbours(self, block: Block) -> tuple[int | None, int | None] | None:
        """Highest rank read before ``block``'s label corner and lowest read after it (None: no such
        label); None when the labels do not place it (no ranks, or inconsistent sides)."""
        if self.ranks is None:
            return None
        here = anchor(block, self.scale, self.size)
        before = [self.ranks[id(b)] for b in self.labelled() if read_before(anchor(b, self.scale, self.size), here)]
        after = [self.ranks[id(b)] for b in self.labelled() if read_before(here, anchor(b, self.scale, self.size))]
        lo, hi = (max(before) if before else None), (min(after) if after else None)
        if lo is not None and hi is not None and lo >= hi:
            return None
        return lo, hi

    def fills_gap(self, block: Block) -> bool:
        """Whether an unlabelled ``block`` could be a panel whose letter was missed (True when the
        labels cannot tell, e.g. after the last label read: the series may go on)."""
        sides = self.neighbours(block)
        if sides is None:
            return True
        lo, hi = sides
        if hi is None:
            return True
        if lo is None:
            return hi > 0
        return hi - lo >= 2

    def name_missing(self) -> None:
        """Unlabelled blocks take the members their place leaves: where exactly as many lie between two
        labels as members are missing there, they take them in reading order (score 0.3)."""
        from ..series import ROMAN

        if self.ranks is None:
            return
        upper = sum(b.label[0].isupper() for b in self.labelled()) * 2 > len(self.labelled())
        gaps: dict[tuple[int, int], list[Block]] = {}
        for b in self.blocks:
            if b.label is not None:
                continue
            sides = self.neighbours(b)
            if sides is not None and None not in sides and sides[1] - sides[0] >= 2:
                gaps.setdefault(sides, []).append(b)
        for (lo, hi), members in gaps.items():
            if len(members) != hi - lo - 1:
                continue
            anchors = {id(b): anchor(b, self.scale, self.size) for b in members}
            ordered = sorted(members, key=lambda b: sum(read_before(anchors[id(o)], anchors[id(b)]) for o in members))
            for b, r in zip(ordered, range(lo + 1, hi)):
                text = (ROMAN[r] if r < len(ROMAN) else None) if self.style == "roman" else (
                    chr(ord("a") + r) if r < 26 else None)
                if text is not None:
                    b.label, b.label_score = (text.upper() if upper else text), 0.3
        self.refresh()


def _aligned(a: IBox, b: IBox, tolerance: int) -> bool:
    """Same grid row (top and bottom edges match) or column (left and right edges match)."""
    row = abs(a[1] - b[1]) <= tolerance and abs(a[3] - b[3]) <= tolerance
    column = abs(a[0] - b[0]) <= tolerance and abs(a[2] - b[2]) <= tolerance
    return row or column


def _overlap(a: IBox, b: IBox) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
