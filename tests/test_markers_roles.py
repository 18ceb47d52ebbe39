"""Marker detector "shape_markers" on scenes like those of real research figures, and what each arrow is for.

Pointers on pictures (white arrows with dark outlines on grey scans, coloured and outlined arrowheads
on stained tissue and micrographs), markers touching frames and gutters, triangles beside blot bands
(``band_marker``), diagram arrows (``connector``) and chart glyphs that are no arrows at all. Every
picture is drawn here with PIL/numpy; expectations come from the drawing.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from test_markers import BLACK, WHITE, YELLOW, angle_diff, draw_arrow, flat, jpeg, micrograph

from panel2patch.data import Panel
from panel2patch.parsers.markers.detector import ShapeMarkerDetector

POINTERS = ("arrow", "arrowhead")


# -- drawing ---------------------------------------------------------------------------------------


def grey_scan(size=(360, 300), seed=0) -> Image.Image:
    """A noisy grey MRI/CT-like picture: a bright smooth body on a darker ground, grain everywhere."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    body = 90 + 60 * np.exp(-(((xx - w * 0.5) / (w * 0.3)) ** 2 + ((yy - h * 0.5) / (h * 0.35)) ** 2))
    arr = body + rng.normal(0, 10, (h, w))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)).convert("RGB")


def pink_tissue(size=(360, 300), seed=1) -> Image.Image:
    """Eosin-pink stained tissue: mottled pink with grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    blobs = np.asarray(Image.fromarray((rng.random((h // 4, w // 4)) * 255).astype(np.uint8)).resize(
        (w, h), Image.BICUBIC), dtype=np.float64) / 255.0
    arr = np.dstack([230 - 30 * blobs, 150 - 60 * blobs, 190 - 40 * blobs]) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def outlined(img: Image.Image, draw, fill, rim=BLACK, width=2) -> Image.Image:
    """``draw(canvas)`` paints a shape in white on a black canvas; it is put on ``img`` in ``fill`` inside a
    ``width`` px ``rim``."""
    import cv2

    canvas = Image.new("RGB", img.size, (0, 0, 0))
    draw(canvas)
    shape = np.asarray(canvas.convert("L")) > 127
    ring = cv2.dilate(shape.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8)).astype(bool)
    arr = np.asarray(img).copy()
    arr[ring] = rim
    arr[shape] = fill
    return Image.fromarray(arr)


def head(img: Image.Image, tip, direction, length=24.0, width=None, colour=BLACK) -> None:
    """A filled isosceles triangle (no shaft) pointing ``direction`` (degrees, y up) with its apex at ``tip``."""
    width = 0.9 * length if width is None else width
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    bx, by = tip[0] - ux * length, tip[1] - uy * length
    ImageDraw.Draw(img).polygon([tip, (bx + nx * width / 2, by + ny * width / 2),
                                 (bx - nx * width / 2, by - ny * width / 2)], fill=colour)


def blot(size=(420, 260), strips=3, seed=3, frame=True):
    """A western blot on white paper: light-grey strips (with a thin frame) of 8 lanes, one dark band per
    strip. Returns the image, the strips' right edge and the band rows."""
    rng = np.random.default_rng(seed)
    img = flat(WHITE, size)
    arr = np.asarray(img).astype(np.float64)
    x0, x1 = 70, 320
    rows = []
    for s in range(strips):
        y0 = 20 + s * 75
        y1 = y0 + 55
        band = y0 + 18 + 20 * (s % 2)
        rows.append(float(band))
        ground = np.full((y1 - y0, x1 - x0), 238.0)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        for lane in range(8):
            cx = x0 + (lane + 0.5) * (x1 - x0) / 8
            ground -= 150 * rng.uniform(0.4, 1.0) * np.exp(-(((xx - cx) / 11.0) ** 6) - ((yy - band) / 3.5) ** 2)
        ground += rng.normal(0, 3, ground.shape)
        arr[y0:y1, x0:x1] = ground[..., None]
        if frame:
            arr[y0, x0:x1] = arr[y1 - 1, x0:x1] = 150
            arr[y0:y1, x0] = arr[y0:y1, x1 - 1] = 150
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), x1, rows


