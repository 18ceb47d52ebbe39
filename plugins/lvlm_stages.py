"""Two mining stages of the LVLM data engine, each a kind of its own that runs after region mining, in this order:

* ``region_grounders`` (slot ``mine.grounding``): caption-grounded region proposals fused with the marker regions.
  ``lvlm_grounding`` asks, per panel with a sub-caption and at least one pointing marker (a panel without one
  would have every proposal gated out), for a box and a phrase for each area the sub-caption points at; the
  proposals go through the dual-path fusion of :class:`~panel2patch.plugins.regions.MarkerRegionMiner` (``tau``
  gate, ``dilation`` of unsupported marker regions, NMS). A kept proposal's texts are its phrase and the clauses of
  the marker regions that support it. Only the asked panels' regions change.
* ``describers`` (slot ``mine.descriptions``): ``lvlm_descriptions`` writes a short description of each panel and
  each region, given its caption text, into their ``description`` fields (the second text of a sample). By default
  (``group: panel``) one request per panel shows the panel crop with its regions as numbered boxes and gets the
  panel's and every region's description at once; ``group: crop`` asks once per panel crop and once per region
  crop (more detail on small regions, 1 + regions/panel times the requests).

Both send one batch per figure. With ``on_unusable: skip`` (default) a panel or region whose answer stays unusable
keeps what it had (counted as ``lvlm.<component>.skipped``); ``reject`` rejects the figure instead.
"""

from __future__ import annotations

from typing import Any, Literal

import pluggy

from panel2patch.components import FigureStage
from panel2patch.data import Figure, Region
from panel2patch.errors import Reject
from panel2patch.hookspecs import hookimpl, hookspec
from panel2patch.mining import count_diagnostic
from panel2patch.parsers.lvlm.answers import sanitise_boxes
from panel2patch.parsers.lvlm.engine import count_boxes, parsed, shared_engine
from panel2patch.parsers.lvlm.errors import UnresizableImageError
from panel2patch.parsers.lvlm.prompts import (
    DESCRIPTION_SCHEMA,
    GROUNDING_SCHEMA,
    PANEL_DESCRIPTION_SCHEMA,
    description_prompt,
    grounding_prompt,
    panel_description_prompt,
)
from panel2patch.parsers.lvlm.views import crop_view
from panel2patch.registry import Kind

from .regions import NOT_MINED, MarkerRegionMiner, numbered


class RegionGrounder(FigureStage):
    """Base class of the ``region_grounders`` kind: adds caption-grounded regions to a mined figure."""


class Describer(FigureStage):
    """Base class of the ``describers`` kind: writes the ``description`` of panels and regions."""


def _views(engine: Any, image: Any, boxes: list[tuple[str, Any]], component: str) -> list[tuple[str, Any, Any]]:
    """``(id, view, crop image)`` for each ``(id, box)`` that can be sent (the others are counted)."""
    out = []
    for item_id, box in boxes:
        try:
            out.append((item_id, *crop_view(image, box, item_id, engine.settings.max_pixels,
                                            engine.settings.min_pixels)))
        except UnresizableImageError:
            count_diagnostic(f"lvlm.{component}.unsendable")
    return out


def _unusable(component: str, what: str, result: Any, on_unusable: str) -> None:
    if on_unusable == "reject":
        raise Reject("lvlm_unusable_answer", f"the {component} answer for {what} stayed {result.status} after a "
                                             f"retry: {result.detail}")
    count_diagnostic(f"lvlm.{component}.skipped")


