"""Caption forms of long research-article captions: group labels, enumerations, trailing notes, sub-panels,
numbered steps, nested numerals and known labels. Every caption is written for the test."""

from __future__ import annotations

import pytest

from panel2patch.parsers.captions.splitter import LabelCaptionSplitter


@pytest.fixture
def split():
    return LabelCaptionSplitter().split


# --- groups and enumerations ----------------------------------------------------------------------------


def test_a_group_keeps_its_text_when_its_members_are_named_mid_sentence(split):
    caption = (
        "(A) Scheme of the assay. (B, C) Western blot (B) and quantification (C) of p53 in liver lysates of "
        "treated mice. (D) Survival."
    )
    s = split(caption, None)
    group = "Western blot (B) and quantification (C) of p53 in liver lysates of treated mice."
    assert s.segments == {"A": "Scheme of the assay.", "B": group, "C": group, "D": "Survival."}


def test_a_range_whose_members_close_the_sentence_is_still_partitioned(split):
    s = split("(A\u2013C) Sections at day 1 (A), day 3 (B) and day 7 (C). (D) Weight.", None)
    assert s.segments == {"A": "Sections at day 1", "B": "day 3", "C": "and day 7", "D": "Weight."}


def test_an_elliptic_second_label_shares_the_sentence(split):
    s = split("(A) Scheme. (B) Cell counts at day 4 and (C) at day 7. (D) Survival.", None)
    assert s.segments["B"] == s.segments["C"] == "Cell counts at day 4 and (C) at day 7."
    assert s.segments["D"] == "Survival."


def test_subjects_listed_before_one_predicate_share_the_sentence(split):
    caption = "(A, B) Primary cells, (C) cell lines or (D) organoids were infected for 2 h. (E) Counts."
    s = split(caption, None)
    shared = "Primary cells, (C) cell lines or (D) organoids were infected for 2 h."
    assert {lab: s.segments[lab] for lab in "ABCD"} == dict.fromkeys("ABCD", shared)
    assert s.segments["E"] == "Counts."


def test_labels_inside_a_sentence_with_its_own_head_share_it(split):
    caption = "(A) Body weight. The typical (B) gross views and (C) stained sections of treated mice. (D) Counts."
    s = split(caption, None)
    assert s.segments["A"] == "Body weight."
    assert s.segments["B"] == s.segments["C"] == "The typical (B) gross views and (C) stained sections of treated mice."


def test_a_list_of_separate_panels_stays_cut(split):
    s = split("(A) Normal liver; (B) fatty liver and (C) cirrhotic liver. (D) Counts.", None)
    assert s.segments == {"A": "Normal liver;", "B": "fatty liver and", "C": "cirrhotic liver.", "D": "Counts."}


def test_members_named_inside_the_sentence_of_their_group_do_not_cut_it(split):
    s = split("(A, B) Plots used to gate (A) T cells and (B) NK cells. (C) Counts.", None)
    assert s.segments["A"] == s.segments["B"] == "Plots used to gate (A) T cells and (B) NK cells."


def test_a_label_after_a_missing_full_stop_opens_its_segment(split):
    s = split("(A) Tumour volume, n = 5 per group (B) Western blot of tumour lysates. (C) Survival.", None)
    assert s.segments == {
        "A": "Tumour volume, n = 5 per group",
        "B": "Western blot of tumour lysates.",
        "C": "Survival.",
    }


# --- trailing notes --------------------------------------------------------------------------------------


def test_boilerplate_at_the_end_belongs_to_no_panel(split):
    s = split(
        "(A) Liver. (B) Lung. Scale bars, 20 \u00b5m. See also Figure S4. Source data are available online "
        "for this figure.",
        None,
    )
    assert s.shared == "Scale bars, 20 \u00b5m."
    assert s.subcaption("B") == "Lung. Scale bars, 20 \u00b5m."
    assert all("Source data" not in s.subcaption(lab) for lab in "AB")


def test_a_data_information_block_goes_to_the_panels_it_lists(split):
    caption = (
        "(A) Knock-down efficiency. (B) Invasion assay. (C) Survival of patients. Data information: Data are "
        "mean \u00b1 SD of three replicates (A, B). Statistics: unpaired t-test (A); one-way ANOVA (B); log-rank "
        "test (C)."
    )
    s = split(caption, None)
    assert s.shared == ""
    assert s.segments["A"] == (
        "Knock-down efficiency. Data information: Data are mean \u00b1 SD of three "
        "replicates (A, B). Statistics: unpaired t-test (A);"
    )
    assert s.segments["B"] == (
        "Invasion assay. Data information: Data are mean \u00b1 SD of three replicates (A, B). one-way ANOVA (B);"
    )
    assert s.segments["C"] == "Survival of patients. log-rank test (C)."


def test_a_statistics_note_without_labels_keeps_the_panels_of_the_note_before_it(split):
    caption = (
        "(A) Weight gain. (B) Liver sections. (C) Serum lipids. Data are mean \u00b1 SD in (A) and (C). "
        "P values from unpaired t-tests."
    )
    s = split(caption, None)
    assert s.segments["B"] == "Liver sections."
    assert s.segments["C"] == "Serum lipids. Data are mean \u00b1 SD in (A) and (C). P values from unpaired t-tests."


