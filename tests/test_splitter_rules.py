"""The rules of the ``label_splitter`` one at a time, each pinned to exact outputs.

Token scanning (``tokens``), the label series (``label_series``), sentences and shared notes
(``sentences``), token context, plausibility and roles (``roles``), assembly of preamble, segments and
shared text (``assembly``), position words (``positions``), panel assignment and marker clauses.
"""

from __future__ import annotations

import pytest

from panel2patch.data import CaptionSplit, Figure, Panel
from panel2patch.parsers.captions.label_series import LabelSeries, infer_series
from panel2patch.parsers.captions.roles import assign_labels, choose_roles, plausible, set_context
from panel2patch.parsers.captions.sentences import sentence_starts
from panel2patch.parsers.captions.splitter import LabelCaptionSplitter
from panel2patch.parsers.captions.tokens import scan_tokens

# --- token scanning --------------------------------------------------------------------------------

# (caption, [(token text, style, weak, items)]); an item "c-e" is a range
_TOKENS = [
    # a list mixing case or family is no token; scanning retries one character later
    ("Kidney. (II, H) Cortex. (A, b) Medulla.",
     [("II,", "punct", True, ["II"]), ("H", "tail", False, ["H"]), ("A,", "punct", True, ["A"]),
      ("b", "tail", False, ["b"])]),
    ("Kidney cortex B and c) Medulla.", [("B", "bare", True, ["B"]), ("c)", "close", False, ["c"])]),
    # "h and e" is the stain, not labels h and e
    ("Sections (h and e) and (A) cortex.", [("(A)", "paren", False, ["A"])]),
    ("Views ((a), (b)) of the prostate.", [("((a), (b))", "paren", False, ["a", "b"])]),
    # a nested list mixing case is no nested token; its inner tokens are joined as adjacent tokens
    ("Views ((A), (b)) of the prostate.", [("(A), (b)", "paren", False, ["A", "b"])]),
    # a title glued to the first label is weak; a later "B)" is a plain closing token
    ("Histology of mouse tissuesA) Liver. B) Kidney.",
     [("A)", "close", True, ["A"]), ("B)", "close", False, ["B"])]),
    # "B)" closes an open parenthesis: a tail label, not a closing-parenthesis token
    ("Liver (white arrow, B) and kidney (A) cortex.", [("B", "tail", False, ["B"]), ("(A)", "paren", False, ["A"])]),
    ("a) Liver (arrows, b) and kidney.", [("a)", "close", False, ["a"]), ("b", "tail", False, ["b"])]),
    ("A, Liver. B, Kidney. a Overview. b Detail.",
     [("A,", "punct", True, ["A"]), ("B,", "punct", True, ["B"]), ("a", "bare", True, ["a"]),
      ("b", "bare", True, ["b"])]),
    ("Liver and kidney, see panels a and b for details.", [("panels a and b", "panelword", False, ["a", "b"])]),
    # overlapping candidates: the longest wins
    ("Views i to ii: at 1 month", [("i to ii:", "punct", False, ["i-ii"])]),
    # adjacent tokens: groups and ranges of parenthesised labels
    ("(B) and C) Views.", [("(B) and C)", "close", False, ["B", "C"])]),
    ("Liver. (A), (B), and (C) Cortex.", [("(A), (B), and (C)", "paren", False, ["A", "B", "C"])]),
    ("(i)\u2013(iii) Views. (iv) Detail.",
     [("(i)\u2013(iii)", "paren", False, ["i-iii"]), ("(iv)", "paren", False, ["iv"])]),
    ("(A, B)\u2013(C) Views.", [("(A, B)", "paren", False, ["A", "B"]), ("(C)", "paren", False, ["C"])]),
    ("Liver (A) and B, Kidney.", [("(A)", "paren", False, ["A"]), ("B,", "punct", True, ["B"])]),
    ("Kidney. a)-(c) Cortex.", [("a)", "close", False, ["a"]), ("(c)", "paren", False, ["c"])]),
    ("Liver. A), (B) Kidney.", [("A)", "close", False, ["A"]), ("(B)", "paren", False, ["B"])]),
]