class LVLMRegionGrounder(RegionGrounder):
    """Caption-grounded proposals from an LVLM, fused with the marker regions (see the module docstring)."""

    component = "grounding"

    def __init__(self, engine: dict[str, Any], tau: float = 0.15, dilation: float = 1.5, nms_iou: float = 0.5,
                 max_tokens: int = 512, score: float = 0.9, on_unusable: Literal["skip", "reject"] = "skip") -> None:
        self.engine = shared_engine(engine)
        self.fusion = MarkerRegionMiner(tau=tau, dilation=dilation, nms_iou=nms_iou)
        self.max_tokens, self.score, self.on_unusable = max_tokens, score, on_unusable

    def process(self, figure: Figure, image: Any) -> Figure:
        pointed = {m.panel_id for m in figure.markers if m.panel_id is not None and m.kind not in NOT_MINED}
        asked = [p for p in figure.panels if p.id in pointed and (p.subcaption or "").strip()]
        views = _views(self.engine, image, [(p.id, p.box) for p in asked], self.component)
        by_id = {p.id: p for p in asked}
        requests = [self.engine.request(grounding_prompt(by_id[pid].label, by_id[pid].subcaption), image=crop,
                                        schema=GROUNDING_SCHEMA, max_tokens=self.max_tokens, task=self.component,
                                        view=view, figure=image) for pid, view, crop in views]
        proposals: list[Region] = []
        done: set[str] = set()
        for (pid, view, _), answer in zip(views, self.engine.ask(requests, self.component)):
            result = parsed(answer, self.component, "list", "regions")
            if not result.usable:
                _unusable(self.component, f"panel {pid}", result, self.on_unusable)
                continue
            done.add(pid)
            items, counts = sanitise_boxes(result.value, view, image.size, label_keys=("phrase",), require_label=True)
            count_boxes(counts, self.component)
            proposals += [Region(id="", panel_id=pid, box=item.box, texts=[item.label], score=self.score,
                                 provenance="lvlm_grounding") for item in items]
        count_diagnostic(f"lvlm.{self.component}.proposals", len(proposals))
        if not done:
            return figure
        mine = [r for r in figure.regions if r.panel_id in done]
        clauses = {m: r.texts for r in mine for m in r.marker_ids}
        fused = self.fusion.fuse(figure, mine, proposals)
        for region in fused:
            if region.provenance == "lvlm_grounding":
                region.texts += [t for m in region.marker_ids for t in clauses.get(m, ()) if t not in region.texts]
        kept = sum(r.provenance == "lvlm_grounding" for r in fused)
        count_diagnostic(f"lvlm.{self.component}.kept", kept)
        figure.regions = numbered([r for r in figure.regions if r.panel_id not in done] + fused)
        return figure


