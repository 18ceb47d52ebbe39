"""One panel per printed label: the label series decides which unlabelled candidates are panels."""

from __future__ import annotations

from PIL import Image, ImageDraw
from test_layout import font, photo

from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.layout.merging import Series
from panel2patch.parsers.layout.parser import LayoutParser
from panel2patch.parsers.layout.segmenter import Block


def block(x: int, y: int, label: str | None = None, w: int = 80, h: int = 60) -> Block:
    """A candidate at ``(x, y)`` (scale 1), its letter (if any) printed just above its top-left corner."""
    box = (x, y, x + w, y + h)
    b = Block(box, box, 0, label=label)
    if label is not None:
        b.label_box = (float(x), float(y - 12), float(x + 10), float(y - 2))
    return b


def row_major(labels: str, cols: int = 3) -> list[Block]:
    return [block(10 + 100 * (k % cols), 20 + 100 * (k // cols), ch) for k, ch in enumerate(labels)]


def test_a_letter_out_of_reading_order_is_text_inside_a_panel():
    blocks = row_major("ABCEFG") + [block(210, 220, "D")]  # a "D" read below everything else
    Series(blocks, "letter", 1).drop_out_of_order()
    assert [b.label for b in blocks] == ["A", "B", "C", "E", "F", "G", None]


def test_column_major_labels_are_left_alone():
    blocks = [block(10 + 100 * (k // 3), 20 + 100 * (k % 3), ch) for k, ch in enumerate("ABCDEF")]
    Series(blocks, "letter", 1).drop_out_of_order()
    assert [b.label for b in blocks] == list("ABCDEF")


def test_an_unlabelled_candidate_is_a_panel_only_where_the_series_skips_a_member():
    labelled = row_major("AB") + [block(10, 120, "D")]
    gap = block(210, 20)  # after B, before D: C's letter was missed
    part = block(60, 20)  # between A and B: a second picture of A
    series = Series(labelled + [gap, part], "letter", 1)
    assert series.fills_gap(gap)
    assert not series.fills_gap(part)
    # after the last letter the series may go on: undecided, so kept
    assert series.fills_gap(block(110, 120))


def test_missing_members_are_named_when_the_gap_is_exactly_filled():
    blocks = row_major("ab") + [block(110, 120, "e"), block(10, 120), block(210, 20)]
    Series(blocks, "letter", 1).name_missing()
    assert [b.label for b in blocks] == ["a", "b", "e", "d", "c"]
    assert blocks[3].label_score == 0.3 and blocks[3].label_box is None
    # two candidates for one missing member: nobody is named
    blocks = row_major("AB") + [block(10, 120, "D"), block(210, 20), block(250, 20)]
    Series(blocks, "letter", 1).name_missing()
    assert [b.label for b in blocks][3:] == [None, None]


def test_other_styles_leave_the_series_undecided():
    blocks = [block(10, 20, "A1"), block(110, 20, "A2")]
    series = Series(blocks, "numbered", 1)
    assert series.fills_gap(block(60, 20))
    series.name_missing()
    series.drop_out_of_order()
    assert [b.label for b in blocks] == ["A1", "A2"]


def test_two_pictures_under_one_letter_stay_one_panel():
    """Panel A is two micrographs side by side, B and C one each: three letters, three panels."""
    canvas = Image.new("RGB", (1060, 330), "white")
    d = ImageDraw.Draw(canvas)
    f = font(36)
    pictures = [(20, 50), (190, 50), (420, 50), (750, 50)]
    for k, (x, y) in enumerate(pictures):
        canvas.paste(photo(150 if k < 2 else 290, 260, 40 + k), (x, y))
    for ch, x in (("A", 20), ("B", 420), ("C", 750)):
        d.text((x, 6), ch, font=f, fill="black")
    found = LayoutParser().parse(canvas).panels
    assert [p.label for p in found] == ["A", "B", "C"], [(p.label, p.box) for p in found]
    assert box_iou(found[0].box, (20, 6, 340, 310)) > 0.85, found[0].box
