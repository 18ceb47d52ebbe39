"""The ``label_splitter`` caption splitter and the ``panel2patch split-caption`` command.

Every caption here is written for the test; expected segments are spelled out by hand or assembled
from the parts the caption was built from.
"""

from __future__ import annotations

import io
import json
import random
import sys

import pytest

from panel2patch import cli, manager
from panel2patch.components import CaptionSplitter
from panel2patch.data import CaptionSplit, Figure, Panel
from panel2patch.errors import RecipeError
from panel2patch.parsers.captions.splitter import LabelCaptionSplitter


@pytest.fixture
def split():
    splitter = LabelCaptionSplitter()
    return splitter.split


def test_label_splitter_is_the_registered_caption_splitter():
    splitter = manager.build("caption_splitters", "label_splitter", {})
    assert isinstance(splitter, CaptionSplitter)
    assert isinstance(splitter.split("(A) One. (B) Two.", None), CaptionSplit)
    assert manager.build("caption_splitters", "label_splitter", {"shared_by_length": True}).shared_by_length is True
    with pytest.raises(RecipeError, match="shared_by_length"):
        manager.registry("caption_splitters").bind("label_splitter", {"shared_by_length": "yes"})


def test_split_caption_defaults_to_the_label_splitter():
    import argparse

    from panel2patch.parsers.tools.commands import SplitCaptionCommand

    parser = argparse.ArgumentParser()
    SplitCaptionCommand().configure(parser)
    assert parser.parse_args(["-"]).splitter == "label_splitter"


# --- label token styles ----------------------------------------------------------------------------


def test_parenthesised_labels_with_preamble_and_shared_sentences(split):
    s = split(
        "Effects of drug X on liver. (A) Control section. (B) Treated section; note the fibrosis. "
        "Scale bars, 50 µm. Data are mean ± s.d.",
        None,
    )
    assert s.preamble == "Effects of drug X on liver."
    assert s.segments == {"A": "Control section.", "B": "Treated section; note the fibrosis."}
    assert s.shared == "Scale bars, 50 µm. Data are mean ± s.d."
    assert s.subcaption("B") == (
        "Effects of drug X on liver. Treated section; note the fibrosis. Scale bars, 50 µm. Data are mean ± s.d."
    )


def test_comma_labels_and_a_sentence_starting_with_the_article_a(split):
    s = split("A total of 20 mice were used. A, Liver. B, Kidney. C, Spleen.", None)
    assert s.preamble == "A total of 20 mice were used."
    assert s.segments == {"A": "Liver.", "B": "Kidney.", "C": "Spleen."}


def test_period_labels_glued_to_the_title_and_abbreviations_that_are_not_labels(split):
    s = split("Tumour growth in mice.A. Tumour volume (mean ± S.D. of 5 mice). B. Survival. C. Weight.", None)
    assert s.preamble == "Tumour growth in mice."
    assert s.segments == {"A": "Tumour volume (mean ± S.D. of 5 mice).", "B": "Survival.", "C": "Weight."}


def test_closing_parenthesis_labels(split):
    s = split("Knock-down of gene Y. a) Western blot. b) qPCR; c) viability assay.", None)
    assert s.preamble == "Knock-down of gene Y."
    assert s.segments == {"a": "Western blot.", "b": "qPCR;", "c": "viability assay."}


def test_colon_labels_in_pairs(split):
    s = split("Mast cells in the prostate. A and C: 100x. B and D: higher magnification of A and C.", None)
    assert s.segments == {"A": "100x.", "C": "100x.", "B": "higher magnification of A and C.",
                          "D": "higher magnification of A and C."}


def test_grouped_labels_give_their_text_to_every_panel_they_name(split):
    s = split("Imaging. (A and B) Confocal images. (C, D) Electron micrographs. (E) Quantification.", None)
    assert s.segments == {
        "A": "Confocal images.", "B": "Confocal images.",
        "C": "Electron micrographs.", "D": "Electron micrographs.",
        "E": "Quantification.",
    }


@pytest.mark.parametrize("dash", ["\u2013", "-"])
def test_ranges_with_en_dash_or_hyphen(split, dash):
    s = split(f"Kidney injury. (A{dash}C) Sections at day 1, 3 and 7. (D) Serum creatinine.", None)
    assert s.segments == {"A": "Sections at day 1, 3 and 7.", "B": "Sections at day 1, 3 and 7.",
                          "C": "Sections at day 1, 3 and 7.", "D": "Serum creatinine."}
    s = split(f"a Overview. b Detail. c{dash}e Time course of healing.", None)
    assert s.segments == {"a": "Overview.", "b": "Detail.", "c": "Time course of healing.",
                          "d": "Time course of healing.", "e": "Time course of healing."}


