"""Letters as the skeleton of the layout: found anywhere in the figure, then cut around."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from test_layout import font, photo

from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.labels.reader import LabelReader
from panel2patch.parsers.labels.scan import scan_labels
from panel2patch.parsers.layout.parser import LayoutParser, caption_letters
from panel2patch.parsers.layout.partition import partition

_READER: list[LabelReader] = []


def reader() -> LabelReader:
    if not _READER:
        _READER.append(LabelReader(threads=1))
    return _READER[0]


def touching_panels() -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Four micrographs edge to edge in a 2 x 2 block (no gutter), letters printed inside their
    top-left corners on white patches, a line of text and tick numbers around them."""
    canvas = Image.new("RGB", (900, 700), "white")
    d = ImageDraw.Draw(canvas)
    boxes = []
    for k, (x, y) in enumerate(((40, 60), (450, 60), (40, 370), (450, 370))):
        canvas.paste(photo(410, 310, 70 + k), (x, y))
        boxes.append((x, y, x + 410, y + 310))
        d.rectangle((x + 6, y + 6, x + 46, y + 50), fill="white")
        d.text((x + 12, y + 8), "ABCD"[k], font=font(36), fill="black")
    d.text((300, 12), "Cells at day 4", font=font(28), fill="black")
    for k, tick in enumerate(("0", "5", "10")):
        d.text((12, 100 + 100 * k), tick, font=font(14), fill="black")
    return canvas, boxes


def test_scan_finds_the_letter_series_and_nothing_of_the_text():
    canvas, boxes = touching_panels()
    found = scan_labels(np.asarray(canvas), reader())
    assert [f.text for f in found] == ["A", "B", "C", "D"]
    for f, box in zip(found, boxes):
        assert box[0] <= f.box[0] <= box[0] + 50 and box[1] <= f.box[1] <= box[1] + 50, (f, box)


def test_scan_needs_a_series_from_the_first_letter():
    canvas = Image.new("RGB", (600, 300), "white")
    d = ImageDraw.Draw(canvas)
    for ch, x in (("C", 20), ("D", 300)):
        d.text((x, 20), ch, font=font(36), fill="black")
    assert scan_labels(np.asarray(canvas), reader()) == []


def test_touching_panels_are_cut_at_their_letters():
    canvas, boxes = touching_panels()
    panels = LayoutParser().parse(canvas).panels
    assert [p.label for p in panels] == ["A", "B", "C", "D"], [(p.label, p.box) for p in panels]
    for p, box in zip(panels, boxes):
        assert box_iou(p.box, box) > 0.9, (p.label, p.box, box)


def test_partition_cuts_nearest_the_next_letters_and_leaves_shared_titles_out():
    mask = np.zeros((100, 120), bool)
    mask[10:48, 5:115] = True  # two touching panels in the top row
    mask[52:54, 0:120] = True  # a section rule across the figure, below the top row
    mask[60:95, 5:60] = True
    mask[60:95, 64:115] = True
    anchors = [(5, 10, 9, 14), (62, 10, 66, 14), (5, 60, 9, 64), (64, 60, 68, 64)]
    cells = partition(mask, anchors)
    assert cells is not None
    assert cells[0] == (5, 10, 62, 48) and cells[1] == (62, 10, 115, 48)  # rule left out
    assert cells[2] == (5, 60, 60, 95) and cells[3] == (64, 60, 115, 95)


def test_partition_prefers_the_widest_of_equally_clean_gutters():
    mask = np.zeros((100, 100), bool)
    mask[5:45, 5:45] = True  # A
    mask[55:95, 5:45] = True  # B, below A
    mask[5:47, 50:95] = True  # C, beside both, with a thin gap level with the A/B gutter
    mask[50:95, 50:95] = True
    cells = partition(mask, [(5, 5, 9, 9), (5, 55, 9, 59), (50, 5, 54, 9)])
    assert cells is not None
    assert cells[2] == (50, 5, 95, 95)


def test_a_gutter_is_lines_as_clean_as_the_cleanest_not_a_charts_sparse_lines():
    mask = np.zeros((140, 240), bool)
    mask[2:58, 2:100] = True  # A, a picture
    mask[2:58, 124:170] = True  # B, a picture
    mask[64:138, 2:98] = True  # C, a picture under A, below a clean 6-line gutter
    mask[64:138, 108] = True  # D, a chart: its y axis,
    mask[135, 109:236] = True  # its x axis (columns through it, under the A-B gap, are nearly clean),
    mask[90:135, 160:170] = True  # and a bar
    anchors = [(2, 2, 6, 6), (124, 2, 128, 6), (2, 64, 6, 68), (96, 64, 100, 68)]
    cells = partition(mask, anchors)
    assert cells is not None
    # the rows are cut apart first: B's cell ends above the chart, the chart spans under B
    assert cells[1] == (124, 2, 170, 58) and cells[3][2] == 236, cells


