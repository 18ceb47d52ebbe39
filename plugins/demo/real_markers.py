"""Markers of the ``real`` style, drawn on the figure canvas inside one image area of a panel.

White arrows with dark outlines (grey images), thin coloured arrows and arrowheads (histology, fundus,
fluorescence), circles around cells, asterisks, dashed zoom boxes and insets. Each ``add_*`` returns the
:class:`RealMarker` it drew, or None when it found no free room (then nothing is drawn). Band markers and
connector arrows are drawn by the blot and schematic renderers with :func:`band_triangle`,
:func:`band_arrow` and :func:`connector`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from panel2patch.data import Box

from .plans import Rect, pick
from .real_draw import (
    BLACK,
    WHITE,
    Color,
    arrow_polygons,
    dashed_ellipse,
    dashed_rect,
    font,
    inside,
    mean_rgb,
    overlaps,
    stamp,
)


@dataclass
class RealMarker:
    """A drawn marker: ``region`` None for kinds that get no region (``band_marker``, ``connector``)."""

    kind: str
    box: Box
    region: Box | None
    tip: tuple[float, float] | None = None
    direction: float | None = None
    text: str | None = None
    clause: str = ""  # key of the caption clause family (real_text.CLAUSES)
    colour: str = ""  # colour word for the caption ("yellow"), empty when not worth saying
    zoom_into: int | None = None  # panel index showing the area enlarged
    target: str = ""


@dataclass
class ImageArea:
    """A photo tile of a panel: where it is, what it shows, and how to render more of its picture."""

    rect: Rect
    source: str
    grey: bool
    picture: object = None  # real_panels.Picture
    window: Box | None = None
    dark: bool = False
    markers: list[RealMarker] = field(default_factory=list)


INKS: dict[str, Color] = {"white": WHITE, "black": BLACK, "yellow": (255, 225, 0), "red": (235, 25, 25),
                          "green": (40, 220, 60), "cyan": (0, 220, 255), "magenta": (230, 40, 230),
                          "blue": (30, 60, 230), "orange": (255, 140, 0)}


def contrasting(rng: np.random.Generator, canvas: Image.Image, box: Box, names=tuple(INKS)) -> str:
    """An ink name among ``names`` that stands out from the mean colour under ``box``."""
    under = mean_rgb(canvas, box)
    dist = {n: float(np.linalg.norm(np.asarray(INKS[n]) - under)) for n in names}
    good = [n for n in names if dist[n] > 200]
    return pick(rng, good) if good else max(dist, key=dist.get)


def _place(rng: np.random.Generator, area: Rect, occupied: list[Box], make, tries: int = 30):
    for _ in range(tries):
        item = make(rng)
        if item is None:
            continue
        if inside(item[0], area.box(), 2) and not overlaps(item[0], occupied, 4):
            return item
    return None


def _bounds(points, pad: float = 1.0) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad + 1, max(ys) + pad + 1)


def _paste_outlined(canvas: Image.Image, footprint: Box, fill: Color, outline: Color | None, k: int,
                    draw_fn) -> Box | None:
    """Draw ``draw_fn(d, ox, oy)`` in ``fill`` over an outline ``k`` pixels wide in ``outline``."""
    x0, y0 = int(math.floor(footprint[0])) - k - 2, int(math.floor(footprint[1])) - k - 2
    x1, y1 = int(math.ceil(footprint[2])) + k + 2, int(math.ceil(footprint[3])) + k + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(canvas.width, x1), min(canvas.height, y1)
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw_fn(ImageDraw.Draw(mask), x0, y0)
    if mask.getbbox() is None:
        return None
    shown = mask
    if outline is not None and k > 0:
        shown = mask.filter(ImageFilter.MaxFilter(2 * k + 1))
        canvas.paste(outline, (x0, y0, x1, y1), shown)
    canvas.paste(fill, (x0, y0, x1, y1), mask)
    b = shown.getbbox()
    return (float(x0 + b[0]), float(y0 + b[1]), float(x0 + b[2]), float(y0 + b[3]))


def _direction(rng: np.random.Generator) -> float:
    if rng.random() < 0.6:
        return float(pick(rng, (0, 45, 90, 135, 180, 225, 270, 315)))
    return float(rng.uniform(0, 360))


def _arrow_region(tip, length: float, area: Rect) -> Box:
    from panel2patch.parsers.boxes import box_clip

    half = float(np.clip(0.8 * length, 24, 96)) / 2
    return box_clip((tip[0] - half, tip[1] - half, tip[0] + half, tip[1] + half), area.edges())


def add_arrow(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box], fs: int,
              style: str) -> RealMarker | None:
    """An arrow: ``style`` "outlined" (white with a dark outline), "white" or "thin" (coloured, thin)."""
    r = area.rect
    length = float(np.clip(min(r.w, r.h) * rng.uniform(0.1, 0.2), 2.2 * fs, 5.5 * fs))
    length = min(length, 0.45 * min(r.w, r.h))
    width = max(2.0, round(length / float(rng.uniform(12, 20)))) if style != "thin" else float(rng.integers(2, 4))
    head = max(9.0, length * float(rng.uniform(0.28, 0.4)))
    head_w = head * float(rng.uniform(0.7, 1.05))
    direction = _direction(rng)
    k = int(rng.integers(1, 3)) if style == "outlined" else 0

    def make(g: np.random.Generator):
        tip = (float(g.uniform(r.x0 + 8, r.x1 - 8)), float(g.uniform(r.y0 + 8, r.y1 - 8)))
        shaft, tri, _ = arrow_polygons(tip, direction, length, width, head, head_w)
        return _bounds(shaft + tri, k + 2), tip, shaft, tri

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return None
    foot, tip, shaft, tri = placed
    if style == "thin":
        name = contrasting(rng, canvas, foot, ("black", "yellow", "red", "green", "blue", "white", "cyan"))
    elif style == "white":
        name = "white" if area.dark or area.grey else contrasting(rng, canvas, foot, ("white", "yellow", "black"))
    else:
        name = "white"

    def shape(d: ImageDraw.ImageDraw, ox: int, oy: int) -> None:
        d.polygon([(x - ox, y - oy) for x, y in shaft], fill=255)
        d.polygon([(x - ox, y - oy) for x, y in tri], fill=255)

    box = _paste_outlined(canvas, foot, INKS[name], (20, 20, 20) if k else None, k, shape)
    if box is None:
        return None
    occupied.append(box)
    return RealMarker("arrow", box, _arrow_region(tip, length, r), tip=tip, direction=direction % 360.0,
                      clause="arrow", colour=name if name not in ("white", "black") and style == "thin" else "")


def add_arrowhead(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box],
                  fs: int) -> RealMarker | None:
    """A filled triangle pointing at a feature (no shaft), in a colour that stands out."""
    r = area.rect
    length = float(np.clip(fs * rng.uniform(0.9, 1.6), 12, 40))
    half = length * float(rng.uniform(0.3, 0.45))
    direction = _direction(rng)
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))

    def make(g: np.random.Generator):
        tip = (float(g.uniform(r.x0 + 6, r.x1 - 6)), float(g.uniform(r.y0 + 6, r.y1 - 6)))
        base = (tip[0] - ux * length, tip[1] - uy * length)
        tri = [tip, (base[0] - uy * half, base[1] + ux * half), (base[0] + uy * half, base[1] - ux * half)]
        return _bounds(tri, 2), tip, tri

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return None
    foot, tip, tri = placed
    name = contrasting(rng, canvas, foot, ("yellow", "red", "green", "cyan", "white", "magenta", "orange", "black"))
    box = _paste_outlined(canvas, foot, INKS[name], None, 0,
                          lambda d, ox, oy: d.polygon([(x - ox, y - oy) for x, y in tri], fill=255))
    if box is None:
        return None
    occupied.append(box)
    return RealMarker("arrowhead", box, _arrow_region(tip, length * 2.2, r), tip=tip, direction=direction % 360.0,
                      clause="arrowhead", colour=name if name not in ("white", "black") else "")


def add_circle(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box],
               fs: int) -> RealMarker | None:
    """A solid or dashed ellipse around a cell."""
    r = area.rect
    rx = float(np.clip(min(r.w, r.h) * rng.uniform(0.08, 0.16), 1.5 * fs, 6 * fs))
    ry = rx * float(rng.uniform(0.7, 1.3))
    width = int(rng.integers(2, 5))
    dashed = rng.random() < 0.5

    def make(g: np.random.Generator):
        cx, cy = float(g.uniform(r.x0, r.x1)), float(g.uniform(r.y0, r.y1))
        return (cx - rx - 1, cy - ry - 1, cx + rx + 2, cy + ry + 2), cx, cy

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return None
    foot, cx, cy = placed
    name = contrasting(rng, canvas, foot, ("yellow", "red", "white", "cyan", "green", "black"))
    rect = (cx - rx, cy - ry, cx + rx, cy + ry)
    box = stamp(canvas, (foot[0], foot[1]), (foot[2] - foot[0], foot[3] - foot[1]), INKS[name],
                lambda d, ox, oy: dashed_ellipse(d, (rect[0] - ox, rect[1] - oy, rect[2] - ox, rect[3] - oy),
                                                 width, dashed))
    if box is None:
        return None
    occupied.append(box)
    region = (box[0] + width, box[1] + width, box[2] - width, box[3] - width)
    return RealMarker("circle", box, region, clause="circle", colour=name if name not in ("white", "black") else "")


def add_asterisk(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box],
                 fs: int) -> RealMarker | None:
    """A bold ``*`` glyph."""
    r = area.rect
    fnt = font(int(fs * rng.uniform(1.6, 2.6)), "sans", True)
    left, top, right, bottom = fnt.getbbox("*", anchor="lt")
    w, h = right - left, bottom - top

    def make(g: np.random.Generator):
        x, y = float(g.uniform(r.x0, r.x1 - w)), float(g.uniform(r.y0, r.y1 - h))
        return (x - 1, y - 1, x + w + 1, y + h + 1), x, y

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return None
    foot, x, y = placed
    name = contrasting(rng, canvas, foot, ("white", "yellow", "black", "red"))
    box = stamp(canvas, (foot[0], foot[1]), (w + 3, h + 3), INKS[name],
                lambda d, ox, oy: d.text((x - ox - left, y - oy - top), "*", fill=255, font=fnt, anchor="lt"))
    if box is None:
        return None
    occupied.append(box)
    bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 1.5 * max(box[2] - box[0], box[3] - box[1])
    from panel2patch.parsers.boxes import box_clip

    return RealMarker("asterisk", box, box_clip((bx - half, by - half, bx + half, by + half), r.edges()),
                      clause="asterisk")


def add_zoom_box(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box],
                 aspect: float, clause: str, zoom_into: int | None) -> tuple[RealMarker, Box] | None:
    """A dashed (or solid) outline of aspect ``aspect``; returns the marker and the outlined area."""
    r = area.rect
    width = int(rng.integers(2, 5))
    dash = (int(rng.integers(6, 14)), int(rng.integers(4, 8))) if rng.random() < 0.65 else None

    def make(g: np.random.Generator):
        iw = int(r.w * g.uniform(0.22, 0.4))
        ih = int(round(iw / aspect))
        if ih < 24 or ih > r.h * 0.6:
            return None
        x0 = int(g.integers(r.x0 + width + 3, max(r.x0 + width + 4, r.x1 - iw - width - 3)))
        y0 = int(g.integers(r.y0 + width + 3, max(r.y0 + width + 4, r.y1 - ih - width - 3)))
        return (float(x0 - width), float(y0 - width), float(x0 + iw + width), float(y0 + ih + width)), (x0, y0, iw, ih)

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return None
    foot, (x0, y0, iw, ih) = placed
    name = contrasting(rng, canvas, foot, ("white", "yellow", "magenta", "black", "cyan", "red"))
    box = stamp(canvas, (foot[0], foot[1]), (foot[2] - foot[0], foot[3] - foot[1]), INKS[name],
                lambda d, ox, oy: dashed_rect(d, (foot[0] - ox, foot[1] - oy, foot[2] - ox, foot[3] - oy), width,
                                              dash))
    if box is None:
        return None
    occupied.append(box)
    inner = (float(x0), float(y0), float(x0 + iw), float(y0 + ih))
    return RealMarker("box", box, inner, clause=clause, zoom_into=zoom_into), inner


def add_inset(canvas: Image.Image, rng: np.random.Generator, area: ImageArea, occupied: list[Box],
              avoid_corner: str | None) -> list[RealMarker]:
    """A magnified view in a free corner, re-rendered from the source picture, with a border, and the
    outline of the area it shows."""
    r = area.rect
    if area.picture is None or area.window is None or min(r.w, r.h) < 220:
        return []
    border = int(rng.integers(2, 4))
    side = int(min(r.w, r.h) * rng.uniform(0.3, 0.38))
    zoom = float(pick(rng, (2.0, 2.5, 3.0)))
    inner = side - 2 * border
    src = int(round(inner / zoom))
    corner = pick(rng, [c for c in ("tr", "br", "bl", "tl") if c != avoid_corner])
    ix = r.x0 + 3 if corner[1] == "l" else r.x1 - 3 - side
    iy = r.y0 + 3 if corner[0] == "t" else r.y1 - 3 - side
    inset_box = (float(ix), float(iy), float(ix + side), float(iy + side))
    if overlaps(inset_box, occupied, 4):
        return []

    def make(g: np.random.Generator):
        x0 = int(g.integers(r.x0 + 3, r.x1 - src - 4))
        y0 = int(g.integers(r.y0 + 3, r.y1 - src - 4))
        outer = (float(x0 - 2), float(y0 - 2), float(x0 + src + 2), float(y0 + src + 2))
        return (None if overlaps(outer, [inset_box], 8) else (outer, (x0, y0)))

    placed = _place(rng, r, occupied, make)
    if placed is None:
        return []
    _, (sx, sy) = placed
    win = area.window
    fx, fy = (win[2] - win[0]) / r.w, (win[3] - win[1]) / r.h
    sub = (win[0] + (sx - r.x0) * fx, win[1] + (sy - r.y0) * fy, win[0] + (sx + src - r.x0) * fx,
           win[1] + (sy + src - r.y0) * fy)
    canvas.paste(area.picture.render(sub, inner, inner), (ix + border, iy + border))
    name = "white" if area.dark or area.grey else contrasting(rng, canvas, inset_box, ("white", "black", "yellow"))
    ink = INKS[name]
    line = 2 if src >= 30 else 1
    frame = stamp(canvas, (ix, iy), (side, side), ink,
                  lambda d, ox, oy: dashed_rect(d, (ix - ox, iy - oy, ix + side - ox, iy + side - oy), border, None))
    outline = (sx - line, sy - line, sx + src + line, sy + src + line)
    source_box = stamp(canvas, (outline[0], outline[1]), (src + 2 * line, src + 2 * line), ink,
                       lambda d, ox, oy: dashed_rect(d, (outline[0] - ox, outline[1] - oy, outline[2] - ox,
                                                         outline[3] - oy), line, None))
    if frame is None or source_box is None:
        return []
    occupied += [frame, source_box]
    return [RealMarker("box", source_box, (float(sx), float(sy), float(sx + src), float(sy + src)), clause="box_inset"),
            RealMarker("inset", frame, (frame[0] + border, frame[1] + border, frame[2] - border, frame[3] - border),
                       clause="box_inset")]


def band_triangle(canvas: Image.Image, tip: tuple[float, float], size: float, color: Color) -> Box | None:
    """A filled triangle pointing left with its apex at ``tip`` (a band marker beside a blot)."""
    h = size * 0.55
    tri = [tip, (tip[0] + size, tip[1] - h), (tip[0] + size, tip[1] + h)]
    return stamp(canvas, (tip[0] - 2, tip[1] - h - 2), (size + 4, 2 * h + 4), color,
                 lambda d, ox, oy: d.polygon([(x - ox, y - oy) for x, y in tri], fill=255))


def band_arrow(canvas: Image.Image, tip: tuple[float, float], length: float, color: Color) -> Box | None:
    """A thin arrow pointing left at ``tip`` ("← p43" beside a blot)."""
    shaft, tri, _ = arrow_polygons(tip, 180.0, length, max(2.0, length / 14), length * 0.45, length * 0.42)
    pts = shaft + tri
    return stamp(canvas, (min(p[0] for p in pts) - 2, min(p[1] for p in pts) - 2),
                 (length + 6, max(p[1] for p in pts) - min(p[1] for p in pts) + 6), color,
                 lambda d, ox, oy: (d.polygon([(x - ox, y - oy) for x, y in shaft], fill=255),
                                    d.polygon([(x - ox, y - oy) for x, y in tri], fill=255)))


def connector(canvas: Image.Image, start: tuple[float, float], tip: tuple[float, float], width: float,
              color: Color) -> RealMarker | None:
    """A straight diagram arrow from ``start`` to ``tip`` (kind ``connector``, no region)."""
    dx, dy = tip[0] - start[0], tip[1] - start[1]
    length = math.hypot(dx, dy)
    if length < 8:
        return None
    direction = math.degrees(math.atan2(-dy, dx)) % 360.0
    head = min(length * 0.45, max(10.0, 4.5 * width))
    shaft, tri, _ = arrow_polygons(tip, direction, length, width, head, head * 0.85)
    pts = shaft + tri
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    box = stamp(canvas, (min(xs) - 2, min(ys) - 2), (max(xs) - min(xs) + 4, max(ys) - min(ys) + 4), color,
                lambda d, ox, oy: (d.polygon([(x - ox, y - oy) for x, y in shaft], fill=255),
                                   d.polygon([(x - ox, y - oy) for x, y in tri], fill=255)))
    if box is None:
        return None
    return RealMarker("connector", box, None, tip=tip, direction=direction)