def test_sub_panel_labels(split):
    s = split("Morphology. A1/A2 Cortex at low and high power. B1/B2 Medulla. (C) Quantification.", None)
    assert s.segments == {"A1": "Cortex at low and high power.", "A2": "Cortex at low and high power.",
                          "B1": "Medulla.", "B2": "Medulla.", "C": "Quantification."}


def test_roman_numerals_and_their_ranges(split):
    s = split("Overview of the lesion. (i) Gross view; (ii) low power; (iii)\u2013(v) high power views.", None)
    assert s.segments == {"i": "Gross view;", "ii": "low power;", "iii": "high power views.",
                          "iv": "high power views.", "v": "high power views."}


def test_capital_i_as_pronoun_or_as_a_label(split):
    s = split("I think this is a title. (I) Grade I lesion. (II) Grade II lesion.", None)
    assert s.preamble == "I think this is a title."
    assert s.segments == {"I": "Grade I lesion.", "II": "Grade II lesion."}
    # Without known labels a series starts at A (or B); with them, G-I are labels and "I denotes" is not.
    caption = "Organs. (G) Heart. (H) Lung. (I) Kidney. I denotes the isthmus."
    assert split(caption, None).segments == {}
    assert split(caption, ["G", "H", "I"]).segments == {"G": "Heart.", "H": "Lung.",
                                                        "I": "Kidney. I denotes the isthmus."}
    s = split("Organs. (A) Heart. (B) Lung. (C) Kidney; type I collagen is stained.", None)
    assert s.segments["C"] == "Kidney; type I collagen is stained."


def test_tokens_that_are_not_labels(split):
    caption = (
        "Same tissue as in Fig. 2A. (A) H&E staining (H and E, 5 \u00b5m section) of the C-terminal "
        "mutant (n = 5). (B) Ki67 at 40 x; P < 0.05. (C) T cells and B cells."
    )
    s = split(caption, None)
    assert s.preamble == "Same tissue as in Fig. 2A."
    assert s.segments == {
        "A": "H&E staining (H and E, 5 \u00b5m section) of the C-terminal mutant (n = 5).",
        "B": "Ki67 at 40 x; P < 0.05.",
        "C": "T cells and B cells.",
    }
    s = split("Controls as in Figure 2(A). (A) Wild type; (B) knock-out (B6 mice), see Fig. 3 (C). (C) Both.", None)
    assert s.preamble == "Controls as in Figure 2(A)."
    assert s.segments == {"A": "Wild type;", "B": "knock-out (B6 mice), see Fig. 3 (C).", "C": "Both."}


def test_comma_ranges_next_to_stain_abbreviations(split):
    s = split("Liver. A\u2013C, H&E at day 1, 3 and 7. D and E, Sirius red. F, Hydroxyproline (n = 6).", None)
    assert s.segments == {"A": "H&E at day 1, 3 and 7.", "B": "H&E at day 1, 3 and 7.",
                          "C": "H&E at day 1, 3 and 7.", "D": "Sirius red.", "E": "Sirius red.",
                          "F": "Hydroxyproline (n = 6)."}


def test_the_article_a_after_a_comma_is_not_a_label(split):
    s = split("Lymph node with, in the centre, a 4-mm metastasis (a and c) and iron stain (b and d).", None)
    assert s.segments == {"a": "Lymph node with, in the centre, a 4-mm metastasis",
                          "c": "Lymph node with, in the centre, a 4-mm metastasis",
                          "b": "and iron stain", "d": "and iron stain"}


def test_colon_labels_after_a_parenthesis_without_full_stop(split):
    s = split("Tissue array. A: Brain (neurons) B: Colon; C: Liver.", None)
    assert s.segments == {"A": "Brain (neurons)", "B": "Colon;", "C": "Liver."}


# --- known labels -----------------------------------------------------------------------------------


