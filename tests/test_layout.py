"""The ``cpu_layout`` figure parser: panel boxes from gutters and components, on figures drawn here."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from panel2patch import manager
from panel2patch.components import FigureParser
from panel2patch.images import open_image
from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.layout.foreground import background_colour, foreground_mask, reduce_mask
from panel2patch.parsers.layout.parser import LayoutParser

Box = tuple[int, int, int, int]


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A micrograph-like picture: smooth blobs plus grain, never the pure background colours."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(max(2, h // 24), max(2, w // 24), 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = rng.normal(0, 12, size=(h, w, 3))
    return Image.fromarray(np.clip(smooth + grain, 25, 230).astype(np.uint8))


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def chart(w: int, h: int, seed: int, paper=(255, 255, 255), ink=(0, 0, 0)) -> tuple[Image.Image, Box]:
    """A line chart with tick labels and axis titles spaced away from the axes by blank gaps.

    Returns the picture and the box of its ink (every drawn pixel), relative to the picture.
    """
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    f = font(max(10, h // 22))
    x0, y0, x1, y1 = int(0.28 * w), int(0.08 * h), int(0.95 * w), int(0.72 * h)
    d.line([(x0, y0), (x0, y1), (x1, y1)], fill=ink, width=2)
    for k in range(5):
        ty = y1 - k * (y1 - y0) // 4
        d.line([(x0 - 6, ty), (x0, ty)], fill=ink, width=2)
        d.text((x0 - 12, ty), str(10 * k), font=f, fill=ink, anchor="rm")
        tx = x0 + k * (x1 - x0) // 4
        d.line([(tx, y1), (tx, y1 + 6)], fill=ink, width=2)
        d.text((tx, y1 + 12), str(2 * k), font=f, fill=ink, anchor="mt")
    d.text(((x0 + x1) // 2, int(0.88 * h)), "Time (h)", font=f, fill=ink, anchor="mm")
    title = Image.new("RGB", (int(0.5 * h), f.size + 6), paper)
    ImageDraw.Draw(title).text((title.width // 2, title.height // 2), "Signal", font=f, fill=ink, anchor="mm")
    img.paste(title.rotate(90, expand=True), (int(0.04 * w), int(0.15 * h)))
    ys = np.cumsum(rng.uniform(0, 1, 6))
    pts = [(x0 + i * (x1 - x0) // 5, y1 - int((v / ys[-1]) * (y1 - y0 - 4))) for i, v in enumerate(ys)]
    d.line(pts, fill=(200, 30, 30), width=2)
    arr = np.asarray(img)
    ys_, xs_ = np.nonzero(np.any(arr != np.array(paper, dtype=np.uint8), axis=-1))
    return img, (int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1)


def grid(rows: int, cols: int, cell: tuple[int, int], gutter: int, margin: int, background=(255, 255, 255),
         seed: int = 0) -> tuple[Image.Image, list[Box]]:
    cw, ch = cell
    W = 2 * margin + cols * cw + (cols - 1) * gutter
    H = 2 * margin + rows * ch + (rows - 1) * gutter
    canvas = Image.new("RGB", (W, H), background)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            x, y = margin + c * (cw + gutter), margin + r * (ch + gutter)
            canvas.paste(photo(cw, ch, seed + 10 * r + c), (x, y))
            boxes.append((x, y, x + cw, y + ch))
    return canvas, boxes


def assert_matches(found, expected: list[Box], min_iou: float = 0.9) -> None:
    """Every expected box has its own found panel at ``min_iou`` or better, and nothing else was found."""
    assert len(found) == len(expected), [p.box for p in found]
    for box in expected:
        best = max(box_iou(p.box, box) for p in found)
        assert best >= min_iou, (box, [p.box for p in found])


@pytest.fixture(scope="module")
def layout_only() -> LayoutParser:
    return LayoutParser(ocr=False)


def test_registered_as_cpu_layout_and_builds_from_recipe_args():
    parser = manager.build("figure_parsers", "cpu_layout", {"ocr": False, "min_gutter": 3})
    assert isinstance(parser, LayoutParser) and isinstance(parser, FigureParser)
    assert parser.min_gutter == 3 and parser.ocr is False


@pytest.mark.parametrize("args", [{"min_panel_frac": 0.0}, {"min_panel_frac": 1.5}, {"min_gutter": 0},
                                  {"background_tolerance": 300}, {"min_label_confidence": 2.0}, {"ocr_threads": -1}])
def test_rejects_out_of_range_arguments(args):
    with pytest.raises(ValueError, match="cpu_layout"):
        LayoutParser(**args)


def test_grid_with_wide_gutters(layout_only):
    img, boxes = grid(2, 3, (180, 140), gutter=16, margin=10)
    out = layout_only.parse(img, None)
    assert (out.width, out.height) == img.size
    assert_matches(out.panels, boxes)


@pytest.mark.parametrize("gutter", [2, 3])
def test_grid_with_narrow_gutters(layout_only, gutter):
    img, boxes = grid(3, 3, (150, 120), gutter=gutter, margin=6, seed=gutter)
    assert_matches(layout_only.parse(img, None).panels, boxes)


def test_black_background(layout_only):
    img, boxes = grid(2, 2, (200, 160), gutter=10, margin=12, background=(0, 0, 0), seed=5)
    assert_matches(layout_only.parse(img, None).panels, boxes)


def test_hairline_gutters_between_edge_to_edge_photos(layout_only):
    img, boxes = grid(2, 3, (170, 150), gutter=1, margin=0, seed=7)
    assert_matches(layout_only.parse(img, None).panels, boxes)


def test_single_panel_figure_stays_whole(layout_only):
    img = Image.new("RGB", (420, 300), "white")
    img.paste(photo(380, 260, 3), (20, 20))
    out = layout_only.parse(img, None)
    assert_matches(out.panels, [(20, 20, 400, 280)], min_iou=0.95)


def test_irregular_layout_tall_panel_beside_a_stack(layout_only):
    img = Image.new("RGB", (620, 520), "white")
    boxes = [(10, 10, 250, 510), (262, 10, 610, 200), (262, 212, 610, 380), (262, 392, 610, 510)]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        img.paste(photo(x1 - x0, y1 - y0, 20 + i), (x0, y0))
    assert_matches(layout_only.parse(img, None).panels, boxes)


def test_pinwheel_layout_without_straight_gutters_split_by_components(layout_only):
    # four panels around a hole: every horizontal and vertical line through the figure hits a panel
    img = Image.new("RGB", (600, 500), "white")
    boxes = [(10, 10, 350, 150), (360, 10, 590, 330), (250, 340, 590, 490), (10, 160, 240, 490)]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        img.paste(photo(x1 - x0, y1 - y0, 40 + i), (x0, y0))
    assert_matches(layout_only.parse(img, None).panels, boxes, min_iou=0.95)


def test_chart_keeps_its_tick_labels_and_axis_titles(layout_only):
    img = Image.new("RGB", (760, 330), "white")
    img.paste(photo(330, 300, 11), (15, 15))
    plot, ink = chart(380, 300, 12)
    img.paste(plot, (365, 15))
    chart_box = (365 + ink[0], 15 + ink[1], 365 + ink[2], 15 + ink[3])
    found = layout_only.parse(img, None).panels
    assert_matches(found, [(15, 15, 345, 315), chart_box], min_iou=0.93)


def test_caption_lines_at_the_bottom_edge_are_not_a_panel(layout_only):
    img = Image.new("RGB", (700, 420), "white")
    img.paste(photo(330, 300, 13), (10, 10))
    img.paste(photo(330, 300, 14), (360, 10))
    d = ImageDraw.Draw(img)
    f = font(14)
    for k, line in enumerate(("Figure 2. Histology of the colon in treated and control mice, stained with",
                              "haematoxylin and eosin; insets show the crypt base at higher magnification.")):
        d.text((10, 340 + 22 * k), line, font=f, fill="black")
    assert_matches(layout_only.parse(img, None).panels, [(10, 10, 340, 310), (360, 10, 690, 310)], min_iou=0.95)


def test_large_figure_is_analysed_coarsely_but_boxes_are_in_original_pixels():
    parser = LayoutParser(ocr=False, analysis_pixels=200_000)
    img, boxes = grid(2, 2, (900, 700), gutter=24, margin=20, seed=17)
    out = parser.parse(img, None)
    assert (out.width, out.height) == img.size
    assert_matches(out.panels, boxes, min_iou=0.97)


def test_panels_are_in_reading_order_with_unique_ids_and_scores(layout_only):
    img, boxes = grid(2, 2, (160, 130), gutter=12, margin=8, seed=21)
    panels = layout_only.parse(img, None).panels
    tops_lefts = [(p.box[1], p.box[0]) for p in panels]
    assert tops_lefts == sorted(tops_lefts)
    assert len({p.id for p in panels}) == len(panels)
    assert all(0.0 <= p.score <= 1.0 and p.provenance == "layout" for p in panels)
    assert all(p.label is None for p in panels)  # ocr=False reads no letters


def test_panel_kinds_are_tagged(layout_only):
    img = Image.new("RGB", (760, 330), "white")
    img.paste(photo(330, 300, 31), (15, 15))
    img.paste(chart(380, 300, 32)[0], (365, 15))
    panels = sorted(layout_only.parse(img, None).panels, key=lambda p: p.box[0])
    assert [p.kind for p in panels] == ["photo", "chart"]
    assert {p.kind for p in LayoutParser(ocr=False, kinds=False).parse(img, None).panels} == {"unknown"}


def test_background_colour_comes_from_full_uniform_lines_when_panels_touch_the_border():
    img, _ = grid(2, 2, (120, 100), gutter=1, margin=0, background=(255, 255, 255), seed=2)
    assert tuple(background_colour(np.asarray(img))) == (255, 255, 255)
    black, _ = grid(2, 2, (120, 100), gutter=6, margin=6, background=(0, 0, 0), seed=2)
    assert tuple(background_colour(np.asarray(black))) == (0, 0, 0)


def test_foreground_mask_and_any_pooling_keep_a_three_pixel_gutter():
    rgb = np.zeros((8, 12, 3), dtype=np.uint8)
    rgb[:, 5:8] = 255  # a three-pixel white gutter on black
    fg = foreground_mask(rgb, np.array([255, 255, 255], dtype=np.uint8), 16)
    assert fg[:, :5].all() and not fg[:, 5:8].any() and fg[:, 8:].all()
    pooled = reduce_mask(fg, 2)  # a gutter of 2 * scale - 1 cells survives any alignment
    assert pooled.shape == (4, 6)
    assert pooled[:, :3].all() and not pooled[:, 3].any() and pooled[:, 4:].all()


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _exif_rotated() -> bytes:
    img, _ = grid(1, 2, (120, 90), gutter=10, margin=6, seed=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    return _encoded(img, "JPEG", exif=exif)


DEGENERATE = {
    "1x1": lambda: Image.new("RGB", (1, 1), "white"),
    "7x7": lambda: Image.new("RGB", (7, 7), "black"),
    "20000x50": lambda: Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 20000, 3), dtype=np.uint8)),
    "50x20000": lambda: Image.new("RGB", (50, 20000), "white"),
    "blank": lambda: Image.new("RGB", (300, 200), "white"),
    "grayscale": lambda: grid(2, 2, (80, 60), 6, 4)[0].convert("L"),
    "palette": lambda: grid(2, 2, (80, 60), 6, 4)[0].convert("P"),
    "alpha": lambda: grid(2, 2, (80, 60), 6, 4)[0].convert("RGBA"),
    "cmyk": lambda: grid(2, 2, (80, 60), 6, 4)[0].convert("CMYK"),
    "16-bit": lambda: Image.fromarray(np.arange(200 * 150, dtype=np.uint16).reshape(150, 200) * 2).convert("I;16"),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_images_parse_without_exception(name):
    img = DEGENERATE[name]()
    for parser in (LayoutParser(ocr=False), _shared_ocr_parser()):
        out = parser.parse(img, None)
        assert (out.width, out.height) == img.size
        assert out.panels, name
        for p in out.panels:
            x0, y0, x1, y1 = p.box
            assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height, (name, p.box)


def test_exif_rotated_jpeg_through_open_image():
    img = open_image(_exif_rotated())
    assert img.size == (102, 262)  # the 262 x 102 side-by-side pair stands upright after EXIF rotation
    out = LayoutParser(ocr=False).parse(img, None)
    assert len(out.panels) == 2
    top, bottom = sorted(out.panels, key=lambda p: p.box[1])
    assert top.box[3] <= bottom.box[1]  # stacked, as the rotated pair is displayed
    assert all(p.box[3] - p.box[1] < 140 for p in out.panels)


_OCR_PARSER: list[LayoutParser] = []


def _shared_ocr_parser() -> LayoutParser:
    if not _OCR_PARSER:
        _OCR_PARSER.append(LayoutParser())
    return _OCR_PARSER[0]