@pytest.mark.parametrize("caption, expected", _TOKENS)
def test_scan_tokens(caption, expected):
    got = [(caption[m.start : m.end], m.style, m.weak, [a if b is None else f"{a}-{b}" for a, b in m.items])
           for m in scan_tokens(caption)]
    assert got == expected


# --- token context and plausibility ----------------------------------------------------------------

# (caption, [(token text, before, after, plausible, weak)])
_CONTEXT = [
    ("Mast cells (A and C: 100x; B and D: 400x).",
     [("A and C:", "strong", "text", True, False), ("B and D:", "strong", "text", True, False)]),
    ("Tissue. A: ; B: Kidney.", [("A:", "strong", "text", True, False), ("B:", "strong", "text", True, False)]),
    ("Liver with (B)-positive cells.", [("(B)", "weak", "other", True, False)]),
    ("Kidney cortex B and c) Medulla.", [("B", "none", "text", False, True), ("c)", "weak", "text", True, False)]),
    ("Cortex. b ) Liver", [("b", "strong", "other", False, True)]),
    ("Liver tissue B) Kidney.", [("B)", "none", "text", True, True)]),
    ("Tissue array A: Brain.", [("A:", "none", "text", False, False)]),
    ("Sections (neurons) B: Colon.", [("B:", "strong", "text", True, True)]),
    ("Liver, (a) cortex", [("(a)", "weak", "text", True, False)]),
    ("Liver and (b) kidney", [("(b)", "weak", "text", True, False)]),
    ("Effects on tumorigenesis(a) H&E", [("(a)", "weak", "text", True, False)]),
    ("Liver (A).", [("(A)", "none", "punct", True, False)]),
    ("Liver (A)", [("(A)", "none", "end", True, False)]),
    ("Liver (A) kidney", [("(A)", "none", "text", True, False)]),
    ("Liver (A)) kidney", [("(A)", "none", "other", True, False)]),
    ("a Overview. b, c.", [("a", "strong", "text", True, True), ("b,", "strong", "text", True, True)]),
    ("Treated with 5 A current.", [("A", "none", "text", False, True)]),
    ("Mean S.D. B. Control", [("D.", "strong", "text", False, False), ("B.", "strong", "text", True, False)]),
]


@pytest.mark.parametrize("caption, expected", _CONTEXT)
def test_token_context_and_plausibility(caption, expected):
    got = []
    for m in scan_tokens(caption):
        set_context(caption, m)
        ok = plausible(caption, m)
        got.append((caption[m.start : m.end], m.before, m.after, ok, m.weak))
    assert got == expected


def test_a_prefix_token_takes_the_comma_or_colon_after_it():
    text = "(A), liver; (B): lung."
    mentions = scan_tokens(text)
    for m in mentions:
        set_context(text, m)
    series = infer_series(mentions)
    anchors = choose_roles(text, assign_labels(mentions, series), series)
    assert [(text[a.start : a.end], a.role, a.labels) for a in anchors] == [("(A),", "prefix", ("A",)),
                                                                          ("(B):", "prefix", ("B",))]


# --- the label series ------------------------------------------------------------------------------


def test_label_series_drops_repeated_labels():
    assert LabelSeries(["A", "B", "A"]).labels == ["A", "B"]
    assert LabelSeries(["A", "B", "A"]).index == {"A": 0, "B": 1}


def test_label_series_matches_other_case_only_when_unambiguous():
    series = LabelSeries(["a", "B"])
    assert (series.lookup("A"), series.lookup("b"), series.lookup("c")) == ("a", "B", None)
    assert LabelSeries(["ii", "II"]).lookup("Ii") is None