def detect(img, kind="photo", **args):
    return ShapeMarkerDetector(read_text=False, **args).detect(img, [Panel("p0", (0, 0, img.width, img.height),
                                                                           kind=kind)])


def pointers(markers):
    return [m for m in markers if m.kind in POINTERS]


# -- pointers on pictures --------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [225.0, 0.0, 100.0])
def test_white_arrow_with_a_dark_outline_on_a_noisy_grey_scan(direction):
    tip = (190.0, 150.0)
    img = outlined(grey_scan(), lambda c: draw_arrow(c, tip, direction, length=52), WHITE)
    (arrow,) = pointers(detect(img))
    assert arrow.kind == "arrow"
    assert math.dist(arrow.tip, tip) <= 3.5
    assert angle_diff(arrow.direction, direction) <= 15.0


def test_white_arrow_whose_tail_runs_into_a_white_gutter():
    """Time-series frames side by side: an arrow drawn from the gutter into the frame joins the gutter."""
    img = flat(WHITE, (400, 200))
    img.paste(grey_scan((190, 200), seed=4), (0, 0))
    img.paste(grey_scan((190, 200), seed=5), (210, 0))
    tip = (150.0, 90.0)
    draw_arrow(img, tip, 180.0, length=60, colour=WHITE, shaft=3)  # its tail ends in the gutter at x = 210
    found = pointers(detect(img))
    assert len(found) == 1
    assert math.dist(found[0].tip, tip) <= 3.5
    assert angle_diff(found[0].direction, 180.0) <= 15.0


@pytest.mark.parametrize("colour,direction", [((20, 120, 40), 225.0), ((250, 220, 0), 30.0), (BLACK, 180.0)])
def test_arrowhead_on_textured_pink_tissue(colour, direction):
    img = pink_tissue()
    tip = (180.0, 150.0)
    head(img, tip, direction, length=24, colour=colour)
    (mark,) = pointers(detect(img))
    assert mark.kind == "arrowhead"
    assert math.dist(mark.tip, tip) <= 3.5
    assert angle_diff(mark.direction, direction) <= 20.0


def test_thin_coloured_arrow_on_pink_tissue_survives_jpeg():
    img = pink_tissue()
    tip = (200.0, 120.0)
    draw_arrow(img, tip, 315.0, length=56, colour=(20, 160, 40), shaft=3)
    (arrow,) = pointers(detect(jpeg(img, 85)))
    assert arrow.kind == "arrow" and math.dist(arrow.tip, tip) <= 3.5


@pytest.mark.parametrize("fill", [YELLOW, WHITE, (60, 200, 230)])
def test_outlined_arrowhead_on_a_micrograph(fill):
    """A triangle filled white or in colour inside a black rim, as 3D-reconstruction figures mark features."""
    tip = (150.0, 120.0)
    img = outlined(micrograph(), lambda c: head(c, tip, 300.0, length=26, colour=WHITE), fill)
    (mark,) = pointers(detect(img))
    assert mark.kind == "arrowhead"
    assert math.dist(mark.tip, tip) <= 4.0
    assert angle_diff(mark.direction, 300.0) <= 20.0


def test_outlined_arrowhead_touching_a_line_is_found():
    tip = (150.0, 120.0)
    img = outlined(flat((235, 235, 235)), lambda c: head(c, tip, 90.0, length=26, colour=WHITE), WHITE)
    ImageDraw.Draw(img).line([(40, 146), (300, 146)], fill=BLACK, width=2)  # under the triangle's base
    (mark,) = pointers(detect(img))
    assert mark.kind == "arrowhead" and math.dist(mark.tip, tip) <= 4.0


