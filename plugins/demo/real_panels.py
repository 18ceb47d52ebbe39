"""Panel renderers of the ``real`` style: photos and multi-image montages from real pictures, drawn western
blots, bar/line/box/survival/flow charts, heat maps with colour bars and schematics with connector arrows.

A renderer draws on the figure canvas inside ``panel.content`` only, records the photo tiles it drew in
``panel.images`` (markers go there later), the rectangles that belong to the panel in ``panel.parts``, the
boxes that markers must keep clear of in ``panel.occupied``, its own markers (band markers, connectors) in
``panel.markers`` and the words the caption needs in ``panel.desc``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from panel2patch.data import Box

from .charts import nice_step, tick_text
from .plans import Rect, pick
from .real_draw import (
    BLACK,
    WHITE,
    Color,
    dashed_rect,
    draw_text,
    draw_text_rotated,
    font,
    overlaps,
    stamp,
    text_size,
    union,
)
from .real_markers import ImageArea, RealMarker, band_arrow, band_triangle, connector
from .real_sources import (
    CHANNEL_COLOURS,
    GREY_MODALITIES,
    REAL_SOURCES,
    RealSource,
    crop_window,
    heat_lut,
    hed_channels,
    load_source,
    lut_colours,
    oriented,
    pick_source,
    tint,
)
from .real_text import (
    ANTIBODIES,
    BAND_NAMES,
    BOX_WORDS,
    CHANNEL_SETS,
    CONDITIONS,
    GENES,
    TIMEPOINTS,
    X_TITLES,
    Y_TITLES,
)

PALETTES = (
    ((90, 90, 90), (120, 180, 230), (170, 220, 240)),
    ((90, 170, 160), (110, 110, 110), (240, 170, 60)),
    ((100, 160, 255), (245, 190, 120), (240, 110, 120), (200, 140, 230)),
    ((230, 160, 40), (20, 150, 140), (60, 90, 200)),
    ((0, 0, 0), (220, 60, 150), (30, 160, 150), (80, 80, 220)),
)


@dataclass
class Ctx:
    """What every renderer of one figure shares."""

    rng: np.random.Generator
    canvas: Image.Image
    fs: int  # base text size (tick labels, headers), pixels
    bg: Color
    fg: Color
    sources: tuple[str, ...]
    features: set[str] = field(default_factory=set)


@dataclass
class RealPanel:
    """A panel being drawn and what its ground truth and caption need."""

    index: int
    cell: Rect
    ctype: str
    kind: str
    content: Rect | None = None
    label: str | None = None
    printed: str = ""
    label_box: Box | None = None
    provenance: str = ""
    source: str | None = None
    images: list[ImageArea] = field(default_factory=list)
    parts: list[Box] = field(default_factory=list)  # boxes of the elements drawn (checked against the ink box)
    occupied: list[Box] = field(default_factory=list)
    markers: list[RealMarker] = field(default_factory=list)
    desc: str = ""
    group_key: tuple = ()
    zoom_from: tuple | None = None  # (ImageArea, window) of the area this panel enlarges
    label_at: tuple = ()  # (position, footprint) of the label, planned before drawing
    label_corner: str | None = None  # corner of an inside label: montages keep their headers away from it
    ink: Box | None = None  # the box of every pixel drawn in the cell, once the panel is complete


@dataclass
class Picture:
    """A source picture, oriented, with one colour look: renders any window of it at any size alike."""

    source: str
    base: Image.Image
    colour: str | None
    look: tuple[float, float, float, tuple[float, float, float]]

    def render(self, window: Box, w: int, h: int) -> Image.Image:
        tile = self.base.resize((max(1, w), max(1, h)), Image.Resampling.BICUBIC, box=window)
        out = tile.point(self._lut(len(tile.getbands())))
        if out.mode == "L":
            if self.colour in ("hot", "rainbow"):
                return heat_lut(out, self.colour)
            return tint(out, CHANNEL_COLOURS[self.colour or "grey"])
        return out

    limits: RealSource | None = None  # the source whose crop limits apply (None: the whole picture)

    def window(self, rng: np.random.Generator, w: int, h: int) -> Box:
        return crop_window(self.base, self.limits, w, h, rng)

    def _lut(self, bands: int) -> list[int]:
        """The look as a per-band lookup table: gamma, contrast, brightness and (colour) channel gains."""
        gamma, contrast, bright, gains = self.look
        v = np.arange(256, dtype=np.float64) / 255.0
        base = (v ** gamma - 0.5) * contrast + 0.5 + bright
        out: list[int] = []
        for k in range(bands):
            gain = gains[k] if bands == 3 else 1.0
            out += [int(x) for x in (np.clip(base * gain, 0, 1) * 255 + 0.5).astype(np.uint8)]
        return out


def make_picture(rng: np.random.Generator, source: str, colour: str | None = None,
                 base: Image.Image | None = None, strength: float = 1.0, orient: bool = True) -> Picture:
    img = base if base is not None else load_source(source)
    modality = REAL_SOURCES[source].modality
    if orient and modality != "us":  # ultrasound frames carry burnt-in text: never mirrored
        img = oriented(img, rng, rotate=modality not in ("ct", "mr") and base is None)
    look = (float(np.exp(rng.normal(0, 0.16 * strength))), float(np.exp(rng.normal(0, 0.14 * strength))),
            float(rng.normal(0, 0.035 * strength)), tuple(float(v) for v in np.exp(rng.normal(0, 0.05, size=3))))
    return Picture(source, img, colour, look, REAL_SOURCES[source] if base is None else None)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _grey(source: str) -> bool:
    return REAL_SOURCES[source].modality in GREY_MODALITIES


def _add_image(panel: RealPanel, ctx: Ctx, pic: Picture, rect: Rect, window: Box | None = None,
               dark: bool | None = None) -> ImageArea:
    window = window or pic.window(ctx.rng, rect.w, rect.h)
    ctx.canvas.paste(pic.render(window, rect.w, rect.h), (rect.x0, rect.y0))
    grey = _grey(pic.source) and pic.colour in (None, "grey")
    is_dark = dark if dark is not None else (pic.colour not in (None, "grey") or REAL_SOURCES[pic.source].modality
                                             in ("ct", "mr", "fundus", "us"))
    area = ImageArea(rect, pic.source, grey, pic, window, is_dark)
    panel.images.append(area)
    panel.parts.append(rect.box())
    return area


# ----------------------------------------------------------------------------------------------------
# Photos and montages
# ----------------------------------------------------------------------------------------------------

_PHOTO_TEXTS = {"phase": ("BF", "Phase"), "ct": ("R", "L", "CT"), "mr": ("T1w", "T2w", "T1 + Gd"),
                "histology": ("FHL2", "H&E"), "fundus": ("OS", "OD"), "phantom": ("FBP",), "us": ()}


def _scale_bar(ctx: Ctx, panel: RealPanel, rect: Rect, dark: bool) -> None:
    """A scale bar (not a marker) in the lower right, sometimes with its length written above it."""
    rng = ctx.rng
    length = int(rect.w * rng.uniform(0.12, 0.25))
    thick = int(np.clip(ctx.fs * rng.uniform(0.2, 0.4), 3, 10))
    colour = WHITE if dark else BLACK
    x1, y1 = rect.x1 - int(rect.w * 0.05), rect.y1 - int(rect.h * 0.05)
    box = (float(x1 - length), float(y1 - thick), float(x1), float(y1))
    fnt = font(int(ctx.fs * 0.8))
    text = pick(rng, ("50 µm", "20 µm", "2 µm", "1 cm")) if rng.random() < 0.4 else None
    reach = (box[0], box[1] - (text_size(text, fnt)[1] + 6 if text else 0), box[2], box[3])
    if overlaps(reach, panel.occupied, 4):
        return
    ctx.canvas.paste(colour, tuple(int(v) for v in box))
    if text:
        draw_text(ctx.canvas, ((box[0] + box[2]) / 2, box[1] - 4), text, fnt, colour, "mb")
    panel.occupied.append(reach)


def _image_text(ctx: Ctx, panel: RealPanel, area: ImageArea, text: str, corner: str, patch: bool) -> None:
    """A word printed inside a photo tile ("BF", "Merge", "T2w"): not a panel label. Goes to the first
    corner, starting at ``corner``, where it stays clear of what the panel already holds."""
    fnt = font(int(ctx.fs * ctx.rng.uniform(0.8, 1.05)), "sans", ctx.rng.random() < 0.4)
    w, h = text_size(text, fnt)
    pad = max(3, ctx.fs // 4)
    r = area.rect
    corners = ["tl", "tr", "bl", "br"]
    corners = corners[corners.index(corner):] + corners[:corners.index(corner)]
    for k in corners:
        x = r.x0 + pad + 2 if k[1] == "l" else r.x1 - pad - 2 - w
        y = r.y0 + pad + 2 if k[0] == "t" else r.y1 - pad - 2 - h
        foot = (x - pad // 2 - 2, y - pad // 2 - 2, x + w + pad // 2 + 2, y + h + pad // 2 + 2)
        if w + 2 * pad < r.w and not overlaps(foot, panel.occupied, 4):
            break
    else:
        return
    if patch:
        ctx.canvas.paste(WHITE, tuple(int(v) for v in foot))
        draw_text(ctx.canvas, (x, y), text, fnt, BLACK)
        box = foot
    else:
        box = draw_text(ctx.canvas, (x, y), text, fnt, WHITE if area.dark or area.grey else BLACK)
    if box is not None:
        panel.occupied.append(tuple(float(v) for v in box))


def render_photo(ctx: Ctx, panel: RealPanel) -> None:
    """One real picture filling the content; sometimes a colour bar, a scale bar and a word inside."""
    rng, c = ctx.rng, panel.content
    if panel.zoom_from is not None:  # shows the area outlined in another panel, from the same picture
        src_area, window = panel.zoom_from
        area = _add_image(panel, ctx, src_area.picture, c, window, src_area.dark)
        panel.source = src_area.source
        panel.desc = "Higher magnification of the boxed area"
        ctx.features.add("zoom_panel")
        return
    source = panel.source or pick_source(rng, ctx.sources)
    panel.source = source
    modality = REAL_SOURCES[source].modality
    colour = None
    if modality in ("phase", "phantom") and rng.random() < 0.35:
        colour = pick(rng, ("green", "magenta", "hot", "cyan"))
    elif modality in ("ct", "mr") and rng.random() < 0.12:
        colour = "hot"
    bar_w = 0
    if colour in ("hot", "rainbow") and c.w > 300:
        bar_w = max(14, ctx.fs)
    rect = Rect(c.x0, c.y0, c.x1 - (bar_w * 4 if bar_w else 0), c.y1)
    side = None
    if not bar_w and c.w > 1.45 * c.h and min(c.w, c.h) >= 240 and rng.random() < 0.45:
        gap = int(pick(rng, (0, 3, 6, 10)))
        main_w = int(min(c.w * 0.62, c.h * rng.uniform(1.0, 1.35)))
        rect, side = Rect(c.x0, c.y0, c.x0 + main_w, c.y1), Rect(c.x0 + main_w + gap, c.y0, c.x1, c.y1)
    pic = make_picture(rng, source, colour)
    area = _add_image(panel, ctx, pic, rect)
    if side is not None:  # the main picture and, on its right, the outlined area enlarged
        from .real_markers import add_zoom_box

        placed = add_zoom_box(ctx.canvas, rng, area, panel.occupied, side.w / side.h, "box_right", None)
        if placed is not None:
            marker, inner = placed
            win, r = area.window, area.rect
            fx, fy = (win[2] - win[0]) / r.w, (win[3] - win[1]) / r.h
            sub = (win[0] + (inner[0] - r.x0) * fx, win[1] + (inner[1] - r.y0) * fy,
                   win[0] + (inner[2] - r.x0) * fx, win[1] + (inner[3] - r.y0) * fy)
            _add_image(panel, ctx, pic, side, sub, area.dark)
            area.markers.append(marker)
            panel.markers.append(marker)
            ctx.features.add("zoom_beside")
        else:
            _add_image(panel, ctx, make_picture(rng, source, colour), side)
    if bar_w:
        colour_bar(ctx, panel, Rect(rect.x1 + bar_w // 2, c.y0 + c.h // 6, rect.x1 + bar_w // 2 + bar_w,
                                    c.y1 - c.h // 6), colour, ("0", "max"))
    if rng.random() < 0.35 and _PHOTO_TEXTS.get(modality):
        _image_text(ctx, panel, area, pick(rng, _PHOTO_TEXTS[modality]), pick(rng, ("tr", "bl", "br")),
                    rng.random() < 0.2)
    if modality in ("histology", "phase", "fundus") and rng.random() < 0.5:
        _scale_bar(ctx, panel, rect, area.dark or area.grey)
    panel.desc = _cap(REAL_SOURCES[source].subject)


def colour_bar(ctx: Ctx, panel: RealPanel, rect: Rect, lut: str, ticks: tuple[str, ...]) -> None:
    """A vertical colour bar with tick labels on its right, inside the panel."""
    n = max(2, rect.h)
    cols = ([diverging(i / (n - 1)) for i in range(n)] if lut == "diverging" else lut_colours(lut, n))[::-1]
    arr = np.asarray(cols, dtype=np.uint8)[:, None, :].repeat(rect.w, axis=1)
    ctx.canvas.paste(Image.fromarray(arr, "RGB"), (rect.x0, rect.y0))
    fnt = font(int(ctx.fs * 0.8))
    boxes = [rect.box()]
    for i, tick in enumerate(ticks[::-1]):
        y = rect.y0 + (rect.h - 1) * i / max(1, len(ticks) - 1)
        boxes.append(draw_text(ctx.canvas, (rect.x1 + 4, y), tick, fnt, ctx.fg, "lm"))
    panel.parts.append(union(boxes))
    ctx.features.add("colour_bar")


def _grid_rects(area: Rect, rows: int, cols: int, gap: int) -> list[list[Rect]]:
    tw = (area.w - gap * (cols - 1)) // cols
    th = (area.h - gap * (rows - 1)) // rows
    return [[Rect(area.x0 + j * (tw + gap), area.y0 + i * (th + gap), area.x0 + j * (tw + gap) + tw,
                  area.y0 + i * (th + gap) + th) for j in range(cols)] for i in range(rows)]


def render_montage(ctx: Ctx, panel: RealPanel) -> None:
    """Several pictures under one letter: channels (with a merge), time points or conditions, with column
    headers above or below and condition names at the left, all belonging to the panel."""
    rng, c = ctx.rng, panel.content
    hed = hed_channels() if "ihc" in ctx.sources else None
    variant = pick(rng, ("channels", "channels", "series", "series", "stains")) if hed else pick(rng, ("series", "stains"))
    if variant == "series":
        source = panel.source or pick_source(rng, ctx.sources, ("phase", "ct", "mr", "phantom"))
    else:
        source = "ihc" if "ihc" in ctx.sources else pick_source(rng, ctx.sources)
    panel.source = source
    cols = int(pick(rng, (2, 3, 3, 4))) if variant != "channels" else 3
    max_rows = max(1, int(c.h / max(120, c.w / cols * 0.6)))
    rows = int(min(max_rows, pick(rng, (1, 1, 2, 2, 3))))
    gap = int(pick(rng, (0, 2, 3, 4, 6)))
    hfs = int(ctx.fs * rng.uniform(0.85, 1.05))
    hfont = font(hfs, "sans", rng.random() < 0.3)
    if variant == "channels":
        headers = list(pick(rng, CHANNEL_SETS))
    elif variant == "series":
        start = int(rng.integers(0, len(TIMEPOINTS) - cols + 1))
        headers = list(TIMEPOINTS[start:start + cols]) if REAL_SOURCES[source].modality == "phase" else \
            list(pick(rng, (("Baseline", "3 months", "6 months", "12 months"), ("Pre", "Post", "Follow-up", "Late"),
                            ("Slice 1", "Slice 2", "Slice 3", "Slice 4"))))[:cols]
    else:
        headers = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), cols, replace=False)]
    row_names = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), rows, replace=False)] if rows > 1 or rng.random() < 0.3 else []
    header_pos = pick(rng, ("above", "above", "below", "none")) if variant != "channels" else pick(rng, ("above", "inside"))
    corner = panel.label_corner or ""
    if corner.startswith("t") and header_pos == "above":
        header_pos = "below" if rng.random() < 0.5 else "inside"
    if corner.startswith("b") and header_pos == "below":
        header_pos = "none"
    if corner.endswith("l"):
        row_names = []
    hh = text_size("Mg", hfont)[1] + 8
    top = hh if header_pos == "above" else 0
    bottom = hh if header_pos == "below" else 0
    left = hh + 6 if row_names else 0
    grid_area = Rect(c.x0 + left, c.y0 + top, c.x1, c.y1 - bottom)
    if grid_area.w < cols * 80 or grid_area.h < rows * 80:
        cols, rows, row_names, left = 2, 1, [], 0
        grid_area = Rect(c.x0, c.y0 + top, c.x1, c.y1 - bottom)
        headers = headers[:2]
    if gap and rng.random() < 0.5:  # black or white gaps between tiles
        ctx.canvas.paste(pick(rng, (WHITE, BLACK)), grid_area.edges())
    grid = _grid_rects(grid_area, rows, cols, gap)
    colour = pick(rng, ("green", "red", "magenta"))  # the antibody channel's colour, alike in every row
    for row in grid:
        if variant == "channels":
            nuclei, antibody = hed
            if rng.random() < 0.5:  # both channels turned alike, so that the merge lines up
                nuclei, antibody = (im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in (nuclei, antibody))
            base_n = make_picture(rng, "ihc", "blue", nuclei, orient=False)
            base_a = make_picture(rng, "ihc", colour, antibody, orient=False)
            window = crop_window(nuclei, None, row[0].w, row[0].h, rng)
            _add_image(panel, ctx, base_n, row[0], window, True)
            _add_image(panel, ctx, base_a, row[1], window, True)
            merged = np.maximum(np.asarray(base_n.render(window, row[2].w, row[2].h), dtype=np.uint16),
                                np.asarray(base_a.render(window, row[2].w, row[2].h), dtype=np.uint16))
            ctx.canvas.paste(Image.fromarray(merged.astype(np.uint8), "RGB"), (row[2].x0, row[2].y0))
            panel.images.append(ImageArea(row[2], "ihc", False, None, window, True))
            panel.parts.append(row[2].box())
        else:
            tone = pick(rng, (None, None, "green")) if REAL_SOURCES[source].modality == "phase" else None
            pic = make_picture(rng, source, tone)
            for r in row:
                _add_image(panel, ctx, pic, r)
    boxes = []
    for j, name in enumerate(headers[:cols]):
        r = grid[0][j]
        if header_pos == "above":
            boxes.append(draw_text(ctx.canvas, ((r.x0 + r.x1) / 2, r.y0 - 5), name, hfont, ctx.fg, "mb"))
        elif header_pos == "below":
            rb = grid[-1][j]
            boxes.append(draw_text(ctx.canvas, ((rb.x0 + rb.x1) / 2, rb.y1 + 5), name, hfont, ctx.fg, "mt"))
        elif header_pos == "inside":
            area = panel.images[j]
            _image_text(ctx, panel, area, name, pick(rng, ("tl", "tr", "bl")) if j else pick(rng, ("tr", "bl")), False)
    for i, name in enumerate(row_names):
        r = grid[i][0]
        boxes.append(draw_text_rotated(ctx.canvas, (c.x0 + hh / 2, (r.y0 + r.y1) / 2), name, hfont, ctx.fg))
    if boxes:
        panel.parts.append(union(boxes))
    if REAL_SOURCES[source].modality in ("histology", "phase") and rng.random() < 0.5:
        last = grid[-1][0]
        _scale_bar(ctx, panel, last, True if variant == "channels" else _grey(source))
    ctx.features.add("montage")
    what = {"channels": f"Immunofluorescence of {headers[1]} with nuclei counterstained ({headers[0]})",
            "series": f"{_cap(REAL_SOURCES[source].subject)} at {', '.join(headers[:cols - 1])} and {headers[cols - 1]}",
            "stains": f"{_cap(REAL_SOURCES[source].subject)} in {' and '.join(headers[:2])} samples"}[variant]
    panel.desc = what


# ----------------------------------------------------------------------------------------------------
# Western blots
# ----------------------------------------------------------------------------------------------------


def render_blot(ctx: Ctx, panel: RealPanel) -> None:
    """Strips of a western blot with lanes, antibodies, molecular-weight marks and lane conditions; band
    markers beside it: triangles (kind ``band_marker``) or thin arrows (kind ``arrow``), each with its name."""
    rng, c, cv = ctx.rng, panel.content, ctx.canvas
    fs = int(ctx.fs * rng.uniform(0.8, 1.0))
    fnt = font(fs)
    lanes = int(rng.integers(4, 13))
    strips = int(rng.integers(2, 6))
    antibodies = [ANTIBODIES[i] for i in rng.choice(len(ANTIBODIES), strips, replace=False)]
    left = max(text_size(a, fnt)[0] for a in antibodies) + text_size("50", fnt)[0] + fs
    marker_style = pick(rng, ("triangle", "triangle", "arrow", "none"))
    name_font = font(int(fs * 0.85))
    right = int(fs * 1.8 + 12 + max(text_size(n, name_font)[0] for n in BAND_NAMES)) if marker_style != "none" else 4
    cond_rows = int(rng.integers(1, 3))
    top = int(fs * 1.5) * (cond_rows + 1)
    bottom = int(fs * 1.6) if rng.random() < 0.5 else 0
    x0, x1 = c.x0 + left, c.x1 - right
    avail = c.h - top - bottom
    strip_h = int(min(avail / strips - 6, fs * rng.uniform(2.2, 4.5)))
    if x1 - x0 < lanes * 12 or strip_h < 18:
        lanes, strips = max(3, min(lanes, (x1 - x0) // 14)), max(1, min(strips, avail // 30))
        antibodies = antibodies[:strips]
        strip_h = max(18, int(avail / strips - 6))
    y = c.y0 + top
    lane_w = (x1 - x0) / lanes
    boxes = []
    triangles_colour = pick(rng, (BLACK, (40, 40, 40)))
    last_marker_y = -1e9
    for s in range(strips):
        sy0, sy1 = y, y + strip_h
        tone = float(rng.uniform(205, 245))
        arr = np.full((strip_h, x1 - x0), tone, dtype=np.float32)
        yy = np.arange(strip_h, dtype=np.float32)[:, None]
        xx = np.arange(x1 - x0, dtype=np.float32)[None, :]
        n_bands = int(min(rng.integers(1, 4), max(1, strip_h * 0.6 // (fs * 1.1) + 1)))
        band_ys = [strip_h * 0.5] if n_bands == 1 else \
            list(np.linspace(0.2, 0.8, n_bands) * strip_h + rng.uniform(-0.04, 0.04, n_bands) * strip_h)
        for by in band_ys:
            strength = rng.uniform(0.0, 1.0, size=lanes) ** 0.7
            for k in range(lanes):
                cx = lane_w * (k + 0.5)
                sx, sy_ = lane_w * 0.36, max(1.5, strip_h * rng.uniform(0.04, 0.09))
                blob = np.exp(-(((xx - cx) / sx) ** 6) - ((yy - by - rng.normal(0, 0.5)) / sy_) ** 2)
                arr -= blob * strength[k] * rng.uniform(120, 200)
        arr += rng.normal(0, 4, size=arr.shape)
        tile = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.8))
        cv.paste(tile.convert("RGB"), (x0, sy0))
        if rng.random() < 0.5:  # a frame around the strip
            stamp(cv, (x0, sy0), (x1 - x0, strip_h), (60, 60, 60),
                  lambda d, ox, oy: dashed_rect(d, (x0 - ox, sy0 - oy, x1 - ox, sy1 - oy), 1, None))
        boxes.append((float(x0), float(sy0), float(x1), float(sy1)))
        boxes.append(draw_text(cv, (c.x0 + 1, (sy0 + sy1) / 2), antibodies[s], fnt, ctx.fg, "lm"))
        weights = sorted((int(v) for v in rng.choice((15, 20, 25, 37, 50, 75, 100, 150), 2, replace=False)), reverse=True)
        for by, mw in zip(band_ys[:2], weights):
            mw = str(mw)
            tb = draw_text(cv, (x0 - fs * 0.7, sy0 + by), mw, font(int(fs * 0.85)), ctx.fg, "rm")
            cv.paste(ctx.fg, (x0 - int(fs * 0.6), int(sy0 + by), x0 - 2, int(sy0 + by) + max(1, fs // 10)))
            boxes.append(tb)
        if marker_style != "none":
            for by in band_ys:
                if rng.random() < 0.35 or sy0 + by - last_marker_y < fs * 1.05:
                    continue
                last_marker_y = sy0 + by
                name = pick(rng, BAND_NAMES)
                tip = (float(x1 + 4), float(sy0 + by))
                size = fs * rng.uniform(0.8, 1.1)
                reach = x1 + 4 + size * (1.6 if marker_style == "arrow" else 1.0) + 6 + text_size(name, name_font)[0]
                if reach > c.x1 - 2:
                    continue
                if marker_style == "triangle":
                    box = band_triangle(cv, tip, size, triangles_colour)
                    kind = "band_marker"
                else:
                    box = band_arrow(cv, tip, size * 1.6, ctx.fg)
                    kind = "arrow"
                if box is None:
                    continue
                tb = draw_text(cv, (box[2] + 3, tip[1]), name, name_font, ctx.fg, "lm")
                if kind == "arrow":
                    from panel2patch.parsers.boxes import box_clip

                    region = box_clip((x0, sy0 + by - strip_h * 0.2, x1, sy0 + by + strip_h * 0.2), (x0, sy0, x1, sy1))
                    panel.markers.append(RealMarker("arrow", box, region, tip=tip, direction=180.0, text=name,
                                                    clause="arrow_band"))
                else:
                    panel.markers.append(RealMarker("band_marker", box, None, tip=tip, direction=180.0, text=name))
                boxes += [box, tb]
        y = sy1 + int(rng.integers(3, 9))
    # lane conditions above the first strip: +/- rows and a group header with a line
    yc = c.y0 + top - int(fs * 0.5)
    for _ in range(cond_rows):
        row_name = pick(rng, ("Nec-1s:", "TNF:", "LPS:", "siRNA:", "Dox:"))
        boxes.append(draw_text(cv, (x0 - fs * 0.5, yc), row_name, fnt, ctx.fg, "rb"))
        for k in range(lanes):
            boxes.append(draw_text(cv, (x0 + lane_w * (k + 0.5), yc), pick(rng, ("+", "−")), fnt, ctx.fg, "mb"))
        yc -= int(fs * 1.5)
    groups = int(pick(rng, (1, 2, 2, 3)))
    span = lanes / groups
    for g in range(groups):
        gx0, gx1 = x0 + lane_w * span * g + 3, x0 + lane_w * span * (g + 1) - 3
        name = pick(rng, CONDITIONS)
        boxes.append(draw_text(cv, ((gx0 + gx1) / 2, yc - 4), name, font(fs, "italic"), ctx.fg, "mb"))
        cv.paste(ctx.fg, (int(gx0), int(yc), int(gx1), int(yc) + max(1, fs // 10)))
        boxes.append((gx0, float(yc), gx1, float(yc + max(1, fs // 10))))
    if bottom:
        yb = y + 2
        boxes.append(draw_text(cv, (x0 - fs * 0.5, yb), "Time (h)", fnt, ctx.fg, "rt"))
        for k in range(lanes):
            boxes.append(draw_text(cv, (x0 + lane_w * (k + 0.5), yb), str(k % 4), fnt, ctx.fg, "mt"))
    panel.parts.append(union(boxes))
    ctx.features.add("blot")
    panel.desc = f"Western blots of {', '.join(a.removeprefix('α-') for a in antibodies[:-1])} and " \
                 f"{antibodies[-1].removeprefix('α-')} in lysates of treated cells"


# ----------------------------------------------------------------------------------------------------
# Charts
# ----------------------------------------------------------------------------------------------------


@dataclass
class Axes:
    px0: float
    py0: float
    px1: float
    py1: float
    ymax: float
    xmax: float = 1.0

    def y(self, v: float) -> float:
        return self.py1 - (self.py1 - self.py0) * v / self.ymax

    def x(self, v: float) -> float:
        return self.px0 + (self.px1 - self.px0) * v / self.xmax


def _axes(ctx: Ctx, area: Rect, ytop: float, ytitle: str, xtitle: str | None, xnumeric: float | None,
          boxes: list, bottom_extra: float = 0.0, top_extra: float = 0.0, ylabels: tuple | None = None) -> Axes:
    fs = ctx.fs
    fnt = font(fs)
    fg = ctx.fg
    step = nice_step(max(ytop, 1e-6), 4)
    ymax = step * math.ceil(max(ytop, 1e-6) / step)
    tick_w = max(text_size(tick_text(v), fnt)[0] for v in np.arange(0, ymax + step / 2, step))
    left = tick_w + fs * 2.4
    bottom = fs * 1.9 + (fs * 1.4 if xtitle else 0) + bottom_extra
    ax = Axes(area.x0 + left, area.y0 + fs * 0.8 + top_extra, area.x1 - fs * 1.2, area.y1 - bottom, ymax)
    lw = max(1, fs // 9)
    cv = ctx.canvas
    cv.paste(fg, (int(ax.px0) - lw, int(ax.py0), int(ax.px0), int(ax.py1) + lw))
    cv.paste(fg, (int(ax.px0) - lw, int(ax.py1), int(ax.px1), int(ax.py1) + lw))
    boxes.append((ax.px0 - lw, ax.py0, ax.px1, ax.py1 + lw))
    v = 0.0
    while v <= ymax + 1e-9:
        yy = ax.y(v)
        cv.paste(fg, (int(ax.px0) - lw - fs // 3, int(yy), int(ax.px0) - lw, int(yy) + lw))
        boxes.append(draw_text(cv, (ax.px0 - lw - fs // 3 - 4, yy), tick_text(v), fnt, fg, "rm"))
        v += step
    title = draw_text_rotated(cv, (area.x0 + fs * 0.7, (ax.py0 + ax.py1) / 2), ytitle, fnt, fg)
    boxes.append(title)
    if xnumeric is not None:
        xstep = nice_step(xnumeric, 5)
        ax.xmax = xstep * math.ceil(xnumeric / xstep)
        v = 0.0
        while v <= ax.xmax + 1e-9:
            xx = ax.x(v)
            cv.paste(fg, (int(xx), int(ax.py1), int(xx) + lw, int(ax.py1) + fs // 3))
            boxes.append(draw_text(cv, (xx, ax.py1 + fs // 3 + 4), tick_text(v), fnt, fg, "mt"))
            v += xstep
    if xtitle:
        boxes.append(draw_text(cv, ((ax.px0 + ax.px1) / 2, area.y1 - 2), xtitle, fnt, fg, "mb"))
    return ax


def _legend(ctx: Ctx, x: float, y: float, names: list[str], colours: list[Color], boxes: list, limit: Rect) -> float:
    fnt = font(int(ctx.fs * 0.9))
    s = int(ctx.fs * 0.7)
    for name, col in zip(names, colours):
        w, h = text_size(name, fnt)
        if x + s + 6 + w > limit.x1 or y + s > limit.y1:
            break
        ctx.canvas.paste(col, (int(x), int(y), int(x) + s, int(y) + s))
        boxes.append((x, y, x + s, y + s))
        boxes.append(draw_text(ctx.canvas, (x + s + 6, y + s / 2), name, fnt, ctx.fg, "lm"))
        y += s * 1.6
    ctx.features.add("legend")
    return y


def _sig(ctx: Ctx, ax: Axes, xa: float, xb: float, top: float, boxes: list) -> None:
    """A significance bracket between two x positions with stars or a P value (not a marker)."""
    cv, fg = ctx.canvas, ctx.fg
    lw = max(1, ctx.fs // 10)
    yy = int(top)
    cv.paste(fg, (int(xa), yy, int(xb), yy + lw))
    cv.paste(fg, (int(xa), yy, int(xa) + lw, yy + ctx.fs // 3))
    cv.paste(fg, (int(xb) - lw, yy, int(xb), yy + ctx.fs // 3))
    text = pick(ctx.rng, ("*", "**", "***", "****", "ns", "P = 0.003", "P=8.0e-6"))
    boxes.append((xa, float(yy), xb, float(yy + ctx.fs // 3)))
    boxes.append(draw_text(cv, ((xa + xb) / 2, yy - 3), text, font(ctx.fs, "sans", "*" in text), fg, "mb"))


def render_bar(ctx: Ctx, panel: RealPanel) -> None:
    rng, c = ctx.rng, panel.content
    groups = int(pick(rng, (1, 1, 2, 3)))
    cats = int(rng.integers(2, 6 if groups == 1 else 4))
    palette = pick(rng, PALETTES)
    names = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), cats, replace=False)]
    series = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), groups, replace=False)]
    values = rng.uniform(0.15, 1.0, size=(cats, groups)) * pick(rng, (1.0, 2.0, 60.0, 100.0))
    errors = values * rng.uniform(0.05, 0.25, size=values.shape)
    legend_h = ctx.fs * 1.15 * groups if groups > 1 else 0
    boxes: list = []
    ax = _axes(ctx, c, float((values + errors).max()) * 1.3, pick(rng, Y_TITLES), None, None, boxes,
               top_extra=legend_h)
    slot = (ax.px1 - ax.px0) / cats
    bw = slot * 0.75 / groups
    fnt = font(ctx.fs)
    dots = rng.random() < 0.7
    for i in range(cats):
        for g in range(groups):
            x0 = ax.px0 + slot * i + slot * 0.125 + bw * g
            col = palette[g % len(palette)] if groups > 1 else palette[i % len(palette)]
            top = ax.y(values[i, g])
            ctx.canvas.paste(col, (int(x0), int(top), int(x0 + bw * 0.9), int(ax.py1)))
            cx = x0 + bw * 0.45
            e = ax.y(values[i, g] + errors[i, g])
            ctx.canvas.paste(ctx.fg, (int(cx), int(e), int(cx) + 2, int(top) + 1))
            ctx.canvas.paste(ctx.fg, (int(cx - bw * 0.15), int(e), int(cx + bw * 0.15), int(e) + 2))
            if dots:
                d = ImageDraw.Draw(ctx.canvas)
                r = max(2, ctx.fs // 6)
                for v in values[i, g] + rng.normal(0, errors[i, g], size=int(rng.integers(3, 6))):
                    px, py = cx + rng.uniform(-bw * 0.25, bw * 0.25), ax.y(max(0.0, float(v)))
                    d.ellipse((px - r, py - r, px + r, py + r), outline=ctx.fg, fill=col)
        boxes.append(draw_text(ctx.canvas, (ax.px0 + slot * (i + 0.5), ax.py1 + ctx.fs // 3 + 4), names[i],
                               font(ctx.fs, "italic" if rng.random() < 0.2 else "sans"), ctx.fg, "mt"))
    if cats >= 2 and rng.random() < 0.7:
        a, b = sorted(int(v) for v in rng.choice(cats, 2, replace=False))
        _sig(ctx, ax, ax.px0 + slot * (a + 0.5), ax.px0 + slot * (b + 0.5), ax.y(ax.ymax * 0.93), boxes)
    if groups > 1:
        _legend(ctx, ax.px0 + ctx.fs, c.y0 + 2, series, list(palette[:groups]), boxes, c)
    del fnt
    panel.parts.append(union(boxes))
    panel.desc = f"Quantification of {pick(rng, ('LDH release', 'relative mRNA levels', 'positive cells', 'invaded cells'))}"


def render_line(ctx: Ctx, panel: RealPanel) -> None:
    rng, c = ctx.rng, panel.content
    n = int(rng.integers(1, 4))
    palette = pick(rng, PALETTES)
    npts = int(rng.integers(6, 14))
    xmax = float(pick(rng, (10, 12, 24, 60)))
    xs = np.linspace(0, xmax, npts)
    ys = [np.cumsum(rng.uniform(0, 1, size=npts)) * pick(rng, (1.0, 5.0, 20.0)) for _ in range(n)]
    names = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), n, replace=False)]
    boxes: list = []
    legend_h = ctx.fs * 1.15 * n if n > 1 else 0
    ax = _axes(ctx, c, max(float(s.max()) for s in ys) * 1.1, pick(rng, Y_TITLES), pick(rng, X_TITLES), xmax,
               boxes, top_extra=legend_h)
    d = ImageDraw.Draw(ctx.canvas)
    r = max(3, ctx.fs // 5)
    for k, s in enumerate(ys):
        col = palette[k % len(palette)]
        pts = [(ax.x(a), ax.y(b)) for a, b in zip(xs, s)]
        d.line(pts, fill=col, width=max(2, ctx.fs // 8))
        for px, py in pts:
            err = (ax.py1 - ax.py0) * 0.03 * rng.uniform(0.3, 1.0)
            d.line((px, py - err, px, py + err), fill=col, width=2)
            if k % 3 == 0:
                d.ellipse((px - r, py - r, px + r, py + r), fill=col)
            elif k % 3 == 1:
                d.rectangle((px - r, py - r, px + r, py + r), fill=col)
            else:
                d.polygon([(px, py - r - 1), (px - r, py + r), (px + r, py + r)], fill=col)
    if n > 1:
        _legend(ctx, ax.px0 + ctx.fs, c.y0 + 2, names, list(palette[:n]), boxes, c)
    panel.parts.append(union(boxes))
    panel.desc = f"Time course of {pick(rng, ('Sytox Green uptake', 'caspase-3/7 activity', 'lesion area', 'body weight'))}"


def render_km(ctx: Ctx, panel: RealPanel) -> None:
    """Kaplan–Meier curves with censor ticks, a legend and a P value."""
    rng, c = ctx.rng, panel.content
    boxes: list = []
    ax = _axes(ctx, c, 100.0, "Percent survival (%)", "Overall survival (years)", 12.0, boxes)
    d = ImageDraw.Draw(ctx.canvas)
    cols = [(90, 150, 230), (235, 90, 100)]
    for k, col in enumerate(cols):
        t, s, pts = 0.0, 100.0, [(ax.x(0), ax.y(100))]
        while t < 11:
            t += float(rng.exponential(1.2))
            pts.append((ax.x(min(t, 12)), pts[-1][1]))
            s *= float(rng.uniform(0.7 + 0.15 * k, 0.97))
            pts.append((ax.x(min(t, 12)), ax.y(s)))
        d.line(pts, fill=col, width=max(2, ctx.fs // 9))
        for _ in range(3):
            i = int(rng.integers(1, len(pts)))
            d.line((pts[i][0], pts[i][1] - 5, pts[i][0], pts[i][1] + 5), fill=col, width=2)
    fnt = font(int(ctx.fs * 0.9))
    y = ax.py1 - ctx.fs * 3.6
    for name, col in zip(("Low (n=93)", "High (n=94)"), cols):
        ctx.canvas.paste(col, (int(ax.px1 - ctx.fs * 7.5), int(y), int(ax.px1 - ctx.fs * 6.3), int(y) + 3))
        boxes.append(draw_text(ctx.canvas, (ax.px1 - ctx.fs * 6, y), name, fnt, ctx.fg, "lm"))
        y += ctx.fs * 1.2
    boxes.append(draw_text(ctx.canvas, (ax.px1 - ctx.fs * 6, y), "P = 0.047", font(int(ctx.fs * 0.9), "italic"),
                           ctx.fg, "lm"))
    ctx.features.add("legend")
    panel.parts.append(union(boxes))
    panel.desc = "Kaplan–Meier analysis of overall survival"


def render_box(ctx: Ctx, panel: RealPanel) -> None:
    rng, c = ctx.rng, panel.content
    k = int(rng.integers(2, 6))
    palette = pick(rng, PALETTES)
    names = [CONDITIONS[i] for i in rng.choice(len(CONDITIONS), k, replace=False)]
    data = [rng.normal(rng.uniform(3, 10), rng.uniform(0.5, 2.5), size=int(rng.integers(8, 30))) for _ in range(k)]
    boxes: list = []
    ax = _axes(ctx, c, max(float(v.max()) for v in data) * 1.15, pick(rng, Y_TITLES), None, None, boxes)
    slot = (ax.px1 - ax.px0) / k
    d = ImageDraw.Draw(ctx.canvas)
    for i, v in enumerate(data):
        q1, med, q3 = (float(x) for x in np.percentile(v, (25, 50, 75)))
        lo, hi = float(max(0.0, v.min())), float(v.max())
        cx, bw = ax.px0 + slot * (i + 0.5), slot * 0.28
        col = palette[i % len(palette)]
        d.line((cx, ax.y(lo), cx, ax.y(hi)), fill=ctx.fg, width=2)
        d.rectangle((cx - bw, ax.y(q3), cx + bw, ax.y(q1)), fill=col, outline=ctx.fg, width=2)
        d.line((cx - bw, ax.y(med), cx + bw, ax.y(med)), fill=ctx.fg, width=3)
        for val in v[:12]:
            px, py = cx + rng.uniform(-bw, bw), ax.y(max(0.0, float(val)))
            d.ellipse((px - 2, py - 2, px + 2, py + 2), fill=ctx.fg)
        boxes.append(draw_text(ctx.canvas, (cx, ax.py1 + ctx.fs // 3 + 4), names[i], font(ctx.fs), ctx.fg, "mt"))
    panel.parts.append(union(boxes))
    panel.desc = f"Distribution of {pick(rng, ('NKX2-5 expression', 'tumour volume', 'gland area', 'PPA2 counts'))}"


_SUPER = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def render_flow(ctx: Ctx, panel: RealPanel) -> None:
    """A flow-cytometry density plot with log ticks, gates and percentages (gates are not markers)."""
    rng, c = ctx.rng, panel.content
    fs, fnt = ctx.fs, font(ctx.fs)
    boxes: list = []
    title = pick(rng, ("Lymphocytes", "B cells", "Singlets", "Live", "CD19⁺ B cells"))
    boxes.append(draw_text(ctx.canvas, ((c.x0 + c.x1) / 2, c.y0 + 2), title, fnt, ctx.fg, "mt"))
    px0, py0, px1, py1 = c.x0 + fs * 4.5, c.y0 + fs * 2.2, c.x1 - fs, c.y1 - fs * 3.5
    if px1 - px0 < 80 or py1 - py0 < 80:
        px0, py0, px1, py1 = c.x0 + 4, c.y0 + fs * 2.2, c.x1 - 4, c.y1 - 4
    pw, ph = int(px1 - px0), int(py1 - py0)
    n = 6000
    centres = rng.uniform(0.15, 0.85, size=(3, 2))
    pts = np.concatenate([rng.normal(cc, rng.uniform(0.04, 0.12), size=(n // 3, 2)) for cc in centres])
    pts = pts[(pts >= 0).all(1) & (pts < 1).all(1)]
    hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=(max(8, ph // 3), max(8, pw // 3)), range=((0, 1), (0, 1)))
    img = np.full((hist.shape[0], hist.shape[1], 3), 255, dtype=np.uint8)
    mask = hist > 0
    dens = np.zeros_like(hist)
    dens[mask] = np.log1p(hist[mask]) / np.log1p(hist.max())
    ramp = np.asarray(lut_colours("rainbow", 256), dtype=np.uint8)
    img[mask] = ramp[(dens[mask] * 200 + 40).astype(int).clip(0, 255)]
    tile = Image.fromarray(img[::-1], "RGB").resize((pw, ph), Image.Resampling.NEAREST)
    ctx.canvas.paste(tile, (int(px0), int(py0)))
    d = ImageDraw.Draw(ctx.canvas)
    d.rectangle((px0, py0, px0 + pw, py0 + ph), outline=ctx.fg, width=2)
    boxes.append((px0, py0, px0 + pw + 1, py0 + ph + 1))
    for i in range(4):
        lab = "10" + str(i + 2).translate(_SUPER)
        boxes.append(draw_text(ctx.canvas, (px0 + pw * (i + 0.5) / 4, py0 + ph + 6), lab, fnt, ctx.fg, "mt"))
        boxes.append(draw_text(ctx.canvas, (px0 - 6, py0 + ph * (1 - (i + 0.5) / 4)), lab, fnt, ctx.fg, "rm"))
    xt, yt = pick(rng, (("CD19", "CD4"), ("FSC-A", "SSC-A"), ("IgD", "IgM"), ("CD44", "CD62L")))
    boxes.append(draw_text(ctx.canvas, (px0 + pw / 2, c.y1 - 2), xt, fnt, ctx.fg, "mb"))
    boxes.append(draw_text_rotated(ctx.canvas, (c.x0 + fs * 0.7, py0 + ph / 2), yt, fnt, ctx.fg))
    for _ in range(int(rng.integers(1, 3))):
        gx, gy = rng.uniform(0.1, 0.55, size=2)
        gw, gh = rng.uniform(0.2, 0.4, size=2)
        g = (px0 + pw * gx, py0 + ph * gy, px0 + pw * min(0.97, gx + gw), py0 + ph * min(0.97, gy + gh))
        if rng.random() < 0.5:
            d.rectangle(g, outline=ctx.fg, width=2)
        else:
            d.ellipse(g, outline=ctx.fg, width=2)
        boxes.append(draw_text(ctx.canvas, (g[0] + 4, g[1] + 4), f"{rng.uniform(0.5, 95):.1f}", font(int(fs * 0.9)),
                               ctx.fg, "lt"))
    panel.parts.append(union(boxes))
    panel.desc = f"Representative flow cytometry of {title.lower()} stained for {xt} and {yt}"


def render_heatmap(ctx: Ctx, panel: RealPanel) -> None:
    """A clustered heat map with gene names and a colour bar."""
    rng, c = ctx.rng, panel.content
    fs = int(ctx.fs * 0.85)
    fnt = font(fs, "italic" if rng.random() < 0.5 else "sans")
    rows = int(min(len(GENES), max(4, (c.h - fs * 4) // (fs * 1.25))))
    rows = int(rng.integers(max(3, rows // 2), rows + 1))
    cols = int(rng.integers(4, 11))
    genes = [GENES[i] for i in rng.choice(len(GENES), rows, replace=False)]
    name_w = max(text_size(g, fnt)[0] for g in genes)
    bar_w = max(12, fs)
    gx0, gy0 = c.x0 + 2, c.y0 + fs * 2
    gx1, gy1 = c.x1 - name_w - bar_w * 5, c.y1 - 4
    cell_w, cell_h = (gx1 - gx0) / cols, min((gy1 - gy0) / rows, fs * 2.0)
    z = rng.normal(0, 1, size=(rows, cols)).clip(-2, 2)
    boxes: list = []
    for i in range(rows):
        for j in range(cols):
            col = diverging((z[i, j] + 2) / 4)
            ctx.canvas.paste(col, (int(gx0 + j * cell_w), int(gy0 + i * cell_h), int(gx0 + (j + 1) * cell_w),
                                   int(gy0 + (i + 1) * cell_h)))
        boxes.append(draw_text(ctx.canvas, (gx1 + 4, gy0 + (i + 0.5) * cell_h), genes[i], fnt, ctx.fg, "lm"))
    boxes.append((float(gx0), float(gy0), float(gx1), float(gy0 + rows * cell_h)))
    for j in range(cols):  # a condition bar over the columns
        col = pick(rng, ((230, 80, 60), (60, 140, 220), (120, 190, 80)))
        ctx.canvas.paste(col, (int(gx0 + j * cell_w), int(gy0 - fs * 1.2), int(gx0 + (j + 1) * cell_w) - 1,
                               int(gy0 - fs * 0.4)))
    boxes.append((float(gx0), float(gy0 - fs * 1.2), float(gx1), float(gy0 - fs * 0.4)))
    bx0 = int(gx1 + name_w + bar_w * 1.5)
    colour_bar(ctx, panel, Rect(bx0, int(gy0), bx0 + bar_w, int(gy0 + min(rows * cell_h, fs * 8))), "diverging",
               ("-2", "0", "2"))
    panel.parts.append(union(boxes))
    panel.desc = "Heat map of lineage marker expression (Z-score) across sorted populations"


def render_schematic(ctx: Ctx, panel: RealPanel) -> None:
    """Rounded boxes with words joined by connector arrows (kind ``connector``), sometimes over a timeline."""
    rng, c = ctx.rng, panel.content
    words = list(pick(rng, BOX_WORDS))
    n = min(len(words), max(2, int(c.w // (ctx.fs * 6))))
    words = words[:n]
    fnt = font(ctx.fs, "sans", rng.random() < 0.4)
    timeline = rng.random() < 0.5 and c.h > ctx.fs * 9
    boxes: list = []
    d = ImageDraw.Draw(ctx.canvas)
    slot = c.w / n
    bh = min(c.h * 0.35, ctx.fs * 3.2)
    cy = c.y0 + (c.h * 0.3 if timeline else c.h / 2)
    rects = []
    for i, w in enumerate(words):
        tw, th = text_size(w, fnt)
        bw = min(slot * 0.72, tw + ctx.fs * 1.6)
        x0 = c.x0 + slot * i + (slot - bw) / 2
        rect = (x0, cy - bh / 2, x0 + bw, cy + bh / 2)
        fill = pick(rng, ((220, 235, 250), (250, 230, 210), (225, 245, 225), (240, 240, 240), WHITE))
        d.rounded_rectangle(rect, radius=int(bh / 4), fill=fill, outline=ctx.fg, width=2)
        boxes.append(rect)
        boxes.append(draw_text(ctx.canvas, ((rect[0] + rect[2]) / 2, cy), w, fnt, ctx.fg, "mm"))
        rects.append(rect)
    width = max(2.0, ctx.fs / 8)
    for a, b in zip(rects, rects[1:]):
        if b[0] - a[2] < ctx.fs * 1.2:
            continue
        m = connector(ctx.canvas, (a[2] + 4, cy), (b[0] - 4, cy), width, ctx.fg)
        if m is not None:
            panel.markers.append(m)
            boxes.append(m.box)
    if timeline:
        ty = c.y0 + c.h * 0.75
        m = connector(ctx.canvas, (c.x0 + ctx.fs, ty), (c.x1 - ctx.fs, ty), width, ctx.fg)
        if m is not None:
            panel.markers.append(m)
            boxes.append(m.box)
            days = int(rng.integers(3, 6))
            for k in range(days):
                x = c.x0 + ctx.fs * 2 + (c.w - ctx.fs * 5) * k / max(1, days - 1)
                ctx.canvas.paste(ctx.fg, (int(x), int(ty) - ctx.fs // 3, int(x) + 2, int(ty)))
                boxes.append(draw_text(ctx.canvas, (x, ty + ctx.fs * 0.6), f"Day {k * 2}", font(int(ctx.fs * 0.85)),
                                       ctx.fg, "mt"))
    ctx.features.add("schematic")
    panel.parts.append(union(boxes))
    panel.desc = f"Schematic of the experimental workflow ({' to '.join(words[:2])})"


def diverging(v: float) -> Color:
    """Blue (0) - white (0.5) - red (1)."""
    v = min(1.0, max(0.0, v))
    if v < 0.5:
        t = v * 2
        return (int(40 + 215 * t), int(60 + 195 * t), 255)
    t = (v - 0.5) * 2
    return (255, int(255 - 215 * t), int(255 - 215 * t))


RENDERERS = {
    "photo": render_photo, "montage": render_montage, "blot": render_blot, "bar": render_bar, "line": render_line,
    "km": render_km, "box": render_box, "flow": render_flow, "heatmap": render_heatmap, "schematic": render_schematic,
}
#: The panel kind of each content type: pictures (photos, montages, blots) and drawings.
KINDS = {"photo": "photo", "montage": "photo", "blot": "photo", "bar": "chart", "line": "chart", "km": "chart",
         "box": "chart", "flow": "chart", "heatmap": "chart", "schematic": "chart"}
