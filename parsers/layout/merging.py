"""Step 4 of the layout: unlabelled candidates that belong to a labelled panel (sub-panels, legends) join it."""

from __future__ import annotations

import numpy as np

from panel2patch.parsers.boxes import box_union

from .segmenter import Block, IBox, area, distance


def _ancestors(node: int, parents: list[int]) -> list[int]:
    out = []
    while node >= 0:
        out.append(node)
        node = parents[node]
    return out


def merge_unlabelled(blocks: list[Block], parents: list[int], tolerance: int) -> list[Block]:
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
    typical = float(np.median([area(b.core) for b in labelled]))
    anc = {id(b): _ancestors(b.node, parents) for b in blocks}
    keep = list(labelled)
    for b in blocks:
        if b.label is not None:
            continue
        grid_cell = area(b.core) >= 0.3 * typical and any(
            _aligned(b.box, o.content or o.box, tolerance) for o in labelled)
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


def _aligned(a: IBox, b: IBox, tolerance: int) -> bool:
    """Same grid row (top and bottom edges match) or column (left and right edges match)."""
    row = abs(a[1] - b[1]) <= tolerance and abs(a[3] - b[3]) <= tolerance
    column = abs(a[0] - b[0]) <= tolerance and abs(a[2] - b[2]) <= tolerance
    return row or column


def _overlap(a: IBox, b: IBox) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
