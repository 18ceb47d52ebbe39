"""Step 4b of the layout: the printed letters as the skeleton of the panel layout.

A figure's panel letters sit at the top-left corners of their panels (the convention of nearly every
journal), so the figure can be cut, recursively, by straight lines that each separate the letters into
two groups: above and below a horizontal line, or left and right of a vertical one. Each line is drawn
where it crosses the least ink between the two groups, nearest the letters it opens (a panel starts at
its letter; the space before it is the gutter), or at a nearly clean line just before those letters
(a gutter crossed by an arrow), but before a frame edge or rule that heads them; of equally clean
cuts, the one along the widest gutter (lines as clean as the cleanest) wins. A panel is
then the ink of its cell. Unlike gutter cutting, this keeps touching panels apart wherever a letter
starts a new one, and keeps everything one letter governs (sub-images, rows of conditions, legends) in
one panel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .segmenter import IBox

#: A line within this share of its length of the least ink counts as equally clean.
CLEAN_SLACK = 0.01
#: The gutter before a group of letters lies within this many letter heights of them ...
NEAR_LETTERS = 4
#: ... and crosses at most this share of its length more ink than the cleanest line.
NEAR_INK = 0.05
#: A line inked along this share of a block's length is a rule or a frame edge.
RULE = 0.9
#: Letters closer than this many letter heights are one row (one column): no cut passes between them.
ONE_LINE = 2


def partition(mask: np.ndarray, anchors: Sequence[IBox]) -> list[IBox] | None:
    """The cell of each anchor (a letter's box, in mask cells) in a recursive cut of the mask's frame.

    A cut passes between two groups of letters at least two letter heights apart (the median anchor
    height; letters closer than that are one row or one column). Returns one box per anchor, in anchor
    order (:func:`_panel_box`). None when the anchors cannot all be separated by such cuts (overlapping
    letters, pinwheel layouts).
    """
    h, w = mask.shape
    cells: list[IBox | None] = [None] * len(anchors)
    # running sums: the ink along any row or column segment in O(1)
    rows = np.zeros((h, w + 1), np.int32)
    rows[:, 1:] = np.cumsum(mask, axis=1)
    cols = np.zeros((h + 1, w), np.int32)
    cols[1:, :] = np.cumsum(mask, axis=0)
    size = int(np.median([a[3] - a[1] for a in anchors])) if anchors else 1
    stack: list[tuple[IBox, list[int]]] = [((0, 0, w, h), list(range(len(anchors))))]
    while stack:
        rect, members = stack.pop()
        if len(members) == 1:
            cells[members[0]] = rect
            continue
        parts = _best_cut(rect, members, anchors, rows, cols, size)
        if parts is None:
            return None
        stack.extend(parts)
    return [_panel_box(mask, c, a) for c, a in zip(cells, anchors) if c is not None]


def _best_cut(rect: IBox, members: list[int], anchors: Sequence[IBox], rows: np.ndarray, cols: np.ndarray,
              size: int) -> list[tuple[IBox, list[int]]] | None:
    x0, y0, x1, y1 = rect
    # a panel starts at its letter: ink above (left of) all the block's letters, such as a page's
    # running text over the figure, is in no panel of the block and costs no cut
    top = max(y0, min(anchors[m][1] for m in members) - size)
    left = max(x0, min(anchors[m][0] for m in members) - size)
    best: tuple[float, int, list[tuple[IBox, list[int]]]] | None = None
    for axis in (1, 0):  # horizontal lines first: figures are read in rows
        lo_i, hi_i = (1, 3) if axis == 1 else (0, 2)
        start, end = (y0, y1) if axis == 1 else (x0, x1)
        order = sorted(members, key=lambda k: anchors[k][lo_i])
        for k in range(1, len(order)):
            first, second = order[:k], order[k:]
            lo = max(anchors[m][hi_i] for m in first)
            hi = min(anchors[m][lo_i] for m in second)
            # letters of one row (column) sit on about one line: closer than two letter sizes, they
            # are not two rows
            if hi - lo < ONE_LINE * size:
                continue
            # the first group's panels start at their letters: a line right under (beside) those
            # letters cuts them off their panels
            lo, hi = max(lo + size, start + 1), min(hi, end - 1)
            if lo > hi:
                continue
            if axis == 1:
                ink = rows[lo:hi + 1, x1] - rows[lo:hi + 1, left]
                length = x1 - left
            else:
                ink = cols[y1, lo:hi + 1] - cols[top, lo:hi + 1]
                length = y1 - top
            least = int(ink.min())
            clean = ink <= least + CLEAN_SLACK * length
            # of the cleanest lines, the one nearest the second group's letters; a panel starts at its
            # letter, so a nearly clean line just before the letters (the gutter, crossed by an arrow
            # or a stray tick label) beats a clean one far from them (inside the previous panel)
            window = max(0, len(ink) - NEAR_LETTERS * size)
            near = ink[window:]
            local = int(near.min())
            at = lo + int(np.flatnonzero(clean)[-1])
            # a line inked across the whole block just above the letters is the top of a frame or a
            # rule that heads their group: the cut runs along the gutter above it (a column inked
            # from top to bottom beside letters is as often a chart's axis)
            gutter = int(np.flatnonzero(ink <= least)[-1])
            if axis == 1 and (ink[max(window, gutter + 1):] >= RULE * length).any():
                at = lo + gutter
            elif local > least and local <= least + NEAR_INK * length:
                at = hi - len(near) + 1 + int(np.flatnonzero(near <= local + CLEAN_SLACK * length)[-1])
            score = least / max(1, length)
            width = _widest_run(ink <= least)
            if axis == 1:
                parts = [((x0, y0, x1, at), first), ((x0, at, x1, y1), second)]
            else:
                parts = [((x0, y0, at, y1), first), ((at, y0, x1, y1), second)]
            # equally clean: the widest gutter, as in XY-cut (a gap inside a panel is narrower); its
            # lines are as clean as the cleanest (a chart's sparse lines, clean within the slack, are none)
            if best is None or score < best[0] - 1e-9 or (score <= best[0] + 1e-9 and width > best[1]):
                best = (score, width, parts)
    return None if best is None else best[2]


def _widest_run(flags: np.ndarray) -> int:
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max()) if edges.size else 0


def _panel_box(mask: np.ndarray, cell: IBox, letter: IBox) -> IBox:
    """The ink of a letter's cell that belongs to its panel: nothing further above or left of the
    letter than 0.8 of its height (a panel starts at its letter, or just around it when the letter is
    printed inside a picture's corner), and not a thin last line, apart from the rest, whose ink runs on
    across the cell's side: a section title or rule shared with the neighbouring cells."""
    size = max(1, letter[3] - letter[1])
    slack = max(1, int(0.8 * size))
    x0, y0, x1, y1 = cell
    x0, y0 = max(x0, min(letter[0], x1 - 1) - slack), max(y0, min(letter[1], y1 - 1) - slack)
    sub = mask[y0:y1, x0:x1]
    inked = sub.any(axis=1)
    ys = np.flatnonzero(inked)
    if ys.size == 0:
        return (x0, y0, x1, y1)
    top, bottom = int(ys[0]), int(ys[-1]) + 1
    gaps = np.flatnonzero(~inked[top:bottom]) + top
    if gaps.size:
        cut = int(gaps[-1]) + 1
        strip = sub[cut:bottom]
        if (bottom - cut <= 1.5 * size and cut - top >= 3 * (bottom - cut) and cut > letter[3] - y0
                and (strip[:, 0].any() or strip[:, -1].any())):
            bottom = int(np.flatnonzero(inked[:cut])[-1]) + 1
    cols = np.flatnonzero(sub[top:bottom].any(axis=0))
    return (x0 + int(cols[0]), y0 + top, x0 + int(cols[-1]) + 1, y0 + bottom)