class LVLMDescriber(Describer):
    """Short LVLM descriptions of panel and region crops (see the module docstring); ``max_words`` cuts longer
    ones."""

    component = "descriptions"

    def __init__(self, engine: dict[str, Any], panels: bool = True, regions: bool = True,
                 group: Literal["panel", "crop"] = "panel", max_tokens: int = 96, max_words: int = 40,
                 on_unusable: Literal["skip", "reject"] = "skip") -> None:
        self.engine = shared_engine(engine)
        self.panels, self.regions, self.group = panels, regions, group
        self.max_tokens, self.max_words, self.on_unusable = max_tokens, max_words, on_unusable

    def process(self, figure: Figure, image: Any) -> Figure:
        return self._by_panel(figure, image) if self.group == "panel" else self._by_crop(figure, image)

    def _text(self, value: Any) -> str | None:
        words = value.split() if isinstance(value, str) else []
        if len(words) > self.max_words:
            count_diagnostic(f"lvlm.{self.component}.shortened")
        return " ".join(words[: self.max_words]) or None

    def _by_panel(self, figure: Figure, image: Any) -> Figure:
        """One request per panel: the panel crop, its caption text and its regions as numbered boxes in the crop's
        pixels (Set-of-Marks); the answer describes the panel and each region."""
        inside = {p.id: [r for r in figure.regions if r.panel_id == p.id] if self.regions else [] for p in figure.panels}
        asked = [p for p in figure.panels if self.panels or inside[p.id]]
        views = _views(self.engine, image, [(p.id, p.box) for p in asked], self.component)
        by_id = {p.id: p for p in asked}
        requests = []
        for pid, view, crop in views:
            panel, regions = by_id[pid], inside[pid]
            marks = [(n, [round(v) for v in view.to_view(r.box)], " ".join(r.texts)) for n, r in enumerate(regions)]
            requests.append(self.engine.request(
                panel_description_prompt(panel.label, panel.subcaption or "", marks), image=crop,
                schema=PANEL_DESCRIPTION_SCHEMA, max_tokens=self.max_tokens * (1 + len(regions)),
                task=self.component, view=view, figure=image, regions=[r.box for r in regions]))
        for (pid, _, _), answer in zip(views, self.engine.ask(requests, self.component)):
            result = parsed(answer, self.component, "object")
            if not result.usable:
                _unusable(self.component, f"panel {pid}", result, self.on_unusable)
                continue
            value, regions = result.value, inside[pid]
            text = self._text(value.get("description"))
            if self.panels and text:
                by_id[pid].description = text
            elif self.panels:
                count_diagnostic(f"lvlm.{self.component}.missing")
            listed = value.get("regions") if isinstance(value.get("regions"), list) else []
            described = {item["region"]: item.get("description") for item in listed
                         if isinstance(item, dict) and type(item.get("region")) is int}  # not a bool
            count_diagnostic(f"lvlm.{self.component}.unknown_region", len(set(described) - set(range(len(regions)))))
            for n, region in enumerate(regions):
                region_text = self._text(described.get(n))
                if region_text:
                    region.description = region_text
                else:
                    count_diagnostic(f"lvlm.{self.component}.missing")
        return figure

    def _by_crop(self, figure: Figure, image: Any) -> Figure:
        """One request per panel crop and per region crop."""
        items: dict[str, Any] = {}
        boxes, prompts = [], {}
        if self.panels:
            for p in figure.panels:
                items[p.id] = p
                boxes.append((p.id, p.box))
                prompts[p.id] = description_prompt(f"panel {p.label}" if p.label else "a panel", p.subcaption or "")
        if self.regions:
            for r in figure.regions:
                key = f"{r.panel_id}/{r.id}"
                items[key] = r
                boxes.append((key, r.box))
                prompts[key] = description_prompt("a marked region of a panel", " ".join(r.texts))
        views = _views(self.engine, image, boxes, self.component)
        requests = [self.engine.request(prompts[key], image=crop, schema=DESCRIPTION_SCHEMA,
                                        max_tokens=self.max_tokens, task=self.component, view=view, figure=image)
                    for key, view, crop in views]
        for (key, _, _), answer in zip(views, self.engine.ask(requests, self.component)):
            result = parsed(answer, self.component, "object")
            text = self._text(result.value.get("description")) if result.usable else None
            if text is None:
                if result.usable:
                    result.status, result.detail = "empty", "no description text"
                _unusable(self.component, key, result, self.on_unusable)
                continue
            items[key].description = text
        return figure


GROUNDERS = Kind("region_grounders", "register_region_grounders", RegionGrounder, "mine.grounding")
DESCRIBERS = Kind("describers", "register_describers", Describer, "mine.descriptions")


class StageSpecs:
    """Hook specs of the LVLM mining stages."""

    @hookspec
    def register_region_grounders(self, register):
        """Register region grounders: factories of :class:`RegionGrounder`."""

    @hookspec
    def register_describers(self, register):
        """Register describers: factories of :class:`Describer`."""


@hookimpl
def add_hookspecs(pluginmanager: pluggy.PluginManager):
    pluginmanager.add_hookspecs(StageSpecs)


@hookimpl
def register_kinds(register):
    register(GROUNDERS.name, GROUNDERS)
    register(DESCRIBERS.name, DESCRIBERS)


@hookimpl
def register_region_grounders(register):
    register("lvlm_grounding", LVLMRegionGrounder)


@hookimpl
def register_describers(register):
    register("lvlm_descriptions", LVLMDescriber)