def test_ink_above_all_the_letters_costs_no_cut():
    mask = np.zeros((100, 110), bool)
    mask[0:3, :] = True  # a page's running text above the figure
    mask[10:95, 4] = True  # A: a chart (y axis, x axis, a bar) beside B over C
    mask[94, 4:44] = True
    mask[60:94, 20:26] = True
    mask[10:46, 50:105] = True  # B, a picture
    mask[52:95, 50:105] = True  # C, a picture under B
    cells = partition(mask, [(6, 10, 10, 14), (50, 10, 54, 14), (50, 52, 54, 56)])
    assert cells is not None
    # the clean column between the chart and the pictures, not a line through the chart under B
    assert cells[0] == (4, 10, 44, 95), cells


def test_partition_cuts_at_the_gutter_before_a_letter_though_an_arrow_crosses_it():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 5:19] = True  # A: two parts with a clean stripe between them
    mask[10:90, 22:40] = True
    mask[49:52, 40:50] = True  # an arrow from A to B across their gutter
    mask[10:90, 50:95] = True  # B
    cells = partition(mask, [(5, 10, 9, 14), (50, 10, 54, 14)])
    assert cells is not None
    assert cells[0][2] >= 40 and cells[1][0] >= 45


def test_partition_refuses_letters_it_cannot_separate():
    mask = np.ones((50, 50), bool)
    assert partition(mask, [(10, 10, 14, 14), (11, 11, 15, 15)]) is None


def test_caption_letters():
    assert caption_letters("(A) Cells. (B) Mice. (C, D) Blots; (Ei) and (Eii) zoom.") == set("abcde")
    assert caption_letters("A single picture of cells.") is None
    assert caption_letters(None) is None


def test_scan_reads_light_letters_on_dark_pictures():
    """Fluorescence panels on black carry white letters inside their corners."""
    canvas = Image.new("RGB", (900, 330), "white")
    d = ImageDraw.Draw(canvas)
    for k, x in enumerate((20, 320, 620)):
        d.rectangle((x, 20, x + 270, 300), fill=(8, 8, 8))
        d.ellipse((x + 80, 100, x + 200, 220), fill=(20, 160, 40))
        d.text((x + 10, 26), "ABC"[k], font=font(36), fill="white")
    found = scan_labels(np.asarray(canvas), reader())
    assert [f.text for f in found] == ["A", "B", "C"]
    assert all(20 <= f.box[1] <= 70 for f in found)


def test_partition_cuts_before_the_frame_that_heads_the_next_letters():
    """C and D sit in a shared frame under a title and a rule; the frame's sides cross the nearly clean
    lines inside it, but the frame belongs to C and D, so the cut runs along the gutter above it."""
    mask = np.zeros((120, 400), bool)
    mask[5:45, 5:195] = mask[5:45, 205:395] = True  # A, B
    mask[55, 2:398] = mask[117, 2:398] = True  # the frame's top and bottom edges
    mask[55:118, 2] = mask[55:118, 397] = True  # its sides
    mask[58:61, 180:220] = True  # its title
    mask[64, 2:398] = True  # the rule under the title
    mask[68:115, 5:195] = mask[68:115, 205:395] = True  # C, D
    anchors = [(5, 5, 9, 9), (205, 5, 209, 9), (6, 68, 10, 72), (206, 68, 210, 72)]
    cells = partition(mask, anchors)
    assert cells is not None
    assert cells[0] == (5, 5, 195, 45) and cells[1] == (205, 5, 395, 45), cells
    assert cells[2][1] >= 55 and cells[3][1] >= 55, cells


def test_partition_keeps_letters_printed_above_their_panels_with_them():
    """Letters above their panels leave a clean line between letter and panel; cutting there would
    leave the letters without panels. Here an arrow crosses the true gutter, so that line is the
    cleanest between the letter rows."""
    mask = np.zeros((100, 100), bool)
    mask[8:46, 5:45] = True  # A, under its letter
    mask[8:95, 55:95] = True  # B, as tall as A and C together
    mask[58:95, 5:45] = True  # C
    mask[30:32, 45:55] = True  # an arrow from A to B
    cells = partition(mask, [(5, 2, 9, 6), (55, 2, 59, 6), (5, 52, 9, 56)])
    assert cells is not None
    assert cells[0][3] >= 40 and cells[1][3] >= 90 and cells[2][1] >= 46, cells


def test_a_complete_series_goes_on_inside_a_panel_of_touching_pictures():
    """A, B and C head separate panels; D, E and F head three pictures edge to edge, which gutter
    cutting takes for one panel labelled D. The series a-d is complete, but the scan finds E and F on
    D's line, so the row is cut at its letters."""
    canvas = Image.new("RGB", (1200, 760), "white")
    d = ImageDraw.Draw(canvas)
    boxes = []
    for k, x in enumerate((40, 440, 840)):
        canvas.paste(photo(340, 300, 20 + k), (x, 60))
        boxes.append((x, 60, x + 340, 360))
    for k, x in enumerate((40, 420, 800)):
        canvas.paste(photo(380, 320, 40 + k), (x, 420))
        boxes.append((x, 420, x + 380, 740))
    for k, (x, y) in enumerate(b[:2] for b in boxes):
        d.rectangle((x + 6, y + 6, x + 46, y + 50), fill="white")
        d.text((x + 12, y + 8), "ABCDEF"[k], font=font(36), fill="black")
    panels = LayoutParser().parse(canvas).panels
    assert [p.label for p in panels] == list("ABCDEF"), [(p.label, p.box) for p in panels]
    for p, box in zip(panels, boxes):
        assert box_iou(p.box, box) > 0.85, (p.label, p.box, box)