def test_known_labels_decide_which_tokens_are_labels_and_expand_ranges(split):
    caption = "Tissue array. (A) Brain; (B) Colon; (H\u2013K) Kidney cortex; (L) Skin. N, normal; T, tumour."
    labels = ["A", "B", "H", "I", "K", "L"]  # J is not printed in the figure
    s = split(caption, labels)
    assert s.segments == {"A": "Brain;", "B": "Colon;", "H": "Kidney cortex;", "I": "Kidney cortex;",
                          "K": "Kidney cortex;", "L": "Skin."}
    assert s.shared == "N, normal; T, tumour."  # an abbreviation legend after the last panel


def test_known_labels_match_caption_tokens_ignoring_case(split):
    s = split("Title. (A) Left lobe. (B) Right lobe.", ["a", "b"])
    assert s.segments == {"a": "Left lobe.", "b": "Right lobe."}


def test_known_labels_absent_from_the_caption_get_no_segment(split):
    s = split("Title. (A) Left lobe. (B) Right lobe.", ["A", "B", "C"])
    assert list(s.segments) == ["A", "B"]
    assert s.subcaption("C") == "Title."


# --- caption structures -------------------------------------------------------------------------------


def test_nature_style_with_inline_back_references(split):
    caption = (
        "Porous electrodes. a, b Schematic of the device (a) and its equivalent circuit (b). "
        "c\u2013e SEM images of BM (c), PM (d) and CM (e). f Capacity retention. Scale bars, 1 \u00b5m."
    )
    s = split(caption, None)
    assert s.preamble == "Porous electrodes."
    assert s.segments == {
        "a": "Schematic of the device", "b": "and its equivalent circuit",
        "c": "SEM images of BM", "d": "PM", "e": "and CM",
        "f": "Capacity retention.",
    }
    assert s.shared == "Scale bars, 1 \u00b5m."


def test_back_references_that_do_not_partition_a_group_leave_it_whole(split):
    s = split("a\u2013c Pores at three sizes; arrows in (b) mark cracks. d Same case as (a) after cycling.", None)
    assert s.segments == {
        "a": "Pores at three sizes; arrows in (b) mark cracks.",
        "b": "Pores at three sizes; arrows in (b) mark cracks.",
        "c": "Pores at three sizes; arrows in (b) mark cracks.",
        "d": "Same case as (a) after cycling.",
    }


def test_labels_after_their_text(split):
    caption = (
        "Receptor staining in two patients. Tissue of patient 1 stained for LDLR (a); a consecutive "
        "section stained for SR-BI (b). Tissue of patient 2 stained for LDLR (c). Scale bar, 50 \u00b5m."
    )
    s = split(caption, None)
    assert s.preamble == "Receptor staining in two patients."
    assert s.segments == {"a": "Tissue of patient 1 stained for LDLR",
                          "b": "a consecutive section stained for SR-BI",
                          "c": "Tissue of patient 2 stained for LDLR"}
    assert s.shared == "Scale bar, 50 \u00b5m."


def test_position_words_when_the_caption_names_no_label(split):
    s = split("Liver biopsy. Top: H&E staining. Bottom: reticulin stain. Scale bar, 100 \u00b5m.", None)
    assert s.preamble == "Liver biopsy."
    assert s.segments == {"top": "H&E staining.", "bottom": "reticulin stain."}
    assert s.shared == "Scale bar, 100 \u00b5m."
    s = split("(left) Control; (right) treated.", None)
    assert s.segments == {"left": "Control;", "right": "treated."}


def _figure(*panels: tuple[str, tuple[float, float, float, float], str | None], size: int = 100) -> Figure:
    return Figure("f", size, size, "caption", panels=[Panel(pid, box, label=label) for pid, box, label in panels])


def test_assign_pairs_panels_with_the_segments_of_their_labels():
    split = LabelCaptionSplitter().split("Liver. (A) Control. (B) Treated.", ["A", "B", "C"])
    figure = _figure(("p0", (50, 0, 100, 50), "B"), ("p1", (0, 0, 50, 50), "A"), ("p2", (0, 50, 50, 100), "C"),
                     ("p3", (50, 50, 100, 100), None))
    assert LabelCaptionSplitter().assign(split, figure) == {"p0": "B", "p1": "A"}


