"""Figure parser ``lvlm_panels``: Set-of-Marks panel proposals from a Qwen2.5-VL-style model.

The model boxes every panel and reads its printed label as the identifier, on the full figure first. Where that
answer disagrees with the labels the caption names (a label missing or extra, a box without a label, no box at all),
the same question goes to ``scales`` re-scaled and ``crops`` cropped views of the figure, all in one batch
(``extra_views: always`` sends them every time, ``never`` never). Boxes of all views are merged per label: boxes of
one label that overlap at ``merge_iou`` form a cluster whose votes are the views that found it, its box the
coordinate-wise median; each label keeps its best-voted cluster (one panel per printed label), clusters of two labels
that overlap at ``conflict_iou`` keep the better voted, and unlabelled boxes survive only away from labelled panels.
A box that a crop view cuts (touching a crop edge inside the figure) is left out. Labels are kept in the
caption's spelling; a printed sub-panel of a caption label (``Aii`` where the caption names ``(Ai–ii)``) is kept as
printed, other labels the caption does not name are dropped. A figure whose answers all stay
unusable is rejected (``lvlm_unusable_answer``); a usable answer with no box gives one panel covering the figure.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from panel2patch.components import FigureParser
from panel2patch.data import Box, FigureParse, Panel
from panel2patch.errors import Reject
from panel2patch.mining import count_diagnostic
from panel2patch.parsers.boxes import box_area, box_inside_share, box_iou, box_nms

from .answers import normalise_label, sanitise_boxes
from .engine import count_boxes, parsed, shared_engine
from .prompts import PANEL_KINDS, PANEL_SCHEMA, panels_prompt
from .views import View, make_views

COMPONENT = "panels"


@dataclass
class _Found:
    box: Box
    label: str | None
    kind: str
    view: str


def caption_labels(caption: str | None) -> list[str]:
    """The panel labels the caption names, in caption order (by the rule-based splitter; position words excluded)."""
    if not caption:
        return []
    from panel2patch.parsers.captions.splitter import LabelCaptionSplitter

    keys = LabelCaptionSplitter().split(caption, None).segments
    return [k for k in keys if k.isalnum() and len(k) <= 4]


def _parent(label: str) -> str:
    from panel2patch.parsers.captions.tokens import sub_panel

    parent = sub_panel(label)
    return normalise_label(parent[0] if parent else label)


class SetOfMarksPanelParser(FigureParser):
    """Panels with their printed labels and kinds from an LVLM (see the module docstring). ``engine``: the recipe's
    ``lvlm`` settings; ``scales``/``crops``: the extra views (``scale_range``/``crop_range`` as in
    :func:`~.views.make_views`, drawn from ``seed``); ``min_votes``: views a cluster needs when extra views were sent;
    ``max_tokens``: the answer budget (one retry with more when cut off)."""

    def __init__(self, engine: dict[str, Any], extra_views: Literal["disagree", "always", "never"] = "disagree",
                 scales: int = 1, crops: int = 2, scale_range: tuple[float, float] = (0.6, 0.9),
                 crop_range: tuple[float, float] = (0.55, 0.8), seed: int = 0, merge_iou: float = 0.5,
                 conflict_iou: float = 0.7, min_votes: int = 1, max_tokens: int = 1024) -> None:
        if scales < 0 or crops < 0 or min_votes < 1:
            raise ValueError("scales and crops must be >= 0 and min_votes >= 1")
        self.engine = shared_engine(engine)
        self.extra_views, self.scales, self.crops = extra_views, scales, crops
        self.scale_range, self.crop_range, self.seed = tuple(scale_range), tuple(crop_range), seed
        self.merge_iou, self.conflict_iou, self.min_votes, self.max_tokens = merge_iou, conflict_iou, min_votes, max_tokens

    def parse(self, image: Any, caption: str | None) -> FigureParse:
        labels = caption_labels(caption)
        settings = self.engine.settings
        views = make_views(image, max_pixels=settings.max_pixels, min_pixels=settings.min_pixels, crops=self.crops,
                           scales=self.scales, seed=f"{self.seed}:{image.width}x{image.height}",
                           scale_range=self.scale_range, crop_range=self.crop_range)
        prompt = panels_prompt(labels)
        found, statuses = self._ask(image, views[:1], prompt, labels)
        extra = views[1:] if self.extra_views == "always" or (
            self.extra_views == "disagree" and not _agrees(found, labels, statuses)) else []
        if extra:
            count_diagnostic(f"lvlm.{COMPONENT}.extra_views", len(extra))
            more, more_statuses = self._ask(image, extra, prompt, labels)
            found += more
            statuses += more_statuses
        if not any(s in ("ok", "repaired") for s in statuses):
            raise Reject("lvlm_unusable_answer", f"panel answers of {len(statuses)} views stayed unusable after a "
                                                 f"retry ({', '.join(statuses)})")
        panels = self._merge(found, labels, 1 + len(extra), image.size)
        return FigureParse(width=image.width, height=image.height, panels=panels)

    def _ask(self, image: Any, views: list[tuple[View, Any]], prompt: str,
             labels: list[str]) -> tuple[list[_Found], list[str]]:
        size = image.size
        requests = [self.engine.request(prompt, image=img, schema=PANEL_SCHEMA, max_tokens=self.max_tokens,
                                        task=COMPONENT, view=view, figure=image) for view, img in views]
        found, statuses = [], []
        for (view, _), answer in zip(views, self.engine.ask(requests, COMPONENT)):
            result = parsed(answer, COMPONENT, "list", "panels")
            statuses.append(result.status)
            if not result.usable:
                continue
            items, counts = sanitise_boxes(result.value, view, size, caption_labels=labels or None, whole_iou=None)
            count_boxes(counts, COMPONENT)
            for item in items:
                if view.kind == "crop" and _cut_by(item.box, view, size):
                    count_diagnostic(f"lvlm.{COMPONENT}.box.cut_by_view")
                    continue
                kind = str(item.extra.get("kind", "other")).strip().lower()
                found.append(_Found(item.box, item.label, kind if kind in PANEL_KINDS else "other", view.name))
        return found, statuses

    def _merge(self, found: list[_Found], labels: list[str], n_views: int, size: tuple[int, int]) -> list[Panel]:
        whole = (0.0, 0.0, float(size[0]), float(size[1]))
        parts = [f for f in found if box_iou(f.box, whole) < 0.95]
        if len(parts) < len(found) and parts:
            count_diagnostic(f"lvlm.{COMPONENT}.box.whole_image", len(found) - len(parts))
            found = parts
        clusters: dict[str | None, list[list[_Found]]] = defaultdict(list)
        for f in sorted(found, key=lambda f: f.view != "full"):
            key = normalise_label(f.label) if f.label else None
            groups = clusters[key]
            home = next((g for g in groups if box_iou(g[0].box, f.box) >= self.merge_iou), None)
            groups.append([f]) if home is None else home.append(f)
        need = self.min_votes if n_views > 1 else 1
        best: list[tuple[list[_Found], int]] = []
        for key, groups in clusters.items():
            scored = [(g, len({f.view for f in g})) for g in groups]
            voted = [(g, v) for g, v in scored if v >= need]
            count_diagnostic(f"lvlm.{COMPONENT}.few_votes", len(scored) - len(voted))
            if key is not None and len(voted) > 1:  # one panel per printed label: the best-voted cluster
                count_diagnostic(f"lvlm.{COMPONENT}.duplicate_label", len(voted) - 1)
                voted = [max(voted, key=lambda gv: (gv[1], any(f.view == "full" for f in gv[0]), box_area(gv[0][0].box)))]
            best += voted
        labelled = [(g, v) for g, v in best if g[0].label is not None]
        keep = box_nms([_median(g) for g, _ in labelled], [float(v) for _, v in labelled], self.conflict_iou)
        if len(keep) < len(labelled):
            count_diagnostic(f"lvlm.{COMPONENT}.label_conflicts", len(labelled) - len(keep))
        chosen = [labelled[k] for k in sorted(keep)]
        for g, v in (gv for gv in best if gv[0][0].label is None):
            if all(box_inside_share(_median(g), _median(c)) < 0.3 for c, _ in chosen):
                chosen.append((g, v))
            else:
                count_diagnostic(f"lvlm.{COMPONENT}.unlabelled_overlap")
        if not chosen:
            count_diagnostic(f"lvlm.{COMPONENT}.no_panels")
            return [Panel(id="p0", box=whole, provenance="lvlm_panels:no_panels")]
        order = {normalise_label(lab): i for i, lab in enumerate(labels)}
        chosen.sort(key=lambda gv: (order.get(_parent(gv[0][0].label or ""), len(order)),
                                    round(_median(gv[0])[1] / max(size[1], 1) * 10), _median(gv[0])[0]))
        panels = []
        for n, (g, votes) in enumerate(chosen):
            kind = Counter(f.kind for f in g).most_common(1)[0][0]
            panels.append(Panel(id=f"p{n}", box=_median(g), label=g[0].label, kind="unknown" if kind == "other" else kind,
                                score=round(votes / n_views, 4), provenance=f"lvlm_panels:votes={votes}/{n_views}"))
        return panels


def _median(group: list[_Found]) -> Box:
    return tuple(statistics.median(f.box[i] for f in group) for i in range(4))  # type: ignore[return-value]


def _agrees(found: list[_Found], labels: list[str], statuses: list[str]) -> bool:
    """Whether the full view's answer needs no second opinion: usable, with boxes, and (when the caption names
    labels) exactly the caption's labels, each once (sub-panels ``Ai``, ``Aii`` standing for ``A``), and no
    unlabelled box."""
    if not statuses or statuses[0] not in ("ok", "repaired") or not found:
        return False
    if not labels:
        return True
    got = [normalise_label(f.label) if f.label else None for f in found]
    if None in got or len(set(got)) < len(got):
        return False
    return {_parent(f.label) for f in found} == {normalise_label(lab) for lab in labels}


def _cut_by(box: Box, view: View, size: tuple[int, int], margin: float = 0.01) -> bool:
    """Whether ``box`` touches an edge of the crop ``view`` that lies inside the figure (the panel goes on outside)."""
    cx0, cy0, cx1, cy1 = view.crop
    mx, my = margin * (cx1 - cx0), margin * (cy1 - cy0)
    return ((cx0 > 0 and box[0] <= cx0 + mx) or (cy0 > 0 and box[1] <= cy0 + my)
            or (cx1 < size[0] and box[2] >= cx1 - mx) or (cy1 < size[1] and box[3] >= cy1 - my))
