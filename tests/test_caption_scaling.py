"""The caption splitter's bound on label lists, and the linear-time lookups that replace whole-text scans."""

from __future__ import annotations

import random
import re

import pytest

from panel2patch.parsers.captions.clauses import _Parens
from panel2patch.parsers.captions.roles import _OTHER_FIGURE_RE, _other_figure_before
from panel2patch.parsers.captions.splitter import LabelCaptionSplitter
from panel2patch.parsers.captions.text_scan import char_after, char_before
from panel2patch.parsers.captions.tokens import MAX_LIST_ITEMS, scan_tokens


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def test_a_list_of_max_items_is_one_token():
    tokens = scan_tokens(", ".join(["A"] * MAX_LIST_ITEMS) + ": text")
    assert len(tokens) == 1
    assert len(tokens[0].items) == MAX_LIST_ITEMS


def test_a_longer_list_is_cut_after_max_items():
    caption = ", ".join(["A"] * (MAX_LIST_ITEMS + 5)) + ": text"
    tokens = scan_tokens(caption)
    assert [len(t.items) for t in tokens] == [MAX_LIST_ITEMS, 5]
    assert tokens[0].start == 0
    assert tokens[1].end == caption.index(":") + 1


def test_run_over_the_bound_keeps_the_rest_in_the_segment():
    caption = "A, " * 40 + "liver."
    split = LabelCaptionSplitter().split(caption, None)
    assert split.preamble == ""
    assert split.segments == {"A": "A, " * 7 + "A, liver."}
    assert split.shared == ""


def test_run_over_the_bound_loses_no_word():
    caption = "A, " * 100 + "liver lesions."
    split = LabelCaptionSplitter().split(caption, None)
    kept = _words(split.preamble) + [w for seg in split.segments.values() for w in _words(seg)] + _words(split.shared)
    assert kept.count("A") == 100 - MAX_LIST_ITEMS
    assert kept[-2:] == ["liver", "lesions"]


def test_long_labelled_caption_loses_no_word():
    caption = "(A) text (B) more, " * 3000
    split = LabelCaptionSplitter().split(caption, None)
    assert list(split.segments) == ["A", "B"]
    kept = _words(split.preamble) + [w for seg in split.segments.values() for w in _words(seg)] + _words(split.shared)
    assert kept.count("text") == 3000
    assert kept.count("more") == 3000


@pytest.mark.parametrize("unit", ["A, ", "(A) ", "word and more ", "x; ", "arrows (A) mark; "])
def test_long_adversarial_captions_split(unit):
    caption = unit * (50_000 // len(unit))
    split = LabelCaptionSplitter().split(caption, None)
    assert split.caption == caption


def test_enclosing_paren_matches_a_backward_scan():
    def reference(text: str, pos: int):
        depth = 0
        for i in range(pos - 1, -1, -1):
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                if depth == 0:
                    close = text.find(")", pos)
                    return (i, close + 1) if close != -1 else None
                depth -= 1
        return None

    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice("(()) ab") for _ in range(rng.randint(0, 30)))
        parens = _Parens(text)
        for pos in range(len(text) + 1):
            assert parens.enclosing(pos) == reference(text, pos), (text, pos)


def test_other_figure_lookup_matches_the_whole_head():
    rng = random.Random(1)
    parts = ["Fig", "Figure", "Figs", "Supplementary", "Suppl", "s", "S", ".", " ", "\n", "2", "13", "x", "(", "A"]
    for _ in range(2000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        for pos in range(len(text) + 1):
            assert _other_figure_before(text, pos) == bool(_OTHER_FIGURE_RE.search(text[:pos])), (text, pos)


def test_char_lookups():
    assert char_before("ab  \n c", 6) == "b"
    assert char_before("   ", 3) == ""
    assert char_after("a  \t b", 1) == "b"
    assert char_after("a  ", 1) == ""