def test_arrow_found_in_two_overlapping_panels_is_reported_once():
    img = grey_scan((400, 300))
    tip = (200.0, 150.0)
    img = outlined(img, lambda c: draw_arrow(c, tip, 45.0, length=50), WHITE)
    panels = [Panel("big", (0, 0, 400, 300), kind="photo"), Panel("small", (100, 60, 330, 260), kind="photo")]
    found = pointers(ShapeMarkerDetector(read_text=False).detect(img, panels))
    assert [(m.kind, m.panel_id) for m in found] == [("arrow", "small")]
    assert len({m.id for m in found}) == 1


# -- blots -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chart", "photo"])
def test_triangles_beside_blot_bands_are_band_markers(kind):
    img, right, rows = blot()
    for row in rows:
        head(img, (right + 4.0, row), 180.0, length=16, width=18)
    markers = detect(img, kind)
    bands = [m for m in markers if m.kind == "band_marker"]
    assert pointers(markers) == []
    assert len(bands) == len(rows)
    for m, row in zip(sorted(bands, key=lambda m: m.box[1]), rows):
        assert math.dist(m.tip, (right + 4.0, row)) <= 3.0
        assert angle_diff(m.direction, 180.0) <= 15.0


def test_one_triangle_beside_a_blot_with_a_grey_ground_is_a_band_marker():
    img, right, rows = blot(strips=1, frame=False)
    head(img, (right + 3.0, rows[0]), 180.0, length=16, width=18)
    assert [m.kind for m in detect(img, "chart")] == ["band_marker"]


def test_arrows_beside_a_blot_touching_its_frame_stay_arrows():
    """"← p43": an arrow with a shaft points at its band; drawn against the frame it joins the frame."""
    img, right, rows = blot()
    for row in rows:
        draw_arrow(img, (right + 0.0, row), 180.0, length=28, colour=BLACK, head=14, shaft=2)
    found = detect(img, "chart")
    arrows = sorted((m for m in found if m.kind == "arrow"), key=lambda m: m.tip[1])
    assert [m.kind for m in found if m.kind in POINTERS + ("connector", "band_marker")] == ["arrow"] * len(rows)
    for m, row in zip(arrows, rows):
        assert math.dist(m.tip, (right + 0.0, row)) <= 3.5
        assert m.box[2] - m.box[0] >= 20  # the shaft was traced back from the head


# -- diagrams and charts ---------------------------------------------------------------------------


def flow_chart(size=(420, 200)):
    img = flat(WHITE, size)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    boxes = [(20, 70, 110, 120), (165, 70, 255, 120), (310, 70, 400, 120)]
    for (x0, y0, x1, y1), name in zip(boxes, ("Input", "Model", "Output")):
        d.rectangle([x0, y0, x1, y1], outline=BLACK, width=2)
        d.text(((x0 + x1) / 2, (y0 + y1) / 2), name, fill=BLACK, font=font, anchor="mm")
    tips = []
    for (_, _, ax1, _), (bx0, _, _, _) in zip(boxes, boxes[1:]):
        tip = (bx0 - 3.0, 95.0)
        draw_arrow(img, tip, 0.0, length=bx0 - ax1 - 8, colour=BLACK, head=12, shaft=2)
        tips.append(tip)
    return img, tips


@pytest.mark.parametrize("kind", ["chart", "photo"])
def test_flow_chart_connectors_are_not_pointers(kind):
    img, tips = flow_chart()
    markers = detect(img, kind)
    assert pointers(markers) == []
    connectors = sorted((m for m in markers if m.kind == "connector"), key=lambda m: m.tip[0])
    assert len(connectors) == len(tips)
    for m, tip in zip(connectors, tips):
        assert math.dist(m.tip, tip) <= 3.5


def test_axis_arrows_of_a_chart_are_connectors():
    img = flat(WHITE, (360, 300))
    d = ImageDraw.Draw(img)
    d.line([(40, 260), (320, 260)], fill=BLACK, width=2)
    d.line([(40, 260), (40, 30)], fill=BLACK, width=2)
    draw_arrow(img, (330.0, 260.0), 0.0, length=40, colour=BLACK, head=12, shaft=2)
    draw_arrow(img, (40.0, 20.0), 90.0, length=40, colour=BLACK, head=12, shaft=2)
    rng = np.random.default_rng(0)
    for x, y in rng.uniform((60, 50), (300, 240), (40, 2)):
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(31, 119, 180))
    markers = detect(img, "chart")
    assert pointers(markers) == []


