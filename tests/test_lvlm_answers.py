"""Answer parsing (a corpus of malformed answers, properties over arbitrary text and truncations) and box
sanitising."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panel2patch.parsers.lvlm.answers import (
    DROP_REASONS,
    FIX_REASONS,
    STATUSES,
    normalise_label,
    parse_answer,
    sanitise_boxes,
)
from panel2patch.parsers.lvlm.views import View

A = {"bbox_2d": [10, 20, 110, 220], "label": "A"}
B = {"bbox_2d": [120, 20, 230, 220], "label": "B"}
C = {"bbox_2d": [240, 20, 330, 220], "label": "C"}
AB = json.dumps([A, B])

# (answer text, expect, list_key) -> (status, repairs as a set, value)
CORPUS = [
    (AB, "list", None, "ok", set(), [A, B]),
    ("[]", "list", None, "ok", set(), []),
    ("```json\n" + AB + "\n```", "list", None, "ok", {"fenced"}, [A, B]),
    ("Sure! Here are the panels:\n```json\n" + AB + "\n```\nLet me know if you need more.", "list", None, "ok",
     {"fenced"}, [A, B]),
    ("```\n" + json.dumps(A) + "\n```", "list", None, "repaired", {"fenced", "single_object"}, [A]),
    (json.dumps(A), "list", None, "repaired", {"single_object"}, [A]),
    (json.dumps({"panels": [A, B]}), "list", None, "repaired", {"wrapped"}, [A, B]),
    (json.dumps({"panels": [A], "note": "two"}), "list", "panels", "repaired", {"wrapped"}, [A]),
    (json.dumps({"panels": [A, B]}), "list", "panels", "ok", set(), [A, B]),
    (json.dumps({"panels": [A], "note": "two"}), "list", None, "repaired", {"single_object"},
     [{"panels": [A], "note": "two"}]),
    (json.dumps([A]), "object", None, "repaired", {"single_item_list"}, A),
    (json.dumps(A), "object", None, "ok", set(), A),
    ("[{'bbox_2d': (10, 20, 110, 220), 'label': 'A', 'sure': True, 'note': None}]", "list", None, "repaired",
     {"python_literal"}, [{**A, "sure": True, "note": None}]),
    ('[{"bbox_2d": [10, 20, 110, 220], "label": "A\tB\nC"}]', "list", None, "repaired", {"control_chars"},
     [{**A, "label": "A\tB\nC"}]),
    ('[{"bbox_2d": [10, 20, 110, 220],\x00 "label": "A"}]', "list", None, "repaired", {"control_chars"}, [A]),
    (AB[:-1] + ', {"bbox_2d": [240, 20, 3', "list", None, "repaired", {"truncated"}, [A, B]),
    ("```json\n" + AB[:-1] + ', {"bbox_2d": [240, 20, 330, 220], "lab', "list", None, "repaired",
     {"fenced", "truncated"}, [A, B]),
    (json.dumps({"panels": [A, B, C]})[:-25], "list", None, "repaired", {"truncated", "wrapped"}, [A, B]),
    (AB + "\nThese are all the panels.", "list", None, "repaired", {"trailing_text"}, [A, B]),
    ("The panels are " + AB, "list", None, "repaired", {"leading_text"}, [A, B]),
    ("[{'label': 'A'}] and that is all", "list", None, "repaired", {"python_literal", "trailing_text"},
     [{"label": "A"}]),
    (json.dumps(AB), "list", None, "repaired", {"double_encoded"}, [A, B]),
    ("", "list", None, "empty", set(), None),
    ("  \n\t ", "list", None, "empty", set(), None),
    ("```json\n```", "list", None, "empty", {"fenced"}, None),
    ("I cannot find any panels in this figure.", "list", None, "unparseable", set(), None),
    ('[{"bbox_2d": [10, 2', "list", None, "unparseable", set(), None),
    (json.dumps(A) + "}}", "object", None, "repaired", {"trailing_text"}, A),
    ('[{"bbox_2d": [10, 20 110, 220], "label": "A"}]', "list", None, "unparseable", set(), None),  # not [10, 20]
    ('{"bbox_2d": [10, 20, 110, 220] "label": "A"}', "list", None, "unparseable", set(), None),
    ("42", "list", None, "unparseable", set(), None),
    ('"just a string"', "object", None, "unparseable", set(), None),
    (json.dumps([A, B]), "object", None, "unparseable", set(), None),
    ("42", "any", None, "ok", set(), 42),
    ("{{{{[[[[", "any", None, "unparseable", set(), None),
    ("[" * 100_000, "list", None, "unparseable", set(), None),
    ("{'a': {1, 2}}", "any", None, "unparseable", set(), None),  # a set is no JSON value
]


@pytest.mark.parametrize(("text", "expect", "list_key", "status", "repairs", "value"), CORPUS)
def test_malformed_answer_corpus(text, expect, list_key, status, repairs, value):
    parsed = parse_answer(text, expect=expect, list_key=list_key)
    assert (parsed.status, set(parsed.repairs), parsed.value) == (status, repairs, value), parsed.detail
    assert parsed.usable == (status in ("ok", "repaired"))
    if not parsed.usable:
        assert parsed.detail


def test_non_text_answers_are_unparseable():
    for value in (None, 3, b"[]", ["a"]):
        parsed = parse_answer(value)
        assert parsed.status == "unparseable" and "not text" in parsed.detail


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300) | st.text(alphabet='[]{}",:\'`0123456789 abtrunel\n\\', max_size=200),
       expect=st.sampled_from(["list", "object", "any"]))
def test_arbitrary_text_never_raises(text, expect):
    parsed = parse_answer(text, expect=expect)
    assert parsed.status in STATUSES
    assert (parsed.value is None) or parsed.usable
    if parsed.usable:
        json.dumps(parsed.value)  # JSON-like data only
        if expect == "list":
            assert isinstance(parsed.value, list)
        if expect == "object":
            assert isinstance(parsed.value, dict)
    assert parsed.status != "ok" or set(parsed.repairs) <= {"fenced"}


scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8)
items = st.fixed_dictionaries(
    {"bbox_2d": st.lists(st.integers(0, 5000), min_size=4, max_size=4), "label": st.text(max_size=6)},
    optional={"kids": st.lists(st.dictionaries(st.text(max_size=3), scalars, max_size=2), max_size=3),
              "note": scalars})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.lists(items, max_size=5), cut=st.floats(0, 1), fenced=st.booleans(), indent=st.sampled_from([None, 2]))
def test_truncated_lists_recover_whole_leading_items_only(value, cut, fenced, indent):
    text = json.dumps(value, indent=indent, ensure_ascii=bool(cut > 0.5))
    assert parse_answer(text, expect="list").value == value
    cut_text = text[:int(len(text) * cut)]
    parsed = parse_answer(("```json\n" if fenced else "") + cut_text, expect="list")
    if parsed.usable:
        assert parsed.value == value[:len(parsed.value)]  # a prefix of whole items, never a half item
        if cut_text != text:
            assert "truncated" in parsed.repairs or len(parsed.value) == len(value)
    else:
        assert parsed.status in ("empty", "unparseable")


def test_truncation_keeps_every_complete_item():
    text = json.dumps([A, B, C])
    cut_inside_c = text.index('"label": "C"')
    assert parse_answer(text[:cut_inside_c]).value == [A, B]
    assert parse_answer(text[:text.index(json.dumps(C)) - 1]).value == [A, B]


def test_python_literal_is_never_evaluated():
    parsed = parse_answer("[__import__('os').system('echo hacked')]")
    assert parsed.status == "unparseable"
    parsed = parse_answer("[(lambda: 1)()]")
    assert parsed.status == "unparseable"


# --- box sanitising ---------------------------------------------------------------------------------------------

FULL = View("full", "full", (0.0, 0.0, 1000.0, 500.0), (560, 280), (1000, 500))  # 1000/560 px per view px
CROP = View("crop1", "crop", (200.0, 100.0, 700.0, 400.0), (560, 336), (1000, 500))


def test_boxes_map_from_view_pixels_to_the_original():
    kept, counts = sanitise_boxes([{"bbox_2d": [56, 28, 112, 140], "label": "A", "kind": "photo"}], FULL)
    assert counts == {}
    (item,) = kept
    assert item.box == pytest.approx((100.0, 50.0, 200.0, 250.0))
    assert item.label == "A" and item.raw_label == "A" and item.extra == {"kind": "photo"}
    kept, _ = sanitise_boxes([{"bbox_2d": [0, 0, 280, 168]}], CROP)
    assert kept[0].box == pytest.approx((200.0, 100.0, 450.0, 250.0))
    assert kept[0].label is None


def test_box_forms_models_write_are_accepted():
    forms = [{"bbox": [56, 28, 112, 140]}, {"box": ["56", "28", "112", "140"]}, {"bbox_2d": "[56, 28, 112, 140]"},
             {"bbox_2d": [[56, 28], [112, 140]]}, {"bbox_2d": [[56, 28, 112, 140]]}, [56, 28, 112, 140],
             {"bbox_2d": (56.0, 28.0, 112.0, 140.0)}, {"bbox_2d": "56,28,112,140"}]
    kept, counts = sanitise_boxes(forms, FULL)
    assert counts == {}
    assert [k.box for k in kept] == [pytest.approx((100.0, 50.0, 200.0, 250.0))] * len(forms)


def test_bad_boxes_are_dropped_and_counted_by_reason():
    items = [
        {"bbox_2d": [112, 140, 56, 28]},  # inverted: swapped, kept
        {"bbox_2d": [-20, -10, 112, 300]},  # overshoots the view: clipped, kept
        {"bbox_2d": [600, 300, 700, 400]},  # outside the view
        {"bbox_2d": [10, 10, 11, 100]},  # 1.8 original pixels wide
        {"bbox_2d": [0, 0, 560, 280]},  # the whole image
        {"bbox_2d": [2, 1, 559, 279]},  # nearly the whole image
        {"bbox_2d": [float("nan"), 0, 10, 10]},
        {"bbox_2d": ["inf", 0, 10, 10]},
        {"bbox_2d": [1, 2, 3]},
        {"bbox_2d": [True, 2, 3, 4]},
        {"bbox_2d": {"x": 1}},
        {"bbox_2d": [1, 2, 3, "1e400"]},
        {"label": "A"},
        "nonsense",
        7,
        None,
    ]
    kept, counts = sanitise_boxes(items, FULL, min_size=4)
    assert [k.box for k in kept] == [pytest.approx((100.0, 50.0, 200.0, 250.0)),
                                     pytest.approx((0.0, 0.0, 200.0, 500.0))]
    assert counts == {"swapped": 1, "clipped": 1, "outside_view": 1, "too_small": 1, "whole_image": 2,
                      "non_finite": 3, "malformed_box": 4, "missing_box": 1, "not_an_item": 2}
    assert set(counts) <= set(DROP_REASONS) | set(FIX_REASONS)
    kept, counts = sanitise_boxes([{"bbox_2d": [0, 0, 560, 280]}], FULL, whole_iou=None)
    assert len(kept) == 1 and counts == {}


def test_whole_image_is_the_image_the_model_saw():
    kept, counts = sanitise_boxes([{"bbox_2d": [0, 0, 560, 336]}, {"bbox_2d": [0, 0, 280, 336]}], CROP)
    assert counts == {"whole_image": 1} and kept[0].box == pytest.approx((200.0, 100.0, 450.0, 400.0))


def test_labels_are_matched_to_the_caption():
    raw = ["(a)", "A.", "a", "Panel A", " b) ", "c", 3, None, "", True]
    items = [{"bbox_2d": [10 * i, 0, 10 * i + 50, 50], "label": label} for i, label in enumerate(raw)]
    kept, counts = sanitise_boxes(items, FULL, caption_labels=["A", "B", "3"])
    assert [k.label for k in kept] == ["A", "A", "A", "A", "B", "3", None, None, None]
    assert counts == {"unknown_label": 1}
    kept, counts = sanitise_boxes(items, FULL, caption_labels=["A", "B", "3"], require_label=True)
    assert counts == {"unknown_label": 1, "missing_label": 3} and len(kept) == 6
    kept, counts = sanitise_boxes(items, FULL)  # no caption labels: every label kept as written
    assert [k.label for k in kept][:5] == ["(a)", "A.", "a", "Panel A", "b)"] and counts == {}


def test_normalise_label():
    assert {normalise_label(x) for x in ("(a)", "A.", "a", " A ", "Panel A", "panel (a)", "Fig. a")} == {"a"}
    assert normalise_label("ii)") == "ii" and normalise_label("B1") == "b1"
    assert normalise_label("a") != normalise_label("b")


def test_a_lone_item_and_odd_containers():
    kept, counts = sanitise_boxes({"bbox_2d": [56, 28, 112, 140], "label": "x"}, FULL)
    assert len(kept) == 1 and kept[0].label == "x"
    assert sanitise_boxes(None, FULL) == ([], {})
    kept, counts = sanitise_boxes("garbage", FULL)
    assert kept == [] and counts == {"not_an_item": 1}


@settings(max_examples=200, deadline=None)
@given(box=st.lists(st.floats(-2000, 2000, allow_nan=False) | st.just(math.inf), min_size=4, max_size=4))
def test_kept_boxes_are_ordered_inside_the_view(box):
    kept, counts = sanitise_boxes([{"bbox_2d": box}], CROP, min_size=1)
    assert len(kept) + sum(counts[r] for r in DROP_REASONS) == 1
    for item in kept:
        x0, y0, x1, y1 = item.box
        assert 200 <= x0 < x1 <= 700 and 100 <= y0 < y1 <= 400
        assert x1 - x0 >= 1 and y1 - y0 >= 1


def test_a_printed_sub_panel_of_a_caption_label_is_kept_as_printed():
    view = View("full", "full", (0.0, 0.0, 100.0, 100.0), (100, 100), (100, 100))
    items = [{"bbox_2d": [0, 0, 40, 40], "label": "Aii"}, {"bbox_2d": [50, 0, 90, 40], "label": "(b)"},
             {"bbox_2d": [0, 50, 40, 90], "label": "C1"}]
    kept, counts = sanitise_boxes(items, view, caption_labels=["A", "B"])
    assert [k.label for k in kept] == ["Aii", "B"] and counts["unknown_label"] == 1  # C1: C is not a caption label
