"""Drawing through masks, so that every shape's exact pixel box is known: labels, text and outlines."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from panel2patch.data import Box

from .layout import LabelStyle
from .plans import PanelPlan, Rect, pick


@functools.lru_cache(maxsize=64)
def load_font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at ``size`` pixels (no dependence on system fonts)."""
    return ImageFont.load_default(size=size)


def stamp(canvas: Image.Image, area: Rect, color: tuple[int, int, int], draw_fn) -> Box | None:
    """Draw ``draw_fn(ImageDraw)`` (area-local coordinates) in ``color``, clipped to ``area``.

    Returns the figure-pixel box of the pixels actually drawn, or None when nothing was drawn.
    """
    mask = Image.new("L", (area.w, area.h), 0)
    draw_fn(ImageDraw.Draw(mask))
    bbox = mask.getbbox()
    if bbox is None:
        return None
    canvas.paste(color, (area.x0, area.y0, area.x1, area.y1), mask)
    return (float(area.x0 + bbox[0]), float(area.y0 + bbox[1]), float(area.x0 + bbox[2]), float(area.y0 + bbox[3]))


def luma(canvas: Image.Image, box: Box) -> float:
    """Mean grey level of the canvas under ``box``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    region = canvas.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))).convert("L")
    return float(np.asarray(region, dtype=np.float64).mean())


_INKS = ((255, 255, 255), (0, 0, 0), (255, 230, 0), (230, 20, 20), (20, 40, 200), (0, 220, 255))


def contrasting_ink(rng: np.random.Generator, canvas: Image.Image, box: Box) -> tuple[int, int, int]:
    """A marker colour that stands out from the mean colour under ``box``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    under = np.asarray(canvas.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))), dtype=np.float64).reshape(-1, 3).mean(0)
    distance = [float(np.linalg.norm(np.asarray(ink) - under)) for ink in _INKS]
    good = [ink for ink, dist in zip(_INKS, distance) if dist > 220]
    return pick(rng, good) if good else _INKS[int(np.argmax(distance))]