def test_a_series_going_on_inside_a_panel_is_looked_for_across_the_whole_figure():
    """A, B and C head separate panels; D, E, F and G head four pictures inside one frame, which gutter
    cutting takes for one panel labelled D. The scan for letters continuing the complete corner series
    a-d in line with them finds F (under D) but not G, in line with no letter of a-d; once that scan
    shows the candidates merged panels, the whole figure is scanned."""
    canvas = Image.new("RGB", (1200, 1140), "white")
    d = ImageDraw.Draw(canvas)
    boxes = []
    for k, x in enumerate((40, 440, 840)):
        canvas.paste(photo(340, 300, 20 + k), (x, 60))
        boxes.append((x, 60, x + 340, 360))
    for k, (x, y, w) in enumerate(((60, 440, 480), (600, 440, 540), (60, 790, 600), (720, 790, 420))):
        canvas.paste(photo(w, 300, 40 + k), (x, y))
        boxes.append((x, y, x + w, y + 300))
    d.rectangle((30, 420, 1170, 1110), outline="black", width=4)
    for k, (x, y) in enumerate(b[:2] for b in boxes):
        d.rectangle((x + 6, y + 6, x + 46, y + 50), fill="white")
        d.text((x + 12, y + 8), "ABCDEFG"[k], font=font(36), fill="black")
    panels = LayoutParser().parse(canvas).panels
    assert [p.label for p in panels] == list("ABCDEFG"), [(p.label, p.box) for p in panels]
    for p, box in zip(panels, boxes):
        assert box_iou(p.box, box) > 0.8, (p.label, p.box, box)


def test_scan_reads_the_small_members_missing_inside_the_series():
    """Only the tallest glyphs are read first (``most``): x-height letters (a, c, e) of a lower-case
    series may miss the cut; those lined up with the letters found fill the series's gaps."""
    canvas = Image.new("RGB", (900, 600), "white")
    d = ImageDraw.Draw(canvas)
    for k, ch in enumerate("abcdef"):
        r, c = divmod(k, 3)
        d.text((30 + 300 * c, 30 + 300 * r), ch, font=font(40), fill="black")
    found = scan_labels(np.asarray(canvas), reader(), most=4)
    assert [f.text for f in found] == list("abcdef")


def test_scan_takes_a_bare_stem_for_a_letter_only_in_line_with_the_others():
    """A bar of letter height off the letters' rows and columns reads as I, the next member of A-H; it
    is not one. The same bar on the second row's line is."""
    def canvas_with_bar(x: int, y: int) -> np.ndarray:
        canvas = Image.new("RGB", (1000, 700), "white")
        d = ImageDraw.Draw(canvas)
        f = font(40)
        for k, ch in enumerate("ABCDEFGH"):
            r, c = divmod(k, 4)
            d.text((30 + 220 * c, 30 + 300 * r), ch, font=f, fill="black")
        top, bottom = f.getbbox("H")[1], f.getbbox("H")[3]
        d.rectangle((x, y + top, x + 5, y + bottom - 1), fill="black")
        return np.asarray(canvas)

    off_grid = scan_labels(canvas_with_bar(900, 480), reader())
    assert [f.text for f in off_grid] == list("ABCDEFGH")
    in_row = scan_labels(canvas_with_bar(900, 330), reader())
    assert [f.text for f in in_row] == list("ABCDEFGHI")


def test_scan_reads_letters_with_a_full_stop():
    """``a.``, ``g.``: the stop on the baseline (above the bottom of a descender) does not make a word of
    the letter; a small digit raised beside it does (``h²``)."""
    canvas = Image.new("RGB", (900, 600), "white")
    d = ImageDraw.Draw(canvas)
    f = font(40)
    for k, ch in enumerate("abcdefg"):
        r, c = divmod(k, 4)
        x, y = 30 + 220 * c, 30 + 300 * r
        d.text((x, y), ch, font=f, fill="black")
        # a bold stop, as heavy sans-serif faces print it: a third of the letter's height across
        x0, top, x1, bottom = f.getbbox(ch)
        base = f.getbbox("a")[3]
        s = round(0.35 * (bottom - top))
        d.ellipse((x + x1 + 3, y + base - s, x + x1 + 3 + s, y + base - 1), fill="black")
    assert [f.text for f in scan_labels(np.asarray(canvas), reader())] == list("abcdefg")
    d.text((700, 330), "h", font=font(40), fill="black")
    d.text((725, 338), "2", font=font(18), fill="black")
    assert [f.text for f in scan_labels(np.asarray(canvas), reader())] == list("abcdefg")


def rows_under_rules(touching: bool) -> np.ndarray:
    """Two rows of three letters A-F, each row under a rule drawn across the figure; with ``touching``
    the rule of the second row runs along the tops of its letters."""
    canvas = Image.new("RGB", (900, 600), "white")
    d = ImageDraw.Draw(canvas)
    f = font(40)
    top = f.getbbox("D")[1]
    for k, ch in enumerate("ABCDEF"):
        r, c = divmod(k, 3)
        d.text((30 + 300 * c, 40 + 300 * r), ch, font=f, fill="black")
    d.line((10, 30 + top, 890, 30 + top), fill=(90, 90, 90), width=2)
    rule = 340 + top - (2 if touching else 12)
    d.line((10, rule, 890, rule), fill=(90, 90, 90), width=2)
    return np.asarray(canvas)