def test_label_series_is_roman_only_with_a_numeral_of_two_letters():
    assert LabelSeries(["i", "ii", "iii"]).roman is True
    assert LabelSeries(["I", "II"]).roman is True
    assert LabelSeries(["i", "v", "x"]).roman is False
    assert LabelSeries(["A", "B"]).roman is False
    assert LabelSeries([]).roman is False


def test_label_series_expand():
    letters = LabelSeries(["A", "B", "C"])
    assert letters.expand("B", None) == ["B"]
    assert letters.expand("D", None) is None
    assert letters.expand("A", "C") == ["A", "B", "C"]
    assert letters.expand("C", "A") is None  # a reversed range names nothing
    assert letters.expand("A", "A") is None
    assert letters.expand("x", "z") is None
    assert LabelSeries(["A1", "A2", "B"]).expand("A1", "B") == ["A1", "A2", "B"]  # series order
    assert LabelSeries(["H", "I", "K"]).expand("G", "K") == ["H", "I", "K"]  # spelled out, then mapped
    assert LabelSeries(["B2", "B3"]).expand("B1", "B3") == ["B2", "B3"]
    assert LabelSeries(["ii", "iii"]).expand("i", "iii") == ["ii", "iii"]
    assert LabelSeries(["w", "x"]).expand("v", "x") == ["w", "x"]  # letters, not the numerals v..x


def test_label_series_ranges_that_name_nothing():
    assert LabelSeries(["ii", "iii"]).expand("i", "III") is None  # numerals of different case
    assert LabelSeries(["b"]).expand("X", "b") is None  # letters of different case
    assert LabelSeries(["A2", "B2"]).expand("A1", "B3") is None  # sub-panels of different letters
    subs = LabelSeries([f"B{n}" for n in range(2, 31)])
    assert subs.expand("B1", "B30") is None  # more than 20 sub-panels is no range
    assert subs.expand("B1", "B21") == [f"B{n}" for n in range(2, 22)]


def _plausible_tokens(text: str):
    mentions = scan_tokens(text)
    for m in mentions:
        set_context(text, m)
    return [m for m in mentions if plausible(text, m)]


def test_infer_series_follows_weak_tokens_only_from_a_label_of_their_case():
    # "(A), (b)" ends on a lower-case label, so the upper-case series is still at its start: "C," does not
    # continue it
    assert infer_series(_plausible_tokens("Views. (A), (b) Liver. C, Kidney.")).labels == ["A"]
    assert infer_series(_plausible_tokens("Views. (A), (B) Liver. C, Kidney.")).labels == ["A", "B", "C"]


# --- sentences -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, starts",
    [
        ("Tissue from Dr. Smith. Liver e.g. Kupffer cells. Kidney.", [0, 23, 49]),
        ("Liver. A. Control. B. Treated.", [0, 7, 19]),  # "A." is a label token, not a sentence
        ("Liver; A. Control. B. Treated.", [0, 19]),
        ("Grown in medium A. Cells were fixed.", [0, 19]),  # "medium A." ends a sentence
        ("Liver.Kidney. Spleen 2.5 mm. Lung.", [0, 6, 14, 29]),
    ],
)
def test_sentence_starts(text, starts):
    assert sentence_starts(text) == starts


# --- whole captions ---------------------------------------------------------------------------------

