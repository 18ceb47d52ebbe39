"""Drawing helpers of the ``real`` style: fonts, text and shapes drawn through small masks so that the
exact box of every drawn pixel is known, and the ink box of a drawn tile."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from panel2patch.data import Box

from .drawing import outline_rect

#: Where the DejaVu fonts of the machine's base image live; Pillow's bundled font is the fallback.
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
FONT_FILES = {
    ("sans", False): "DejaVuSans.ttf",
    ("sans", True): "DejaVuSans-Bold.ttf",
    ("serif", False): "DejaVuSerif.ttf",
    ("serif", True): "DejaVuSerif-Bold.ttf",
    ("cond", False): "DejaVuSansCondensed.ttf",
    ("cond", True): "DejaVuSansCondensed-Bold.ttf",
    ("italic", False): "DejaVuSans-Oblique.ttf",
    ("italic", True): "DejaVuSans-BoldOblique.ttf",
}

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)


@functools.cache
def font_file(family: str, bold: bool) -> Path | None:
    """The DejaVu file of ``family``/``bold`` on this machine, or None (then Pillow's font is used)."""
    name = FONT_FILES[(family, bold)]
    return next((d / name for d in FONT_DIRS if (d / name).is_file()), None)


def fonts_found() -> str:
    """``"dejavu"`` when the DejaVu fonts are installed, else ``"pillow"`` (every family falls back to it)."""
    return "dejavu" if font_file("sans", True) is not None else "pillow"


@functools.lru_cache(maxsize=256)
def font(size: int, family: str = "sans", bold: bool = False) -> ImageFont.FreeTypeFont:
    """A TrueType font of ``size`` pixels; basic layout (no libraqm) so text is drawn alike everywhere."""
    size = max(6, int(size))
    path = font_file(family, bold)
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size=size, layout_engine=ImageFont.Layout.BASIC)


def union(boxes) -> Box | None:
    """The box covering every box of ``boxes`` (None entries skipped); None when there is none."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def overlaps(box: Box, others, margin: float = 3.0) -> bool:
    """Whether ``box`` comes within ``margin`` pixels of any box of ``others``."""
    return any(box[0] < o[2] + margin and o[0] < box[2] + margin and box[1] < o[3] + margin and o[1] < box[3] + margin
               for o in others)


def inside(inner: Box, outer: Box, pad: float = 0.0) -> bool:
    """Whether ``inner`` lies in ``outer`` shrunk by ``pad``."""
    return (inner[0] >= outer[0] + pad and inner[1] >= outer[1] + pad and inner[2] <= outer[2] - pad
            and inner[3] <= outer[3] - pad)


def stamp(img: Image.Image, origin: tuple[int, int], size: tuple[int, int], color: Color, draw_fn) -> Box | None:
    """Draw ``draw_fn(ImageDraw, ox, oy)`` into a mask of ``size`` at ``origin`` of ``img`` and paste ``color``.

    ``draw_fn`` receives the mask's draw and the offset to subtract from image coordinates. The mask is
    clipped to the image. Returns the image-pixel box of the pixels drawn, or None.
    """
    x0, y0 = int(math.floor(origin[0])), int(math.floor(origin[1]))
    w, h = int(math.ceil(size[0])) + 2, int(math.ceil(size[1])) + 2
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(img.width, x0 + w), min(img.height, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    mask = Image.new("L", (cx1 - cx0, cy1 - cy0), 0)
    draw_fn(ImageDraw.Draw(mask), cx0, cy0)
    bbox = mask.getbbox()
    if bbox is None:
        return None
    img.paste(color, (cx0, cy0, cx1, cy1), mask)
    return (float(cx0 + bbox[0]), float(cy0 + bbox[1]), float(cx0 + bbox[2]), float(cy0 + bbox[3]))


def stamp_points(img: Image.Image, points, color: Color, draw_fn, pad: float = 4.0) -> Box | None:
    """:func:`stamp` over the area spanned by ``points`` (image coordinates) plus ``pad``."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0 = min(xs) - pad, min(ys) - pad
    return stamp(img, (x0, y0), (max(xs) - x0 + pad, max(ys) - y0 + pad), color, draw_fn)


