"""What the detector stages find in a panel crop, before it becomes a :class:`~panel2patch.data.Marker`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FoundMarker:
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
    context: Any = None  # :class:`~.context.Context` of arrows and arrowheads