def test_assign_gives_position_segments_to_the_panels_their_words_describe():
    splitter = LabelCaptionSplitter()
    split = splitter.split("Liver biopsy. Top: H&E staining. Bottom: reticulin stain.", None)
    stacked = _figure(("p0", (0, 50, 100, 100), None), ("p1", (0, 0, 100, 50), None))
    assert splitter.assign(split, stacked) == {"p1": "top", "p0": "bottom"}
    split = splitter.split("Upper right: HE. Lower left: IHC. Upper left: control. Lower right: merge.", None)
    assert list(split.segments) == ["upper right", "lower left", "upper left", "lower right"]
    grid = _figure(("p0", (0, 0, 50, 50), None), ("p1", (50, 0, 100, 50), None), ("p2", (0, 50, 50, 100), None),
                   ("p3", (50, 50, 100, 100), None))
    assert splitter.assign(split, grid) == {"p1": "upper right", "p2": "lower left", "p0": "upper left",
                                            "p3": "lower right"}


def test_assign_gives_position_segments_only_to_panels_left_over_in_segment_order():
    row = _figure(("p0", (0, 0, 30, 50), "A"), ("p1", (30, 0, 60, 50), None), ("p2", (60, 0, 100, 50), None))
    split = CaptionSplit("c", segments={"A": "a.", "left": "l.", "center": "c."})
    # p0 is the leftmost panel but holds its label's segment; of the rest p1 is the left one
    assert LabelCaptionSplitter().assign(split, row) == {"p0": "A", "p1": "left", "p2": "center"}
    split = CaptionSplit("c", segments={"right": "r.", "right panel": "r2.", "left": "l."})
    assert LabelCaptionSplitter().assign(split, row) == {"p0": "left", "p2": "right"}
    single = _figure(("p0", (0, 0, 100, 100), None))
    assert LabelCaptionSplitter().assign(CaptionSplit("c", segments={"top": "t."}), single) == {}


def test_assign_without_a_matching_segment_is_empty():
    splitter = LabelCaptionSplitter()
    pair = _figure(("p0", (0, 0, 50, 100), "C"), ("p1", (50, 0, 100, 100), None))
    assert splitter.assign(splitter.split("Fundus photograph of the left eye.", None), pair) == {}
    split = CaptionSplit("c", segments={"A": "a.", "first": "f.", "left side": "l."})
    assert splitter.assign(split, pair) == {}


def test_caption_without_labels_keeps_its_shared_notes_apart(split):
    s = split("Fundus photograph of the left eye. Scale bar, 1 mm.", None)
    assert s.segments == {}
    assert s.preamble == "Fundus photograph of the left eye."
    assert s.shared == "Scale bar, 1 mm."


@pytest.mark.parametrize("caption", ["", "   ", "\n"])
def test_empty_caption_gives_an_empty_split(split, caption):
    s = split(caption, None)
    assert (s.preamble, s.segments, s.shared, s.clauses) == ("", {}, "", [])


def test_shared_by_length_moves_trailing_general_sentences():
    caption = "Adult tissues. (A) Liver. (B) Lung. (C) Spleen. Expression is endothelial (arrows)."
    default = LabelCaptionSplitter().split(caption, None)
    assert default.segments["C"] == "Spleen. Expression is endothelial (arrows)."
    by_length = LabelCaptionSplitter(shared_by_length=True).split(caption, None)
    assert by_length.segments["C"] == "Spleen."
    assert by_length.shared == "Expression is endothelial (arrows)."


# --- the caption convention, on captions assembled from known parts -----------------------------------

_STYLES = {
    "paren": {"one": "({l})", "pair": "({a}, {b})", "range": "({a}\u2013{b})"},
    "paren_and": {"one": "({l})", "pair": "({a} and {b})", "range": "({a}-{b})"},
    "comma": {"one": "{l},", "pair": "{a} and {b},", "range": "{a}\u2013{b},"},
    "close": {"one": "{l})", "pair": "{a} and {b})", "range": "{a}\u2013{b})"},
    "bare": {"one": "{l}", "pair": "{a}, {b}", "range": "{a}\u2013{b}"},
}
_TEXTS = [
    "Immunostaining of colonic glands at day 3.",
    "Fundus photograph of the left eye. Arrows indicate microaneurysms.",
    "Quantification of gland area in the treated group.",
    "Phase image of a suspended cell; the asterisk marks the nucleus.",
    "CT slice of the head phantom. The boxed area is enlarged in the inset.",
]


