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
