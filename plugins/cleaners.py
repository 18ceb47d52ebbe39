"""Box cleaners. Each takes a mined figure and returns it with boxes removed or fixed.

``targets`` selects which boxes a cleaner looks at: ``panels``, ``markers`` and/or ``regions``.
Removing a panel removes its regions and detaches its markers, so the hierarchy stays consistent.
The miner counts, per cleaner, how many boxes of each target it removed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from panel2patch.components import BoxCleaner
from panel2patch.data import Box, Figure
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.boxes import box_area, box_center, box_clip, box_nms

Target = Literal["panels", "markers", "regions"]


def _drop_panels(figure: Figure, keep_ids: set[str]) -> None:
    figure.panels = [p for p in figure.panels if p.id in keep_ids]
    figure.regions = [r for r in figure.regions if r.panel_id in keep_ids]
    for m in figure.markers:
        if m.panel_id is not None and m.panel_id not in keep_ids:
            m.panel_id = None


def _filter(figure: Figure, target: str, keep) -> None:
    items = getattr(figure, target)
    kept = [item for item in items if keep(item)]
    if target == "panels":
        _drop_panels(figure, {p.id for p in kept})
    else:
        setattr(figure, target, kept)


class ClipToImage(BoxCleaner):
    """Clips boxes to the image; boxes left with no area are removed."""

    def __init__(self, targets: Sequence[Target] = ("panels", "markers", "regions")) -> None:
        self.targets = tuple(targets)

    def clean(self, figure: Figure) -> Figure:
        w, h = float(figure.width), float(figure.height)

        def clip(box: Box) -> Box:
            return (min(max(box[0], 0.0), w), min(max(box[1], 0.0), h), min(max(box[2], 0.0), w), min(max(box[3], 0.0), h))

        for target in self.targets:
            for item in getattr(figure, target):
                item.box = clip(item.box)
            _filter(figure, target, lambda item: box_area(item.box) > 0)
        return figure


class DropDegenerate(BoxCleaner):
    """Removes boxes with a side under ``min_side`` px, an area under ``min_area_frac`` of the image, or
    an aspect ratio (long side / short side) above ``max_aspect``."""

    def __init__(
        self,
        min_side: float = 8.0,
        min_area_frac: float = 0.0005,
        max_aspect: float = 12.0,
        targets: Sequence[Target] = ("panels", "regions"),
    ) -> None:
        self.min_side, self.min_area_frac, self.max_aspect = min_side, min_area_frac, max_aspect
        self.targets = tuple(targets)

    def clean(self, figure: Figure) -> Figure:
        image_area = float(figure.width * figure.height) or 1.0

        def ok(item) -> bool:
            w, h = item.box[2] - item.box[0], item.box[3] - item.box[1]
            if min(w, h) < self.min_side or (w * h) / image_area < self.min_area_frac:
                return False
            return max(w, h) / max(min(w, h), 1e-6) <= self.max_aspect

        for target in self.targets:
            _filter(figure, target, ok)
        return figure


class NonMaxSuppression(BoxCleaner):
    """Non-maximum suppression (:func:`panel2patch.data.box_nms`, torchvision's).

    ``per_label`` runs it separately per class (panel label, marker kind, region panel); otherwise it
    is class-agnostic. Higher ``score`` wins.
    """

    def __init__(self, iou: float = 0.5, per_label: bool = True, targets: Sequence[Target] = ("regions",)) -> None:
        self.iou, self.per_label, self.targets = iou, per_label, tuple(targets)

    @staticmethod
    def _label(target: str, item) -> str:
        return {"panels": lambda: item.label or "", "markers": lambda: item.kind, "regions": lambda: item.panel_id}[target]()

    def clean(self, figure: Figure) -> Figure:
        for target in self.targets:
            items = getattr(figure, target)
            if len(items) < 2:
                continue
            labels = [self._label(target, i) if self.per_label else "" for i in items]
            index = {name: n for n, name in enumerate(dict.fromkeys(labels))}
            keep = set(box_nms([i.box for i in items], [i.score for i in items], self.iou, [index[n] for n in labels]))
            keep_ids = {items[k].id for k in keep}
            _filter(figure, target, lambda item, ids=keep_ids: item.id in ids)
        return figure


class MarkerProximityGate(BoxCleaner):
    """Keeps a region only if its centre lies within ``tau`` of a marker centre in the same panel.

    Distance is normalised by the panel diagonal. Regions anchored to markers pass; the gate is for
    caption-grounded proposals that must be supported by something drawn in the figure.
    """

    def __init__(self, tau: float = 0.25) -> None:
        self.tau = tau

    def clean(self, figure: Figure) -> Figure:
        panels = {p.id: p for p in figure.panels}

        def supported(region) -> bool:
            if region.marker_ids:
                return True
            panel = panels.get(region.panel_id)
            if panel is None:
                return False
            diag = math.hypot(panel.box[2] - panel.box[0], panel.box[3] - panel.box[1]) or 1.0
            cx, cy = box_center(region.box)
            for m in figure.markers:
                if m.panel_id == region.panel_id:
                    mx, my = box_center(m.box)
                    if math.hypot(cx - mx, cy - my) / diag <= self.tau:
                        return True
            return False

        _filter(figure, "regions", supported)
        return figure


class Containment(BoxCleaner):
    """Regions must lie inside their panel: a region whose area inside the panel is under
    ``min_inside`` of its own area is removed; the others are clipped to the panel."""

    def __init__(self, min_inside: float = 0.6) -> None:
        self.min_inside = min_inside

    def clean(self, figure: Figure) -> Figure:
        panels = {p.id: p.box for p in figure.panels}
        kept = []
        for region in figure.regions:
            pb = panels.get(region.panel_id)
            if pb is None:
                continue
            b = region.box
            inside = box_clip(b, pb)
            area = box_area(b)
            if area <= 0 or box_area(inside) / area < self.min_inside:
                continue
            region.box = inside
            kept.append(region)
        figure.regions = kept
        return figure


class PhotoPanelsOnly(BoxCleaner):
    """Removes panels whose kind is not in ``kinds`` (the paper trains on photographic panels only)."""

    def __init__(self, kinds: Sequence[str] = ("photo",)) -> None:
        self.kinds = set(kinds)

    def clean(self, figure: Figure) -> Figure:
        _filter(figure, "panels", lambda p: p.kind in self.kinds)
        return figure


@hookimpl
def register_box_cleaners(register):
    register("clip_to_image", ClipToImage)
    register("drop_degenerate", DropDegenerate)
    register("box_nms", NonMaxSuppression)
    register("marker_gate", MarkerProximityGate)
    register("panel_containment", Containment)
    register("photo_panels_only", PhotoPanelsOnly)
