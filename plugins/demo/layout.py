"""Figure layouts cut into panel cells, and the panel-label style that decides each panel's image area."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from panel2patch.parsers.series import ROMAN

from .plans import Rect, pick

# A layout node is "leaf" or (axis, [(weight, node), ...]) with axis "h" (side by side) or "v" (stacked).


def _grid(rows: int, cols: int) -> Any:
    row = "leaf" if cols == 1 else ("h", [(1.0, "leaf")] * cols)
    return row if rows == 1 else ("v", [(1.0, row)] * rows)


def random_layout(rng: np.random.Generator) -> tuple[str, Any]:
    """A layout family name and its layout tree, drawn at random."""
    kind = pick(rng, ("grid", "grid", "grid", "grid", "tall_stack", "spanning", "mixed_rows"))
    if kind == "grid":
        return kind, _grid(int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    if kind == "tall_stack":
        stack = ("v", [(1.0, "leaf")] * int(rng.integers(2, 4)))
        tall = (float(rng.uniform(0.8, 1.5)), "leaf")
        return kind, ("h", [tall, (1.0, stack)] if rng.random() < 0.6 else [(1.0, stack), tall])
    if kind == "spanning":
        row = ("h", [(1.0, "leaf")] * int(rng.integers(2, 5)))
        span = (float(rng.uniform(0.8, 1.4)), "leaf")
        return kind, ("v", [span, (1.0, row)] if rng.random() < 0.5 else [(1.0, row), span])
    rows = [_grid(1, int(c)) for c in rng.integers(1, 5, size=int(rng.integers(2, 4)))]
    return kind, ("v", [(1.0, r) for r in rows])


def nominal_size(node: Any) -> tuple[int, int]:
    """Leaves across and down: the size of the layout in cells."""
    if node == "leaf":
        return 1, 1
    axis, children = node
    sizes = [nominal_size(c) for _, c in children]
    if axis == "h":
        return sum(s[0] for s in sizes), max(s[1] for s in sizes)
    return max(s[0] for s in sizes), sum(s[1] for s in sizes)


def allocate_cells(node: Any, rect: Rect, gutter: int, out: list[Rect]) -> None:
    """Cut ``rect`` into leaf rectangles in reading order, ``gutter`` pixels apart."""
    if node == "leaf":
        out.append(rect)
        return
    axis, children = node
    length = rect.w if axis == "h" else rect.h
    free = length - gutter * (len(children) - 1)
    total = sum(w for w, _ in children)
    pos = rect.x0 if axis == "h" else rect.y0
    for i, (weight, child) in enumerate(children):
        size = free - (pos - (rect.x0 if axis == "h" else rect.y0) - gutter * i) if i == len(children) - 1 \
            else int(free * weight / total)
        sub = Rect(pos, rect.y0, pos + size, rect.y1) if axis == "h" else Rect(rect.x0, pos, rect.x1, pos + size)
        allocate_cells(child, sub, gutter, out)
        pos += size + gutter


@dataclass(frozen=True)
class LabelStyle:
    """How a figure prints its panel labels (and its background colour)."""

    background: tuple[int, int, int]
    labels: str  # upper / lower / roman / numbered
    printed: str  # plain / paren / circled
    bold: bool
    boxed: bool
    corner: str  # tl / tr / bl / br
    outside: str  # "" (inside the image) / "top" / "bottom" / "left"
    font_size: int


def panel_labels(style: LabelStyle, cells: list[Rect]) -> list[str]:
    """The label of each cell, in cell order, in the label series of ``style``."""
    n = len(cells)
    if style.labels == "upper":
        return [chr(ord("A") + i) for i in range(n)]
    if style.labels == "lower":
        return [chr(ord("a") + i) for i in range(n)]
    if style.labels == "roman":
        return list(ROMAN[:n])
    # Row letter + column number, rows taken from the cells' top edges.
    tops = sorted({c.y0 for c in cells})
    labels, count = [], {}
    for c in cells:
        row = tops.index(c.y0)
        count[row] = count.get(row, 0) + 1
        labels.append(f"{chr(ord('A') + row)}{count[row]}")
    return labels


def printed_label(style: LabelStyle, label: str) -> str:
    """The label as printed: parenthesised in the ``paren`` print style."""
    return f"({label})" if style.printed == "paren" else label


def plan_label_style(rng: np.random.Generator, cells: list[Rect], layout: str) -> LabelStyle:
    """Background and label style of a figure, drawn at random; label size follows the smallest cell."""
    background = (0, 0, 0) if rng.random() < 0.25 else (255, 255, 255)
    numbered_ok = layout in ("grid", "mixed_rows") and len({c.y0 for c in cells}) > 1
    labels = pick(rng, ("upper", "upper", "upper", "lower", "lower", "roman") + (("numbered",) if numbered_ok else ()))
    printed = pick(rng, ("plain", "plain", "paren", "circled")) if labels != "numbered" else "plain"
    if printed == "circled" and labels == "roman":
        printed = "plain"
    smallest = min(min(c.w, c.h) for c in cells)
    size = int(np.clip(smallest * rng.uniform(0.07, 0.11), 12, 34))
    outside = "" if rng.random() < 0.6 else pick(rng, ("top", "top", "bottom", "left"))
    corner = pick(rng, ("tl", "tl", "tl", "tr", "bl", "br"))
    if outside == "top":
        corner = pick(rng, ("tl", "tl", "tr"))
    elif outside == "bottom":
        corner = pick(rng, ("bl", "br"))
    elif outside == "left":
        corner = "tl"
    bold = bool(rng.random() < 0.6) and labels != "roman"  # a stroke merges the dot of "i" into its stem
    return LabelStyle(background, labels, printed, bold, bool(rng.random() < 0.3), corner, outside, size)


def content_rect(style: LabelStyle, cell: Rect, strip: tuple[int, int]) -> Rect:
    """The image area of ``cell``: the cell less the label strip when labels are printed outside."""
    gap = max(2, style.font_size // 6)
    if style.outside == "top":
        return Rect(cell.x0, cell.y0 + strip[1] + gap, cell.x1, cell.y1)
    if style.outside == "bottom":
        return Rect(cell.x0, cell.y0, cell.x1, cell.y1 - strip[1] - gap)
    if style.outside == "left":
        return Rect(cell.x0 + strip[0] + gap, cell.y0, cell.x1, cell.y1)
    return cell
