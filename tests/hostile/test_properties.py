"""Property checks of the caption splitter, the box helpers and corpus validation on hostile inputs."""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panel2patch.data import CaptionSplit, Figure, Marker, MarkerClause, Panel, Region
from panel2patch.parsers.boxes import (
    box_area,
    box_center,
    box_clip,
    box_contains,
    box_dilate,
    box_inside_share,
    box_iou,
    box_nms,
    box_union,
)
from panel2patch.parsers.captions.positions import POSITION_WORDS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------- caption splitter

_TOKENS = [
    "(A)", "a.", "B,", "i)", "(F, G)", "1.", "A)", "b)", "C:", "(B-D)", "c–e", "(i)–(iii)", "((a), (b))", "(A and B)",
    "B1", "A1/A2", "I", "A", "a", "ii", "Fig. 2A", "S.D.", "H&E", "(n = 5)", "Top:", "(left)", "Lower panels",
    "panel C", "(anti-CD34, E-H)", "(arrows, c)", "(arrowheads)", "* denotes", "inset shows", "boxed area",
    "Scale bars, 50\u2009µm.", "Data are mean ± s.d.", "A, " * 40, "(a" * 5, ")" * 3, "x10", "–", "µ", "\u2009",
]
_CHARS = "AaBbCcDdEeIiVvXx0123456789 (),.;:[]{}-/&*#\n\t\u2009µ–—"
_CAPTIONS = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.one_of(st.sampled_from(_TOKENS), st.text(alphabet=_CHARS, max_size=8), st.text(max_size=4)), max_size=30
    ).flatmap(lambda parts: st.sampled_from([" ", "", "\n", ". ", "; "]).map(lambda sep: sep.join(parts))),
)
_ODD_LABEL = st.text(max_size=4)
_LABELS = st.none() | st.lists(
    st.sampled_from(["A", "B", "C", "a", "b", "c", "i", "ii", "iii", "B1", "I", "A ", " ", ""]) | _ODD_LABEL, max_size=8
)
_CLAUSE_KINDS = {"arrow", "arrowhead", "asterisk", "box", "inset", "circle", "symbol"}
_ATOM = re.compile(r"[A-Za-z]\d{0,2}|[ivx]+|[IVX]+")


def _splitter():
    from panel2patch.manager import build

    return build("caption_splitters", "label_splitter", {})


def _is_position_key(key: str) -> bool:
    return bool(key.split()) and all(w in POSITION_WORDS for w in key.split())


@SETTINGS
@given(caption=_CAPTIONS, labels=_LABELS)
def test_label_splitter_returns_a_well_formed_deterministic_split(caption, labels):
    splitter = _splitter()
    split = splitter.split(caption, labels)

    assert isinstance(split, CaptionSplit)
    assert isinstance(split.preamble, str) and isinstance(split.shared, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in split.segments.items())
    assert all(isinstance(c, MarkerClause) and c.kind in _CLAUSE_KINDS and isinstance(c.text, str) for c in split.clauses)
    if not caption.strip():
        assert (split.preamble, split.segments, split.shared, split.clauses) == ("", {}, "", [])
        return
    assert split.caption == caption

    # keys: the given labels (as given) when there are any, else labels of an inferred series; position words either way
    given_labels = {str(lab) for lab in labels if str(lab).strip()} if labels else None
    named = list(split.segments) + [lab for c in split.clauses for lab in c.labels]
    for key in named:
        assert isinstance(key, str)
        if not _is_position_key(key):
            assert key in given_labels if given_labels is not None else _ATOM.fullmatch(key), key

    # every text is cut out of the caption: preamble and shared verbatim, segments joined by single spaces
    assert split.preamble in caption and split.shared in caption
    allowed = set(caption) | {" "}
    assert all(set(text) <= allowed for text in split.segments.values())

    encoded = json.dumps(split.to_json(), ensure_ascii=False)
    assert json.loads(encoded) == split.to_json()
    assert json.dumps(_splitter().split(caption, labels).to_json(), ensure_ascii=False) == encoded


def test_label_splitter_reads_real_captions():
    split = _splitter().split(
        "Figure 1. Liver. (A) Low power, H&E stain. (B) Hepatocytes (arrows). (C) CD34. Scale bars, 50\u2009µm.", None
    )
    assert split.preamble == "Figure 1. Liver."
    assert split.segments == {"A": "Low power, H&E stain.", "B": "Hepatocytes (arrows).", "C": "CD34."}
    assert split.shared == "Scale bars, 50\u2009µm."
    assert [(c.kind, c.labels) for c in split.clauses] == [("arrow", ["B"])]
    nature = _splitter().split("a Device. b, c Electrode (b) and membrane (c). Data are mean ± s.d.", ["a", "b", "c"])
    assert nature.segments == {"a": "Device.", "b": "Electrode", "c": "and membrane"}