def text_extent(text: str, fnt, stroke: int = 0) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` drawn at the origin with anchor "lt"."""
    return fnt.getbbox(text, anchor="lt", stroke_width=stroke)


def text_size(text: str, fnt, stroke: int = 0) -> tuple[int, int]:
    left, top, right, bottom = text_extent(text, fnt, stroke)
    return right - left, bottom - top


def draw_text(img: Image.Image, xy: tuple[float, float], text: str, fnt, color: Color, anchor: str = "lt",
              stroke: int = 0) -> Box | None:
    """Draw ``text`` with its ink box's corner/centre at ``xy`` as ``anchor`` says (``l/m/r`` + ``t/m/b``,
    of the ink box, not of the font metrics); returns the exact box of the drawn pixels."""
    left, top, right, bottom = text_extent(text, fnt, stroke)
    w, h = right - left, bottom - top
    x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]]
    y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]]

    def glyphs(d: ImageDraw.ImageDraw, ox: int, oy: int) -> None:
        d.text((x - ox - left, y - oy - top), text, fill=255, font=fnt, anchor="lt", stroke_width=stroke,
               stroke_fill=255)

    return stamp(img, (x - 1, y - 1), (w + 2, h + 2), color, glyphs)


def draw_text_rotated(img: Image.Image, centre: tuple[float, float], text: str, fnt, color: Color) -> Box | None:
    """Draw ``text`` turned 90° counter-clockwise (reading upwards), centred at ``centre``."""
    left, top, right, bottom = text_extent(text, fnt)
    tmp = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(tmp).text((1 - left, 1 - top), text, fill=255, font=fnt, anchor="lt")
    tmp = tmp.transpose(Image.Transpose.ROTATE_90)
    bbox = tmp.getbbox()
    if bbox is None:
        return None
    tmp = tmp.crop(bbox)
    x0, y0 = int(round(centre[0] - tmp.width / 2)), int(round(centre[1] - tmp.height / 2))
    if x0 < 0 or y0 < 0 or x0 + tmp.width > img.width or y0 + tmp.height > img.height:
        return None
    img.paste(color, (x0, y0, x0 + tmp.width, y0 + tmp.height), tmp)
    return (float(x0), float(y0), float(x0 + tmp.width), float(y0 + tmp.height))


def dashed_rect(d: ImageDraw.ImageDraw, rect: tuple[float, float, float, float], width: int,
                dash: tuple[int, int] | None) -> None:
    """Outline covering [x0, x1) x [y0, y1) of a rectangle in float pixels, solid or dashed."""
    outline_rect(d, tuple(int(round(v)) for v in rect), width, dash)


def dashed_ellipse(d: ImageDraw.ImageDraw, rect: tuple[float, float, float, float], width: int, dashed: bool) -> None:
    """Ellipse outline in ``rect``; dashed as arcs of about 14° with 10° gaps."""
    if not dashed:
        d.ellipse(rect, outline=255, width=width)
        return
    a = 0.0
    while a < 360:
        d.arc(rect, a, min(360.0, a + 14), fill=255, width=width)
        a += 24


def ink_box(tile: Image.Image, background: Color) -> Box | None:
    """Box of the pixels of ``tile`` that differ from ``background``."""
    bbox = ImageChops.difference(tile, Image.new("RGB", tile.size, background)).getbbox()
    return None if bbox is None else tuple(float(v) for v in bbox)


def mean_rgb(img: Image.Image, box: Box) -> np.ndarray:
    """Mean colour of ``img`` under ``box``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    region = img.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    return np.asarray(region, dtype=np.float64).reshape(-1, 3).mean(0)


def luma(img: Image.Image, box: Box) -> float:
    r, g, b = mean_rgb(img, box)
    return float(0.299 * r + 0.587 * g + 0.114 * b)


def arrow_polygons(tip: tuple[float, float], direction: float, length: float, width: float, head: float,
                   head_width: float):
    """Shaft quadrilateral and head triangle of an arrow whose apex is ``tip``, pointing ``direction``
    (degrees counter-clockwise from +x, y up)."""
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    tail = (tip[0] - ux * length, tip[1] - uy * length)
    base = (tip[0] - ux * head, tip[1] - uy * head)
    shaft = [
        (tail[0] + nx * width / 2, tail[1] + ny * width / 2),
        (base[0] + ux + nx * width / 2, base[1] + uy + ny * width / 2),
        (base[0] + ux - nx * width / 2, base[1] + uy - ny * width / 2),
        (tail[0] - nx * width / 2, tail[1] - ny * width / 2),
    ]
    triangle = [tip, (base[0] + nx * head_width / 2, base[1] + ny * head_width / 2),
                (base[0] - nx * head_width / 2, base[1] - ny * head_width / 2)]
    return shaft, triangle, tail