def test_tick_labels_legend_samples_wedges_and_chart_triangles_are_not_pointers():
    img = flat(WHITE, (420, 320))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=22)
    for k, text in enumerate(("1", "10", "11", "12", "-1", "t1")):  # a "1" has a flag on one side only
        d.text((30 + 60 * k, 20), text, fill=BLACK, font=font)
    for k, colour in enumerate(((230, 30, 30), (30, 30, 230), BLACK)):  # legend: a line through a disc
        y = 90 + 30 * k
        d.line([(40, y), (90, y)], fill=colour, width=2)
        d.ellipse([58, y - 6, 70, y + 6], fill=colour)
    d.polygon([(150, 100), (330, 88), (330, 112)], fill=BLACK)  # a time ramp (wedge)
    for x, y in ((100, 250), (180, 210), (260, 270)):  # triangle data markers
        d.polygon([(x, y - 7), (x - 7, y + 6), (x + 7, y + 6)], fill=(44, 160, 44))
    assert pointers(detect(img, "chart")) == []


# -- odd images ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (12, 12), (13, 900), (3000, 14), (4000, 40)])
@pytest.mark.parametrize("kind", ["photo", "chart", "unknown"])
def test_constant_and_extreme_aspect_images_give_nothing(size, kind):
    for colour in (WHITE, BLACK, (128, 64, 200)):
        assert detect(flat(colour, size), kind) == []


def test_transparent_palette_and_bilevel_images_are_accepted():
    base = pink_tissue((200, 160))
    head(base, (100.0, 80.0), 45.0, length=24, colour=BLACK)
    rgba = base.convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    ImageDraw.Draw(alpha).rectangle([0, 0, 60, 159], fill=0)  # a transparent strip at the left
    rgba.putalpha(alpha)
    for img in (rgba, base.convert("P"), base.convert("1"), base.convert("LA")):
        markers = ShapeMarkerDetector(read_text=False).detect(img, [Panel("p0", (0, 0, 200, 160), kind="photo")])
        assert all(m.kind in POINTERS + ("band_marker", "connector", "symbol", "asterisk", "box", "inset")
                   for m in markers)


def test_noise_is_searched_in_bounded_time():
    """Salt-and-pepper noise gives tens of thousands of components in every layer; candidates are capped."""
    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((700, 700, 3)) < 0.5).astype(np.uint8) * 255)
    start = time.process_time()
    markers = detect(img, "photo")
    assert time.process_time() - start < 60.0
    assert len(markers) < 50


def test_band_markers_get_the_band_name_printed_after_them():
    img, right, rows = blot()
    font = ImageFont.load_default(size=16)
    for row, name in zip(rows, ("FL", "Cleaved", "GAPDH")):
        head(img, (right + 4.0, row), 180.0, length=16, width=18)
        ImageDraw.Draw(img).text((right + 26.0, row), name, fill=BLACK, font=font, anchor="lm")

    class Reader:  # stands in for RapidOCR: answers with the crop's width, to tell the lines apart
        def __init__(self):
            self.crops = []

        def read(self, crops):
            self.crops += crops
            return [(f"w{c.shape[1]}", 0.99) for c in crops]

    det = ShapeMarkerDetector(read_text=True)
    det._reader = reader = Reader()
    bands = [m for m in det.detect(img, [Panel("p0", (0, 0, img.width, img.height), kind="chart")])
             if m.kind == "band_marker"]
    assert len(bands) == 3
    assert len({m.text for m in bands}) == 3 and all(m.text.startswith("w") for m in bands)
    widths = {f"w{c.shape[1]}": c for c in reader.crops}
    for m in bands:  # each reads its own dark name on white paper, not the blot
        crop = np.asarray(widths[m.text])
        assert crop.min() < 100 and np.median(crop) > 200
