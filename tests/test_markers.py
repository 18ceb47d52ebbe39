"""Marker detector "shape_markers": arrows, arrowheads, asterisks, symbols, boxes and insets on drawn panels.

Every picture is drawn here with PIL on flat, dark, textured (scikit-image's bundled micrographs) and
chart-like backgrounds, with markers at known places; expectations come from the drawing, never from
the detector.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from panel2patch import manager
from panel2patch.data import Marker, Panel
from panel2patch.errors import RecipeError
from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.markers.detector import ShapeMarkerDetector

WHITE, BLACK, YELLOW, RED, GREEN = (255, 255, 255), (0, 0, 0), (255, 230, 0), (230, 20, 20), (20, 200, 40)


# -- drawing ---------------------------------------------------------------------------------------


def flat(colour, size=(320, 260)) -> Image.Image:
    return Image.new("RGB", size, colour)


def tissue(size=(320, 260)) -> Image.Image:
    """Light, brown/blue immunohistochemistry texture."""
    import skimage.data

    return Image.fromarray(skimage.data.immunohistochemistry()).crop((60, 40, 60 + size[0], 40 + size[1]))


def micrograph(size=(320, 260)) -> Image.Image:
    """Grey, mid-dark phase-contrast texture."""
    import skimage.data

    arr = skimage.data.cell()[100 : 100 + size[1], 100 : 100 + size[0]]
    return Image.fromarray(arr).convert("RGB")


def chart(size=(320, 260)) -> Image.Image:
    """Axes, tick labels, bars with error bars, a line with round markers and a framed legend."""
    img = flat(WHITE, size)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    w, h = size
    d.line([(40, 20), (40, h - 40), (w - 10, h - 40)], fill=BLACK)
    for i, v in enumerate((0, 25, 50, 75)):
        y = h - 40 - i * 45
        d.line([(36, y), (40, y)], fill=BLACK)
        d.text((8, y - 6), str(v), fill=BLACK, font=font)
    for i, (top, colour) in enumerate(((120, (31, 119, 180)), (80, (255, 127, 14)), (150, (44, 160, 44)))):
        x = 60 + i * 50
        d.rectangle([x, top, x + 30, h - 40], fill=colour)
        d.line([(x + 15, top - 12), (x + 15, top)], fill=BLACK)
        d.line([(x + 10, top - 12), (x + 20, top - 12)], fill=BLACK)
        d.text((x, h - 34), ("Ctrl", "WT", "KO")[i], fill=BLACK, font=font)
    pts = [(200 + 12 * i, 150 - 9 * i) for i in range(8)]
    d.line(pts, fill=(214, 39, 40), width=2)
    for x, y in pts:
        d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(214, 39, 40))
    d.rectangle([w - 110, 25, w - 15, 60], outline=BLACK)
    d.line([(w - 104, 35), (w - 90, 35)], fill=(214, 39, 40), width=2)
    d.text((w - 86, 29), "Treated", fill=BLACK, font=font)
    d.text((w // 2 - 30, h - 18), "Time (days)", fill=BLACK, font=font)
    return img


def draw_arrow(img, tip, direction, length=60.0, colour=WHITE, head=None, shaft=None):
    """Filled triangular head plus shaft pointing at ``tip``; ``direction`` in degrees, y up."""
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    head = head or max(9.0, 0.35 * length)
    shaft = shaft or max(2.0, round(length / 14))
    half = 0.55 * head
    bx, by = tip[0] - ux * head, tip[1] - uy * head
    tx, ty = tip[0] - ux * length, tip[1] - uy * length
    d = ImageDraw.Draw(img)
    d.polygon([tip, (bx + nx * half, by + ny * half), (bx - nx * half, by - ny * half)], fill=colour)
    if length > head:
        s = shaft / 2
        d.polygon([(tx + nx * s, ty + ny * s), (bx + ux + nx * s, by + uy + ny * s),
                   (bx + ux - nx * s, by + uy - ny * s), (tx - nx * s, ty - ny * s)], fill=colour)
    return (tx, ty)


def draw_asterisk(img, centre, radius, colour, spokes=6, width=3):
    d = ImageDraw.Draw(img)
    for i in range(spokes):
        a = math.pi / 2 + 2 * math.pi * i / spokes
        d.line([centre, (centre[0] + radius * math.cos(a), centre[1] - radius * math.sin(a))], fill=colour, width=width)


def draw_box(img, rect, colour, width=2, dash=None):
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = rect
    if dash is None:
        d.rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=width)
        return
    on, off = dash
    for a in range(x0, x1, on + off):
        d.rectangle([a, y0, min(a + on, x1) - 1, y0 + width - 1], fill=colour)
        d.rectangle([a, y1 - width, min(a + on, x1) - 1, y1 - 1], fill=colour)
    for a in range(y0, y1, on + off):
        d.rectangle([x0, a, x0 + width - 1, min(a + on, y1) - 1], fill=colour)
        d.rectangle([x1 - width, a, x1 - 1, min(a + on, y1) - 1], fill=colour)


def panel_of(img) -> list[Panel]:
    return [Panel(id="p0", box=(0.0, 0.0, float(img.width), float(img.height)))]


def detect(img, **args) -> list[Marker]:
    return ShapeMarkerDetector(read_text=False, **args).detect(img, panel_of(img))


def angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def jpeg(img, quality=85) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


# -- registration and arguments --------------------------------------------------------------------


def test_registered_as_shape_markers_and_built_from_recipe_args():
    det = manager.build("marker_detectors", "shape_markers", {"read_text": False, "contrast": 50})
    assert isinstance(det, ShapeMarkerDetector)
    assert det.contrast == 50 and det._reader is None


def test_recipe_args_are_type_checked():
    with pytest.raises(RecipeError, match="read_text"):
        manager.build("marker_detectors", "shape_markers", {"read_text": "yes"})


@pytest.mark.parametrize("args", [{"min_size": 0.5, "max_size": 0.2}, {"max_size": 1.5}, {"dash_gap": 0},
                                  {"contrast": 0}])
def test_out_of_range_args_are_rejected_with_the_argument_named(args):
    with pytest.raises(ValueError, match=next(iter(args))):
        ShapeMarkerDetector(**args)


# -- arrows ----------------------------------------------------------------------------------------

ARROW_CASES = [
    ("dark", WHITE, 0.0), ("dark", YELLOW, 135.0), ("light", BLACK, 90.0), ("light", RED, 225.0),
    ("tissue", BLACK, 300.0), ("tissue", GREEN, 20.0), ("micrograph", WHITE, 180.0), ("micrograph", YELLOW, 250.0),
]


def background(name: str) -> Image.Image:
    return {"dark": lambda: flat((25, 25, 30)), "light": lambda: flat((235, 235, 230)), "tissue": tissue,
            "micrograph": micrograph}[name]()


@pytest.mark.parametrize("bg,colour,direction", ARROW_CASES)
def test_arrow_kind_tip_and_direction(bg, colour, direction):
    img = background(bg)
    tip = (170.0, 120.0)
    draw_arrow(img, tip, direction, length=64, colour=colour)
    arrows = [m for m in detect(img) if m.kind == "arrow"]
    assert len(arrows) == 1, arrows
    m = arrows[0]
    assert math.dist(m.tip, tip) <= 3.0
    assert angle_diff(m.direction, direction) <= 20.0
    assert m.box[0] <= tip[0] <= m.box[2] and m.box[1] <= tip[1] <= m.box[3]
    assert m.panel_id == "p0"


def test_arrowhead_without_shaft_points_at_its_apex():
    img = background("tissue")
    tip, direction = (150.0, 110.0), 60.0
    draw_arrow(img, tip, direction, length=22, head=22, colour=BLACK)  # a head only
    heads = [m for m in detect(img) if m.kind == "arrowhead"]
    assert len(heads) == 1
    assert math.dist(heads[0].tip, tip) <= 3.0
    assert angle_diff(heads[0].direction, direction) <= 20.0


def test_arrow_survives_jpeg_compression():
    img = background("micrograph")
    tip = (120.0, 150.0)
    draw_arrow(img, tip, 45.0, length=70, colour=YELLOW)
    arrows = [m for m in detect(jpeg(img, 80)) if m.kind == "arrow"]
    assert len(arrows) == 1 and math.dist(arrows[0].tip, tip) <= 3.0


# -- asterisks and symbols -------------------------------------------------------------------------


@pytest.mark.parametrize("bg,colour,spokes", [("dark", WHITE, 6), ("light", BLACK, 8), ("tissue", YELLOW, 5),
                                              ("micrograph", RED, 6)])
def test_drawn_asterisk(bg, colour, spokes):
    img = background(bg)
    draw_asterisk(img, (160, 130), 11, colour, spokes=spokes)
    stars = [m for m in detect(img) if m.kind == "asterisk"]
    assert len(stars) == 1
    assert box_iou(stars[0].box, (149, 119, 172, 142)) >= 0.5


def test_asterisk_glyph():
    img = background("dark")
    ImageDraw.Draw(img).text((150, 100), "*", fill=WHITE, font=ImageFont.load_default(size=48), anchor="mm")
    assert [m.kind for m in detect(img)] == ["asterisk"]


def test_isolated_upright_triangle_is_a_symbol():
    img = background("light")
    ImageDraw.Draw(img).polygon([(150, 100), (139, 119), (161, 119)], fill=BLACK)
    assert [m.kind for m in detect(img)] == ["symbol"]


def test_hash_sign_is_a_symbol():
    img = background("light")
    d = ImageDraw.Draw(img)
    for a in (134, 144):
        d.line([(a, 116), (a, 144)], fill=BLACK, width=3)
    for a in (125, 135):
        d.line([(126, a), (152, a)], fill=BLACK, width=3)
    assert [m.kind for m in detect(img)] == ["symbol"]


def test_isolated_dagger_is_a_symbol_but_not_inside_a_word():
    img = background("light")
    d = ImageDraw.Draw(img)
    d.line([(100, 100), (100, 130)], fill=BLACK, width=3)
    d.line([(93, 108), (107, 108)], fill=BLACK, width=3)
    assert [m.kind for m in detect(img)] == ["symbol"]
    d.text((104, 115), "ext", fill=BLACK, font=ImageFont.load_default(size=30), anchor="lm")
    assert detect(img) == []


# -- boxes and insets ------------------------------------------------------------------------------


@pytest.mark.parametrize("bg,colour,width,dash", [("tissue", BLACK, 2, None), ("dark", YELLOW, 1, (6, 4)),
                                                  ("micrograph", WHITE, 3, (8, 5)), ("tissue", GREEN, 2, (5, 4)),
                                                  ("light", RED, 1, None)])
def test_solid_and_dashed_boxes(bg, colour, width, dash):
    img = background(bg)
    rect = (110, 70, 200, 150)
    draw_box(img, rect, colour, width, dash)
    boxes = [m for m in detect(img) if m.kind == "box"]
    assert len(boxes) == 1
    assert box_iou(boxes[0].box, rect) >= 0.85


def test_bordered_sub_image_in_a_corner_is_an_inset():
    img = background("micrograph")
    zoom = tissue((90, 90))
    img.paste(zoom, (img.width - 94, 4))
    draw_box(img, (img.width - 94, 4, img.width - 4, 94), WHITE, width=3)
    insets = [m for m in detect(img) if m.kind == "inset"]
    assert len(insets) == 1
    assert box_iou(insets[0].box, (img.width - 94, 4, img.width - 4, 94)) >= 0.85


def test_outline_away_from_corners_is_a_box_not_an_inset():
    img = background("micrograph")
    draw_box(img, (100, 80, 200, 170), WHITE, width=3)
    assert [m.kind for m in detect(img)] == ["box"]


# -- precision -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tissue, micrograph, chart], ids=["tissue", "micrograph", "chart"])
def test_no_markers_on_clean_photos_and_charts(make):
    assert detect(make()) == []


def test_chart_data_markers_repeated_many_times_are_not_markers():
    img = chart()
    d = ImageDraw.Draw(img)
    for i in range(9):
        x, y = 60 + 25 * i, 60 + (i % 3) * 30
        d.polygon([(x, y - 6), (x - 6, y + 5), (x + 6, y + 5)], fill=(148, 103, 189))
    assert [m for m in detect(img) if m.kind in ("arrowhead", "symbol")] == []


def test_panel_label_inside_its_label_box_is_not_a_marker():
    img = background("micrograph")
    d = ImageDraw.Draw(img)
    d.rectangle([6, 6, 40, 38], outline=WHITE, width=2)  # a framed panel letter looks like a box
    d.text((23, 22), "A", fill=WHITE, font=ImageFont.load_default(size=20), anchor="mm")
    unlabelled = Panel(id="p0", box=(0.0, 0.0, float(img.width), float(img.height)))
    labelled = Panel(id="p0", box=unlabelled.box, label="A", label_box=(6, 6, 41, 39))
    assert [m.kind for m in ShapeMarkerDetector(read_text=False).detect(img, [unlabelled])] == ["box"]
    assert ShapeMarkerDetector(read_text=False).detect(img, [labelled]) == []


# -- panels and coordinates ------------------------------------------------------------------------


def test_markers_get_their_panel_id_and_figure_coordinates():
    fig = flat(WHITE, (700, 300))
    left, right = background("tissue"), background("dark")
    draw_arrow(left, (150.0, 120.0), 0.0, colour=BLACK)
    draw_box(right, (100, 80, 190, 160), YELLOW, 2)
    fig.paste(left, (10, 20))
    fig.paste(right, (360, 20))
    panels = [Panel(id="a", box=(10, 20, 330, 280)), Panel(id="b", box=(360, 20, 680, 280))]
    markers = ShapeMarkerDetector(read_text=False).detect(fig, panels)
    kinds = {(m.kind, m.panel_id) for m in markers}
    assert kinds == {("arrow", "a"), ("box", "b")}
    arrow = next(m for m in markers if m.kind == "arrow")
    assert math.dist(arrow.tip, (160.0, 140.0)) <= 3.0
    box = next(m for m in markers if m.kind == "box")
    assert box_iou(box.box, (460, 100, 550, 180)) >= 0.85
    assert len({m.id for m in markers}) == len(markers)


def test_without_panels_the_whole_image_is_searched():
    img = background("dark")
    draw_arrow(img, (170.0, 120.0), 90.0, colour=WHITE)
    markers = ShapeMarkerDetector(read_text=False).detect(img, [])
    assert [(m.kind, m.panel_id) for m in markers] == [("arrow", None)]


@pytest.mark.parametrize("size,panels", [
    ((1, 1), [Panel(id="p", box=(0, 0, 1, 1))]),
    ((200, 150), [Panel(id="tiny", box=(10, 10, 18, 16))]),
    ((200, 150), [Panel(id="outside", box=(300, 300, 500, 500)), Panel(id="negative", box=(-50, -50, -10, -10))]),
    ((200, 150), [Panel(id="nan", box=(float("nan"), 0, 100, 100)), Panel(id="inverted", box=(150, 100, 20, 10))]),
    ((5, 400), []),
])
def test_degenerate_inputs_give_no_markers_and_no_errors(size, panels):
    img = flat((30, 30, 30), size)
    assert ShapeMarkerDetector(read_text=False).detect(img, panels) == []


def test_panel_partly_outside_the_image_is_clipped():
    img = background("dark")
    draw_arrow(img, (170.0, 120.0), 270.0, colour=WHITE)
    markers = ShapeMarkerDetector(read_text=False).detect(img, [Panel(id="p", box=(-40, -40, 900, 900))])
    assert [m.kind for m in markers] == ["arrow"]


def test_grayscale_and_rgba_images_are_accepted():
    img = background("light")
    draw_asterisk(img, (160, 130), 11, BLACK)
    for converted in (img.convert("L"), img.convert("RGBA")):
        assert [m.kind for m in ShapeMarkerDetector(read_text=False).detect(converted, panel_of(img))] == ["asterisk"]


# -- text labels -----------------------------------------------------------------------------------


def test_text_label_next_to_an_arrow_is_read_and_attached():
    img = background("dark")
    tail = draw_arrow(img, (230.0, 140.0), 0.0, length=70, colour=WHITE)
    ImageDraw.Draw(img).text((tail[0] - 6, tail[1]), "Stent", fill=WHITE, font=ImageFont.load_default(size=18),
                             anchor="rm")
    ImageDraw.Draw(img).polygon([(60, 40), (49, 59), (71, 59)], fill=WHITE)  # an unlabelled symbol
    markers = ShapeMarkerDetector(read_text=True).detect(img, panel_of(img))
    arrow = next(m for m in markers if m.kind == "arrow")
    assert arrow.text == "Stent"
    assert all(m.text is None for m in markers if m is not arrow)


def test_markers_sharing_one_text_line_read_it_once():
    img = background("dark")
    font = ImageFont.load_default(size=18)
    ImageDraw.Draw(img).text((160, 205), "Stent", fill=WHITE, font=font, anchor="mm")
    for x in (130.0, 190.0):  # two arrows pointing up from either end of one label
        draw_arrow(img, (x, 70.0), 90.0, length=120, colour=WHITE, head=22, shaft=4)

    class CountingReader:
        def __init__(self):
            self.crops = 0

        def read(self, crops):
            self.crops += len(crops)
            return [("Stent", 0.99)] * len(crops)

    det = ShapeMarkerDetector(read_text=True)
    det._reader = reader = CountingReader()
    arrows = [m for m in det.detect(img, panel_of(img)) if m.kind == "arrow"]
    assert len(arrows) == 2 and all(m.text == "Stent" for m in arrows)
    assert reader.crops == 1


# -- letters, neighbours and candidate pruning ----------------------------------------------------


def _row_stats(boxes):
    """``connectedComponentsWithStats``-style stats (background first) for ``(x, y, w, h)`` boxes."""
    return np.array([(0, 0, 400, 300, 0), *[(x, y, w, h, w * h // 2) for x, y, w, h in boxes]], dtype=np.int32)


def test_letters_inside_a_word_are_recognised_in_rows_and_columns():
    from panel2patch.parsers.markers.words import in_words

    def row(widths, heights, x=20, y=50, vertical=False):  # glyphs 2 px apart
        boxes = []
        for w, h in zip(widths, heights):
            boxes.append((y, x, h, w) if vertical else (x, y + 14 - h, w, h))
            x += w + 2
        return boxes

    word = row((10, 6, 12, 8, 10), (14, 14, 10, 14, 10))
    column = row((10, 7, 12, 9), (14, 14, 14, 14), x=100, y=300, vertical=True)  # rotated text
    stars = row((12, 12, 12), (12, 12, 12), y=150)  # "***": one mark repeated, not a word
    alone = [(200, 200, 12, 14)]
    stats = _row_stats(word + column + stars + alone)
    candidates = np.arange(1, len(stats))
    inside = in_words(stats, candidates, np.ones(len(stats), dtype=bool))
    assert inside.tolist() == [False, True, True, True, False] + [False, True, True, False] + [False] * 3 + [False]
    # Glyphs that are not flat (texture) do not make a word.
    assert not in_words(stats, candidates, np.eye(1, len(stats), 0, dtype=bool)[0]).any()


def test_a_row_of_asterisks_is_not_a_word():
    img = background("light")
    for k in range(3):  # "***", 2 px apart
        draw_asterisk(img, (130 + 16 * k, 100), 7, BLACK, width=2)
    assert [m.kind for m in detect(img)] == ["asterisk"] * 3


def test_shapes_in_a_row_with_gaps_wider_than_letter_spacing_are_all_kept():
    img = background("dark")
    for x in (110.0, 150.0, 190.0):  # heads 27 px wide, 13 px apart
        draw_arrow(img, (x, 80.0), 90.0, length=70, colour=WHITE)
    assert [m.kind for m in detect(img)] == ["arrow"] * 3


def test_arrow_with_its_label_just_before_the_tail_is_kept():
    img = background("light")
    tail = draw_arrow(img, (260.0, 130.0), 0.0, length=80, colour=BLACK)
    ImageDraw.Draw(img).text((tail[0] - 3, tail[1]), "Site A", fill=BLACK, font=ImageFont.load_default(size=16),
                             anchor="rm")
    assert [m.kind for m in detect(img)] == ["arrow"]


def _pair_corners_reference(hs, vs, tol, min_side, limit):
    """The corner pairing written as plain loops, to check the vectorised one against."""
    def near(a, b, over):
        return -over <= a - b <= tol

    rects, checks = {}, 0
    for i in range(len(vs)):
        for j in range(len(hs)):
            if not (near(hs[j, 2], vs[i, 0], tol + 0.5 * (hs[j, 3] - hs[j, 2]))
                    and near(vs[i, 2], hs[j, 0], tol + 0.5 * (vs[i, 3] - vs[i, 2]))):
                continue
            for r in range(len(vs)):
                if not (vs[r, 0] >= vs[i, 1] + min_side
                        and near(vs[r, 1], hs[j, 3], tol + 0.5 * (hs[j, 3] - hs[j, 2]))
                        and near(vs[r, 2], hs[j, 0], tol + 0.5 * (vs[r, 3] - vs[r, 2]))):
                    continue
                for k in range(len(hs)):
                    if not (hs[k, 0] >= hs[j, 1] + min_side
                            and near(hs[k, 2], vs[i, 0], tol + 0.5 * (hs[k, 3] - hs[k, 2]))
                            and near(hs[k, 1], vs[i, 3], tol + 0.5 * (vs[i, 3] - vs[i, 2]))
                            and near(vs[r, 1], hs[k, 3], tol + 0.5 * (hs[k, 3] - hs[k, 2]))
                            and near(hs[k, 1], vs[r, 3], tol + 0.5 * (vs[r, 3] - vs[r, 2]))):
                        continue
                    x0, y0, x1, y1 = int(vs[i, 0]), int(hs[j, 0]), int(vs[r, 1]), int(hs[k, 1])
                    crossed = (int(x0 - hs[j, 2] > tol or y0 - vs[i, 2] > tol)
                               + int(hs[j, 3] - x1 > tol or y0 - vs[r, 2] > tol)
                               + int(x0 - hs[k, 2] > tol or vs[i, 3] - y1 > tol)
                               + int(hs[k, 3] - x1 > tol or vs[r, 3] - y1 > tol))
                    if crossed <= 2:
                        rects.setdefault((x0, y0, x1, y1), (i, j, r, k))
                checks += 1
                if checks > limit:
                    return sorted(rects.items())
    return sorted(rects.items())


@pytest.mark.parametrize("limit", [4000, 40, 0])
def test_corner_pairing_matches_plain_loops(limit):
    from panel2patch.parsers.markers.rectangles import pair_corners

    rng = np.random.default_rng(7)
    # Strokes on a coarse grid so that many meet at corners, some running past them.
    y = rng.integers(0, 6, 40) * 30
    x0 = rng.integers(0, 5, 40) * 30 - rng.integers(0, 8, 40)
    hs = np.column_stack([y, y + 2, x0, x0 + rng.integers(1, 4, 40) * 30 + rng.integers(0, 8, 40)]).astype(np.int64)
    x = rng.integers(0, 6, 40) * 30
    y0 = rng.integers(0, 5, 40) * 30 - rng.integers(0, 8, 40)
    vs = np.column_stack([x, x + 2, y0, y0 + rng.integers(1, 4, 40) * 30 + rng.integers(0, 8, 40)]).astype(np.int64)
    expected = _pair_corners_reference(hs, vs, 6, 10, limit)
    assert len(expected) >= {4000: 15, 40: 3, 0: 0}[limit]
    assert pair_corners(hs, vs, 6, 10, limit=limit) == expected


def test_stroke_colours_match_a_per_stroke_count():
    import cv2

    from panel2patch.parsers.markers.rectangles import stroke_colours

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    rgb[10:13, 5:70] = (200, 40, 40)  # one flat stroke among noise
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    distinct = (rng.random((60, 80)) < 0.7).astype(np.uint8)
    distinct[10:13, 5:70] = 1
    segs = np.array([(10, 13, 5, 70), (20, 22, 0, 80), (40, 41, 30, 31), (50, 52, 10, 10)], dtype=np.int64)
    for vertical, s in ((False, segs), (True, segs[:, [2, 3, 0, 1]] // 2)):
        colours, flat = stroke_colours(rgb, gray, distinct, s, vertical)
        for k, (a0, a1, b0, b1) in enumerate(s.tolist()):
            rows, cols = (slice(b0, b1), slice(a0, a1)) if vertical else (slice(a0, a1), slice(b0, b1))
            on = distinct[rows, cols].astype(bool)
            luma = gray[rows, cols][on].astype(int)
            if luma.size == 0:
                assert not flat[k]
                continue
            counts = [np.count_nonzero(np.abs(luma - level) <= 7) for level in range(256)]
            peak = int(np.argmax(counts))
            assert flat[k] == (counts[peak] >= 0.5 * luma.size)
            if flat[k]:
                near = np.abs(luma - peak) <= 7
                assert np.allclose(colours[k], rgb[rows, cols][on][near].mean(axis=0))
    assert stroke_colours(rgb, gray, distinct, segs, False)[1][0]  # the drawn stroke is flat


# -- block, outlined and high-contrast arrows -------------------------------------------------------


def arrow_outline(tip, direction, length, head, head_width, shaft):
    """The seven corners of an arrow (head ``head`` long and ``head_width`` wide, shaft ``shaft`` wide)."""
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    bx, by = tip[0] - ux * head, tip[1] - uy * head
    tx, ty = tip[0] - ux * length, tip[1] - uy * length
    h, s = head_width / 2, shaft / 2
    return [tip, (bx + nx * h, by + ny * h), (bx + nx * s, by + ny * s), (tx + nx * s, ty + ny * s),
            (tx - nx * s, ty - ny * s), (bx - nx * s, by - ny * s), (bx - nx * h, by - ny * h)]


@pytest.mark.parametrize("direction", [0.0, 135.0, 270.0])
def test_a_block_arrow_with_a_shaft_half_as_wide_as_its_head_is_an_arrow(direction):
    img = background("micrograph")
    tip = (160.0, 130.0)
    ImageDraw.Draw(img).polygon(arrow_outline(tip, direction, 70, 28, 30, 15), fill=WHITE)
    arrows = [m for m in detect(img) if m.kind == "arrow"]
    assert len(arrows) == 1, arrows
    assert math.dist(arrows[0].tip, tip) <= 3.0 and angle_diff(arrows[0].direction, direction) <= 20.0


@pytest.mark.parametrize("direction", [30.0, 180.0])
def test_a_white_arrow_whose_dark_rim_alone_stands_out_is_an_arrow(direction):
    # light grey scan: the white fill is too close to the ground to count, its rim is not
    img = flat((205, 205, 205))
    tip = (170.0, 120.0)
    ImageDraw.Draw(img).polygon(arrow_outline(tip, direction, 80, 30, 30, 12), fill=WHITE, outline=BLACK, width=2)
    arrows = [m for m in detect(jpeg(img, 85)) if m.kind == "arrow"]
    assert len(arrows) == 1, arrows
    assert math.dist(arrows[0].tip, tip) <= 4.0 and angle_diff(arrows[0].direction, direction) <= 20.0


def test_outlined_shapes_other_than_arrows_are_no_arrows():
    img = flat((205, 205, 205))
    d = ImageDraw.Draw(img)
    d.ellipse([40, 40, 110, 90], outline=BLACK, width=2)
    d.rounded_rectangle([150, 60, 260, 100], radius=12, outline=BLACK, width=2)
    d.polygon([(60, 150), (120, 150), (150, 200), (90, 230), (40, 200)], outline=BLACK, width=2)
    assert [m for m in detect(jpeg(img, 85)) if m.kind == "arrow"] == []


def test_a_high_contrast_arrow_keeps_its_compression_ringing(monkeypatch):
    from panel2patch.parsers.markers import detector

    img = flat((70, 70, 70))
    tip = (170.0, 120.0)
    ImageDraw.Draw(img).polygon(arrow_outline(tip, 150.0, 45, 18, 18, 6), fill=WHITE)
    img = jpeg(img, 50)
    assert len([m for m in detect(img) if m.kind == "arrow"]) == 1
    # judged by an absolute texture limit alone, the ringing inside the white fill reads as texture
    monkeypatch.setattr(detector, "TEXTURE_PER_CONTRAST", 0.0)
    assert [m for m in detect(img) if m.kind == "arrow"] == []
