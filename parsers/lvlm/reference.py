"""Backend ``reference``: answers from reference annotations, as a perfect model would give them.

For a set of annotated figures (``panel2patch demo-data`` output, or any folder index with Figure JSON annotations)
it answers every request of the LVLM components with the annotated panels, markers, caption units and regions, in
the view's pixels and in the format the prompts ask for. It records answer caches for tests and demos (replay them
with ``recorded``), and it measures what the engine's calls and answers cost on annotated figures without a model.

Requests name their figure through ``metadata``: ``figure`` (the decoded figure image, matched by pixel hash),
``caption`` (for text-only caption requests), ``view`` (the :class:`~.views.View`) and ``task`` (the component).
A request of a figure it has no annotation for raises :class:`~.errors.MissingAnswerError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panel2patch.data import Figure
from panel2patch.errors import Panel2PatchError
from panel2patch.parsers.boxes import box_inside_share, box_iou

from .cache import Answer, Backend, Request
from .errors import MissingAnswerError
from .views import View, image_sha256

KIND_NAMES = {"symbol": "asterisk", "label": None}


class ReferenceBackend(Backend):
    """Answers from the Figure JSON under ``annotations`` for the images of the folder index ``index`` (JSONL of
    ``{"id", "image"}``, image paths relative to the index), the layout ``panel2patch demo-data`` writes."""

    name = "reference"

    def __init__(self, annotations: str, index: str) -> None:
        from PIL import Image

        from panel2patch.parsers.tools.scoring import load_figures

        self.figures = load_figures(annotations)
        self.by_sha: dict[str, Figure] = {}
        self.by_caption = {f.caption.strip(): f for f in self.figures.values()}
        root = Path(index).parent
        try:
            lines = Path(index).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise Panel2PatchError(f"reference index {index}: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                figure = self.figures.get(entry.get("id")) if isinstance(entry, dict) else None
                if figure is not None:
                    with Image.open(root / str(entry["image"])) as image:
                        self.by_sha[image_sha256(image.convert("RGB"))] = figure
            except (ValueError, KeyError, OSError) as exc:  # OSError: unreadable or not an image
                raise Panel2PatchError(f"reference index {index}: line {number}: {type(exc).__name__}: {exc}") from None
        self._last: tuple[Any, str] | None = None

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        return [Answer(json.dumps(self._answer(r)), "stop", backend=self.name) for r in requests]

    def _figure(self, request: Request) -> Figure:
        meta = request.metadata
        if "figure" in meta:
            image = meta["figure"]
            if self._last is None or self._last[0] is not image:  # the image itself is kept: ids are reused
                self._last = (image, image_sha256(image))
            figure = self.by_sha.get(self._last[1])
        else:
            figure = self.by_caption.get(str(meta.get("caption", "")).strip())
        if figure is None:
            raise MissingAnswerError(f"reference backend: no annotated figure for {meta.get('task')} request")
        return figure

    def _answer(self, request: Request) -> dict[str, Any]:
        figure, task, view = self._figure(request), request.metadata.get("task"), request.metadata.get("view")
        if task == "splitter":
            return {"units": _units(figure, request.metadata.get("units", []))}
        if not isinstance(view, View):
            raise MissingAnswerError(f"reference backend: a {task} request without its view")
        if task == "panels":
            panels = [p for p in figure.panels if box_inside_share(p.box, view.crop) >= 0.9]
            return {"panels": [{"bbox_2d": _box(view, p.box), "label": p.label,
                                "kind": p.kind if p.kind in ("photo", "chart", "diagram") else "other"} for p in panels]}
        if task == "markers":
            out = []
            for m in figure.markers:
                kind = KIND_NAMES.get(m.kind, m.kind)
                if kind and _centre_in(m.box, view.crop):
                    tip = None if m.tip is None else [round(v) for v in view.to_view((*m.tip, *m.tip))[:2]]
                    out.append({"bbox_2d": _box(view, m.box), "kind": kind, "tip": tip})
            return {"markers": out}
        if task == "grounding":
            return {"regions": [{"bbox_2d": _box(view, r.box), "phrase": r.texts[0]} for r in figure.regions
                                if r.texts and _centre_in(r.box, view.crop)]}
        if task == "descriptions" and "regions" in request.metadata:
            regions = [View(f"r{n}", "crop", tuple(box), (1, 1), view.image_size)
                       for n, box in enumerate(request.metadata["regions"])]
            return {"description": _description(figure, view),
                    "regions": [{"region": n, "description": _description(figure, r)} for n, r in enumerate(regions)]}
        if task == "descriptions":
            return {"description": _description(figure, view)}
        raise MissingAnswerError(f"reference backend: unknown task {task!r}")


def _box(view: View, box: Any) -> list[int]:
    x0, y0, x1, y1 = view.to_view(box)
    w, h = view.size
    return [max(0, round(x0)), max(0, round(y0)), min(w, round(x1)), min(h, round(y1))]


def _centre_in(box: Any, crop: Any) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return crop[0] <= cx <= crop[2] and crop[1] <= cy <= crop[3]


def _units(figure: Figure, units: Sequence[str]) -> list[dict[str, Any]]:
    """Each unit with the labels of the panels whose reference sub-caption holds its text (token removed)."""
    out = []
    from .captions import without_opening_token

    for i, unit in enumerate(units):
        body = without_opening_token(unit, (0, len(unit)))
        labels = [p.label for p in figure.panels if p.label and body and body in (p.subcaption or "")]
        shared = any(body and body in (p.preamble or "") for p in figure.panels)
        everyone = len(labels) == len([p for p in figure.panels if p.label]) and len(labels) > 1
        out.append({"unit": i, "labels": [] if shared or everyone else labels})
    return out


def _description(figure: Figure, view: View) -> str:
    """The annotated description (else a templated one) of the annotated panel or region the view shows best."""
    items = [*figure.panels, *figure.regions]
    best = max(items, key=lambda item: box_iou(item.box, view.crop), default=None)
    if best is None or box_iou(best.box, view.crop) < 0.3:
        return "A part of the figure."
    if best.description:
        return best.description
    if best in figure.panels:
        return f"A {best.kind} panel{f' labelled {best.label}' if best.label else ''}."
    return f"The area marked in the panel: {best.texts[0] if best.texts else 'unnamed'}"
