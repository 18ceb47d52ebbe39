"""Marker detector ``lvlm_markers``: arrows (with their tips), arrowheads, asterisks, boxes, circles and insets that an
LVLM finds on each panel crop, plus the typed non-pointers (``band_marker`` beside blot bands, ``connector`` between
diagram boxes) that give no region.

Every panel is one request (its crop at its own Qwen2.5-VL size), all panels of a figure in one batch; boxes and tips
map back to figure pixels. A tip outside the panel is clipped to it; an arrow's ``direction`` points from its box
centre to its tip. Kinds outside :data:`~.prompts.MARKER_KINDS` (after a few synonyms) are dropped and counted. With
``on_unusable: reject`` (default) a panel whose answer stays unusable rejects the figure; ``skip`` leaves that panel
without markers (counted as ``lvlm.markers.skipped_panels``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from panel2patch.components import MarkerDetector
from panel2patch.data import Marker, Panel, Point
from panel2patch.errors import Reject
from panel2patch.mining import count_diagnostic

from .answers import sanitise_boxes
from .engine import count_boxes, parsed, shared_engine
from .errors import UnresizableImageError
from .prompts import MARKER_KINDS, MARKER_SCHEMA, markers_prompt
from .views import View, crop_view

COMPONENT = "markers"
SYNONYMS = {"arrow head": "arrowhead", "arrow_head": "arrowhead", "triangle": "arrowhead", "star": "asterisk",
            "symbol": "asterisk", "rectangle": "box", "dashed box": "box", "square": "box", "ellipse": "circle",
            "oval": "circle", "band marker": "band_marker", "connector arrow": "connector"}


class LVLMMarkerDetector(MarkerDetector):
    """Markers per panel crop from an LVLM (see the module docstring). ``min_size``: the smallest marker side kept,
    figure pixels."""

    def __init__(self, engine: dict[str, Any], max_tokens: int = 768, min_size: float = 3.0,
                 on_unusable: Literal["reject", "skip"] = "reject") -> None:
        self.engine = shared_engine(engine)
        self.max_tokens, self.min_size, self.on_unusable = max_tokens, min_size, on_unusable

    def detect(self, image: Any, panels: Sequence[Panel]) -> list[Marker]:
        settings = self.engine.settings
        views: list[tuple[Panel, View, Any]] = []
        for panel in panels:
            try:
                view, crop = crop_view(image, panel.box, panel.id, settings.max_pixels, settings.min_pixels)
            except UnresizableImageError:
                count_diagnostic(f"lvlm.{COMPONENT}.unsendable_panels")
                continue
            views.append((panel, view, crop))
        prompt = markers_prompt()
        requests = [self.engine.request(prompt, image=crop, schema=MARKER_SCHEMA, max_tokens=self.max_tokens,
                                        task=COMPONENT, view=view, figure=image) for _, view, crop in views]
        markers: list[Marker] = []
        for (panel, view, _), answer in zip(views, self.engine.ask(requests, COMPONENT)):
            result = parsed(answer, COMPONENT, "list", "markers")
            if not result.usable:
                if self.on_unusable == "reject":
                    raise Reject("lvlm_unusable_answer", f"the marker answer for panel {panel.id} stayed "
                                                         f"{result.status} after a retry: {result.detail}")
                count_diagnostic(f"lvlm.{COMPONENT}.skipped_panels")
                continue
            items, counts = sanitise_boxes(result.value, view, image.size, min_size=self.min_size,
                                           label_keys=("kind",), require_label=True)
            count_boxes(counts, COMPONENT)
            for item in items:
                kind = SYNONYMS.get(item.label.strip().lower(), item.label.strip().lower())
                if kind not in MARKER_KINDS:
                    count_diagnostic(f"lvlm.{COMPONENT}.unknown_kind")
                    continue
                tip = _tip(item.extra.get("tip"), view, panel) if kind in ("arrow", "arrowhead") else None
                markers.append(Marker(id="", kind=kind, box=item.box, panel_id=panel.id, tip=tip,
                                      direction=_direction(item.box, tip)))
        return markers


def _tip(raw: Any, view: View, panel: Panel) -> Point | None:
    """An answer's ``[x, y]`` tip in view pixels as a figure point inside the panel, or None when malformed."""
    if not (isinstance(raw, (list, tuple)) and len(raw) == 2):
        return None
    try:
        x, y = float(raw[0]), float(raw[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    fx, fy = view.to_original((x, y, x, y))[:2]
    b = panel.box
    return (min(max(fx, b[0]), b[2]), min(max(fy, b[1]), b[3]))


def _direction(box: Any, tip: Point | None) -> float | None:
    """Degrees counter-clockwise from +x (y up) from the box centre to the tip; None without a tip off-centre."""
    if tip is None:
        return None
    dx, dy = tip[0] - (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - tip[1]
    if math.hypot(dx, dy) < 1e-6:
        return None
    return math.degrees(math.atan2(dy, dx)) % 360.0
