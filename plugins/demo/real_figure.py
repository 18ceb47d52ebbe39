"""One figure of the ``real`` demo style: page furniture, a gutter-poor layout, labelled panels, markers,
the caption, JPEG compression and the exact ground truth.

See :mod:`panel2patch.plugins.demo` for the conventions; what differs from the default style is listed
there under "Style real".
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from panel2patch.data import Box, Figure, Marker, Panel, Region
from panel2patch.errors import Panel2PatchError

from .figure import DemoFigure, figure_id
from .plans import Rect, pick
from .real_draw import (
    BLACK,
    WHITE,
    Color,
    draw_text,
    draw_text_rotated,
    font,
    fonts_found,
    ink_box,
    luma,
    stamp,
    text_extent,
    text_size,
    union,
)
from .real_markers import (
    add_arrow,
    add_arrowhead,
    add_asterisk,
    add_circle,
    add_inset,
    add_zoom_box,
)
from .real_panels import KINDS, RENDERERS, Ctx, RealPanel
from .real_sources import REAL_SOURCES, available_sources
from .real_text import (
    AUTHORS,
    BOILERPLATE,
    REPRESENTATIVE,
    ROW_CONDITIONS,
    RUNNING_HEADS,
    SCALE_BARS,
    STATISTICS,
    TITLES,
    clause,
    label_token,
    running_text,
)

#: Bumped whenever the same seed would produce different ``real`` figures.
REAL_GENERATOR_VERSION = 1

#: Pixel count bounds of a ``real`` figure.
MIN_PIXELS, MAX_PIXELS = 2_000_000, 6_000_000

#: Marker kinds that get a region (the caption mentions them); ``band_marker`` and ``connector`` get none.
REGION_KINDS = ("arrow", "arrowhead", "asterisk", "box", "circle", "inset")

THEMES = {
    "imaging": {"photo": 45, "montage": 30, "bar": 10, "line": 5, "box": 5, "schematic": 5},
    "molecular": {"blot": 35, "bar": 25, "line": 15, "photo": 10, "schematic": 5, "heatmap": 5, "box": 5},
    "clinical": {"photo": 50, "montage": 15, "km": 10, "bar": 10, "box": 10, "heatmap": 5},
    "cytometry": {"flow": 45, "bar": 20, "box": 10, "heatmap": 10, "line": 10, "photo": 5},
    "mixed": {"photo": 25, "montage": 15, "blot": 12, "bar": 15, "line": 10, "box": 6, "km": 4, "flow": 5,
              "heatmap": 4, "schematic": 4},
}
THEME_MODALITIES = {"imaging": ("histology", "phase", "fundus", "mr", "ct"), "clinical": ("ct", "mr", "us", "fundus",
                                                                                          "phantom")}
#: Smallest content (w, h) per content type.
MIN_SIZE = {"photo": (150, 150), "montage": (340, 200), "blot": (360, 240), "bar": (240, 220), "line": (260, 220),
            "km": (300, 240), "box": (240, 220), "flow": (260, 260), "heatmap": (300, 220), "schematic": (300, 140)}

ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii")


@dataclass
class RealDemoFigure(DemoFigure):
    """A ``real``-style figure; PNG written with fast compression (JPEG-compressed pixels compress poorly).

    ``parts`` holds, per panel id, the boxes of the elements its renderer drew (images, axes, texts): each
    lies inside the panel's ground-truth box, which is measured from the drawn pixels themselves.
    """

    parts: dict[str, list[Box]] = field(default_factory=dict)

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


@dataclass
class LabelStyle:
    series: str  # upper / lower / sub_numbered / sub_roman / roman
    printed: str  # plain / paren / close / dot / circled
    family: str  # sans / serif
    bold: bool
    size: int
    position: str  # above / left / inside
    corner: str  # inside labels: tl / tr / bl / br
    patch: bool
    spaced: bool  # "A i" for sub-roman labels


@dataclass
class Cell:
    rect: Rect
    row: int
    col: int


@dataclass
class Shared:
    """Text and lines outside every panel: condition labels, headers, frames."""

    kind: str  # row_label / column_header / spanning_header / frame
    rect: Rect
    text: str = ""


def _weights(rng: np.random.Generator, table: dict[str, int]) -> str:
    names = list(table)
    p = np.asarray([table[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _gap(rng: np.random.Generator, table: tuple[tuple[int, int, float], ...]) -> int:
    p = np.asarray([t[2] for t in table])
    lo, hi, _ = table[int(rng.choice(len(table), p=p / p.sum()))]
    return int(rng.integers(lo, hi + 1))


ROW_GAPS = ((0, 0, 0.08), (1, 3, 0.1), (8, 40, 0.55), (40, 90, 0.27))
COL_GAPS = ((0, 0, 0.16), (1, 3, 0.1), (6, 24, 0.4), (24, 70, 0.34))


def _layout(rng: np.random.Generator, body: Rect, fs: int, features: set[str]) -> tuple[list[Cell], list[Shared]]:
    """Rows of cells with uneven, often missing gutters; some rows get shared condition labels, headers
    or a frame around them."""
    n_rows = int(np.clip(round(body.h / (body.w * rng.uniform(0.26, 0.42))), 1, 5))
    weights = rng.uniform(0.7, 1.4, size=n_rows)
    row_gaps = [_gap(rng, ROW_GAPS) for _ in range(n_rows - 1)]
    free = body.h - sum(row_gaps)
    heights = [int(free * w / weights.sum()) for w in weights]
    cells: list[Cell] = []
    shared: list[Shared] = []
    y = body.y0
    prev = None
    strip_h = int(fs * 1.7)
    for r in range(n_rows):
        rh = heights[r] if r < n_rows - 1 else body.y1 - y
        row_rect = Rect(body.x0, y, body.x1, y + rh)
        y += rh + (row_gaps[r] if r < n_rows - 1 else 0)
        inner = row_rect
        if rng.random() < 0.12 and rh > 300:  # a frame shared by the row's panels
            pad = int(rng.integers(6, 16))
            shared.append(Shared("frame", row_rect))
            inner = Rect(row_rect.x0 + pad, row_rect.y0 + pad, row_rect.x1 - pad, row_rect.y1 - pad)
            features.add("shared_frame")
        if rng.random() < 0.18 and rh > 260:  # a condition name at the left, shared by the row
            sw = strip_h + 4
            shared.append(Shared("row_label", Rect(inner.x0, inner.y0, inner.x0 + sw, inner.y1),
                                 pick(rng, ROW_CONDITIONS)))
            inner = Rect(inner.x0 + sw + int(rng.integers(2, 12)), inner.y0, inner.x1, inner.y1)
            features.add("row_labels")
        if prev is not None and rng.random() < 0.35 and len(prev[0]) > 1:
            slot_w, gaps = prev  # same columns as the row above: column headers there are shared by both
        else:
            n = int(np.clip(round(inner.w / (rh * rng.uniform(0.85, 1.7))), 1, 5))
            slot_w = list(rng.uniform(0.6, 1.5, size=n))
            gaps = [_gap(rng, COL_GAPS) for _ in range(n - 1)]
        same_columns = prev is not None and slot_w is prev[0]
        if same_columns and rng.random() < 0.7 and not any(s.kind == "column_header" for s in shared[-3:]):
            top_row = [c for c in cells if c.row == r - 1]
            top_row = [c for c in top_row if c.rect.y0 == min(t.rect.y0 for t in top_row)]
            if top_row and all(c.rect.h > 3 * strip_h for c in top_row):
                _add_column_headers(rng, top_row, strip_h, shared)
                features.add("column_headers")
        if not same_columns and len(slot_w) > 1 and rng.random() < 0.12:  # one header over the whole row
            shared.append(Shared("spanning_header", Rect(inner.x0, inner.y0, inner.x1, inner.y0 + strip_h),
                                 pick(rng, ("1.4 % saccharin", "Day 7", "LPS-primed", "In vivo", "Patient 1"))))
            inner = Rect(inner.x0, inner.y0 + strip_h + 4, inner.x1, inner.y1)
            features.add("spanning_header")
        free_w = inner.w - sum(gaps)
        x = inner.x0
        for i, w in enumerate(slot_w):
            cw = int(free_w * w / sum(slot_w)) if i < len(slot_w) - 1 else inner.x1 - x
            slot = Rect(x, inner.y0, x + cw, inner.y1)
            x += cw + (gaps[i] if i < len(gaps) else 0)
            if rng.random() < 0.15 and slot.h > 480:  # two panels stacked in the slot
                g = _gap(rng, ROW_GAPS[:3])
                hh = int((slot.h - g) * rng.uniform(0.4, 0.6))
                cells.append(Cell(Rect(slot.x0, slot.y0, slot.x1, slot.y0 + hh), r, i))
                cells.append(Cell(Rect(slot.x0, slot.y0 + hh + g, slot.x1, slot.y1), r, i))
            else:
                cells.append(Cell(slot, r, i))
        if any(g <= 3 for g in gaps) or (r and row_gaps[r - 1] <= 3):
            features.add("touching")
        prev = (slot_w, gaps)
    return cells, shared


def _add_column_headers(rng: np.random.Generator, top_row: list[Cell], strip_h: int, shared: list[Shared]) -> None:
    """Column names above a row whose columns the next row repeats; the row's cells give up the strip."""
    names = [pick(rng, ROW_CONDITIONS) for _ in top_row]
    for c in top_row:
        shared.append(Shared("column_header", Rect(c.rect.x0, c.rect.y0, c.rect.x1, c.rect.y0 + strip_h),
                             names.pop()))
        c.rect = Rect(c.rect.x0, c.rect.y0 + strip_h + 4, c.rect.x1, c.rect.y1)


