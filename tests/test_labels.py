"""Panel letters: glyph candidates, RapidOCR recognition on strips, the sequence prior, and the
``cpu_layout`` parser reading letters on figures drawn here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.labels import reader as reader_module
from panel2patch.parsers.labels.candidates import Candidate, Glyph, find_candidates
from panel2patch.parsers.labels.glyphs import _percentiles
from panel2patch.parsers.labels.reader import LabelReader
from panel2patch.parsers.labels.reads import (
    case_from_heights,
    interpretations,
    is_label_text,
    normalise_read,
    series_style,
)
from panel2patch.parsers.labels.sequence import (
    LabelReading,
    PanelLabel,
    apply_sequence_prior,
    reading_order,
    reading_rows,
)
from panel2patch.parsers.layout.parser import LayoutParser


def photo(w: int, h: int, seed: int, lo: int = 40, hi: int = 200) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(lo, hi, size=(max(2, h // 24), max(2, w // 24), 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return Image.fromarray(np.clip(smooth + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8))


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def labelled_grid(labels: list[str], corner: str = "tl", outside: bool = False, ink=None, size: int = 26,
                  decoration: str = "", dark_photos: bool = False, cols: int = 2):
    """A grid of photos with a letter per panel; returns the image, panel boxes and label boxes."""
    cw, ch, gutter, margin = 230, 180, 14, 10
    strip = size + 8 if outside else 0
    rows = -(-len(labels) // cols)
    W = 2 * margin + cols * cw + (cols - 1) * gutter
    H = 2 * margin + rows * (ch + strip) + (rows - 1) * gutter
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f = font(size)
    panels, label_boxes = [], []
    for i, text in enumerate(labels):
        r, c = divmod(i, cols)
        x, y = margin + c * (cw + gutter), margin + r * (ch + strip + gutter)
        lo, hi = (10, 90) if dark_photos else (150, 235)
        img.paste(photo(cw, ch, 100 + i, lo, hi), (x, y + strip))
        printed = f"({text})" if decoration == "paren" else text
        fill = ink or ((255, 255, 255) if dark_photos and not outside else (0, 0, 0))
        pad = 8
        if outside:
            anchor = (x + 2, y + 2) if corner[1] == "l" else (x + cw - 2, y + 2)
            d.text(anchor, printed, font=f, fill=fill, anchor="la" if corner[1] == "l" else "ra")
        else:
            ax = x + pad if corner[1] == "l" else x + cw - pad
            ay = y + pad if corner[0] == "t" else y + ch - pad
            d.text((ax, ay), printed, font=f, fill=fill,
                   anchor=("l" if corner[1] == "l" else "r") + ("t" if corner[0] == "t" else "b"))
        bbox = d.textbbox((0, 0), printed, font=f)  # size only; position checked loosely below
        label_boxes.append(bbox)
        panels.append((x, y, x + cw, y + ch + strip))
    return img, panels


@pytest.fixture(scope="module")
def parser() -> LayoutParser:
    return LayoutParser()


def _labels_by_box(out, panels) -> list[str | None]:
    result = []
    for box in panels:
        best = max(out.panels, key=lambda p: box_iou(p.box, box))
        assert box_iou(best.box, box) >= 0.85, (box, [p.box for p in out.panels])
        result.append(best.label)
    return result


# --- the parser on drawn figures ----------------------------------------------------------------


def test_dark_letters_inside_light_photos_top_left(parser):
    img, panels = labelled_grid(list("ABCD"))
    out = parser.parse(img, None)
    assert _labels_by_box(out, panels) == list("ABCD")
    for p in out.panels:
        assert p.label_box is not None and box_iou(p.label_box, p.label_box) == 1.0
        x0, y0, x1, y1 = p.label_box
        assert p.box[0] <= x0 < x1 <= p.box[2] and p.box[1] <= y0 < y1 <= p.box[3]
        assert x0 - p.box[0] < 40 and y0 - p.box[1] < 40  # at the panel's top-left corner


def test_white_letters_on_dark_photos_bottom_right(parser):
    img, panels = labelled_grid(list("abcd"), corner="br", dark_photos=True)
    out = parser.parse(img, None)
    assert _labels_by_box(out, panels) == list("abcd")
    for p in out.panels:
        assert p.box[2] - p.label_box[2] < 40 and p.box[3] - p.label_box[3] < 40


def test_lower_case_letters_printed_above_their_panels(parser):
    img, panels = labelled_grid(list("abcdef"), outside=True, cols=3)
    out = parser.parse(img, None)
    assert _labels_by_box(out, panels) == list("abcdef")
    for p in out.panels:  # the panel box takes in its letter printed above the picture
        assert p.box[1] <= p.label_box[1]


def test_letters_in_parentheses(parser):
    img, panels = labelled_grid(list("ABCD"), decoration="paren", corner="tr")
    assert _labels_by_box(parser.parse(img, None), panels) == list("ABCD")


def test_no_letters_read_when_ocr_is_off():
    img, panels = labelled_grid(list("ABCD"))
    parser = LayoutParser(ocr=False)
    out = parser.parse(img, None)
    assert _labels_by_box(out, panels) == [None] * 4
    assert parser._reader is None  # no OCR engine was built


def test_reader_engine_is_built_once_and_lazily():
    reader = LabelReader()
    assert reader._engine is None
    engine = reader.engine
    assert reader.engine is engine


# --- candidates and recognition -----------------------------------------------------------------


def _canvas_with_text(items: list[tuple[tuple[int, int], str]], size=(300, 220), fsize=24) -> np.ndarray:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    for xy, text in items:
        d.text(xy, text, font=font(fsize), fill="black")
    return np.asarray(img)


def test_a_letter_at_a_corner_is_a_candidate_but_a_word_is_not():
    rgb = _canvas_with_text([((8, 6), "B"), ((150, 100), "Histology")])
    cands = find_candidates(rgb, [(0.0, 0.0, 300.0, 220.0)])
    boxes = [c.glyph.box for c in cands]
    assert any(b[0] < 30 and b[1] < 30 for b in boxes), boxes
    assert all(b[2] - b[0] < 60 for b in boxes)  # nothing as wide as the word
    corner = next(c for c in cands if c.glyph.box[0] < 30)
    assert corner.corner == "tl" and corner.prior == max(c.prior for c in cands) and corner.prior > 0.5


def test_a_letter_on_mid_tone_texture_is_found_at_the_tighter_threshold():
    # speckled texture darker than the wide threshold touches the letter, so only the tight one frees it
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.choice(np.array([95, 150], np.uint8), size=(220, 300)).astype(np.uint8)).convert("RGB")
    img = Image.fromarray(np.pad(np.asarray(img), ((10, 10), (10, 10), (0, 0)), constant_values=255))
    ImageDraw.Draw(img).text((18, 16), "a", font=font(26), fill="black")
    ink = np.argwhere(np.asarray(img.convert("L"))[14:50, 16:40] < 40)
    letter = (16 + ink[:, 1].min(), 14 + ink[:, 0].min(), 17 + ink[:, 1].max(), 15 + ink[:, 0].max())
    cands = find_candidates(np.asarray(img), [(10.0, 10.0, 310.0, 230.0)])
    assert any(box_iou(c.glyph.box, letter) > 0.6 for c in cands), ([c.glyph.box for c in cands], letter)


def test_a_light_letter_on_a_dark_patch_is_one_glyph_not_its_counters():
    img = Image.new("RGB", (300, 220), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((8, 6, 60, 40), fill="black")
    d.text((14, 10), "B8", font=font(26), fill="white")
    cands = find_candidates(np.asarray(img), [(0.0, 0.0, 300.0, 220.0)])
    at_patch = [c.glyph for c in cands if box_iou(c.glyph.box, (8, 6, 61, 41)) > 0.8]
    assert len(at_patch) == 1
    glyph = at_patch[0]
    assert glyph.height >= 15  # the letters' height, not a counter's
    assert (glyph.crop < 128).mean() > 0.15  # the letters in ink, not the hole of one


def test_a_letter_joined_to_a_fainter_line_is_found_apart_from_it():
    # the wide threshold joins the letter to a grey tick below it; the tight one sees the letter alone
    img = Image.new("RGB", (400, 300), (30, 30, 30))
    d = ImageDraw.Draw(img)
    d.text((10, 8), "B", font=font(18), fill="white")
    ys, xs = np.nonzero(np.asarray(img.convert("L")) > 128)
    letter = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    d.rectangle(((letter[0] + letter[2]) // 2 - 1, letter[3], (letter[0] + letter[2]) // 2, letter[3] + 9),
                fill=(185, 185, 185))
    cands = find_candidates(np.asarray(img), [(0.0, 0.0, 400.0, 300.0)])
    assert any(box_iou(c.glyph.box, letter) > 0.8 for c in cands), [c.glyph.box for c in cands]


def test_candidates_far_from_every_corner_are_left_out():
    rgb = _canvas_with_text([((8, 6), "B"), ((38, 20), "7")], size=(300, 220))
    priors = [c.prior for c in find_candidates(rgb, [(0.0, 0.0, 300.0, 220.0)])]
    assert priors and min(priors) >= 0.3
    assert len(find_candidates(rgb, [(0.0, 0.0, 300.0, 220.0)], min_prior=0.0)) > len(priors)


def test_recognise_reads_several_crops_on_one_strip():
    reader = LabelReader()
    crops = []
    for text in ("A", "b", "C3"):
        img = Image.new("L", (60, 50), 255)
        ImageDraw.Draw(img).text((10, 8), text, font=font(30), fill=0)
        arr = np.asarray(img)
        ys, xs = np.nonzero(arr < 128)
        crops.append(arr[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    reads = reader.recognise(crops)
    assert [normalise_read(t) for t, _ in reads] == ["A", "b", "C3"]
    assert all(0.5 < c <= 1.0 for _, c in reads)


# --- the sequence prior (no OCR) ----------------------------------------------------------------


def cand(panel: int, text: str, conf: float, corner: str = "tl", prior: float = 0.95, height: int | None = None,
         box: tuple[float, float, float, float] | None = None) -> Candidate:
    if height is None:  # lower-case a, c, e ... are shorter than b, d, f ... and capitals
        height = 14 if text in tuple("acemnorsuvwxz") else 20
    glyph = Glyph(box or (10.0 * panel, 0.0, 10.0 * panel + 8, 12.0), np.zeros((2, 2), np.uint8), height=height,
                  text=text, confidence=conf)
    return Candidate(panel, glyph, corner, prior)


def texts(reading) -> list[str | None]:
    return [p.text if p else None for p in reading.labels]


def test_prior_takes_confident_reads_at_the_label_corner():
    per = [[cand(0, "a", 0.95)], [cand(1, "b", 0.9)], [cand(2, "c", 0.9), cand(2, "7", 0.99, "br")]]
    reading = apply_sequence_prior(per)
    assert texts(reading) == ["a", "b", "c"] and reading.corner == "tl" and reading.style == "letter"


def test_prior_maps_confusable_reads_to_the_missing_letters():
    per = [[cand(0, "A", 0.9)], [cand(1, "8", 0.8)], [cand(2, "C", 0.9)], [cand(3, "D", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["A", "B", "C", "D"]
    # "1" on the twelfth panel of a lower-case series is an l
    per = [[cand(i, chr(ord("a") + i), 0.9)] for i in range(11)] + [[cand(11, "1", 0.8)]]
    assert texts(apply_sequence_prior(per))[-1] == "l"


def test_prior_drops_letters_beyond_the_series_of_the_panels():
    per = [[cand(0, "a", 0.9)], [cand(1, "b", 0.9)], [cand(2, "x", 0.95)], [cand(3, "d", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["a", "b", None, "d"]


def test_prior_puts_caseless_shapes_into_the_series_case():
    per = [[cand(0, "A", 0.9)], [cand(1, "B", 0.9)], [cand(2, "c", 0.9)], [cand(3, "D", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["A", "B", "C", "D"]


def test_prior_decides_case_from_glyph_heights():
    # a and c are much shorter than b and d: lower case, although the reader said upper case
    per = [[cand(0, "A", 0.9, height=14)], [cand(1, "B", 0.9, height=20)], [cand(2, "C", 0.9, height=14)],
           [cand(3, "D", 0.9, height=20)]]
    assert texts(apply_sequence_prior(per)) == ["a", "b", "c", "d"]
    assert case_from_heights([("a", 20), ("b", 20)]) is True and case_from_heights([("a", 13), ("d", 20)]) is False
    assert case_from_heights([("b", 20)]) is None


def test_prior_drops_a_letter_far_from_the_series():
    per = [[cand(0, "a", 0.9)], [cand(1, "b", 0.9)], [cand(2, "s", 0.95)], [cand(3, "d", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["a", "b", None, "d"]


def test_prior_keeps_a_glyph_for_the_panel_it_heads():
    # one glyph seen at the top-left of panel 1 and at the bottom-right of panel 0
    shared = Glyph((100.0, 100.0, 110.0, 120.0), np.zeros((2, 2), np.uint8), height=20, text="b", confidence=0.95)
    per = [[cand(0, "a", 0.95), Candidate(0, shared, "br", 0.95)], [Candidate(1, shared, "tl", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["a", "b"]


def test_prior_reads_roman_numerals_as_a_series():
    per = [[cand(0, "i", 0.9)], [cand(1, "ii", 0.55)], [cand(2, "ili", 0.4)], [cand(3, "iv", 0.9)]]
    reading = apply_sequence_prior(per)
    assert reading.style == "roman" and texts(reading) == ["i", "ii", "iii", "iv"]


def test_prior_spells_a_series_from_weak_reads_when_none_is_confident():
    per = [[cand(0, "D", 0.5)], [cand(1, "E", 0.45)], [cand(2, "F", 0.55)], [cand(3, "7", 0.3, "br")]]
    assert texts(apply_sequence_prior(per)) == ["D", "E", "F", None]


def test_prior_gives_missing_letters_to_panels_with_unreadable_glyphs_in_reading_order():
    per = [[cand(0, "a", 0.95)], [cand(1, "", 0.1)], [cand(2, "c", 0.95)], [cand(3, "?", 0.2)]]
    reading = apply_sequence_prior(per, rows=[[0, 1], [2, 3]])
    assert texts(reading) == ["a", "b", "c", "d"] and reading.unread == [False] * 4


def test_prior_reports_an_unread_glyph_when_the_gaps_do_not_add_up():
    # two letters missing (b, c) but only one panel shows a glyph at the label corner
    per = [[cand(0, "a", 0.95)], [], [cand(2, "", 0.1)]]
    reading = apply_sequence_prior(per)
    assert texts(reading) == ["a", None, None] and reading.unread == [False, False, True]


def test_prior_numbers_an_unread_cell_from_its_row():
    per = [[cand(0, "A1", 0.9)], [cand(1, "", 0.1)], [cand(2, "A3", 0.9)], [cand(3, "B1", 0.9)], [cand(4, "B2", 0.8)]]
    reading = apply_sequence_prior(per, rows=[[0, 1, 2], [3, 4]])
    assert reading.style == "numbered" and texts(reading) == ["A1", "A2", "A3", "B1", "B2"]


def test_reading_rows_and_order():
    boxes = [(0, 100, 50, 190), (60, 0, 110, 90), (0, 0, 50, 95), (60, 105, 110, 190)]
    assert reading_rows(boxes) == [[2, 1], [0, 3]] and reading_order(boxes) == [2, 1, 0, 3]


def test_read_helpers():
    assert normalise_read(" (ａ) ") == "a" and normalise_read("B.") == "B"
    assert normalise_read("é") == "e" and normalise_read("(À)") == "A" and normalise_read("β") == "β"
    assert all(is_label_text(t) for t in ("a", "B", "A1", "iii", "XII"))
    assert not any(is_label_text(t) for t in ("", "ab", "150", "Day", "1A"))
    assert series_style([("ii", 0.9), ("iv", 0.8), ("i", 0.9)]) == "roman"
    assert series_style([("A1", 0.9), ("B2", 0.9), ("10", 0.99), ("100", 0.9)]) == "numbered"
    assert series_style([("a", 0.9), ("b", 0.9), ("ii", 0.3)]) == "letter"
    assert interpretations("8", "letter", True) == [("B", 0.5)]
    assert interpretations("81", "numbered", True) == [("B1", 0.6)]
    # a label word keeps the series' case (``a1, a2, b1`` printed in lower case stay lower case)
    assert interpretations("a1", "numbered", False) == [("a1", 1.0)]
    assert interpretations("a1", "numbered", True) == [("A1", 1.0)]
    assert interpretations("81", "numbered", False) == []  # a digit looks like a capital only
    assert interpretations("m", "roman", False) == [("iii", 0.6)]


def test_prior_takes_the_case_of_the_letters_it_chose_and_their_sizes():
    # the recogniser reads bold capitals B, D, E, F as lower case; capitals share one height, and a
    # tick label "a" half their size at a far corner is no label
    reads = [("A", 0.94), ("b", 0.87), ("C", 0.6), ("d", 0.86), ("e", 0.85), ("f", 0.7), ("G", 0.99), ("H", 0.98)]
    per = [[cand(i, t, c, height=15)] for i, (t, c) in enumerate(reads)]
    per[7].append(cand(7, "a", 0.99, "br", prior=0.4, height=7))
    per[5].append(cand(5, "l", 0.62, "tl", prior=0.36, height=9))
    assert texts(apply_sequence_prior(per)) == list("ABCDEFGH")


def test_prior_reads_small_numerals_read_as_digits_as_a_series():
    per = [[cand(0, "1", 0.95, "tr", height=7)], [cand(1, "11", 0.66, "tr", height=7)]]
    reading = apply_sequence_prior(per)
    assert reading.style == "roman" and texts(reading) == ["i", "ii"]


def test_numerals_whose_v_is_shorter_than_their_i_are_lower_case():
    per = [[cand(0, "I", 0.9, height=10)], [cand(1, "II", 0.9, height=10)], [cand(2, "III", 0.9, height=10)],
           [cand(3, "IV", 0.9, height=10)], [cand(4, "V", 0.9, height=7)]]
    assert texts(apply_sequence_prior(per)) == ["i", "ii", "iii", "iv", "v"]
    assert case_from_heights([("iv", 10), ("v", 10)], roman=True) is None  # no dot seen: unknown


def test_glyph_shapes_count_numeral_stems_but_do_not_override_other_reads():
    def glyph(text: str, conf: float, numeral: str) -> Glyph:
        return Glyph((0.0, 0.0, 10.0, 10.0), np.zeros((2, 2), np.uint8), 10, text=text, confidence=conf,
                     numeral=numeral)

    merged, other, vx = glyph("ii", 0.9, "iii"), glyph("B1", 0.83, "xi"), glyph("iv", 0.93, "ix")
    reader_module._count_numerals([merged, other, vx])
    assert (merged.text, other.text, vx.text) == ("iii", "B1", "iv")


def test_complete_series_needs_no_second_look():
    def reading(labels: list[str | None], style: str = "letter") -> LabelReading:
        return LabelReading([PanelLabel(t, (0, 0, 1, 1), 1.0) if t else None for t in labels], style=style)

    assert reader_module._complete(reading(["a", "c", "b"]))
    assert not reader_module._complete(reading(["a", None, "c"]))
    assert not reader_module._complete(reading(["a", "b", "d"]))
    assert reader_module._complete(reading(["A1", "A2", "B1"], "numbered"))
    assert not reader_module._complete(reading(["A1", "A3"], "numbered"))


def counted_reader(monkeypatch) -> tuple[LabelReader, list[int]]:
    """A reader recording how many crops each recognition call reads."""
    reader = LabelReader()
    calls: list[int] = []
    recognise = reader.recognise

    def counted(crops, *args, **kwargs):
        calls.append(len(crops))
        return recognise(crops, *args, **kwargs)

    monkeypatch.setattr(reader, "recognise", counted)
    return reader, calls


def test_reader_reads_once_when_the_series_is_complete(monkeypatch):
    img, panels = labelled_grid(list("ABCD"))
    reader, calls = counted_reader(monkeypatch)
    reading = reader.read_panels(np.asarray(img), [tuple(float(v) for v in b) for b in panels])
    assert texts(reading) == list("ABCD") and len(calls) == 1


def test_reader_reads_only_the_best_placed_candidates_when_they_spell_the_series(monkeypatch):
    img, panels = labelled_grid(list("ABCD"))
    d = ImageDraw.Draw(img)
    for x0, y0, x1, y1 in panels:  # tick-label-like digits a little way in from the other corners
        for x, y in ((x1 - 60, y0 + 30), (x0 + 44, y1 - 60), (x1 - 60, y1 - 60)):
            d.rectangle((x - 4, y - 2, x + 22, y + 28), fill="white")
            d.text((x, y), "5", font=font(22), fill="black")
    boxes = [tuple(float(v) for v in b) for b in panels]
    assert len(find_candidates(np.asarray(img), boxes)) > 4 * reader_module.FIRST_LOOK
    reader, calls = counted_reader(monkeypatch)
    reading = reader.read_panels(np.asarray(img), boxes)
    assert texts(reading) == list("ABCD")
    assert calls == [len(reading.seen)] and len(reading.seen) <= 4 * reader_module.FIRST_LOOK


def test_a_style_whose_series_explains_clearly_more_outvotes_axis_letters():
    # axis letters C and D near the corners outvote the numerals, but only the numerals form a series
    def glyph(text: str, conf: float, height: int, x: float) -> Glyph:
        return Glyph((x, 0.0, x + 8, float(height)), np.zeros((2, 2), np.uint8), height, text=text, confidence=conf)

    i, ii, iv = glyph("i", 0.93, 19, 0), glyph("ii", 0.94, 19, 100), glyph("iv", 0.91, 19, 300)
    iii, c, d = glyph("i", 0.92, 19, 200), glyph("C", 0.91, 10, 210), glyph("D", 0.94, 11, 220)
    per = [[Candidate(0, i, "tl", 1.0), Candidate(0, ii, "bl", 0.67)],
           [Candidate(1, ii, "tl", 1.0), Candidate(1, iv, "bl", 0.99), Candidate(1, c, "tr", 0.91),
            Candidate(1, iii, "tr", 0.89)],
           [Candidate(2, c, "tl", 0.99), Candidate(2, iii, "tl", 0.92), Candidate(2, d, "tl", 0.81)],
           [Candidate(3, iv, "tl", 1.0)]]
    reading = apply_sequence_prior(per, rows=[[0], [1, 2], [3]])
    # the second "i" repeats a label: a misread of the numeral the series misses
    assert reading.style == "roman" and texts(reading) == ["i", "ii", "iii", "iv"]


def test_of_two_corners_explaining_as_much_the_one_holding_the_first_letter_wins():
    # each letter sits at the top-left of its panel and at the top-right of the panel before it
    def glyph(text: str, x: float) -> Glyph:
        return Glyph((x, 0.0, x + 12, 18.0), np.zeros((2, 2), np.uint8), 18, text=text, confidence=0.98)

    a, b, c, d = glyph("A", 0), glyph("B", 200), glyph("C", 400), glyph("D", 600)
    per = [[Candidate(0, a, "tl", 0.94), Candidate(0, b, "tr", 0.94)],
           [Candidate(1, b, "tl", 0.85), Candidate(1, c, "tr", 0.83)],
           [Candidate(2, d, "tr", 0.99)],
           [Candidate(3, d, "tl", 0.85)]]
    reading = apply_sequence_prior(per)
    assert reading.corner == "tl" and texts(reading) == ["A", "B", None, "D"]


def test_a_circled_a_read_as_at_sign_is_an_a():
    assert ("a", 0.5) in interpretations("@", "letter", False)
    per = [[cand(0, "@", 0.95)], [cand(1, "b", 0.95)], [cand(2, "c", 0.9)]]
    assert texts(apply_sequence_prior(per)) == ["a", "b", "c"]


def test_a_letter_printed_in_the_gutter_left_of_its_panel_is_its_candidate():
    img = Image.new("RGB", (400, 220), "white")
    ImageDraw.Draw(img).text((152, 0), "W", font=font(26), fill="black")
    # the left panel's zone holds the whole letter; the right panel's zone holds its centre, not its left edge
    cands = find_candidates(np.asarray(img), [(0.0, 0.0, 150.0, 220.0), (200.0, 0.0, 400.0, 220.0)])
    assert any(c.panel == 1 and c.corner == "tl" and c.glyph.box[0] < 160 for c in cands)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**32 - 1), st.integers(0, 255), st.floats(0.0, 1.0))
def test_zone_percentiles_match_numpy(h, w, seed, tone, share):
    rng = np.random.default_rng(seed)
    zone = rng.integers(0, 256, (h, w)).astype(np.uint8)
    zone[rng.random((h, w)) < share] = tone  # mostly one tone, as paper around a letter is
    expected = tuple(int(v) for v in np.percentile(zone, (0.5, 99.5)))
    assert _percentiles(zone, (0.5, 99.5)) == expected


def test_the_recogniser_reads_short_lines_at_their_own_width():
    from panel2patch.parsers.ocr import REC_HEIGHT, recognition_engine

    engine = recognition_engine(1)
    assert list(engine.text_rec.rec_image_shape) == [3, REC_HEIGHT, REC_HEIGHT]
    reader = LabelReader(threads=1)
    crops = []
    for letter in "ab":
        img = Image.new("L", (40, 48), 255)
        ImageDraw.Draw(img).text((6, 2), letter, fill=0, font=ImageFont.load_default(40))
        crops.append(np.asarray(img))
    assert [normalise_read(text) for text, _ in reader.recognise(crops)] == ["a", "b"]