# (caption, labels, shared_by_length, preamble, segments in order, shared)
_SPLITS = [
    # tokens
    ("Sections (h and e) and (A) cortex. (B) Medulla.", None, False,
     "Sections (h and e) and", [("A", "cortex."), ("B", "Medulla.")], ""),
    ("Views ((a), (b)) of the prostate. (c) Bladder.", None, False,
     "", [("a", "Views of the prostate."), ("b", "Views of the prostate."), ("c", "Bladder.")], ""),
    ("Histology of mouse tissuesA) Liver. B) Kidney.", None, False,
     "Histology of mouse tissues", [("A", "Liver."), ("B", "Kidney.")], ""),
    ("a) Liver (arrows, b) and kidney. b) Spleen.", None, False,
     "", [("a", "Liver (arrows, b) and kidney."), ("b", "Spleen.")], ""),
    ("Liver and kidney. Panel A shows the cortex; panel B shows the medulla.", None, False,
     "Liver and kidney.", [("A", "shows the cortex;"), ("B", "shows the medulla.")], ""),
    ("(A) Liver. (B) and C) Lung.", None, False,
     "", [("A", "Liver."), ("B", "Lung."), ("C", "Lung.")], ""),
    ("Liver. (A), (B), and (C) Cortex. (D) Medulla.", None, False,
     "Liver.", [("A", "Cortex."), ("B", "Cortex."), ("C", "Cortex."), ("D", "Medulla.")], ""),
    # the label series
    ("Scheme, B Cortex. C Medulla.", None, False, "Scheme, B Cortex. C Medulla.", [], ""),
    ("Title. (i\u2013iii) Views. (iv) Detail.", ["ii", "iii", "iv"], False,
     "Title.", [("ii", "Views."), ("iii", "Views."), ("iv", "Detail.")], ""),
    ("Title. (A1\u2013B) Views. (C) Detail.", ["A1", "A2", "B", "C"], False,
     "Title.", [("A1", "Views."), ("A2", "Views."), ("B", "Views."), ("C", "Detail.")], ""),
    ("Title. (B1\u2013B3) Views. (C) Detail.", ["B2", "B3", "C"], False,
     "Title.", [("B2", "Views."), ("B3", "Views."), ("C", "Detail.")], ""),
    ("Title. (G\u2013K) Views. (L) Detail.", ["H", "I", "K", "L"], False,
     "Title.", [("H", "Views."), ("I", "Views."), ("K", "Views."), ("L", "Detail.")], ""),
    ("Organs. (A) Liver. (B) Lung. (E) Kidney.", None, False,
     "Organs.", [("A", "Liver."), ("B", "Lung. (E) Kidney.")], ""),
    ("Organs. (A) Liver. (B) Lung. (D) Kidney.", None, False,
     "Organs.", [("A", "Liver."), ("B", "Lung."), ("D", "Kidney.")], ""),
    ("(i) Liver. (iii) Lung. (iv) Kidney.", None, False, "", [("i", "Liver. (iii) Lung. (iv) Kidney.")], ""),
    ("i Overview. ii Detail. iii Inset.", None, False,
     "", [("i", "Overview."), ("ii", "Detail."), ("iii", "Inset.")], ""),
    ("Cortex. A1 Low power. A2 High power. B1 Medulla.", None, False,
     "Cortex.", [("A1", "Low power."), ("A2", "High power."), ("B1", "Medulla.")], ""),
    # shared notes
    ("Title. (A) Liver. (B) Lung. Scale bar, 50 \u00b5m. The lung is inflamed.", None, False,
     "Title.", [("A", "Liver."), ("B", "Lung. Scale bar, 50 \u00b5m. The lung is inflamed.")], ""),
    ("Sections. (A) Liver. (B) Lung. Staining with hematoxylin and eosin.", None, False,
     "Sections.", [("A", "Liver."), ("B", "Lung.")], "Staining with hematoxylin and eosin."),
    ("Sections. (A) Liver. (B) Lung. Hematoxylin-eosin staining of paraffin sections cut at five micrometres "
     "from the lung of adult mice.", None, False,
     "Sections.", [("A", "Liver."), ("B", "Lung. Hematoxylin-eosin staining of paraffin sections cut at five "
                                        "micrometres from the lung of adult mice.")], ""),
    ("Sections. (A) Liver. (B) Lung. Representative of 3 mice. The lung is inflamed.", None, False,
     "Sections.", [("A", "Liver."), ("B", "Lung. Representative of 3 mice. The lung is inflamed.")], ""),
    ("Title. (A) Liver. Scale bar, 50 \u00b5m.", None, False, "Title.", [("A", "Liver. Scale bar, 50 \u00b5m.")], ""),
    # token roles
    ("Liver at day 3, (A) control; (B) treated.", None, False,
     "Liver at day 3,", [("A", "control;"), ("B", "treated.")], ""),
    ("Effects of CD34 on tumorigenesis(a) H&E staining. (b) Ki67.", None, False,
     "Effects of CD34 on tumorigenesis", [("a", "H&E staining."), ("b", "Ki67.")], ""),
    ("(a) Liver and (b) kidney.", None, False, "", [("a", "Liver and"), ("b", "kidney.")], ""),
    ("a Liver and b kidney. b Spleen.", None, False, "", [("a", "Liver and b kidney."), ("b", "Spleen.")], ""),
    ("(A) Liver. Compare with (B) and (C). (B) Lung. (C) Kidney.", None, False,
     "", [("A", "Liver. Compare with (B) and (C)."), ("B", "Lung."), ("C", "Kidney.")], ""),
    # D is not printed in the figure: "(A, D)" still opens the text of A
    ("Title. (A, D) Liver. (B) Lung.", ["A", "B"], False, "Title.", [("A", "Liver."), ("B", "Lung.")], ""),
    ("Liver. (A, A) Control. (B) Treated.", None, False, "Liver.", [("A", "Control."), ("B", "Treated.")], ""),
    ("Left kidney (A\u2013C): cortex (A), medulla (B) and pelvis (C).", None, False,
     "", [("A", "Left kidney (A\u2013C): cortex"), ("B", "medulla"), ("C", "and pelvis")], ""),
    ("A, Liver. C, Kidney. B, Spleen.", ["A", "B", "C"], False,
     "", [("A", "Liver. C, Kidney."), ("B", "Spleen.")], ""),
    ("(A) Liver, same as (B). (B) Lung. (C) Kidney.", None, False,
     "", [("A", "Liver, same as (B)."), ("B", "Lung."), ("C", "Kidney.")], ""),
    ("Right kidney (A-F). (A) Cortex. (B) Medulla. (C) Pelvis. (D) Capsule. (E) Vessel. (F) Ureter.", None, False,
     "Right kidney (A-F).", [("A", "Cortex."), ("B", "Medulla."), ("C", "Pelvis."), ("D", "Capsule."),
                             ("E", "Vessel."), ("F", "Ureter.")], ""),
    ("(A) Liver (B) Lung (C) Spleen", None, False, "", [("A", "Liver"), ("B", "Lung"), ("C", "Spleen")], ""),
    ("(A) Liver. Lung, (B). (C) Spleen.", None, False, "", [("A", "Liver."), ("B", "Lung,"), ("C", "Spleen.")], ""),
    ("(A) Overview. The lesion in (B) is larger. (C) Detail.", None, False,
     "", [("A", "Overview."), ("B", "The lesion in (B) is larger."), ("C", "Detail.")], ""),
    ("(A) Liver. Lung (B) and kidney (C).", None, False, "", [("A", "Liver."), ("B", "Lung"), ("C", "and kidney")], ""),
    ("(A): Liver. (B): Lung.", None, False, "", [("A", "Liver."), ("B", "Lung.")], ""),
    # assembly
    ("(A) Liver. Lung of the same mouse (B). Kidney (C).", None, False,
     "", [("A", "Liver."), ("B", "Lung of the same mouse"), ("C", "Kidney")], ""),
    ("Tissue (a). More on it. (b) Kidney. (c) Spleen.", None, False,
     "", [("a", "Tissue More on it."), ("b", "Kidney."), ("c", "Spleen.")], ""),
    ("(B, A) Liver. (C) Lung.", None, False, "", [("A", "Liver."), ("B", "Liver."), ("C", "Lung.")], ""),
    ("(A) Liver. (B) Lung. Vessels are dilated.", None, True,
     "", [("A", "Liver."), ("B", "Lung. Vessels are dilated.")], ""),
    ("(A)(B) Lung. (C) Spleen. Vessels are dilated.", None, True,
     "", [("A", ""), ("B", "Lung."), ("C", "Spleen. Vessels are dilated.")], ""),
    ("(A) (B) (C) Spleen. Vessels are dilated.", None, True,
     "", [("A", ""), ("B", ""), ("C", "Spleen. Vessels are dilated.")], ""),
    ("(A) Liver. Fibrosis. (B) Lung. (C) Spleen. Extra one. Extra two.", None, True,
     "", [("A", "Liver. Fibrosis."), ("B", "Lung."), ("C", "Spleen. Extra one.")], "Extra two."),
    # back-references that partition a group segment
    ("(A\u2013C) Kidney. Cortex (A), medulla (B) and pelvis (C).", None, False,
     "", [("A", "Kidney. Cortex"), ("B", "Kidney. medulla"), ("C", "Kidney. and pelvis")], ""),
    # ... but not when the sentence goes on after the last of them: its end is about all of them
    ("(A\u2013C) Staining: area (A), nuclei (B), membrane (C) in all cases.", None, False,
     "", [(lab, "Staining: area (A), nuclei (B), membrane (C) in all cases.") for lab in "ABC"], ""),
    ("(b-d) Staining at 1 month (b), at 3 months (c) and at 6 months (d). Note the change.", None, False,
     "", [("b", "Staining at 1 month Note the change."), ("c", "at 3 months Note the change."),
          ("d", "and at 6 months Note the change.")], ""),
    ("(A\u2013C) Staining at day 1 (A), day 3 (B) and day 7 (C)", None, False,
     "", [("A", "Staining at day 1"), ("B", "day 3"), ("C", "and day 7")], ""),
    # ... and those that do not: overlapping, not covering the group, not parenthesised
    ("(A\u2013D) Staining at day 1 (A and B) and day 3 (B and C) and (D).", None, False,
     "", [(lab, "Staining at day 1 (A and B) and day 3 (B and C) and (D).") for lab in "ABCD"], ""),
    ("(A\u2013C) Staining at day 1 (A), day 3 (B). (D) Kidney.", None, False,
     "", [*((lab, "Staining at day 1 (A), day 3 (B).") for lab in "ABC"), ("D", "Kidney.")], ""),
    ("(A\u2013C) Kidney with cortex in panel A, medulla in panel B and pelvis in panel C.", None, False,
     "", [(lab, "Kidney with cortex in panel A, medulla in panel B and pelvis in panel C.") for lab in "ABC"], ""),
    # position words
    ("Liver biopsy. The left, H&E staining. The right, reticulin stain.", None, False,
     "Liver biopsy.", [], "The left, H&E staining. The right, reticulin stain."),
    ("Liver biopsy. Top H&E staining. Bottom reticulin stain.", None, False,
     "Liver biopsy.", [], "Top H&E staining. Bottom reticulin stain."),
    ("Liver biopsy. Left) H&E staining. Right) reticulin.", None, False,
     "Liver biopsy. Left) H&E staining. Right) reticulin.", [], ""),
    ("Liver (top) and kidney (bottom) sections.", None, False, "Liver (top) and kidney (bottom) sections.", [], ""),
    ("Liver biopsy. Upper-left: H&E. Lower-right: reticulin.", None, False,
     "Liver biopsy.", [("upper left", "H&E."), ("lower right", "reticulin.")], ""),
]