def test_a_label_with_a_trailing_newline_is_not_a_roman_numeral():
    from panel2patch.parsers.series import roman_value

    assert roman_value("iv\n") is None and roman_value("iv") == 4
    assert _splitter().split("(A) Liver.", ["iv\n"]).segments == {}


# --------------------------------------------------------------------------------------------------- box helpers

_ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]),
)
_ANY_BOX = st.tuples(_ANY_FLOAT, _ANY_FLOAT, _ANY_FLOAT, _ANY_FLOAT)
_SANE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def _valid_boxes(draw, coord=_SANE):
    x0, x1 = sorted(draw(st.lists(coord, min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(coord, min_size=2, max_size=2, unique=True)))
    return (x0, y0, x1, y1)


@SETTINGS
@given(a=_ANY_BOX, b=_ANY_BOX, factor=_ANY_FLOAT, pad=_ANY_FLOAT)
def test_box_helpers_never_raise_on_any_float(a, b, factor, pad):
    assert not box_area(a) < 0
    box_center(a), box_clip(a, b), box_dilate(a, factor), box_union(a, b)
    assert isinstance(box_contains(a, b, pad), bool)
    box_inside_share(a, b)
    box_iou(a, b)


@SETTINGS
@given(a=_valid_boxes() | st.tuples(_SANE, _SANE, _SANE, _SANE), b=_valid_boxes(), factor=st.floats(0, 10))
def test_box_helpers_keep_their_geometry_on_finite_boxes(a, b, factor):
    iou = box_iou(a, b)
    assert 0.0 <= iou <= 1.0 and iou == box_iou(b, a)
    assert 0.0 <= box_inside_share(a, b) <= 1.0
    assert box_area(a) >= 0.0
    clipped = box_clip(a, b)
    assert box_contains(b, clipped) and box_area(clipped) <= box_area(b)
    union = box_union(a, b)
    assert box_contains(union, a) and box_contains(union, b)
    if a[0] < a[2] and a[1] < a[3]:
        if box_area(a) > 0:  # not a sub-pixel box whose area underflows
            assert box_iou(a, a) == 1.0 and box_inside_share(a, a) == 1.0
        cx, cy = box_center(a)
        assert a[0] <= cx <= a[2] and a[1] <= cy <= a[3]
        grown = box_dilate(a, factor)
        assert box_center(grown) == pytest.approx((cx, cy), abs=1e-6 * (1 + abs(cx) + abs(cy)))
        if factor >= 1:
            assert box_contains(grown, a, pad=1e-9 * (1 + max(map(abs, a))))


# integer corners (from -1, the image slack) are exact in float32, so torchvision's IoU agrees with box_iou
_INT_BOX = st.tuples(*[st.integers(-1, 60)] * 4).map(lambda t: tuple(map(float, t)))
_NMS_CASE = st.integers(0, 12).flatmap(
    lambda n: st.tuples(
        st.lists(_INT_BOX, min_size=n, max_size=n),
        st.lists(st.floats(-1e6, 1e6) | st.sampled_from([0.5, 0.9]), min_size=n, max_size=n),
        st.none() | st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@SETTINGS
@given(case=_NMS_CASE, iou=st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.5, 1.0]))
def test_box_nms_keeps_the_best_box_of_every_overlapping_cluster(case, iou):
    boxes, scores, groups = case
    keep = box_nms(boxes, scores, iou, groups)
    assert all(isinstance(k, int) for k in keep) and len(set(keep)) == len(keep)
    assert set(keep) <= set(range(len(boxes)))
    assert [scores[k] for k in keep] == sorted((scores[k] for k in keep), reverse=True)  # best score first
    group = groups or [0] * len(boxes)
    eps = 1e-5
    for i, k in enumerate(keep):
        assert all(box_iou(boxes[k], boxes[j]) <= iou + eps for j in keep[i + 1 :] if group[j] == group[k])
    for j in set(range(len(boxes))) - set(keep):  # suppressed by a kept box of its group, scoring no lower
        assert any(group[k] == group[j] and scores[k] >= scores[j] and box_iou(boxes[k], boxes[j]) > iou - eps
                   for k in keep)
    if iou >= 1.0:
        assert sorted(keep) == list(range(len(boxes)))
    if groups is None:
        assert box_nms(boxes, scores, iou, [7] * len(boxes)) == keep


# ---------------------------------------------------------------------------------------------- corpus validation

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from([math.nan, math.inf, -math.inf, "nan", "inf", "1e999", 10**400, 1, -1, 0, 100.0]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


# values close to valid ones: ids of the figure, coordinates around the image edges
_NEAR = st.sampled_from(["p0", "m0", "r0", "A", None, [], [0, 0, 1, 1]]) | st.integers(-2, 102) | st.floats(-1.5, 101.5)


def _valid_figure() -> dict:
    return Figure(
        id="f", width=100, height=80, caption="c",
        panels=[Panel("p0", (0, 0, 50, 80), label="A")],
        markers=[Marker("m0", "arrow", (10, 10, 20, 20), panel_id="p0", tip=(12, 12))],
        regions=[Region("r0", "p0", (5, 5, 30, 30), marker_ids=["m0"], texts=["cells"])],
    ).to_json()


def _check_invariants(fig: Figure) -> None:
    assert isinstance(fig, Figure) and isinstance(fig.width, int) and isinstance(fig.height, int)
    assert fig.width > 0 and fig.height > 0

    def inside(box):
        assert len(box) == 4 and all(isinstance(v, float | int) and math.isfinite(v) for v in box), box
        assert -1 <= box[0] < box[2] <= fig.width + 1 and -1 <= box[1] < box[3] <= fig.height + 1, box

    panel_ids, marker_ids = {p.id for p in fig.panels}, {m.id for m in fig.markers}
    for items in (fig.panels, fig.markers, fig.regions):
        ids = [item.id for item in items]
        assert all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)
    for p in fig.panels:
        inside(p.box)
        if p.label_box is not None:
            inside(p.label_box)
    for m in fig.markers:
        inside(m.box)
        assert m.panel_id is None or m.panel_id in panel_ids
        assert m.tip is None or all(math.isfinite(v) for v in m.tip)
    for r in fig.regions:
        inside(r.box)
        assert r.panel_id in panel_ids and set(r.marker_ids) <= marker_ids
        assert isinstance(r.texts, list) and all(isinstance(t, str) for t in r.texts)


def _from_json_or_value_error(data):
    try:
        fig = Figure.from_json(data)
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("figure "), message
        if isinstance(data, dict):
            where = message.removeprefix(f"figure {data.get('id')!r}: ")
            assert where != message and where.split(": ")[0].strip(), message  # names the field or the version
        return None
    _check_invariants(fig)
    return fig


def _paths(node, prefix=()):
    """Every (container path, key) of a JSON tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield prefix, key
        yield from _paths(child, (*prefix, key))


def _at(tree, path):
    for key in path:
        tree = tree[key]
    return tree


@SETTINGS
@given(value=_JSON)
def test_figure_from_json_rejects_arbitrary_values_with_a_value_error(value):
    _from_json_or_value_error(value)
    if isinstance(value, dict):
        _from_json_or_value_error({**value, "schema_version": 1})
        _from_json_or_value_error({**_valid_figure(), **value})


_BAD_BOXES = [
    [math.nan, 0, 10, 10], [0, 0, math.inf, 10], [-math.inf, 0, 10, 10], [0, 0, 500, 10], [0, -5, 10, 10],
    [30, 0, 10, 10], [0, 10, 10, 10], [0, 0, 10], "box", None,
]
_TARGETED = [
    *[(("panels", 0), "box", b) for b in _BAD_BOXES],
    *[(("markers", 0), "box", b) for b in _BAD_BOXES],
    *[(("regions", 0), "box", b) for b in _BAD_BOXES],
    (("panels", 0), "label_box", [0, 0, 0, 0]),
    (("markers", 0), "tip", [math.nan, 1]),
    (("markers", 0), "panel_id", "nope"),
    (("regions", 0), "panel_id", "nope"),
    (("regions", 0), "panel_id", None),
    (("regions", 0, "marker_ids"), 0, "nope"),
    (("regions", 0), "texts", "cells"),
    (("regions", 0), "texts", [1]),
    ((), "width", 0),
    ((), "height", -3),
    ((), "width", 1.5),
    ((), "schema_version", 2),
]


@SETTINGS
@given(data=st.data())
def test_a_mutated_figure_is_either_consistent_or_a_value_error(data):
    figure = _valid_figure()
    assert _from_json_or_value_error(copy.deepcopy(figure)) is not None
    op = data.draw(st.sampled_from(["replace", "delete", "duplicate", "targeted"]))
    if op == "targeted":
        path, key, value = data.draw(st.sampled_from(_TARGETED))
        _at(figure, path)[key] = value
        assert _from_json_or_value_error(figure) is None, (path, key, value)  # each of these is an error
        return
    if op == "duplicate":
        name = data.draw(st.sampled_from(["panels", "markers", "regions"]))
        figure[name].append(copy.deepcopy(figure[name][0]))
        assert _from_json_or_value_error(figure) is None
        return
    path, key = data.draw(st.sampled_from(list(_paths(figure))))
    parent = _at(figure, path)
    if op == "delete":
        del parent[key]
    else:
        parent[key] = data.draw(_JSON | _NEAR)
    _from_json_or_value_error(figure)


@pytest.fixture(scope="module")
def valid_shard(tmp_path_factory) -> Path:
    from panel2patch.plugins.writers import WebDatasetWriter

    out = tmp_path_factory.mktemp("corpus")
    writer = WebDatasetWriter(str(out))
    writer.begin("000-00000")
    for i in range(3):
        figure = Figure.from_json({**_valid_figure(), "id": f"f{i}", "caption": f"(A) figure {i} µm"})
        writer.write(figure, b"\x89PNG fake image " + bytes([i]) * 40, "png")
    writer.commit({"inputs": 3})
    writer.finish({"shard": 0, "num_shards": 1})
    return next((out / "shards").glob("*.tar"))


_DAMAGE = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10**5), st.integers(1, 255)),
        st.tuples(st.just("write"), st.integers(0, 10**5), st.binary(min_size=1, max_size=32)),
        st.tuples(st.just("cut"), st.integers(0, 10**5), st.none()),
    ),
    min_size=1,
    max_size=4,
)


def _damage(raw: bytes, ops) -> bytes:
    buf = bytearray(raw)
    for kind, at, arg in ops:
        if not buf:
            break
        at %= len(buf)
        if kind == "flip":
            buf[at] ^= arg
        elif kind == "write":
            buf[at : at + len(arg)] = arg
        else:
            del buf[at:]
    return bytes(buf)


@settings(max_examples=120, deadline=None)
@given(ops=_DAMAGE, json_only=st.booleans())
def test_a_damaged_shard_is_a_corpus_error_or_skipped(valid_shard, ops, json_only):
    from panel2patch.corpus import CorpusError, read_corpus

    members = ("json",) if json_only else None
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp, "shards", "corpus-000-00000.tar")
        shard.parent.mkdir()
        shard.write_bytes(_damage(valid_shard.read_bytes(), ops))
        try:
            records = list(read_corpus(tmp, members))
        except CorpusError:
            records = None
        skipped: list[str] = []
        kept = list(read_corpus(tmp, members, skipped=skipped))
    for record in kept:
        _check_invariants(record.figure)
        assert (record.image is None) == json_only == (record.image_ext is None)
    assert all(isinstance(s, str) and s for s in skipped)
    if records is not None:
        assert [r.key for r in records] == [r.key for r in kept] and not skipped


def test_an_undamaged_shard_reads_back_whole(valid_shard):
    from panel2patch.corpus import read_corpus

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "shards").mkdir()
        Path(tmp, "shards", "corpus-000-00000.tar").write_bytes(valid_shard.read_bytes())
        assert [r.figure.id for r in read_corpus(tmp)] == ["f0", "f1", "f2"]


def test_every_field_set_to_an_odd_leaf_is_a_figure_or_a_value_error():
    for leaf in (math.nan, math.inf, 10**400, "1e999", [], {}, None, True):
        for path, key in _paths(_valid_figure()):
            figure = _valid_figure()
            _at(figure, path)[key] = leaf
            _from_json_or_value_error(figure)


def test_box_nms_never_keeps_a_non_finite_box_and_keeps_groups_apart_at_any_coordinates():
    a, b = (0.0, 0.0, 10.0, 10.0), (1.0, 1.0, 11.0, 11.0)
    assert box_nms([a, b], [0.9, math.nan], 0.5) == [0]
    assert box_nms([a, b, (50.0, 50.0, math.inf, 60.0)], [0.9, 0.8, 0.7], 0.5, [0, 0, 0]) == [0]
    assert box_nms([(-110.0, -110.0, -100.0, -100.0), (-60.0, -60.0, -50.0, -50.0)], [0.9, 0.8], 0.5, [0, 1]) == [0, 1]
    assert box_nms([a, a], [1.0, 1.0 + 1e-9], 0.5) == [1]  # scores compared in float64