def test_statistics_notes_go_to_the_panels_that_plot_numbers(split):
    caption = (
        "(A) Confocal images of stained crypts. (B) Quantification of crypt depth (n = 6 mice). "
        "Data are mean \u00b1 SEM; unpaired t test."
    )
    s = split(caption, None)
    assert s.shared == ""
    assert s.subcaption("A") == "Confocal images of stained crypts."
    assert s.subcaption("B") == "Quantification of crypt depth (n = 6 mice). Data are mean \u00b1 SEM; unpaired t test."
    # with no panel that plots numbers (or every panel plotting them) the note is for all
    s = split("(A) Crypts. (B) Villi. Data are mean \u00b1 SEM; unpaired t test.", None)
    assert s.shared == "Data are mean \u00b1 SEM; unpaired t test."


def test_a_lone_p_value_after_a_panel_stays_with_it(split):
    s = split("(A) Liver. (B) Quantification of fibrosis. P = 0.003. Scale bar, 50 \u00b5m.", None)
    assert s.segments["B"] == "Quantification of fibrosis. P = 0.003."
    assert s.shared == "Scale bar, 50 \u00b5m."


def test_scale_bar_notes_naming_panels_go_to_them(split):
    s = split("a Overview. b Detail. c Counts. Scale bars in a and b, 100 \u00b5m.", None)
    assert s.subcaption("a") == "Overview. Scale bars in a and b, 100 \u00b5m."
    assert s.subcaption("c") == "Counts."


# --- label styles ----------------------------------------------------------------------------------------


def test_parenthesised_labels_with_a_full_stop(split):
    s = split("Liver. (a.) Portal tract. (b.) Central vein.", None)
    assert s.segments == {"a": "Portal tract.", "b": "Central vein."}


def test_bare_letters_in_running_text_without_punctuation(split):
    s = split("A Liver section stained for collagen B Kidney section with glomeruli C Spleen", None)
    assert s.segments == {
        "A": "Liver section stained for collagen",
        "B": "Kidney section with glomeruli",
        "C": "Spleen",
    }
    # a lone letter inside a sentence is no label when the caption has no bare label style
    s = split("(A) Cells of type B Express the marker. (B) Control.", None)
    assert s.segments == {"A": "Cells of type B Express the marker.", "B": "Control."}


def test_numbered_steps_with_numbers_as_labels(split):
    caption = "Workflow. 1. Cells are seeded. 2. Cells are fixed. 3. Images are taken."
    s = split(caption, ["1", "2", "3"])
    assert s.preamble == "Workflow."
    assert s.segments == {"1": "Cells are seeded.", "2": "Cells are fixed.", "3": "Images are taken."}
    assert split(caption, None).segments == {}


def test_mid_sentence_references_are_not_label_starts(split):
    s = split("(A) Control liver with septa (arrows). (B) Treated liver, imaged as in (A), with fewer septa.", None)
    assert s.segments == {
        "A": "Control liver with septa (arrows).",
        "B": "Treated liver, imaged as in (A), with fewer septa.",
    }


# --- sub-panels, nested numerals and known labels ----------------------------------------------------------


def test_sub_panel_tokens_give_their_text_to_the_printed_letter(split):
    s = split("(A1) Control liver. (A2) Treated liver. (B) Fibrosis score.", ["A", "B"])
    assert s.segments == {"A": "Control liver. Treated liver.", "B": "Fibrosis score."}
    s = split("(A) Control and treated liver. (B) Fibrosis score.", ["A1", "A2", "B"])
    assert s.segments == {
        "A1": "Control and treated liver.",
        "A2": "Control and treated liver.",
        "B": "Fibrosis score.",
    }


def test_sub_panels_with_roman_numerals(split):
    caption = "(Ai\u2013ii) Liver of control (i) and treated (ii) mice. (B) Fibrosis score."
    s = split(caption, ["Ai", "Aii", "B"])
    whole = "Liver of control (i) and treated (ii) mice."
    assert s.segments == {"Ai": whole, "Aii": whole, "B": "Fibrosis score."}
    assert split(caption, None).segments == {"A": whole, "B": "Fibrosis score."}
    assert split(caption, ["A", "B"]).segments == {"A": whole, "B": "Fibrosis score."}


def test_nested_numerals_inside_a_letter_segment(split):
    caption = "(A) Gut wall: (i) crypts, (ii) villi. (B) Crypt depth."
    assert split(caption, None).segments == {"A": "Gut wall: (i) crypts, (ii) villi.", "B": "Crypt depth."}
    s = split(caption, ["Ai", "Aii", "B"])
    assert s.segments == {"Ai": "Gut wall: crypts,", "Aii": "Gut wall: villi.", "B": "Crypt depth."}
    s = split(caption, ["A", "i", "ii", "B"])
    assert s.segments == {
        "A": "Gut wall: (i) crypts, (ii) villi.",
        "i": "Gut wall: crypts,",
        "ii": "Gut wall: villi.",
        "B": "Crypt depth.",
    }


def test_a_label_the_figure_does_not_print_cuts_but_gets_no_segment(split):
    s = split("(A) Control liver. (B) Treated liver. (C) Fibrosis score.", ["A", "B"])
    assert s.segments == {"A": "Control liver.", "B": "Treated liver."}
    # when no given label is named at all, the caption's own labels are not used
    assert split("(A) Control liver. (B) Treated liver.", ["X1"]).segments == {}


def test_position_labels_given_in_other_words(split):
    s = split("Upper left: control. Upper right: treated. Lower panel: counts.", ["top left", "top right", "bottom"])
    assert s.segments == {"top left": "control.", "top right": "treated.", "bottom": "counts."}