@pytest.mark.parametrize("caption, labels, by_length, preamble, segments, shared", _SPLITS)
def test_split(caption, labels, by_length, preamble, segments, shared):
    s = LabelCaptionSplitter(shared_by_length=by_length).split(caption, labels)
    assert (s.preamble, list(s.segments.items()), s.shared) == (preamble, segments, shared)


# --- marker clauses ---------------------------------------------------------------------------------

_CLAUSES = [
    ("a) Liver (arrows, b) and kidney. b) Spleen.", None, [("arrow", "Liver (arrows, b) and kidney.", ["b"])]),
    ("(A) Liver (arrows; see text). (B) Lung.", None, [("arrow", "Liver (arrows; see text).", ["A"])]),
    ("(A) Liver; (*). (B) Lung.", None, []),  # a clause needs a word
    ("(A) Liver; dashed squares mark the crypts. (B) Lung.", None, [("box", "dashed squares mark the crypts.", ["A"])]),
    ("Arrows mark vessels (A). Arrows mark vessels (B).", None, [("arrow", "Arrows mark vessels", ["A", "B"])]),
    ("(A) Liver. (B) Lung; arrows mark vessels in a very long clause that goes on and on about the vessels and "
     "their many branches (A).", None,
     [("arrow", "arrows mark vessels in a very long clause that goes on and on about the vessels and their many "
                "branches (A).", ["B"])]),
    ("(A) Liver, arrows mark vessels and panel B shows (C) details. (C) Spleen.", None,
     [("arrow", "Liver, arrows mark vessels and", ["A"])]),
    ("(A) Liver # marks the duct. (B) Lung \u2020 marks the tumour.", None,
     [("symbol", "Liver # marks the duct.", ["A"]), ("symbol", "Lung \u2020 marks the tumour.", ["B"])]),
    ("(A) Liver, triangles mark nodes; stars mark cysts. (B) Lung.", None,
     [("symbol", "Liver, triangles mark nodes", ["A"]), ("symbol", "stars mark cysts.", ["A"])]),
    ("Arrows mark vessels.", ["A", "B"], [("arrow", "Arrows mark vessels.", ["A", "B"])]),
    ("Arrows mark vessels.", ["A", " ", "B"], [("arrow", "Arrows mark vessels.", ["A", "B"])]),
]


