"""Drawing plans shared by every stage: pixel rectangles, panel and marker plans, and random picks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panel2patch.data import Box


def pick(rng: np.random.Generator, seq: Any) -> Any:
    """One element of ``seq``, uniformly (one ``rng.integers`` draw)."""
    return seq[int(rng.integers(len(seq)))]


@dataclass(frozen=True)
class Rect:
    """Integer pixel rectangle; ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    def box(self) -> Box:
        return (float(self.x0), float(self.y0), float(self.x1), float(self.y1))

    def edges(self) -> tuple[int, int, int, int]:
        """The integer edges; boxes clipped to them keep integer coordinates where they were cut."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass
class MarkerPlan:
    """A drawn marker: its pixel box, its region and what the caption needs to mention it."""

    kind: str
    box: Box
    region: Box
    role: str = ""  # boxes: solid / dashed / inset / zoom
    tip: tuple[float, float] | None = None
    direction: float | None = None
    text: str | None = None
    zoom_into: int | None = None
    target: str = ""


@dataclass
class PanelPlan:
    """A panel being drawn: its cell, its image area, its content and the boxes already taken."""

    index: int
    cell: Rect
    content: Rect
    kind: str
    source: str | None = None
    chart: str = ""
    markers: list[MarkerPlan] = field(default_factory=list)
    occupied: list[Box] = field(default_factory=list)