def text_size(text: str, font: ImageFont.FreeTypeFont, stroke: int = 0) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` drawn at the origin with anchor "lt"."""
    return ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font, anchor="lt", stroke_width=stroke)


def label_extent(style: LabelStyle, text: str) -> tuple[int, int]:
    """Width and height of a drawn label, decoration included."""
    font = load_font(style.font_size)
    left, top, right, bottom = text_size(text, font, 1 if style.bold else 0)
    if style.printed == "circled":  # a circle, not an ellipse, around the glyphs
        side = int(round(1.45 * max(right - left, bottom - top))) + 2
        return side, side
    pad = _label_pad(style)
    return right - left + 2 * pad, bottom - top + 2 * pad


def _label_pad(style: LabelStyle) -> int:
    return max(3, style.font_size // 5) if (style.boxed or style.printed == "circled") else 0


def draw_label(canvas: Image.Image, rng: np.random.Generator, style: LabelStyle, plan: PanelPlan, text: str) -> Box:
    """Draw the panel label at its corner; returns the box of every pixel it drew."""
    font = load_font(style.font_size)
    stroke = 1 if style.bold else 0
    w, h = label_extent(style, text)
    area = plan.cell if style.outside else plan.content
    inset = 0 if style.outside else max(3, style.font_size // 4)
    x = area.x0 + inset if style.corner[1] == "l" else area.x1 - inset - w
    y = area.y0 + inset if style.corner[0] == "t" else area.y1 - inset - h
    if style.outside == "left":
        x, y = plan.cell.x0, plan.content.y0
    elif style.outside:
        x = plan.content.x0 if style.corner[1] == "l" else plan.content.x1 - w
    frame = (float(x), float(y), float(x + w), float(y + h))
    under = luma(canvas, frame)
    if style.outside:
        under = luma(canvas, (x, y, x + 1, y + 1))
    ink = (255, 255, 255) if under < 128 else (0, 0, 0)
    if style.boxed:
        patch = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
        ink = (255, 255, 255) if patch == (0, 0, 0) else (0, 0, 0)
        stamp(canvas, plan.cell, patch, lambda d: d.rectangle(
            (x - plan.cell.x0, y - plan.cell.y0, x - plan.cell.x0 + w - 1, y - plan.cell.y0 + h - 1), fill=255))
    left, top, right, bottom = text_size(text, font, stroke)
    ox = x - plan.cell.x0 + (w - (right - left)) / 2 - left
    oy = y - plan.cell.y0 + (h - (bottom - top)) / 2 - top

    def glyphs(d: ImageDraw.ImageDraw) -> None:
        d.text((ox, oy), text, fill=255, font=font, anchor="lt", stroke_width=stroke, stroke_fill=255)
        if style.printed == "circled":
            d.ellipse((x - plan.cell.x0, y - plan.cell.y0, x - plan.cell.x0 + w - 1, y - plan.cell.y0 + h - 1),
                      outline=255, width=max(1, style.font_size // 14))

    drawn = stamp(canvas, plan.cell, ink, glyphs)
    return frame if style.boxed or drawn is None else drawn


def text_footprint(text: str, font, anchor_xy: tuple[float, float]) -> Box:
    """The box of ``text`` drawn centred at ``anchor_xy``."""
    left, top, right, bottom = text_size(text, font)
    w, h = right - left, bottom - top
    return (anchor_xy[0] - w / 2, anchor_xy[1] - h / 2, anchor_xy[0] + w / 2, anchor_xy[1] + h / 2)


def centred_text(d: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font) -> None:
    """Draw ``text`` with the centre of its bounding box at ``centre``."""
    left, top, right, bottom = text_size(text, font)
    d.text((centre[0] - (left + right) / 2, centre[1] - (top + bottom) / 2), text, fill=255, font=font, anchor="lt")


def draw_text_at(canvas: Image.Image, plan: PanelPlan, text: str, font, centre: tuple[float, float], ink) -> None:
    """Draw ``text`` in ``ink`` centred at ``centre`` (figure pixels), clipped to the image area."""
    c = plan.content
    stamp(canvas, c, ink, lambda d: centred_text(d, (centre[0] - c.x0, centre[1] - c.y0), text, font))


def outline_rect(d: ImageDraw.ImageDraw, rect: tuple[int, int, int, int], width: int, dash: tuple[int, int] | None) -> None:
    """Rectangle outline covering pixels [x0, x1) x [y0, y1), solid or dashed (dashes at every corner)."""
    x0, y0, x1, y1 = rect
    if dash is None:
        d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=255, width=width)
        return
    on, off = dash
    if min(x1 - x0, y1 - y0) <= 2 * on + off:
        d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=255, width=width)
        return

    def runs(a: int, b: int) -> list[tuple[int, int]]:
        n = max(2, round((b - a + off) / (on + off)))
        step = (b - a - on) / (n - 1)
        return [(int(round(a + i * step)), int(round(a + i * step)) + on) for i in range(n)]

    for s, e in runs(x0, x1):
        d.rectangle((s, y0, e - 1, y0 + width - 1), fill=255)
        d.rectangle((s, y1 - width, e - 1, y1 - 1), fill=255)
    for s, e in runs(y0, y1):
        d.rectangle((x0, s, x0 + width - 1, e - 1), fill=255)
        d.rectangle((x1 - width, s, x1 - 1, e - 1), fill=255)


def draw_box(canvas: Image.Image, plan: PanelPlan, rect: tuple[int, int, int, int], width: int, ink,
             dash: tuple[int, int] | None = None) -> Box | None:
    """Draw a rectangle outline (figure pixels) in the image area; returns the box of its pixels."""
    c = plan.content
    local = (rect[0] - c.x0, rect[1] - c.y0, rect[2] - c.x0, rect[3] - c.y0)
    return stamp(canvas, c, ink, lambda d: outline_rect(d, local, width, dash))