def _label_style(rng: np.random.Generator, W: int, n: int, rows: int) -> LabelStyle:
    series = _weights(rng, {"upper": 50, "lower": 24, "sub_numbered": 8 if rows > 1 else 0, "sub_roman": 12,
                            "roman": 6 if n <= 8 else 0})
    printed = _weights(rng, {"plain": 50, "paren": 10, "close": 15 if series == "lower" else 3,
                             "dot": 15 if series == "lower" else 3, "circled": 10 if series in ("upper", "lower") else 0})
    family = "serif" if rng.random() < 0.25 else "sans"
    bold = rng.random() < 0.85
    size = int(W * rng.uniform(0.013, 0.021))
    position = _weights(rng, {"above": 45, "left": 12, "inside": 43})
    corner = _weights(rng, {"tl": 55, "tr": 15, "bl": 15, "br": 15}) if position == "inside" else "tl"
    return LabelStyle(series, printed, family, bold, size, position, corner, rng.random() < 0.2,
                      rng.random() < 0.5)


def _labels(style: LabelStyle, cells: list[Cell], rng: np.random.Generator) -> list[str]:
    n = len(cells)
    if style.series in ("upper", "lower"):
        first = "A" if style.series == "upper" else "a"
        return [chr(ord(first) + i) for i in range(n)]
    if style.series == "roman":
        return list(ROMAN[:n])
    if style.series == "sub_numbered":
        first = "A" if rng.random() < 0.6 else "a"
        out, count = [], {}
        for c in cells:
            count[c.row] = count.get(c.row, 0) + 1
            out.append(f"{chr(ord(first) + c.row)}{count[c.row]}")
        return out
    k = int(min(n - 1, pick(rng, (2, 2, 3)))) if n > 2 else n
    out = [f"A{ROMAN[i]}" for i in range(k)]
    return out + [chr(ord("B") + i) for i in range(n - k)]