def test_scan_reads_letters_touching_a_rule():
    assert [f.text for f in scan_labels(rows_under_rules(False), reader())] == list("ABCDEF")
    assert [f.text for f in scan_labels(rows_under_rules(True), reader())] == list("ABCDEF")


def test_glyphs_freed_from_a_rule_grow_the_series_but_never_replace_it():
    from panel2patch.parsers.labels.scan import FoundLabel, _grown

    def at(text: str, k: int, score: float = 0.9, h: int = 30) -> FoundLabel:
        return FoundLabel(text, (30.0 + 300 * (k % 3), 30.0 + 300 * (k // 3), 55.0 + 300 * (k % 3),
                                 30.0 + h + 300 * (k // 3)), score)

    upper = [at(ch, k) for k, ch in enumerate("ABCD")]
    series, used = _grown(upper, [at("E", 4)])
    assert [f.text for f in series] == list("ABCDE") and len(used) == 5
    # grown by two, a lower-case series of smaller letters would win on its own (more evidence in
    # all); it may not take over
    lower = [at(ch, 6 + k, 0.9, 22) for k, ch in enumerate("abcd")]
    series, used = _grown(upper + lower, [at("e", 10, 0.9, 22), at("f", 11, 0.9, 22)])
    assert [f.text for f in series] == list("ABCD") and len(used) == 8


def test_an_unsure_letter_crowding_a_sure_one_is_dropped():
    from panel2patch.parsers.layout.parser import _crowded

    anchors = [(5, 5, 9, 9), (55, 5, 59, 9), (57, 11, 61, 15), (5, 55, 9, 59)]
    assert _crowded(anchors, [0.95, 0.95, 0.4, 0.9]) == {2}
    # two unsure letters, or two sure ones, are left to the partition (which refuses them)
    assert _crowded(anchors, [0.95, 0.5, 0.4, 0.9]) == set()
    assert _crowded(anchors, [0.95, 0.9, 0.95, 0.9]) == set()


def test_wide_letters_are_lone_glyphs_and_a_word_of_them_is_not():
    """``m`` and ``W`` are wider than they are tall; ``mm`` is a word."""
    from panel2patch.parsers.labels.candidates import _luminance
    from panel2patch.parsers.labels.scan import _lone_glyphs

    canvas = Image.new("RGB", (600, 200), "white")
    d = ImageDraw.Draw(canvas)
    f = font(40)
    for x, text in ((30, "m"), (200, "W"), (400, "mm")):
        d.text((x, 60), text, font=f, fill="black")
    boxes = [b for b, _ in _lone_glyphs(_luminance(np.asarray(canvas)), True, 8, 40)]
    assert sorted(b[0] // 100 for b in boxes) == [0, 2], boxes


def grey_pictures(corner: str) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Three framed charts lettered A-C inside their top-left corners over three mid-grey pictures edge
    to edge, each with its letter (D-F) printed black inside the ``corner`` ("bl" or "br") of the
    picture: black on grey is dark at no global threshold of the figure."""
    canvas = Image.new("RGB", (1000, 660), "white")
    d = ImageDraw.Draw(canvas)
    boxes = []
    for k in range(6):
        x, y = (20 + 330 * k, 20) if k < 3 else (20 + 300 * (k - 3), 340)
        box = (x, y, x + 300, y + 290)
        if k < 3:
            d.rectangle(box, outline="black", width=2)
            d.line([(x + 40, y + 250), (x + 120, y + 150), (x + 200, y + 190), (x + 280, y + 60)], fill="black", width=3)
            d.text((x + 10, y + 8), "ABC"[k], font=font(36), fill="black")
        else:
            d.rectangle(box, fill=(64 + 12 * k,) * 3)
            d.ellipse((x + 90, y + 60, x + 210, y + 170), fill=(60, 60, 60))
            lx = x + 10 if corner == "bl" else x + 262
            d.text((lx, y + 240), "DEF"[k - 3], font=font(36), fill="black")
        boxes.append(box)
    return canvas, boxes


def test_scan_reads_dark_letters_on_mid_grey_pictures():
    for corner in ("bl", "br"):
        canvas, boxes = grey_pictures(corner)
        found = scan_labels(np.asarray(canvas), reader())
        assert [f.text for f in found] == list("ABCDEF"), corner
        for f, box in zip(found[3:], boxes[3:]):
            x = box[0] if corner == "bl" else box[2] - 40
            assert x <= f.box[0] <= x + 40 and box[3] - 60 <= f.box[1] <= box[3], (corner, f, box)


def test_letters_at_the_bottom_corners_head_the_pictures_above_them():
    canvas, boxes = grey_pictures("bl")
    panels = LayoutParser().parse(canvas).panels
    assert [p.label for p in panels] == list("ABCDEF"), [(p.label, p.box) for p in panels]
    for p, box in zip(panels, boxes):
        assert box_iou(p.box, box) > 0.9, (p.label, p.box, box)


def test_a_letter_inside_a_pictures_lower_or_right_edge_stands_for_its_top_left():
    from panel2patch.parsers.layout.parser import _top_left

    mask = np.zeros((200, 300), bool)
    mask[20:180, 20:280] = True  # a picture
    mask[100:104, 20:70] = False  # a white patch above the letter is no gutter
    assert _top_left((25, 160, 33, 170), mask, [], []) == (25, 20, 33, 30)  # bottom-left
    assert _top_left((265, 160, 273, 170), mask, [], []) == (20, 20, 28, 30)  # bottom-right
    assert _top_left((25, 25, 33, 35), mask, [], []) == (25, 25, 33, 35)  # top-left: the panel starts there
    paper = (120, 185, 128, 195)  # on paper under the picture
    assert _top_left(paper, mask, [], []) == paper
    # a picture holds one letter: a move over another letter is mistaken (pictures touching unseen)
    other = (25, 25, 33, 35)
    assert _top_left((265, 160, 273, 170), mask, [], [other]) == (265, 160, 273, 170)
    # at a picture's right edge, a letter whose picture's left edge is not found stays where it is
    narrow = np.zeros((200, 300), bool)
    narrow[20:180, 250:280] = True  # under three letter heights wide left of the letter
    assert _top_left((265, 160, 273, 170), narrow, [], []) == (265, 160, 273, 170)
    # the ink stops short of the picture's edge (white bone on CT): its panel candidate shows the edge,
    # also where the ink reaches far enough up to move the letter part of the way
    mask[150:156, 20:280] = False
    assert _top_left((25, 160, 33, 170), mask, [(20, 20, 280, 180)], []) == (25, 20, 33, 30)
    bone = np.zeros((200, 300), bool)
    bone[20:180, 20:280] = True
    bone[60:64, 20:280] = False
    assert _top_left((25, 160, 33, 170), bone, [], []) == (25, 64, 33, 74)
    assert _top_left((25, 160, 33, 170), bone, [(20, 20, 280, 180)], []) == (25, 20, 33, 30)
    # a white letter on a dark picture is no ink of the picture, yet stands on it
    white = np.zeros((200, 300), bool)
    white[20:180, 20:280] = True
    white[160:170, 25:33] = False
    assert _top_left((25, 160, 33, 170), white, [], []) == (25, 20, 33, 30)
    # a picture holds one letter anywhere across it, not only in the column above the letter
    assert _top_left((25, 160, 33, 170), white, [], [(200, 25, 208, 35)]) == (25, 160, 33, 170)
    # a white bracket after the white letter (``B)``) is no gutter: the letter is not at the picture's
    # right edge
    white[160:170, 35:37] = False
    assert _top_left((25, 160, 33, 170), white, [], []) == (25, 20, 33, 30)


def test_a_letter_at_a_pictures_foot_and_the_next_at_the_top_of_the_picture_below_are_both_kept():
    from panel2patch.parsers.layout.parser import _anchored

    mask = np.zeros((300, 200), bool)
    mask[20:140, 20:180] = True  # upper picture, its letter inside the bottom-left corner
    mask[146:280, 20:180] = True  # lower picture, its letter inside the top-left corner
    mask[126:136, 25:33] = False  # both letters white
    mask[150:160, 25:33] = False
    letters = [(25, 126, 33, 136), (25, 150, 33, 160)]
    kept, anchors = _anchored(letters, [0.95, 0.5], mask, [])
    assert kept == [0, 1] and anchors == [(25, 20, 33, 30), (25, 150, 33, 160)]
    # an unsure glyph beside a sure letter that stays where it is remains a stray glyph
    stray = [(25, 150, 33, 160), (36, 154, 44, 164)]
    assert _anchored(stray, [0.95, 0.5], mask, []) == ([0], [(25, 150, 33, 160)])


def test_a_sure_corner_read_replaces_an_unsure_scan_read_elsewhere():
    from panel2patch.parsers.labels.scan import FoundLabel
    from panel2patch.parsers.layout.parser import _corner_letters
    from panel2patch.parsers.layout.segmenter import Block

    def block(label: str, box, score: float) -> Block:
        return Block((0, 0, 1, 1), (0, 0, 1, 1), 0, label=label, label_box=box, label_score=score)

    scan = [FoundLabel("A", (10, 10, 30, 34), 0.95), FoundLabel("B", (400, 300, 420, 324), 0.45),
            FoundLabel("C", (10, 500, 30, 524), 0.9)]
    corner_b = (400, 10, 420, 34)  # beside A, before C: in reading order
    out = _corner_letters([block("B", corner_b, 0.93)], scan, None)
    assert [(f.text, f.box) for f in out] == [("A", scan[0].box), ("B", corner_b), ("C", scan[2].box)]
    # not when the corner read breaks the reading order more than the scan's, nor when it is unsure
    late_b = (400, 700, 420, 724)  # below C
    assert _corner_letters([block("B", late_b, 0.93)], scan, None)[1] is scan[1]
    assert _corner_letters([block("B", corner_b, 0.6)], scan, None)[1] is scan[1]
    # a read of the same glyph (a circle around it) is not another glyph
    assert _corner_letters([block("B", (395, 295, 425, 330), 0.93)], scan, None)[1] is scan[1]


def test_scan_reads_dotted_letters_and_letters_before_a_bracket():
    """``i`` and ``j`` are a stem and a dot (at small sizes a stem thinner than any other letter);
    the ``)`` after ``g`` or ``j`` ends above their descender, yet is a bracket, not a letter of a word."""
    for size in (40, 22):
        canvas = Image.new("RGB", (1000, 1000), "white")
        d = ImageDraw.Draw(canvas)
        for k, ch in enumerate("abcdefghij"):
            r, c = divmod(k, 5)
            d.text((30 + 190 * c, 30 + 300 * r), ch + ")", font=font(size), fill="black")
        assert [f.text for f in scan_labels(np.asarray(canvas), reader())] == list("abcdefghij"), size


def test_a_bowed_stroke_is_a_bracket_and_a_straight_one_is_not():
    from panel2patch.parsers.labels.scan import _bowed

    for text, bowed in (("(", True), (")", True), ("l", False), ("1", False), ("t", False), ("I", False)):
        canvas = Image.new("L", (60, 80), 255)
        ImageDraw.Draw(canvas).text((10, 5), text, font=font(48), fill=0)
        ink = np.asarray(canvas) < 128
        ys, xs = np.nonzero(ink)
        assert _bowed(ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]) is bowed, text


def test_serif_j_and_q_reaching_below_the_baseline_stay_in_the_series():
    from panel2patch.parsers.labels.scan import FoundLabel, _series

    letters = [FoundLabel(ch, (40.0 * k, 0.0, 40.0 * k + 16, 23.0 if ch in "JQ" else 18.0), 0.95)
               for k, ch in enumerate("ABCDEFGHIJKLMNOPQR")]
    assert [f.text for f in _series(letters)] == list("ABCDEFGHIJKLMNOPQR")
    # the descent has its measure: a J half as tall again is some other glyph
    letters[9] = FoundLabel("J", (360.0, 0.0, 376.0, 28.0), 0.95)
    assert "J" not in [f.text for f in _series(letters)]


def test_a_later_read_of_a_letter_may_mend_the_reading_order():
    """A junk glyph in a picture read as ``A`` below every other letter is replaced by the printed ``A``
    at the top left found later; a later read that breaks the order more does not replace it."""
    from panel2patch.parsers.labels.scan import FoundLabel, _grown

    def at(text: str, x: float, y: float) -> FoundLabel:
        return FoundLabel(text, (x, y, x + 20, y + 24), 0.9)

    rest = [at("B", 400, 10), at("C", 800, 10), at("D", 10, 400), at("E", 400, 400)]
    junk, printed = at("A", 500, 900), at("A", 10, 10)
    series, _ = _grown([junk, *rest], [printed])
    assert series[0].box == printed.box and [f.text for f in series] == list("ABCDE")
    series, _ = _grown([printed, *rest], [junk])
    assert series[0].box == printed.box


def label_word_grid(labels: list[str], size: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Photos in a 2 x 2 grid, each with its label (``Ai``, ``A 2``) printed above its top-left corner."""
    canvas = Image.new("RGB", (1000, 1000), "white")
    d = ImageDraw.Draw(canvas)
    boxes = []
    for k, text in enumerate(labels):
        x, y = 30 + 490 * (k % 2), 30 + 490 * (k // 2)
        d.text((x, y), text, font=font(size), fill="black")
        box = (x, y + size + 10, x + 450, y + 460)
        canvas.paste(photo(box[2] - box[0], box[3] - box[1], k), box[:2])
        boxes.append(box)
    return canvas, boxes


def test_scan_reads_label_words_as_members_of_the_series():
    """``Ai``/``Aii`` and ``A1``/``A2`` (a space apart or not) are one label each: both stand for A,
    and a bare ``A`` read from one of their glyphs is no member of its own."""
    for labels in (["Ai", "Aii", "B", "C"], ["A1", "A2", "B1", "B2"], ["A i", "A ii", "B", "C"]):
        for size in (40, 24):
            canvas, _ = label_word_grid(labels, size)
            found = scan_labels(np.asarray(canvas), reader())
            assert [f.text for f in found] == [t.replace(" ", "") for t in labels], (labels, size, found)


def test_label_word_numerals_follow_the_glyph_shapes():
    from panel2patch.parsers.labels.scan import LABEL_WORD, _suffix, label_rank

    assert _suffix("Aili", "iii") == "Aiii" and _suffix("A11", "ii") == "Aii"  # dotted stems are i
    assert _suffix("Al", "?") == "A1" and _suffix("Bl2", "??") == "B12"  # l is no numeral
    assert _suffix("A2", "?") == "A2" and _suffix("Biv", "i?") == "Biv"
    assert all(LABEL_WORD.match(t) for t in ("A1", "b12", "Aii", "Biv", "Cx"))
    assert not any(LABEL_WORD.match(t) for t in ("AB", "A0", "Ki67", "Al", "A123", "Aiiii"))
    assert [label_rank(t) for t in ("B", "A2", "Aii", "c")] == [(1, 0), (0, 2), (0, 2), (2, 0)]


def test_two_label_words_may_replace_a_series_and_one_may_not():
    from panel2patch.parsers.labels.scan import FoundLabel, _grown, _series

    def at(text: str, x: float, y: float, h: float = 30, score: float = 0.95) -> FoundLabel:
        return FoundLabel(text, (x, y, x + 0.8 * h * len(text), y + h), score)

    # a bare A read elsewhere is no member where the letter is printed with numerals
    words = [at("Ai", 10, 10), at("Aii", 500, 10), at("B", 10, 500), at("C", 500, 500), at("A", 300, 300)]
    assert [f.text for f in _series(words)] == ["Ai", "Aii", "B", "C"]
    junk = [at("A", 800, 700, 18), at("B", 700, 200, 18)]  # small letters of a diagram
    series, _ = _grown(junk, [at("Ai", 10, 10), at("Aii", 500, 10)])
    assert [f.text for f in series] == ["Ai", "Aii"]
    series, _ = _grown(junk, [at("A1", 10, 10)])
    assert [f.text for f in series] == ["A", "B"]


def test_corner_labels_read_on_a_label_word_take_the_word():
    from panel2patch.parsers.labels.scan import FoundLabel
    from panel2patch.parsers.layout.parser import _worded
    from panel2patch.parsers.layout.segmenter import Block

    blocks = [Block((0, 0, 9, 9), (0, 0, 9, 9), 0, label="A", label_box=(10, 10, 40, 40), label_score=0.9),
              Block((9, 0, 19, 9), (9, 0, 19, 9), 0, label="B", label_box=(500, 10, 530, 40), label_score=0.9),
              Block((0, 9, 9, 19), (0, 9, 9, 19), 0, label="C", label_box=(10, 500, 40, 530), label_score=0.9)]
    found = [FoundLabel("Ai", (10, 10, 60, 40), 0.9), FoundLabel("Aii", (500, 10, 570, 40), 0.9)]
    assert [b.label for b in _worded(blocks, found)] == ["Ai", "Aii", "C"]
    assert [b.label for b in _worded(blocks, [FoundLabel("A", (10, 10, 40, 40), 0.9)])] == ["A", "B", "C"]


def test_panels_labelled_with_label_words():
    for labels in (["Ai", "Aii", "B", "C"], ["A1", "A2", "B1", "B2"]):
        canvas, boxes = label_word_grid(labels, 36)
        panels = LayoutParser().parse(canvas).panels
        assert [p.label for p in panels] == labels, [(p.label, p.box) for p in panels]
        for p, box in zip(panels, boxes):
            assert box_iou(p.box, box) > 0.8, (p.label, p.box, box)


def test_corner_letters_the_scan_read_otherwise_take_the_scan_reads_that_restore_the_order():
    from panel2patch.parsers.labels.scan import FoundLabel
    from panel2patch.parsers.layout.parser import _rescanned
    from panel2patch.parsers.layout.segmenter import Block

    def block(k, label):  # one row of panels, circled letters at their corners
        x = 100 * k
        return Block((x, 0, x + 90, 90), (x, 0, x + 90, 90), 0, label=label, label_box=(x, 0, x + 26, 26),
                     label_score=0.7)

    blocks = [block(0, "h"), block(1, "l"), block(2, "i"), block(3, "k")]
    found = [FoundLabel("i", (109, 5, 116, 21), 0.97), FoundLabel("j", (209, 5, 217, 24), 0.99)]
    assert [b.label for b in _rescanned(blocks, found)] == ["h", "i", "j", "k"]
    # reads that break the order more, or that name a letter twice, are not taken
    assert [b.label for b in _rescanned(blocks, [FoundLabel("m", (109, 5, 116, 21), 0.97)])] == ["h", "l", "i", "k"]
    assert [b.label for b in _rescanned(blocks, [FoundLabel("k", (109, 5, 116, 21), 0.97)])] == ["h", "l", "i", "k"]


def test_narrow_letters_read_in_each_others_places_are_exchanged():
    from panel2patch.parsers.labels.scan import FoundLabel, _unswapped

    def at(text, x, y, score=0.6):
        return FoundLabel(text, (x, y, x + 8, y + 20), score)

    series = [at("h", 0, 0), at("l", 0, 100), at("j", 100, 100), at("k", 200, 100), at("i", 0, 200)]
    assert [f.text for f in _unswapped(series)] == ["h", "i", "j", "k", "l"]
    # a sure read stands
    sure = [at("h", 0, 0), at("l", 0, 100, 0.95), at("j", 100, 100), at("k", 200, 100), at("i", 0, 200)]
    assert _unswapped(sure)[1].text == "l"
    in_order = [at("h", 0, 0), at("i", 0, 100), at("j", 100, 100), at("k", 200, 100), at("l", 0, 200)]
    assert [f.text for f in _unswapped(in_order)] == ["h", "i", "j", "k", "l"]


def test_a_sure_corner_read_does_not_take_the_glyph_of_another_member():
    from panel2patch.parsers.labels.scan import FoundLabel
    from panel2patch.parsers.layout.parser import _corner_letters
    from panel2patch.parsers.layout.segmenter import Block

    found = [FoundLabel("h", (20, 0, 30, 26), 0.99), FoundLabel("i", (20, 100, 28, 119), 0.66),
             FoundLabel("j", (613, 100, 622, 126), 0.43), FoundLabel("k", (1020, 100, 1040, 126), 0.99)]
    # the corner reader read the j as an i, surely
    blocks = [Block((0, 0, 9, 9), (0, 0, 9, 9), 0, label="i", label_box=(612, 98, 624, 127), label_score=0.95)]
    assert [(f.text, f.box) for f in _corner_letters(blocks, found, None)] == [(f.text, f.box) for f in found]
    # away from any member's glyph, the sure corner read replaces the unsure scan read
    blocks = [Block((0, 0, 9, 9), (0, 0, 9, 9), 0, label="i", label_box=(300, 98, 310, 127), label_score=0.95)]
    assert [f.box for f in _corner_letters(blocks, found, None) if f.text == "i"] == [(300.0, 98.0, 310.0, 127.0)]


def test_of_two_series_the_one_of_sure_tall_letters_wins_over_a_longer_one_of_small_unsure_reads():
    """Rotated axis titles and legends read as small unsure lower-case letters may spell a longer
    series than the panel letters; the sure reads of the taller letters are the labels."""
    from panel2patch.parsers.labels.scan import FoundLabel, _series

    panels = [FoundLabel(ch, (20 + 500 * (k % 2), 20 + 400 * (k // 2), 46 + 500 * (k % 2), 60 + 400 * (k // 2)), 0.95)
              for k, ch in enumerate("ABCD")]
    axis = [FoundLabel(ch, (300 + 30 * k, 700, 310 + 30 * k, 714), 0.6) for k, ch in enumerate("abcdef")]
    assert [f.text for f in _series(panels + axis)] == list("ABCD")
    # alone, the small letters are still a series
    assert [f.text for f in _series(axis)] == list("abcdef")


def circled(canvas: Image.Image, x: int, y: int, ch: str, size: int, ring: int, width: int = 2) -> None:
    """``ch`` printed at ``(x, y)`` inside a circle of diameter ``ring`` (``width`` thick) centred on the letter."""
    d = ImageDraw.Draw(canvas)
    left, top, right, bottom = d.textbbox((x, y), ch, font=font(size))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    d.ellipse((cx - ring / 2, cy - ring / 2, cx + ring / 2, cy + ring / 2), outline="black", width=width)
    d.text((x, y), ch, font=font(size), fill="black")


def inked(canvas: Image.Image) -> np.ndarray:
    """The canvas's dark ink, cropped to it."""
    ink = np.asarray(canvas.convert("L")) < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def test_the_letter_inside_a_circle_it_touches_is_the_glyph():
    from panel2patch.parsers.labels.scan import _in_ring

    canvas = Image.new("RGB", (120, 120), "white")
    circled(canvas, 40, 30, "A", 40, 44)  # the circle grazes the letter
    crop = inked(canvas)
    found = _in_ring(crop)
    assert found is not None
    (x0, y0, x1, y1), letter = found
    # the letter's box: well inside the circle, about the letter's height
    assert 0 < y0 and y1 < crop.shape[0] and 0.5 * crop.shape[0] <= y1 - y0 <= 0.8 * crop.shape[0]
    assert letter.sum() < crop.sum() and not letter[:, :2].any() and not letter[:2, :].any()
    # a letter that is round itself, filled or open, holds no letter
    for ch in "ODQ":
        plain = Image.new("RGB", (120, 120), "white")
        ImageDraw.Draw(plain).text((30, 20), ch, font=font(60), fill="black")
        assert _in_ring(inked(plain)) is None, ch


def test_scan_reads_circled_letters_whether_or_not_they_touch_their_circle():
    """Letters in circles drawn tight round them (the circle within the letter's surround, or
    touching the letter) are the series; the series has the letters' height, not the circles'."""
    canvas = Image.new("RGB", (1000, 800), "white")
    for k, ch in enumerate("ABCD"):
        r, c = divmod(k, 2)
        canvas.paste(photo(380, 300, 30 + k), (80 + 480 * c, 60 + 380 * r))
        circled(canvas, 20 + 480 * c, 20 + 380 * r, ch, 28, 30 if k % 2 else 27, width=3)
    found = scan_labels(np.asarray(canvas), reader())
    assert [f.text for f in found] == list("ABCD")
    heights = [f.box[3] - f.box[1] for f in found]
    assert max(heights) < 30 and max(heights) <= 1.25 * min(heights)


def test_a_lower_case_series_spans_x_height_to_ascender_letters_and_no_further():
    from panel2patch.parsers.labels.scan import FoundLabel, _series

    def at(ch: str, k: int, h: int) -> FoundLabel:
        return FoundLabel(ch, (30.0 + 500 * (k % 2), 30.0 + 400 * (k // 2), 50.0 + 500 * (k % 2),
                               30.0 + h + 400 * (k // 2)), 0.9)

    # b and d rise above the x-height of a and c; an e half as tall as the d is other text
    letters = [at("a", 0, 20), at("b", 1, 28), at("c", 2, 20), at("d", 3, 28), at("e", 4, 13)]
    assert [f.text for f in _series(letters)] == list("abcd")
    assert [f.text for f in _series(letters[:4] + [at("e", 4, 20)])] == list("abcde")
