"""One demo figure: the drawing of its panels and markers and its exact ground truth."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from panel2patch.data import Box, Figure, Marker, Panel, Region
from panel2patch.errors import Panel2PatchError
from panel2patch.parsers.boxes import box_union

from .charts import render_chart
from .drawing import draw_label, label_extent
from .layout import (
    LabelStyle,
    allocate_cells,
    content_rect,
    nominal_size,
    panel_labels,
    plan_label_style,
    printed_label,
    random_layout,
)
from .markers import add_arrow, add_asterisk, add_box, add_inset, add_zoom_box
from .photos import PHOTO_SOURCES, bundled_sources, fitting_sources, render_photo, source_picture
from .plans import PanelPlan, Rect, pick
from .text import (
    PREAMBLE_EXTRAS,
    PREAMBLES,
    SHARED_SENTENCES,
    caption_groups,
    group_description,
    label_token,
    marker_clauses,
)

#: Bumped whenever the same seed would produce different figures.
GENERATOR_VERSION = 1

#: Figure sides stay within these bounds (pixels).
MIN_SIDE, MAX_SIDE = 400, 1400


@dataclass
class DemoFigure:
    """A generated figure: the image and its exact ground truth."""

    image: Image.Image
    figure: Figure

    def png(self) -> bytes:
        """The image encoded as PNG: the bytes written to ``images/<id>.png``."""
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()


def figure_id(index: int) -> str:
    """The id of figure ``index`` of a demo set (``demo-00000``)."""
    return f"demo-{index:05d}"


def make_figure(seed: int, index: int) -> DemoFigure:
    """Generate figure ``index`` of the demo set ``seed``; deterministic in ``(seed, index)``."""
    if seed < 0 or index < 0:
        raise Panel2PatchError(f"demo seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, seed, index]))
    for _ in range(50):  # re-draw layouts whose panels would be too small
        layout, tree = random_layout(rng)
        nx, ny = nominal_size(tree)
        cell_w = rng.uniform(170, 440)
        cell_h = cell_w * rng.uniform(0.7, 1.3)
        W = int(np.clip(nx * cell_w, MIN_SIDE, MAX_SIDE))
        H = int(np.clip(ny * cell_h, MIN_SIDE, MAX_SIDE))
        gutter_mode = pick(rng, ("wide", "wide", "narrow", "line"))
        low, high = {"wide": (8, 37), "narrow": (2, 5), "line": (1, 3)}[gutter_mode]
        gutter = int(rng.integers(low, high))
        margin = 0 if gutter_mode == "line" else int(rng.integers(0, 25))
        cells: list[Rect] = []
        allocate_cells(tree, Rect(margin, margin, W - margin, H - margin), gutter, cells)
        style = plan_label_style(rng, cells, layout)
        unlabelled = len(cells) == 1 and rng.random() < 0.5
        labels = panel_labels(style, cells)
        extents = [label_extent(style, printed_label(style, label)) for label in labels]
        strip = (max(e[0] for e in extents), max(e[1] for e in extents))
        if unlabelled:
            style = dataclasses.replace(style, outside="")
        contents = [content_rect(style, cell, strip) for cell in cells]
        if min(min(r.w, r.h) for r in contents) >= 90:
            break
    else:  # pragma: no cover - the layout space always has small enough grids
        raise Panel2PatchError(f"demo figure {index} (seed {seed}): no layout with panels >= 90 px found")

    background = style.background if gutter_mode != "line" else pick(rng, ((255, 255, 255), (0, 0, 0)))
    canvas = Image.new("RGB", (W, H), background)
    dark = background == (0, 0, 0)
    available = sorted(bundled_sources())
    if not available:
        raise Panel2PatchError(
            "none of the scikit-image pictures the demo uses "
            f"({', '.join(s.filename for s in PHOTO_SOURCES.values())}) is bundled in the installed "
            "scikit-image; install scikit-image>=0.24 from its wheel"
        )
    primary = pick(rng, available)
    plans: list[PanelPlan] = []
    for i, (cell, content) in enumerate(zip(cells, contents)):
        photo = rng.random() < 0.7 or len(cells) == 1
        plan = PanelPlan(i, cell, content, "photo" if photo else "chart")
        if photo:
            fitting = fitting_sources(available, content)
            plan.source = primary if rng.random() < 0.6 and primary in fitting else pick(rng, fitting)
        else:
            plan.chart = pick(rng, ("bar", "line", "scatter"))
        plans.append(plan)

    zoom_pairs: dict[int, int] = {}
    for i in range(len(plans) - 1):
        a, b = plans[i], plans[i + 1]
        roomy = min(a.content.w, a.content.h) >= 160
        if a.kind == b.kind == "photo" and not zoom_pairs and rng.random() < 0.3 and roomy:
            zoom_pairs[i] = i + 1
            b.source = a.source

    pictures: dict[int, Image.Image] = {}
    windows: dict[int, Box] = {}
    zoom_windows: dict[int, Box] = {}
    label_boxes: list[Box | None] = []
    for plan in plans:
        label = None if unlabelled else labels[plan.index]
        if plan.kind == "photo":
            if plan.index in zoom_windows:  # shows an area outlined in the previous panel
                picture = pictures[plan.index - 1]
                crop = picture.resize((plan.content.w, plan.content.h), Image.Resampling.BICUBIC,
                                      box=zoom_windows[plan.index])
            else:
                picture = source_picture(plan.source, rng)
                crop, windows[plan.index] = render_photo(plan, picture, rng)
            pictures[plan.index] = picture
            canvas.paste(crop, (plan.content.x0, plan.content.y0))
        else:
            reserve = (0, 0)
            if label is not None and not style.outside:
                need = label_extent(style, printed_label(style, label))[1] + max(3, style.font_size // 4) + 2
                reserve = (need, 0) if style.corner[0] == "t" else (0, need)
            chart_dark = dark and rng.random() < 0.5
            canvas.paste(render_chart(plan, rng, chart_dark, reserve), (plan.content.x0, plan.content.y0))
        label_box = draw_label(canvas, rng, style, plan, printed_label(style, label)) if label is not None else None
        label_boxes.append(label_box)
        if label_box is not None:
            plan.occupied.append(label_box)
        if plan.kind != "photo":
            continue
        if plan.index in zoom_pairs and plan.index in windows:
            area = add_zoom_box(canvas, rng, plan, plans[zoom_pairs[plan.index]], windows[plan.index])
            if area is not None:
                zoom_windows[zoom_pairs[plan.index]] = area
            else:  # no room for the outline: the next panel becomes an ordinary photo
                plans[zoom_pairs.pop(plan.index)].source = plan.source
        elif min(plan.content.w, plan.content.h) >= 200 and rng.random() < 0.3:
            add_inset(canvas, rng, plan, None if style.outside or label is None else style.corner)
        for _ in range(int(pick(rng, (0, 1, 1, 2, 2, 3, 4)))):
            kind = pick(rng, ("arrow", "arrow", "arrow", "asterisk", "box"))
            {"arrow": add_arrow, "asterisk": add_asterisk, "box": add_box}[kind](canvas, rng, plan)

    figure = _ground_truth(rng, seed, index, W, H, layout, style, plans, labels, label_boxes, unlabelled)
    return DemoFigure(canvas, figure)


def _ground_truth(rng: np.random.Generator, seed: int, index: int, W: int, H: int, layout: str,
                  style: LabelStyle, plans: list[PanelPlan], labels: list[str], label_boxes: list[Box | None],
                  unlabelled: bool) -> Figure:
    """Compose the caption from the grammar and turn the drawing plans into the Figure record."""
    preamble_parts = [] if rng.random() < 0.1 else [pick(rng, PREAMBLES)]
    if preamble_parts and rng.random() < 0.3:
        preamble_parts.append(pick(rng, PREAMBLE_EXTRAS))
    has_photo = any(p.kind == "photo" for p in plans)
    has_chart = any(p.kind == "chart" for p in plans)
    shared_parts = []
    if has_photo and rng.random() < 0.4:
        shared_parts.append(pick(rng, [s for s in SHARED_SENTENCES if s.startswith("Scale")]))
    if has_chart and rng.random() < 0.4:
        shared_parts.append(pick(rng, [s for s in SHARED_SENTENCES if s.startswith("Data")]))
    shared = " ".join(shared_parts)
    caption_style = pick(rng, ("paren", "paren", "comma", "close"))
    numbered = style.labels in ("numbered", "roman")

    segments: dict[int, tuple[str, dict[str, list[str]]]] = {}
    pieces = list(preamble_parts)
    for group in ([plans] if unlabelled else caption_groups(rng, plans, numbered)):
        group_labels = [labels[p.index] for p in group]
        clauses = marker_clauses(rng, group, labels)
        ordered = [c for kind in ("arrow", "asterisk", "box", "inset") for c in clauses.get(kind, [])]
        text = " ".join([group_description(rng, group), *ordered])
        pieces.append(text if unlabelled else f"{label_token(caption_style, group_labels, numbered, rng)} {text}")
        for p in group:
            segments[p.index] = (text, clauses)
    if shared:
        pieces.append(shared)
    caption = " ".join(pieces)
    preamble = " ".join(preamble_parts)
    if unlabelled:
        preamble = " ".join(preamble_parts + [segments[0][0]])

    panels, markers, regions = [], [], []
    for plan, label_box in zip(plans, label_boxes):
        text, clauses = segments[plan.index]
        segment = "" if unlabelled else text
        subcaption = " ".join(s for s in (preamble, segment, shared) if s)
        panels.append(Panel(
            id=f"p{plan.index}",
            box=plan.content.box() if label_box is None else box_union(plan.content.box(), label_box),
            label=None if unlabelled else labels[plan.index],
            label_box=label_box,
            kind=plan.kind,
            subcaption=subcaption,
            preamble=preamble or None,
            provenance=f"skimage.data.{plan.source}" if plan.kind == "photo" else f"chart:{plan.chart}",
        ))
        for m in plan.markers:
            mid = f"m{len(markers)}"
            markers.append(Marker(id=mid, kind=m.kind, box=m.box, panel_id=f"p{plan.index}", tip=m.tip,
                                  direction=m.direction, text=m.text))
            regions.append(Region(id=f"r{len(regions)}", panel_id=f"p{plan.index}", box=m.region, marker_ids=[mid],
                                  texts=list(clauses.get(m.kind, [])), provenance="demo"))
    return Figure(
        id=figure_id(index),
        width=W,
        height=H,
        caption=caption,
        source=f"panel2patch demo-data seed={seed}",
        panels=panels,
        markers=markers,
        regions=regions,
        components={"generator": {"name": "panel2patch.demo", "version": GENERATOR_VERSION, "seed": seed,
                                  "index": index, "layout": layout,
                                  "label_style": "none" if unlabelled else style.labels,
                                  "label_print": "none" if unlabelled else style.printed,
                                  "label_position": "none" if unlabelled else style.outside or "inside",
                                  "caption_style": "none" if unlabelled else caption_style}},
    )