@pytest.mark.parametrize("caption, labels, expected", _CLAUSES)
def test_marker_clauses(caption, labels, expected):
    s = LabelCaptionSplitter().split(caption, labels)
    assert [(c.kind, c.text, c.labels) for c in s.clauses] == expected


# --- assigning position segments to panels -------------------------------------------------------------


def _panels(size: tuple[int, int], *boxes: tuple[float, float, float, float], labels=None) -> Figure:
    labels = labels or [None] * len(boxes)
    return Figure("f", size[0], size[1], "c", panels=[Panel(f"p{i}", box, label=lab)
                                                      for i, (box, lab) in enumerate(zip(boxes, labels))])


def test_a_centre_segment_goes_to_the_middle_panel():
    row = _panels((90, 30), (0, 0, 30, 30), (30, 0, 60, 30), (60, 0, 90, 30))
    assert LabelCaptionSplitter().assign(CaptionSplit("c", segments={"center": "c."}), row) == {"p1": "center"}
    assert LabelCaptionSplitter().assign(CaptionSplit("c", segments={"middle": "m."}), row) == {"p1": "middle"}


def test_position_words_are_weighed_relative_to_the_figure_size():
    # in a wide figure p1 (30% across, 10% down) is the upper left one, although p0 (10% across, 90% down)
    # has the smaller sum of pixel offsets
    wide = _panels((1000, 100), (50, 80, 150, 100), (250, 0, 350, 20))
    assert LabelCaptionSplitter().assign(CaptionSplit("c", segments={"upper left": "u."}), wide) == {"p1": "upper left"}


def test_position_segments_with_every_panel_taken_by_a_label_assign_nothing_more():
    pair = _panels((100, 50), (0, 0, 50, 50), (50, 0, 100, 50), labels=["A", "B"])
    split = CaptionSplit("c", segments={"A": "a.", "B": "b.", "top": "t."})
    assert LabelCaptionSplitter().assign(split, pair) == {"p0": "A", "p1": "B"}