@pytest.mark.parametrize("seed", range(40))
def test_captions_built_from_parts_split_back_into_those_parts(seed):
    rng = random.Random(seed)
    case = rng.choice(["upper", "lower"])
    style = rng.choice(list(_STYLES))
    letters = [chr(ord("A" if case == "upper" else "a") + i) for i in range(rng.randint(2, 9))]
    groups, i = [], 0
    while i < len(letters):
        size = min(rng.choice([1, 1, 1, 2, 3]), len(letters) - i)
        groups.append(letters[i : i + size])
        i += size
    preamble = rng.choice(["", "Histology of experimental colitis.",
                           "Imaging of tissue remodelling. Samples were processed in parallel."])
    shared = rng.choice(["", "Scale bars, 50 \u00b5m.", "Scale bar, 100 \u00b5m. Representative of three mice."])
    expected: dict[str, str] = {}
    pieces = [preamble] if preamble else []
    for group in groups:
        text = rng.choice(_TEXTS)
        form = _STYLES[style]["one" if len(group) == 1 else "pair" if len(group) == 2 else "range"]
        pieces.append(f"{form.format(l=group[0], a=group[0], b=group[-1])} {text}")
        for label in group:
            expected[label] = text
    if shared:
        pieces.append(shared)
    caption = " ".join(pieces)
    splitter = LabelCaptionSplitter()
    for given in (None, letters):
        s = splitter.split(caption, given)
        assert s.preamble == preamble, caption
        assert s.segments == expected, caption
        assert s.shared == shared, caption
        for label in letters:
            assert s.subcaption(label) == " ".join(p for p in (preamble, expected[label], shared) if p)


# --- marker clauses -----------------------------------------------------------------------------------


def test_marker_clauses_are_typed_and_belong_to_their_panels(split):
    caption = (
        "Lesions in the colon. (A) Overview; arrows indicate ulcers and arrowheads point to crypt "
        "abscesses. (B) Detail of the boxed area in A; the asterisk marks a granuloma. "
        "(C) Inset shows the dashed box at higher power; circles mark goblet cells. "
        "(D) Boxed area is enlarged in E. (E) Enlarged view. * denotes the lumen."
    )
    s = split(caption, None)
    got = {(c.kind, c.text): c.labels for c in s.clauses}
    assert got[("arrow", "arrows indicate ulcers and arrowheads point to crypt abscesses.")] == ["A"]
    assert got[("arrowhead", "arrows indicate ulcers and arrowheads point to crypt abscesses.")] == ["A"]
    assert got[("box", "Detail of the boxed area in A")] == ["B"]
    assert got[("asterisk", "the asterisk marks a granuloma.")] == ["B"]
    assert got[("inset", "Inset shows the dashed box at higher power")] == ["C"]
    assert got[("box", "Inset shows the dashed box at higher power")] == ["C"]
    assert got[("circle", "circles mark goblet cells.")] == ["C"]
    assert got[("box", "Boxed area is enlarged in E.")] == ["D"]
    assert got[("asterisk", "* denotes the lumen.")] == ["E"]
    assert len(s.clauses) == 9


def test_marker_clause_labels_written_next_to_the_marker(split):
    s = split("Tumour growth. a Overview (arrows, b). b Detail; arrowheads point to vessels in (a).", None)
    got = {c.kind: c.labels for c in s.clauses}
    assert got == {"arrow": ["b"], "arrowhead": ["a"]}


def test_shared_and_preamble_clauses_belong_to_every_panel(split):
    s = split("Arrows indicate vessels in all panels. (A) Liver. (B) Lung.", None)
    assert [(c.kind, c.labels) for c in s.clauses] == [("arrow", ["A", "B"])]


def test_significance_stars_are_not_marker_clauses(split):
    s = split("(A) Tumour volume. (B) Survival. * denotes p < 0.05.", None)
    assert s.clauses == []


def test_random_text_never_raises():
    rng = random.Random(7)
    alphabet = "ABCabc iIvx()[]-\u2013,.;:&/*#0123456789 \u00b5\n\t"
    splitter = LabelCaptionSplitter()
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        for labels in (None, ["A", "B"], ["i", "ii"]):
            s = splitter.split(text, labels)
            for label in s.segments:
                assert isinstance(s.subcaption(label), str)
            json.dumps(s.to_json())


