"""Granularity levels: figure (M), panel (P) and region (R) samples of a mined figure.

All boxes are figure pixels. A panel's text is its sub-caption, optionally followed by its short
description; the figure's shared preamble, which the sub-caption starts with, is moved behind the panel's
own segment by default (``preamble="after"``) so that truncation to the text encoder's context length
drops shared words before panel-specific ones (``"before"`` keeps caption order, ``"drop"`` removes it).
A region's texts are its caption clauses, one picked at random per use. Boxes smaller than ``min_size`` pixels on a side are not used, nor are
panels or regions without text.
"""

from __future__ import annotations

from panel2patch.components import GranularityLevel
from panel2patch.data import Box, Figure, LevelSample, Node, Panel, Region
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.boxes import box_clip, box_dilate


def _big_enough(box: Box, min_size: float) -> bool:
    return box[2] - box[0] >= min_size and box[3] - box[1] >= min_size


PREAMBLE_PLACES = ("after", "before", "drop")


def panel_texts(panel: Panel, use_description: bool, preamble: str = "after") -> tuple[str, ...]:
    text = (panel.subcaption or "").strip()
    shared = (panel.preamble or "").strip()
    if preamble != "before" and shared and text.startswith(shared):
        segment = text[len(shared):].strip()
        text = segment if preamble == "drop" or not segment else f"{segment} {shared}"
    if use_description and panel.description and panel.description.strip():
        text = f"{text} {panel.description.strip()}".strip()
    return (text,) if text else ()


def _check_place(preamble: str) -> str:
    if preamble not in PREAMBLE_PLACES:
        raise ValueError(f"preamble must be one of {', '.join(PREAMBLE_PLACES)}, got {preamble!r}")
    return preamble


def region_texts(region: Region, use_description: bool = False) -> tuple[str, ...]:
    """The region's caption clauses, then (with ``use_description``) its description as one more candidate text."""
    texts = [t.strip() for t in region.texts if t and t.strip()]
    if use_description and region.description and region.description.strip() not in texts:
        texts.append(region.description.strip())
    return tuple(texts)


class FigureLevel(GranularityLevel):
    """Level M: the whole figure with its caption; children are its panels."""

    name = "figure"
    code = "M"

    def __init__(self, use_description: bool = True, min_size: float = 8.0, preamble: str = "after") -> None:
        self.use_description = use_description
        self.min_size = min_size
        self.preamble = _check_place(preamble)

    def samples(self, figure: Figure) -> list[LevelSample]:
        caption = (figure.caption or "").strip()
        if not caption:
            return []
        children = tuple(
            Node(p.id, p.box, texts)
            for p in figure.panels
            if _big_enough(p.box, self.min_size) and (texts := panel_texts(p, self.use_description, self.preamble))
        )
        box = (0.0, 0.0, float(figure.width), float(figure.height))
        return [LevelSample(self.name, figure.id, box, (caption,), children=children)]


class PanelLevel(GranularityLevel):
    """Level P: each panel crop with its sub-caption; children are the panel's regions."""

    name = "panel"
    code = "P"

    def __init__(self, use_description: bool = True, min_size: float = 16.0, region_min_size: float = 4.0,
                 region_pad: float = 0.0, preamble: str = "after") -> None:
        self.use_description = use_description
        self.preamble = _check_place(preamble)
        self.min_size = min_size
        self.region_min_size = region_min_size
        self.region_pad = region_pad

    def samples(self, figure: Figure) -> list[LevelSample]:
        out = []
        for panel in figure.panels:
            texts = panel_texts(panel, self.use_description, self.preamble)
            if not texts or not _big_enough(panel.box, self.min_size):
                continue
            children = tuple(
                Node(r.id, box_clip(box_dilate(r.box, 1 + 2 * self.region_pad), panel.box), rt)
                for r in figure.regions
                if r.panel_id == panel.id and _big_enough(r.box, self.region_min_size) and (rt := region_texts(r, self.use_description))
            )
            out.append(LevelSample(self.name, panel.id, panel.box, texts, children=children))
        return out


class RegionLevel(GranularityLevel):
    """Level R: each region crop with one of its caption clauses; its parent is the panel holding it."""

    name = "region"
    code = "R"

    def __init__(self, use_description: bool = True, min_size: float = 4.0, pad: float = 0.0,
                 preamble: str = "after") -> None:
        self.use_description = use_description
        self.min_size = min_size
        self.pad = pad
        self.preamble = _check_place(preamble)

    def samples(self, figure: Figure) -> list[LevelSample]:
        panels = {p.id: p for p in figure.panels}
        out = []
        for region in figure.regions:
            texts = region_texts(region, self.use_description)
            panel = panels.get(region.panel_id)
            if not texts or panel is None or not _big_enough(region.box, self.min_size):
                continue
            parent_texts = panel_texts(panel, self.use_description, self.preamble) or texts
            parent = Node(panel.id, panel.box, parent_texts)
            box = box_clip(box_dilate(region.box, 1 + 2 * self.pad), panel.box)
            out.append(LevelSample(self.name, region.id, box, texts, parent=parent))
        return out


@hookimpl
def register_levels(register):
    register("figure", FigureLevel)
    register("panel", PanelLevel)
    register("region", RegionLevel)