def _printed(style: LabelStyle, label: str) -> str:
    text = label
    if style.spaced and len(label) > 1 and label[0].isupper() and label[1:].isalpha():
        text = f"{label[0]} {label[1:]}"
    return {"plain": text, "paren": f"({text})", "close": f"{text})", "dot": f"{text}.", "circled": text}[style.printed]


def _label_font(style: LabelStyle):
    return font(style.size, style.family, style.bold)


def _label_extent(style: LabelStyle, printed: str) -> tuple[int, int]:
    w, h = text_size(printed, _label_font(style))
    if style.printed == "circled":
        side = int(round(1.35 * max(w, h))) + 4
        return side, side
    if style.patch and style.position == "inside":
        pad = max(3, style.size // 6)
        return w + 2 * pad, h + 2 * pad
    return w, h


def _draw_label(canvas: Image.Image, style: LabelStyle, printed: str, x: int, y: int, inside: bool,
                fg: Color) -> tuple[Box | None, Color]:
    """Draw a panel label with its footprint's top-left at (x, y); returns the box of its pixels and its ink."""
    fnt = _label_font(style)
    w, h = _label_extent(style, printed)
    ink = fg
    if inside:
        ink = WHITE if luma(canvas, (x, y, x + w, y + h)) < 128 else BLACK
    if style.patch and inside:
        patch = BLACK if ink == WHITE else WHITE
        canvas.paste(patch, (x, y, x + w, y + h))
        draw_text(canvas, (x + w / 2, y + h / 2), printed, fnt, ink, "mm")
        return (float(x), float(y), float(x + w), float(y + h)), ink
    if style.printed == "circled":
        left, top, right, bottom = text_extent(printed, fnt)
        cx, cy = x + w / 2, y + h / 2

        def glyphs(d: ImageDraw.ImageDraw, ox: int, oy: int) -> None:
            d.text((cx - ox - (left + right) / 2, cy - oy - (top + bottom) / 2), printed, fill=255, font=fnt, anchor="lt")
            d.ellipse((x - ox, y - oy, x + w - 1 - ox, y + h - 1 - oy), outline=255, width=max(2, style.size // 14))

        return stamp(canvas, (x, y), (w, h), ink, glyphs), ink
    return draw_text(canvas, (x, y), printed, fnt, ink), ink


def _content_types(rng: np.random.Generator, theme: str, cells: list[Cell]) -> list[str]:
    out: list[str] = []
    for k, cell in enumerate(cells):
        if k and cells[k - 1].row == cell.row and rng.random() < 0.4:  # rows of like panels, as in journals
            mw, mh = MIN_SIZE[out[-1]]
            if cell.rect.w >= mw * 1.15 and cell.rect.h >= mh * 1.15:
                out.append(out[-1])
                continue
        for _ in range(20):
            t = _weights(rng, THEMES[theme])
            mw, mh = MIN_SIZE[t]
            if cell.rect.w >= mw * 1.15 and cell.rect.h >= mh * 1.15:
                break
        else:
            t = "photo"
        out.append(t)
    return out


def _page_furniture(rng: np.random.Generator, W: int, H: int, fs: int, features: set[str]):
    """Strips cut from the page with the figure: running head, figure title, body text, footer. Returns
    the body rect left for panels and a function drawing the strips."""
    top, bottom = 0, H
    draws = []
    if rng.random() < 0.3:
        hh = int(fs * 2.4)
        head, author = pick(rng, RUNNING_HEADS), pick(rng, AUTHORS)
        draws.append(("header", (top, hh), head, author))
        top += hh + int(fs * rng.uniform(0.5, 1.5))
        features.add("header")
    if rng.random() < 0.25:
        words = int(rng.integers(2, 5)) * 18
        lines = int(rng.integers(2, 5))
        th = int(lines * fs * 1.5)
        draws.append(("text_top", (top, th), running_text(rng, words * 2), lines))
        top += th + int(fs * rng.uniform(1.0, 2.5))
        features.add("running_text")
    if rng.random() < 0.2:
        th = int(fs * 1.8)
        draws.append(("title", (top, th), f"Figure {int(rng.integers(1, 9))}. {pick(rng, TITLES)}"))
        top += th + int(fs * 0.8)
        features.add("title")
    if rng.random() < 0.25:
        fh = int(fs * 2.0)
        draws.append(("footer", (bottom - fh, fh), "© 2025 The Author(s)", str(int(rng.integers(2, 30)))))
        bottom -= fh + int(fs * 0.8)
        features.add("footer")
    if rng.random() < 0.2:
        lines = int(rng.integers(2, 5))
        th = int(lines * fs * 1.5)
        draws.append(("text_bottom", (bottom - th, th), running_text(rng, 200), lines))
        bottom -= th + int(fs * rng.uniform(1.0, 2.5))
        features.add("running_text")
    return top, bottom, draws


def _draw_furniture(canvas: Image.Image, draws, W: int, fs: int, fg: Color, margin: int) -> None:
    small = font(int(fs * 0.85), "italic")
    body = font(fs, "serif")
    for item in draws:
        kind, (y, h) = item[0], item[1]
        if kind == "header":
            draw_text(canvas, (margin, y + h * 0.45), item[2], small, fg, "lm")
            draw_text(canvas, (W - margin, y + h * 0.45), item[3], small, fg, "rm")
            canvas.paste(fg, (margin, y + h - 2, W - margin, y + h))
        elif kind == "footer":
            canvas.paste(fg, (margin, y, W - margin, y + 1))
            draw_text(canvas, (margin, y + h * 0.6), item[2], small, fg, "lm")
            draw_text(canvas, (W - margin, y + h * 0.6), item[3], small, fg, "rm")
        elif kind == "title":
            draw_text(canvas, (margin, y + h / 2), item[2], font(int(fs * 1.05), "sans", True), fg, "lm")
        else:
            words, lines = item[2].split(), item[3]
            d = ImageDraw.Draw(canvas)
            line_h = fs * 1.5
            yy = y + (-line_h * 0.45 if kind == "text_top" else 0)  # the first line cut by the crop
            for _ in range(lines):
                text = ""
                while words and body.getlength(text + " " + words[0]) < W - 2 * margin:
                    text = (text + " " + words.pop(0)).strip()
                d.text((margin, yy), text, fill=fg, font=body)
                yy += line_h


def _draw_shared(canvas: Image.Image, rng: np.random.Generator, shared: list[Shared], fs: int, fg: Color) -> None:
    fnt = font(fs, "sans", rng.random() < 0.3)
    for s in shared:
        r = s.rect
        if s.kind == "frame":
            colour = pick(rng, ((120, 120, 120), fg, (60, 90, 160)))
            width = int(rng.integers(1, 4))
            ImageDraw.Draw(canvas).rectangle((r.x0, r.y0, r.x1 - 1, r.y1 - 1), outline=colour, width=width)
        elif s.kind == "row_label":
            draw_text_rotated(canvas, ((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2), s.text, fnt, fg)
        elif s.kind == "column_header":
            draw_text(canvas, ((r.x0 + r.x1) / 2, r.y1 - 3), s.text, fnt, fg, "mb")
        elif s.kind == "spanning_header":
            if rng.random() < 0.5:
                w, h = text_size(s.text, fnt)
                cx, cy = (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2
                canvas.paste((70, 70, 70), (int(cx - w / 2 - 8), r.y0, int(cx + w / 2 + 8), r.y1))
                draw_text(canvas, (cx, cy), s.text, fnt, WHITE, "mm")
            else:
                draw_text(canvas, ((r.x0 + r.x1) / 2, r.y0 + 2), s.text, fnt, fg, "mt")
                canvas.paste(fg, (r.x0 + 4, r.y1 - 2, r.x1 - 4, r.y1))


def _markers(ctx: Ctx, panel: RealPanel) -> None:
    """Pointer markers drawn into the panel's photo tiles, by the look of each tile."""
    rng = ctx.rng
    tiles = [a for a in panel.images if min(a.rect.w, a.rect.h) >= 90]
    if panel.ctype not in ("photo", "montage") or not tiles:
        return
    if panel.ctype == "photo" and rng.random() < 0.15 and len(tiles) == 1:
        found = add_inset(ctx.canvas, rng, tiles[0], panel.occupied, None)
        panel.markers += found
        if found:
            ctx.features.add("inset")
    count = int(pick(rng, (0, 1, 1, 2, 2, 3, 4, 5)))
    for _ in range(count):
        area = pick(rng, tiles)
        modality = REAL_SOURCES[area.source].modality
        if area.grey:
            kind = _weights(rng, {"outlined": 45, "white": 20, "arrowhead": 15, "circle": 10, "asterisk": 10})
        elif area.dark:
            kind = _weights(rng, {"white": 30, "arrowhead": 40, "circle": 20, "asterisk": 10})
        else:
            kind = _weights(rng, {"thin": 35, "arrowhead": 35, "circle": 15, "asterisk": 10, "plain_box": 5})
        if modality == "us":
            kind = "white"
        if kind in ("outlined", "white", "thin"):
            m = add_arrow(ctx.canvas, rng, area, panel.occupied, ctx.fs, kind)
            if m is not None:
                ctx.features.add(f"arrow_{kind}")
        elif kind == "arrowhead":
            m = add_arrowhead(ctx.canvas, rng, area, panel.occupied, ctx.fs)
        elif kind == "circle":
            m = add_circle(ctx.canvas, rng, area, panel.occupied, ctx.fs)
        elif kind == "asterisk":
            m = add_asterisk(ctx.canvas, rng, area, panel.occupied, ctx.fs)
        else:
            placed = add_zoom_box(ctx.canvas, rng, area, panel.occupied, float(rng.uniform(0.7, 1.4)), "box_plain", None)
            m = placed[0] if placed else None
        if m is not None:
            panel.markers.append(m)


def make_real_figure(seed: int, index: int) -> DemoFigure:
    """Figure ``index`` of the ``real``-style demo set ``seed``; deterministic in ``(seed, index)``."""
    if seed < 0 or index < 0:
        raise Panel2PatchError(f"demo seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([REAL_GENERATOR_VERSION, seed, index, 0x7EA1]))
    sources = available_sources()
    features: set[str] = set()
    W = int(rng.integers(1500, 2601))
    H = int(np.clip(rng.uniform(2.3e6, 5.6e6) / W, 0.45 * W, 1.45 * W))
    H = int(np.clip(H, MIN_PIXELS / W + 1, MAX_PIXELS / W - 1))
    fs = int(np.clip(W * rng.uniform(0.0085, 0.0115), 14, 30))
    theme = _weights(rng, {"imaging": 30, "molecular": 20, "clinical": 15, "cytometry": 10, "mixed": 25})
    dark = theme in ("imaging", "clinical") and rng.random() < 0.08
    bg, fg = (BLACK, WHITE) if dark else (WHITE, BLACK)
    canvas = Image.new("RGB", (W, H), bg)
    margin = int(rng.integers(0, 36))
    top, bottom, furniture = _page_furniture(rng, W, H, fs, features)
    body = Rect(margin, top + margin // 2, W - margin, bottom - margin // 2)
    for _ in range(30):
        layout_features: set[str] = set()
        cells, shared = _layout(rng, body, fs, layout_features)
        if min(min(c.rect.w, c.rect.h) for c in cells) >= 170 and len(cells) >= 2:
            break
    else:  # pragma: no cover - a single row of two panels always fits
        raise Panel2PatchError(f"demo figure {index} (seed {seed}): no layout found")
    features |= layout_features
    style = _label_style(rng, W, len(cells), len({c.row for c in cells}))
    labels = _labels(style, cells, rng)
    printed = [_printed(style, label) for label in labels]
    types = _content_types(rng, theme, cells)
    modalities = THEME_MODALITIES.get(theme)
    photo_pool = tuple(s for s in sources if modalities is None or REAL_SOURCES[s].modality in modalities) or sources
    primary = pick(rng, photo_pool)
    ctx = Ctx(rng, canvas, fs, bg, fg, sources, features)

    panels: list[RealPanel] = []
    extents = [_label_extent(style, p) for p in printed]
    strip_w = max(e[0] for e in extents)
    for i, (cell, ctype) in enumerate(zip(cells, types)):
        panel = RealPanel(i, cell.rect, ctype, KINDS[ctype], label=labels[i], printed=printed[i])
        if ctype in ("photo", "montage"):
            before = panels[-1] if panels and cells[i - 1].row == cell.row and panels[-1].ctype == ctype else None
            if before is not None and rng.random() < 0.6:
                panel.source = before.source
            else:
                panel.source = primary if rng.random() < 0.6 else pick(rng, photo_pool)
        position = style.position if (style.position != "inside" or ctype in ("photo", "montage")) else "above"
        w, h = extents[i]
        gap = max(4, int(style.size * rng.uniform(0.15, 0.5)))
        r = cell.rect
        if position == "above":
            shift = int(w * rng.uniform(0.5, 1.2)) if ctype in ("photo", "montage") and rng.random() < 0.5 else 0
            panel.content = Rect(r.x0 + shift, r.y0 + h + gap, r.x1, r.y1)  # shifted: the label stands above-left
            foot = (r.x0, r.y0, r.x0 + w, r.y0 + h)
            if shift:
                features.add("label_above_left")
        elif position == "left":
            panel.content = Rect(r.x0 + strip_w + gap, r.y0, r.x1, r.y1)
            foot = (r.x0, r.y0, r.x0 + w, r.y0 + h)
        else:
            panel.content = r
            pad = max(4, style.size // 4)
            x = r.x0 + pad if style.corner[1] == "l" else r.x1 - pad - w
            y = r.y0 + pad if style.corner[0] == "t" else r.y1 - pad - h
            foot = (x, y, x + w, y + h)
        panel.occupied.append(tuple(float(v) for v in foot))
        panel.label_at = (position, foot)
        panel.label_corner = style.corner if position == "inside" else None
        panels.append(panel)

    # zoom pairs: a photo outlines an area that the next photo of the row shows enlarged
    zoom_source: dict[int, int] = {}
    for a, b in zip(panels, panels[1:]):
        if (a.ctype == b.ctype == "photo" and cells[a.index].row == cells[b.index].row and rng.random() < 0.3
                and min(a.content.w, a.content.h) >= 240 and a.index not in zoom_source):
            zoom_source[b.index] = a.index

    for panel in panels:
        if panel.index in zoom_source:  # outline the area in the source panel, drawn already
            src = panels[zoom_source[panel.index]]
            area = src.images[0] if src.images else None
            placed = None
            if area is not None and area.picture is not None:
                placed = add_zoom_box(canvas, rng, area, src.occupied, panel.content.w / panel.content.h, "box_zoom",
                                      panel.index)
            if placed is not None:
                marker, inner = placed
                src.markers.append(marker)
                win, r = area.window, area.rect
                fx, fy = (win[2] - win[0]) / r.w, (win[3] - win[1]) / r.h
                panel.zoom_from = (area, (win[0] + (inner[0] - r.x0) * fx, win[1] + (inner[1] - r.y0) * fy,
                                          win[0] + (inner[2] - r.x0) * fx, win[1] + (inner[3] - r.y0) * fy))
        RENDERERS[panel.ctype](ctx, panel)
        position, foot = panel.label_at
        panel.label_box, ink = _draw_label(canvas, style, panel.printed, int(foot[0]), int(foot[1]),
                                           position == "inside", fg)
        if panel.label_box is not None:
            panel.occupied.append(panel.label_box)
        if position == "inside" and panel.label_box is not None:
            features.add("label_inside_" + ("patch" if style.patch else "white" if ink == WHITE else "dark"))
        panel.provenance = (REAL_SOURCES[panel.source].provenance if panel.source and panel.ctype in ("photo", "montage")
                            else "drawn:western_blot" if panel.ctype == "blot" else f"chart:{panel.ctype}")
    for panel in panels:
        _markers(ctx, panel)
    for panel in panels:
        drawn = ink_box(canvas.crop(panel.cell.edges()), bg)
        if drawn is not None:
            drawn = (drawn[0] + panel.cell.x0, drawn[1] + panel.cell.y0, drawn[2] + panel.cell.x0,
                     drawn[3] + panel.cell.y0)
        panel.ink = drawn
    _draw_shared(canvas, rng, shared, fs, fg)
    _draw_furniture(canvas, furniture, W, fs, fg, max(margin, 8))
    _label_features(style, features)

    quality = None
    if rng.random() < 0.5:
        quality = int(rng.integers(55, 93))
        buffer = io.BytesIO()
        canvas.save(buffer, format="JPEG", quality=quality)
        canvas = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        features.add("jpeg")
    figure = _ground_truth(rng, seed, index, W, H, theme, style, panels, cells, features, quality)
    return RealDemoFigure(canvas, figure, {f"p{p.index}": [b for b in p.parts if b is not None] for p in panels})


def _label_features(style: LabelStyle, features: set[str]) -> None:
    features.add(f"label_{style.series}")
    features.add(f"label_print_{style.printed}")
    features.add(f"label_{style.family}_{'bold' if style.bold else 'regular'}")
    features.add(f"label_position_{style.position}")
    if style.position == "inside":
        features.add(f"label_corner_{style.corner}")


def _ground_truth(rng: np.random.Generator, seed: int, index: int, W: int, H: int, theme: str, style: LabelStyle,
                  panels: list[RealPanel], cells: list[Cell], features: set[str], quality: int | None) -> Figure:
    labels = [p.label for p in panels]
    caption_style = _weights(rng, {"paren": 60, "nature": 20 if style.series in ("lower", "sub_numbered") else 5,
                                   "dot": 15})
    title = pick(rng, TITLES) if rng.random() < 0.85 else ""
    groups: list[list[RealPanel]] = []
    zoomers = {m.zoom_into for p in panels for m in p.markers if m.zoom_into is not None}
    i = 0
    while i < len(panels):
        group = [panels[i]]
        if rng.random() < 0.45 and panels[i].index not in zoomers:
            size = int(pick(rng, (2, 2, 3, 3, 4)))
            while len(group) < size and i + len(group) < len(panels):
                nxt = panels[i + len(group)]
                same = nxt.ctype == panels[i].ctype and (nxt.kind == "chart" or nxt.source == panels[i].source)
                if not same or nxt.index in zoomers or nxt.zoom_from is not None:
                    break
                group.append(nxt)
        groups.append(group)
        i += len(group)

    segments: dict[int, tuple[str, dict[str, list[str]]]] = {}
    pieces = [title] if title else []
    for group in groups:
        clauses: dict[str, list[str]] = {}
        seen: set[str] = set()
        for p in group:
            targets = REAL_SOURCES[p.source].targets if p.source else ("the region of interest",)
            for m in p.markers:
                if m.kind not in REGION_KINDS:
                    continue
                m.target = pick(rng, targets)
                if m.clause in seen:
                    continue
                seen.add(m.clause)
                zoom_label = labels[m.zoom_into] if m.zoom_into is not None else ""
                text = clause(rng, m.clause, m.target, m.colour, zoom_label)
                kinds = ("box", "inset") if m.clause == "box_inset" else (m.kind,)
                for k in kinds:
                    clauses.setdefault(k, []).append(text)
        ordered: list[str] = []
        for k in REGION_KINDS:
            for t in clauses.get(k, []):
                if t not in ordered:
                    ordered.append(t)
        desc = _describe(rng, group, labels, panels)
        text = " ".join([desc, *ordered])
        token = label_token(caption_style, [p.label for p in group], rng)
        pieces.append(f"{token} {text}")
        for p in group:
            segments[p.index] = (text, clauses)
    shared_parts = []
    if any(p.kind == "photo" and p.ctype != "blot" for p in panels) and rng.random() < 0.5:
        shared_parts.append(pick(rng, SCALE_BARS))
    if rng.random() < 0.25:
        shared_parts.append(pick(rng, REPRESENTATIVE))
    excluded = []
    if any(p.kind == "chart" for p in panels) and rng.random() < 0.75:
        excluded.append(pick(rng, STATISTICS))
        features.add("caption_statistics")
    if rng.random() < 0.6:
        excluded.append(pick(rng, BOILERPLATE))
        features.add("caption_boilerplate")
    shared = " ".join(shared_parts)
    caption = " ".join(pieces + shared_parts + excluded)
    if any(len(g) > 2 for g in groups):
        features.add("caption_range")
    if any(len(g) == 2 for g in groups):
        features.add("caption_pair")
    features.add(f"caption_{caption_style}")

    out_panels, markers, regions = [], [], []
    for p in panels:
        text, clauses = segments[p.index]
        # everything drawn in the cell (the exact ink box) and the full picture tiles (edges may match the
        # background colour), which hold the label unless it is printed outside them
        box = union([p.ink] + [a.rect.box() for a in p.images] + [p.label_box])
        out_panels.append(Panel(
            id=f"p{p.index}", box=box, label=p.label, label_box=p.label_box, kind=p.kind,
            subcaption=" ".join(s for s in (title, text, shared) if s), preamble=title or None,
            provenance=p.provenance,
        ))
        for m in p.markers:
            mid = f"m{len(markers)}"
            markers.append(Marker(id=mid, kind=m.kind, box=m.box, panel_id=f"p{p.index}", tip=m.tip,
                                  direction=m.direction, text=m.text))
            if m.kind in REGION_KINDS and m.region is not None:
                regions.append(Region(id=f"r{len(regions)}", panel_id=f"p{p.index}", box=m.region, marker_ids=[mid],
                                      texts=list(clauses.get(m.kind, [])), provenance="demo"))
    if any(len(p.label) > 1 for p in panels):
        features.add("label_multi_character")
    return Figure(
        id=figure_id(index), width=W, height=H, caption=caption,
        source=f"panel2patch demo-data seed={seed} style=real",
        panels=out_panels, markers=markers, regions=regions,
        components={"generator": {
            "name": "panel2patch.demo", "style": "real", "version": REAL_GENERATOR_VERSION, "seed": seed,
            "index": index, "layout": f"{theme}:{len({c.row for c in cells})}rows", "theme": theme,
            "label_style": style.series, "label_print": style.printed, "label_position": style.position,
            "label_font": f"{style.family}{'-bold' if style.bold else ''}", "caption_style": caption_style,
            "shared_notes": shared or None, "excluded_notes": " ".join(excluded) or None,
            "jpeg_quality": quality, "fonts": fonts_found(), "features": sorted(features),
        }},
    )


def _describe(rng: np.random.Generator, group: list[RealPanel], labels: list[str], panels: list[RealPanel]) -> str:
    """The sentence(s) of a caption segment: what the panels show, under which conditions, and at times a
    back-reference to an earlier panel (never at a sentence start)."""
    first = group[0]
    desc = first.desc or "Representative images"
    if first.zoom_from is not None:
        src = next(p for p in panels if any(m.zoom_into == first.index for m in p.markers))
        return f"{desc} in ({src.label})."
    conds = [ROW_CONDITIONS[i] for i in rng.choice(len(ROW_CONDITIONS), len(group), replace=False)]
    if len(group) > 1 and rng.random() < 0.5:
        refs = ", ".join(f"{c} ({p.label})" for c, p in zip(conds, group))
        text = f"{desc} in {refs}."
    elif " samples" in desc or first.ctype in ("schematic", "heatmap"):
        text = f"{desc}."
    else:
        text = f"{desc} in {' and '.join(conds[:2]) if len(conds) > 1 else conds[0]} samples."
    if first.index > 0 and rng.random() < 0.2:
        text += f" Samples were prepared following the protocol in ({labels[0]})."
    if first.kind == "chart" and rng.random() < 0.4:
        text += f" n = {int(rng.integers(3, 9))} biological replicates."
    return text