# --- panel2patch split-caption -----------------------------------------------------------------------


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_split_caption_reads_a_text_file_one_caption_per_line(tmp_path, capsys):
    path = tmp_path / "captions.txt"
    path.write_text("Title. (A) One. (B) Two. Scale bar, 1 mm.\n\na) first; b) second\n", encoding="utf-8")
    assert cli.main(["split-caption", str(path)]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["id"] for r in records] == ["1", "2", "3"]
    first = records[0]
    assert first["labels"] == ["A", "B"]
    assert first["segments"] == {"A": "One.", "B": "Two."}
    assert first["shared"] == "Scale bar, 1 mm."
    assert first["subcaptions"]["B"] == "Title. Two. Scale bar, 1 mm."
    assert set(first) == {"id", "labels", "preamble", "segments", "shared", "subcaptions", "clauses"}
    assert records[1] == {"id": "2", "labels": [], "preamble": "", "segments": {}, "shared": "",
                          "subcaptions": {}, "clauses": []}
    assert records[2]["segments"] == {"a": "first;", "b": "second"}


def test_split_caption_reads_jsonl_with_known_labels(tmp_path, capsys):
    path = tmp_path / "captions.jsonl"
    lines = [
        {"id": "fig-1", "caption": "Tissue array. (A) Brain. (H\u2013K) Kidney.", "labels": ["A", "H", "I", "K"]},
        {"id": "fig-2", "caption": ""},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    assert cli.main(["split-caption", str(path), "--splitter", "label_splitter"]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["id"] for r in records] == ["fig-1", "fig-2"]
    assert records[0]["labels"] == ["A", "H", "I", "K"]
    assert records[0]["segments"]["I"] == "Kidney."
    assert records[1]["segments"] == {}


def test_split_caption_reports_bad_lines_with_their_number_and_goes_on(tmp_path, capsys):
    path = tmp_path / "captions.txt"
    path.write_bytes("(A) One. (B) Two.\n(A) caf\xe9 (B) two\n(a) ok (b) fine\n".encode("latin-1"))
    assert cli.main(["split-caption", str(path)]) == 1
    captured = capsys.readouterr()
    assert [r["id"] for r in _records(captured.out)] == ["1", "3"]
    assert f"{path}:2: not valid UTF-8" in captured.err
    assert "0xe9" in captured.err


def test_split_caption_reports_invalid_json_lines(tmp_path, capsys):
    path = tmp_path / "captions.jsonl"
    path.write_text('{"id": 1, "caption": "(A) x. (B) y."}\n{"id": 2, "caption": 5}\nnot json\n', encoding="utf-8")
    assert cli.main(["split-caption", str(path)]) == 1
    captured = capsys.readouterr()
    assert [r["id"] for r in _records(captured.out)] == ["1"]
    assert ":2: 'caption' must be a string" in captured.err
    assert ":3: invalid JSON" in captured.err


def test_split_caption_reads_stdin(monkeypatch, capsys):
    data = json.dumps({"id": "s1", "caption": "(A) x. (B) y."}).encode("utf-8") + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli.main(["split-caption", "-"]) == 0
    assert _records(capsys.readouterr().out)[0]["segments"] == {"A": "x.", "B": "y."}


def test_split_caption_names_a_missing_file_and_an_unknown_splitter(tmp_path, capsys):
    assert cli.main(["split-caption", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt: no such file" in capsys.readouterr().err
    path = tmp_path / "c.txt"
    path.write_text("(A) x\n", encoding="utf-8")
    assert cli.main(["split-caption", str(path), "--splitter", "nonesuch"]) == 2
    err = capsys.readouterr().err
    assert "nonesuch" in err and "label_splitter" in err


def test_demo_captions_split_exactly_into_their_ground_truth(tmp_path):
    from panel2patch.plugins.demo.write import write_demo

    write_demo(tmp_path, 6, seed=3, progress=False)
    splitter = LabelCaptionSplitter()
    checked = 0
    for path in sorted((tmp_path / "annotations").glob("*.json")):
        fig = Figure.from_json(json.loads(path.read_text(encoding="utf-8")))
        labels = [p.label for p in fig.panels if p.label]
        for given in (None, labels):
            s = splitter.split(fig.caption, given)
            for panel in fig.panels:
                if panel.label is None:
                    assert " ".join(x for x in (s.preamble, s.shared) if x) == fig.caption
                    continue
                assert s.preamble == (panel.preamble or ""), fig.caption
                assert s.subcaption(panel.label) == panel.subcaption, fig.caption
                checked += 1
    assert checked > 0
