"""Markers drawn into photo panels: arrows, asterisks, boxes, insets and the boxes of enlarged areas.

Each ``add_*`` draws its marker (an inset comes with the box outlining its source area) and appends
the plans, with their regions, to ``plan.markers``; it draws nothing when it finds no free room.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from panel2patch.data import Box
from panel2patch.parsers.boxes import box_clip, box_contains

from .drawing import (
    centred_text,
    contrasting_ink,
    draw_box,
    draw_text_at,
    load_font,
    luma,
    stamp,
    text_footprint,
    text_size,
)
from .plans import MarkerPlan, PanelPlan, pick
from .text import MARKER_TEXTS


def _overlaps(box: Box, others: list[Box], margin: float = 4.0) -> bool:
    return any(
        box[0] < o[2] + margin and o[0] < box[2] + margin and box[1] < o[3] + margin and o[1] < box[3] + margin
        for o in others
    )


def _place(rng: np.random.Generator, plan: PanelPlan, make, tries: int = 40):
    """Sample ``make(rng)`` until its footprint lies 2 px inside the content, clear of occupied boxes."""
    for _ in range(tries):
        item = make(rng)
        if item is None:
            continue
        footprint = item[0]
        if box_contains(plan.content.edges(), footprint, pad=-2) and not _overlaps(footprint, plan.occupied):
            return item
    return None


def _arrow_polygons(tip: tuple[float, float], direction: float, length: float, width: float):
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    head = max(8.0, 0.35 * length)
    half_head = 0.55 * head
    tail = (tip[0] - ux * length, tip[1] - uy * length)
    base = (tip[0] - ux * head, tip[1] - uy * head)
    shaft = [
        (tail[0] + nx * width / 2, tail[1] + ny * width / 2),
        (base[0] + nx * width / 2, base[1] + ny * width / 2),
        (base[0] - nx * width / 2, base[1] - ny * width / 2),
        (tail[0] - nx * width / 2, tail[1] - ny * width / 2),
    ]
    triangle = [tip, (base[0] + nx * half_head, base[1] + ny * half_head),
                (base[0] - nx * half_head, base[1] - ny * half_head)]
    return shaft, triangle, tail


def _bounds(points: list[tuple[float, float]], pad: float = 1.0) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad + 1, max(ys) + pad + 1)


def add_arrow(canvas: Image.Image, rng: np.random.Generator, plan: PanelPlan) -> None:
    """An arrow pointing into the image, sometimes with a text at its tail."""
    c = plan.content
    side = min(c.w, c.h)
    length = float(np.clip(side * rng.uniform(0.12, 0.25), 25, 110))
    width = max(2.0, round(length / 16))
    compass = rng.random() < 0.6
    direction = float(pick(rng, (0, 45, 90, 135, 180, 225, 270, 315))) if compass else float(rng.uniform(0, 360))
    text = pick(rng, MARKER_TEXTS) if rng.random() < 0.25 else None
    font = load_font(int(np.clip(side / 18, 10, 18)))

    def make(r: np.random.Generator):
        tip = (float(r.uniform(c.x0 + 6, c.x1 - 6)), float(r.uniform(c.y0 + 6, c.y1 - 6)))
        shaft, triangle, tail = _arrow_polygons(tip, direction, length, width)
        foot = _bounds(shaft + triangle)
        label_foot = None
        if text:
            left, top, right, bottom = text_size(text, font)
            ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
            reach = 4 + abs(ux) * (right - left) / 2 + abs(uy) * (bottom - top) / 2
            centre = (tail[0] - ux * reach, tail[1] - uy * reach)
            label_foot = text_footprint(text, font, centre)
            if not box_contains(c.edges(), label_foot, pad=-2) or _overlaps(label_foot, plan.occupied):
                return None
        return foot, tip, shaft, triangle, label_foot

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, tip, shaft, triangle, label_foot = placed
    ink = contrasting_ink(rng, canvas, _bounds(shaft + triangle, 6))

    def shape(d: ImageDraw.ImageDraw) -> None:
        d.polygon([(x - c.x0, y - c.y0) for x, y in shaft], fill=255)
        d.polygon([(x - c.x0, y - c.y0) for x, y in triangle], fill=255)

    box = stamp(canvas, c, ink, shape)
    if box is None:
        return
    if label_foot is not None:
        centre = ((label_foot[0] + label_foot[2]) / 2, (label_foot[1] + label_foot[3]) / 2)
        draw_text_at(canvas, plan, text, font, centre, ink)
        plan.occupied.append(label_foot)
    plan.occupied.append(box)
    half = float(np.clip(0.8 * length, 24, 96)) / 2
    region = box_clip((tip[0] - half, tip[1] - half, tip[0] + half, tip[1] + half), c.edges())
    plan.markers.append(MarkerPlan("arrow", box, region, tip=tip, direction=direction % 360.0,
                                   text=text if label_foot else None))


def add_asterisk(canvas: Image.Image, rng: np.random.Generator, plan: PanelPlan) -> None:
    """An asterisk, as a ``*`` glyph or as drawn strokes."""
    c = plan.content
    size = float(np.clip(min(c.w, c.h) * rng.uniform(0.05, 0.09), 12, 32))
    glyph = rng.random() < 0.5
    arms = int(pick(rng, (3, 4)))
    stroke = max(2, int(size / 8))

    def make(r: np.random.Generator):
        centre = (float(r.uniform(c.x0, c.x1)), float(r.uniform(c.y0, c.y1)))
        return (centre[0] - size, centre[1] - size, centre[0] + size, centre[1] + size), centre

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, (cx, cy) = placed
    ink = contrasting_ink(rng, canvas, (cx - size, cy - size, cx + size, cy + size))
    lx, ly = cx - c.x0, cy - c.y0

    def shape(d: ImageDraw.ImageDraw) -> None:
        if glyph:
            centred_text(d, (lx, ly), "*", load_font(int(size * 2.2)))
            return
        for i in range(arms):
            a = math.pi * i / arms + math.pi / 2
            dx, dy = math.cos(a) * size / 2, math.sin(a) * size / 2
            d.line((lx - dx, ly - dy, lx + dx, ly + dy), fill=255, width=stroke)

    box = stamp(canvas, c, ink, shape)
    if box is None:
        return
    plan.occupied.append(box)
    bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 1.5 * max(box[2] - box[0], box[3] - box[1])
    plan.markers.append(MarkerPlan("asterisk", box, box_clip((bx - half, by - half, bx + half, by + half), c.edges())))


def add_box(canvas: Image.Image, rng: np.random.Generator, plan: PanelPlan) -> None:
    """A solid or dashed rectangle outline, sometimes with a text above it."""
    c = plan.content
    width = int(rng.integers(1, 4))
    dash = (int(rng.integers(5, 11)), int(rng.integers(3, 7))) if rng.random() < 0.5 else None
    text = pick(rng, MARKER_TEXTS) if rng.random() < 0.2 else None
    font = load_font(int(np.clip(min(c.w, c.h) / 18, 10, 18)))
    text_w, text_h = text_size(text, font)[2:] if text else (0, 0)

    def make(r: np.random.Generator):
        bw, bh = int(c.w * r.uniform(0.15, 0.4)), int(c.h * r.uniform(0.15, 0.4))
        x0, y0 = int(r.integers(c.x0, c.x1 - bw)), int(r.integers(c.y0 + text_h + 4, c.y1 - bh))
        rect = (x0, y0, x0 + bw, y0 + bh)
        foot = (float(x0), float(y0 - (text_h + 4 if text else 0)), float(x0 + max(bw, text_w)), float(y0 + bh))
        return foot, rect

    if min(c.w, c.h) < 60 or c.h - text_h - 4 <= int(c.h * 0.4):
        return
    placed = _place(rng, plan, make)
    if placed is None:
        return
    foot, rect = placed
    ink = contrasting_ink(rng, canvas, rect)
    box = draw_box(canvas, plan, rect, width, ink, dash)
    if box is None:
        return
    shown = None
    if text:
        draw_text_at(canvas, plan, text, font, (rect[0] + text_w / 2, rect[1] - 3 - text_h / 2), ink)
        shown = text
    plan.occupied.append(foot)
    interior = (box[0] + width, box[1] + width, box[2] - width, box[3] - width)
    plan.markers.append(MarkerPlan("box", box, interior, role="dashed" if dash else "solid", text=shown))


def add_inset(canvas: Image.Image, rng: np.random.Generator, plan: PanelPlan, label_corner: str | None) -> None:
    """A zoomed crop in a free corner with a border, and an outline around the area it shows."""
    c = plan.content
    border = int(rng.integers(2, 4))
    side = int(min(c.w, c.h) * rng.uniform(0.28, 0.36))
    zoom = float(pick(rng, (2.0, 2.5, 3.0)))
    inner = side - 2 * border
    src = int(round(inner / zoom))
    corners = [k for k in ("tr", "br", "bl", "tl") if k != label_corner]
    corner = pick(rng, corners)
    pad = 4
    ix = c.x0 + pad if corner[1] == "l" else c.x1 - pad - side
    iy = c.y0 + pad if corner[0] == "t" else c.y1 - pad - side
    inset = (ix, iy, ix + side, iy + side)
    if _overlaps(inset, plan.occupied):
        return

    def make(r: np.random.Generator):
        x0 = int(r.integers(c.x0 + 2, c.x1 - src - 4))
        y0 = int(r.integers(c.y0 + 2, c.y1 - src - 4))
        outer = (x0 - 2, y0 - 2, x0 + src + 2, y0 + src + 2)
        if _overlaps(outer, [inset], 6):
            return None
        return outer, (x0, y0)

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, (sx, sy) = placed
    ink = pick(rng, ((255, 255, 255), (255, 230, 0))) if luma(canvas, inset) < 140 else (0, 0, 0)
    line = 1 if src < 30 else 2
    zoomed = canvas.crop((sx, sy, sx + src, sy + src)).resize((inner, inner), Image.Resampling.BICUBIC)
    canvas.paste(zoomed, (ix + border, iy + border))
    inset_box = draw_box(canvas, plan, inset, border, ink)
    source_box = draw_box(canvas, plan, (sx - line, sy - line, sx + src + line, sy + src + line), line, ink)
    if inset_box is None or source_box is None:
        return
    plan.occupied += [inset_box, source_box]
    shown = (float(sx), float(sy), float(sx + src), float(sy + src))
    plan.markers.append(MarkerPlan("box", source_box, shown, role="inset"))
    plan.markers.append(MarkerPlan("inset", inset_box, (inset_box[0] + border, inset_box[1] + border,
                                                       inset_box[2] - border, inset_box[3] - border)))


def add_zoom_box(canvas: Image.Image, rng: np.random.Generator, plan: PanelPlan, target: PanelPlan,
                 window: Box) -> Box | None:
    """Outline an area of ``plan`` with ``target``'s aspect ratio; returns that area in source pixels."""
    c = plan.content
    aspect = target.content.w / target.content.h
    line = 2

    def make(r: np.random.Generator):
        iw = int(c.w * r.uniform(0.25, 0.4))
        ih = int(round(iw / aspect))
        if ih < 12 or ih > c.h - 12:
            return None
        x0 = int(r.integers(c.x0 + line + 2, c.x1 - iw - line - 2))
        y0 = int(r.integers(c.y0 + line + 2, c.y1 - ih - line - 2))
        return (float(x0 - line), float(y0 - line), float(x0 + iw + line), float(y0 + ih + line)), (x0, y0, iw, ih)

    placed = _place(rng, plan, make)
    if placed is None:
        return None
    _, (x0, y0, iw, ih) = placed
    ink = contrasting_ink(rng, canvas, (x0, y0, x0 + iw, y0 + ih))
    box = draw_box(canvas, plan, (x0 - line, y0 - line, x0 + iw + line, y0 + ih + line), line, ink)
    if box is None:
        return None
    plan.occupied.append(box)
    plan.markers.append(MarkerPlan("box", box, (float(x0), float(y0), float(x0 + iw), float(y0 + ih)),
                                   role="zoom", zoom_into=target.index))
    fx = (window[2] - window[0]) / c.w
    fy = (window[3] - window[1]) / c.h
    return (window[0] + (x0 - c.x0) * fx, window[1] + (y0 - c.y0) * fy,
            window[0] + (x0 - c.x0 + iw) * fx, window[1] + (y0 - c.y0 + ih) * fy)
