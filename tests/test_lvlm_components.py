"""The LVLM data-engine components driven by a scripted backend registered through ``register_lvlm_backends``: the
Set-of-Marks panel parser, the marker detector, the caption splitter, the grounding and description stages, the
shared engine with its answer cache, backend selection and the shipped LVLM recipes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageDraw

from panel2patch import config, mining
from panel2patch.data import CaptionSplit, Figure, Marker, MarkerClause, Panel, Region
from panel2patch.errors import Panel2PatchError, RecipeError, Reject, UnknownComponentError
from panel2patch.hookspecs import hookimpl
from panel2patch.manager import build, registry
from panel2patch.parsers.boxes import box_clip, box_dilate
from panel2patch.parsers.captions.splitter import LabelCaptionSplitter
from panel2patch.parsers.lvlm import engine as engine_module
from panel2patch.parsers.lvlm.answers import sanitise_boxes
from panel2patch.parsers.lvlm.cache import Answer, Backend, Request
from panel2patch.parsers.lvlm.captions import LVLMCaptionSplitter, caption_units
from panel2patch.parsers.lvlm.engine import Engine, EngineSettings, parsed, shared_engine
from panel2patch.parsers.lvlm.errors import LVLMError
from panel2patch.parsers.lvlm.markers import LVLMMarkerDetector
from panel2patch.parsers.lvlm.panels import SetOfMarksPanelParser, _agrees, _cut_by, _Found, caption_labels
from panel2patch.parsers.lvlm.views import MIN_PIXELS, View, crop_view, make_views
from panel2patch.plugins.lvlm_stages import LVLMDescriber, LVLMRegionGrounder
from panel2patch.plugins.regions import MarkerRegionMiner

MAX_PIXELS = 200_000
SIZE = (600, 400)
LEFT, RIGHT = (20.0, 20.0, 290.0, 380.0), (310.0, 20.0, 580.0, 380.0)
CAPTION_AB = "Kidney sections. (A) Tubules at day 3. (B) Glomeruli at day 7."

#: Scripts of the scripted backend by name: a request in, the answer text (or a dict to dump, or
#: ``(text, finish_reason)``) out. Backend arguments come from recipes, so the backend takes the script's name.
SCRIPTS: dict[str, Callable[[Request], Any]] = {}


class ScriptedBackend(Backend):
    """Answers each request with its script; keeps every batch it was sent."""

    name = "scripted"

    def __init__(self, script: str) -> None:
        if script not in SCRIPTS:
            raise ValueError(f"no script named {script!r}")
        self.script = SCRIPTS[script]
        self.batches: list[list[Request]] = []

    @property
    def requests(self) -> list[Request]:
        return [r for batch in self.batches for r in batch]

    def generate(self, requests):
        self.batches.append(list(requests))
        answers = []
        for request in requests:
            reply = self.script(request)
            text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
            answers.append(Answer(text if isinstance(text, str) else json.dumps(text), finish,
                                  tokens_in=10, tokens_out=5, tokens_image=4))
        return answers


class ModelBackend(Backend):
    """A backend that takes the model name (the engine hands it the ``model`` setting)."""

    name = "with_model"

    def __init__(self, model: str, device: str = "cpu") -> None:
        self.model, self.device = model, device

    def generate(self, requests):
        return [Answer('{"panels": []}') for _ in requests]


class ScriptedPlugin:
    @hookimpl
    def register_lvlm_backends(self, register):
        register("scripted", ScriptedBackend)
        register("with_model", ModelBackend)


@pytest.fixture(autouse=True)
def no_shared_engines(monkeypatch):
    """Every test builds its own engines (the module caches one per settings and process)."""
    monkeypatch.setattr(engine_module, "_ENGINES", {})


@pytest.fixture
def diagnostics():
    """The counts of :func:`panel2patch.mining.count_diagnostic`, as while mining one figure."""
    token = mining._DIAGNOSTICS.set(Counter())
    try:
        yield mining._DIAGNOSTICS.get()
    finally:
        mining._DIAGNOSTICS.reset(token)


@pytest.fixture
def lvlm(add_plugin, tmp_path):
    """``lvlm(script, cache=False, **settings)``: engine settings (the recipe's ``lvlm`` section) whose backend
    answers with ``script``."""
    add_plugin(ScriptedPlugin(), "scripted-lvlm-backends")
    SCRIPTS.clear()

    def settings(script: Callable[[Request], Any], cache: bool = False, **extra: Any) -> dict[str, Any]:
        name = f"script{len(SCRIPTS)}"
        SCRIPTS[name] = script
        return {"model": "m", "backend": "scripted", "backends": {"scripted": {"script": name}},
                "cache": str(tmp_path / "answers.jsonl") if cache else None, "max_pixels": MAX_PIXELS, **extra}

    yield settings
    SCRIPTS.clear()


def figure_image(size=SIZE) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle(LEFT, outline="black", width=3)
    draw.rectangle(RIGHT, fill=(200, 40, 40))
    draw.text((5, 5), "A", fill="black")
    draw.text((300, 5), "B", fill="black")
    return image


def in_view(view: View, box, ndigits: int | None = 0) -> list[float]:
    """A figure box as the model writes it in the view's pixels (rounded, clipped to the view)."""
    x0, y0, x1, y1 = view.to_view(box)
    w, h = view.size
    return [round(v, ndigits) if ndigits else round(v) for v in (max(0, x0), max(0, y0), min(w, x1), min(h, y1))]


def panel_answer(panels: list[tuple[Any, str | None, str]]) -> Callable[[Request], Any]:
    """Every view answers the ``(figure box, label, kind)`` panels it shows, in its pixels."""

    def script(request: Request) -> Any:
        view = request.metadata["view"]
        out = []
        for box, label, kind in panels:
            vb = in_view(view, box)
            if vb[0] < vb[2] and vb[1] < vb[3]:
                out.append({"bbox_2d": vb, "label": label, "kind": kind})
        return {"panels": out}

    return script


def close(a, b, tol=1.0) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def backend_of(component) -> ScriptedBackend:
    return component.engine.backend


def angle_between(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


# --- the panel parser ----------------------------------------------------------------------------------------------


def test_panel_boxes_map_back_from_a_resized_full_view(lvlm, diagnostics):
    parser = SetOfMarksPanelParser(lvlm(panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "chart")])))
    image = figure_image()
    parse = parser.parse(image, CAPTION_AB)
    (request,) = backend_of(parser).requests
    view = request.metadata["view"]
    assert view.kind == "full" and view.size == (532, 364) and view.size != image.size  # really resized
    assert request.image.size == view.size and request.metadata["task"] == "panels"
    assert request.metadata["figure"] is image
    assert (parse.width, parse.height) == SIZE
    assert [(p.id, p.label, p.kind) for p in parse.panels] == [("p0", "A", "photo"), ("p1", "B", "chart")]
    assert close(parse.panels[0].box, LEFT) and close(parse.panels[1].box, RIGHT)
    assert [p.provenance for p in parse.panels] == ["lvlm_panels:votes=1/1"] * 2
    assert [p.score for p in parse.panels] == [1.0, 1.0]
    assert diagnostics["lvlm.panels.requests"] == 1 and diagnostics["lvlm.panels.status.ok"] == 1
    assert diagnostics["lvlm.panels.tokens_in"] == 10 and diagnostics["lvlm.panels.tokens_image"] == 4
    assert "lvlm.panels.extra_views" not in diagnostics


def test_a_label_the_caption_does_not_name_is_dropped(lvlm, diagnostics):
    extra = (250.0, 300.0, 300.0, 390.0)
    parser = SetOfMarksPanelParser(lvlm(panel_answer([(LEFT, "(a)", "photo"), (RIGHT, "Panel B", "chart"),
                                                      (extra, "C", "photo")])))
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [p.label for p in parse.panels] == ["A", "B"]  # as the caption prints them
    assert diagnostics["lvlm.panels.box.unknown_label"] == 1
    assert len(backend_of(parser).requests) == 1  # the rest agrees with the caption: no second opinion


def test_panel_kinds(lvlm):
    boxes = [(20.0, 20.0, 190.0, 380.0), (210.0, 20.0, 390.0, 380.0), (410.0, 20.0, 580.0, 190.0),
             (410.0, 210.0, 580.0, 380.0)]
    caption = "(A) Micrograph. (B) Curves. (C) Scheme. (D) Other."
    kinds = ["diagram", "photo", "other", "Chart"]
    parser = SetOfMarksPanelParser(lvlm(panel_answer([(b, lab, k) for b, lab, k in zip(boxes, "DABC", kinds)])))
    parse = parser.parse(figure_image(), caption)
    assert caption_labels(caption) == ["A", "B", "C", "D"]
    assert [(p.label, p.kind) for p in parse.panels] == [("A", "photo"), ("B", "unknown"), ("C", "chart"),
                                                         ("D", "diagram")]
    assert [p.id for p in parse.panels] == ["p0", "p1", "p2", "p3"]


def test_an_unknown_kind_word_becomes_unknown(lvlm):
    parser = SetOfMarksPanelParser(lvlm(panel_answer([(LEFT, "A", "micrograph"), (RIGHT, "B", "photo")])))
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [(p.label, p.kind) for p in parse.panels] == [("A", "unknown"), ("B", "photo")]


def test_panels_follow_the_caption_label_order(lvlm):
    caption = "(A) First. (B) Second. (C) Third."
    top_right, bottom_left, top_left = (310.0, 20.0, 580.0, 190.0), (20.0, 210.0, 290.0, 380.0), (20.0, 20.0, 290.0, 190.0)
    parser = SetOfMarksPanelParser(lvlm(panel_answer([(top_right, "C", "photo"), (bottom_left, "A", "photo"),
                                                      (top_left, "B", "photo")])))
    parse = parser.parse(figure_image(), caption)
    assert [(p.id, p.label) for p in parse.panels] == [("p0", "A"), ("p1", "B"), ("p2", "C")]
    assert close(parse.panels[0].box, bottom_left) and close(parse.panels[2].box, top_right)


def test_extra_views_are_sent_when_the_full_view_misses_a_label(lvlm, diagnostics):
    def script(request):
        view = request.metadata["view"]
        if view.kind == "full":
            return {"panels": [{"bbox_2d": in_view(view, LEFT), "label": "A", "kind": "photo"}]}
        return panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "chart")])(request)

    parser = SetOfMarksPanelParser(lvlm(script))
    image = figure_image()
    parse = parser.parse(image, CAPTION_AB)
    expected = make_views(image, max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS, crops=2, scales=1, seed="0:600x400",
                          scale_range=(0.6, 0.9), crop_range=(0.55, 0.8))
    batches = backend_of(parser).batches
    assert [[r.metadata["view"] for r in b] for b in batches] == [[expected[0][0]], [v for v, _ in expected[1:]]]
    assert [v.kind for v, _ in expected[1:]] == ["scale", "crop", "crop"]
    assert diagnostics["lvlm.panels.extra_views"] == 3 and diagnostics["lvlm.panels.requests"] == 4
    assert [p.label for p in parse.panels] == ["A", "B"]
    assert close(parse.panels[0].box, LEFT) and close(parse.panels[1].box, RIGHT, 1.5)
    assert parse.panels[0].provenance.endswith("/4")


def test_always_sends_extra_views_and_never_sends_none(lvlm):
    script = panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "chart")])
    always = SetOfMarksPanelParser(lvlm(script), extra_views="always", crops=0, scales=1)
    always.parse(figure_image(), CAPTION_AB)
    assert [len(b) for b in backend_of(always).batches] == [1, 1]
    engine_module._ENGINES.clear()
    never = SetOfMarksPanelParser(lvlm(lambda r: {"panels": []}), extra_views="never")
    never.parse(figure_image(), CAPTION_AB)
    assert [len(b) for b in backend_of(never).batches] == [1]


def test_the_box_found_in_more_views_wins_its_label(lvlm):
    wrong = (20.0, 20.0, 140.0, 150.0)  # the full view's A: a corner of the true panel

    def script(request):
        view = request.metadata["view"]
        if view.kind == "full":
            return {"panels": [{"bbox_2d": in_view(view, wrong), "label": "A", "kind": "chart"}]}
        return panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "photo")])(request)

    parser = SetOfMarksPanelParser(lvlm(script), scales=2, crops=0)
    parse = parser.parse(figure_image(), CAPTION_AB)
    n_views = len(backend_of(parser).requests)
    assert n_views == 3
    assert [p.label for p in parse.panels] == ["A", "B"]
    a, b = parse.panels
    assert close(a.box, LEFT, 1.5) and a.kind == "photo"  # two views against one
    assert a.provenance == "lvlm_panels:votes=2/3" and a.score == round(2 / 3, 4)
    assert close(b.box, RIGHT, 1.5)


def test_a_merged_box_is_the_coordinate_wise_median_of_its_views(lvlm):
    x0, y0, x1, y1 = LEFT
    seen = {"full": (x0 + 10, y0, x1, y1 - 8), "scale1": (x0, y0 + 8, x1 + 10, y1),
            "scale2": (x0 - 10, y0 - 8, x1 - 10, y1 + 8)}

    def script(request):
        view = request.metadata["view"]
        return {"panels": [{"bbox_2d": in_view(view, seen[view.name]), "label": "A", "kind": "photo"},
                           {"bbox_2d": in_view(view, RIGHT), "label": "B", "kind": "photo"}]}

    parser = SetOfMarksPanelParser(lvlm(script), extra_views="always", scales=2, crops=0)
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [v.metadata["view"].name for v in backend_of(parser).requests] == ["full", "scale1", "scale2"]
    a, b = parse.panels
    assert a.provenance == "lvlm_panels:votes=3/3"
    assert close(a.box, LEFT, 1.5)  # a box none of the views gave on its own


def test_min_votes_drops_a_box_too_few_views_found(lvlm):
    def script(request):
        view = request.metadata["view"]
        found = [(LEFT, "A", "photo")] + ([(RIGHT, "B", "photo")] if view.kind == "full" else [])
        return panel_answer(found)(request)

    parser = SetOfMarksPanelParser(lvlm(script), extra_views="always", scales=2, crops=0, min_votes=2)
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [(p.label, p.provenance) for p in parse.panels] == [("A", "lvlm_panels:votes=3/3")]


def test_a_box_a_crop_view_cuts_is_ignored(lvlm, diagnostics):
    image = figure_image()
    views = make_views(image, max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS, crops=2, scales=0, seed="0:600x400",
                       scale_range=(0.6, 0.9), crop_range=(0.55, 0.8))
    assert [v.kind for v, _ in views] == ["full", "crop", "crop"]

    def script(request):
        view = request.metadata["view"]
        if view.kind == "full":
            return {"panels": [{"bbox_2d": in_view(view, LEFT), "label": "A", "kind": "photo"}]}
        # the crop shows part of a panel B running on beyond its edges
        return {"panels": [{"bbox_2d": [0, 0, view.size[0], view.size[1]], "label": "B", "kind": "photo"}]}

    parser = SetOfMarksPanelParser(lvlm(script), scales=0, crops=2)
    parse = parser.parse(image, CAPTION_AB)
    assert len(backend_of(parser).requests) == 3
    assert diagnostics["lvlm.panels.box.cut_by_view"] == 2
    assert [p.label for p in parse.panels] == ["A"] and close(parse.panels[0].box, LEFT)


def test_cut_by_only_counts_crop_edges_inside_the_figure():
    view = View("crop1", "crop", (100.0, 50.0, 400.0, 300.0), (300, 252), SIZE)
    assert not _cut_by((150.0, 100.0, 300.0, 200.0), view, SIZE)
    assert _cut_by((100.0, 100.0, 300.0, 200.0), view, SIZE)  # on the left edge
    assert _cut_by((150.0, 100.0, 399.0, 200.0), view, SIZE)  # within the 1 % margin of the right edge
    assert _cut_by((150.0, 100.0, 300.0, 300.0), view, SIZE)  # bottom
    corner = View("crop2", "crop", (0.0, 0.0, 300.0, 200.0), (308, 196), SIZE)
    assert not _cut_by((0.0, 0.0, 150.0, 150.0), corner, SIZE)  # the figure's own edges cut nothing
    assert _cut_by((0.0, 0.0, 300.0, 150.0), corner, SIZE)


def test_agrees_with_the_caption_labels():
    a = _Found((0.0, 0.0, 10.0, 10.0), "A", "photo", "full")
    b = _Found((20.0, 0.0, 30.0, 10.0), "(b)", "photo", "full")
    none = _Found((40.0, 0.0, 50.0, 10.0), None, "photo", "full")
    assert _agrees([a, b], ["A", "B"], ["ok"])
    assert _agrees([a, b], ["A", "B"], ["repaired"])
    assert not _agrees([a, b], ["A", "B"], ["empty"])
    assert not _agrees([a], ["A", "B"], ["ok"])  # a label missing
    assert not _agrees([a, b, none], ["A", "B"], ["ok"])  # an unlabelled box
    assert not _agrees([a, a, b], ["A", "B"], ["ok"])  # a label twice
    assert not _agrees([], [], ["ok"])  # no box
    assert _agrees([none], [], ["ok"])  # no caption labels: any box will do
    assert not _agrees([a, b], ["A", "B"], [])


def test_a_single_whole_image_box_gives_one_panel_covering_the_figure(lvlm, diagnostics):
    def script(request):
        w, h = request.metadata["view"].size
        return {"panels": [{"bbox_2d": [0, 0, w, h], "label": None, "kind": "photo"}]}

    parser = SetOfMarksPanelParser(lvlm(script))
    parse = parser.parse(figure_image(), "Kidney section of a mouse.")
    assert len(backend_of(parser).requests) == 1
    (panel,) = parse.panels
    assert panel.id == "p0" and panel.label is None and panel.kind == "photo"
    assert close(panel.box, (0.0, 0.0, 600.0, 400.0))
    assert "lvlm.panels.no_panels" not in diagnostics


def test_a_whole_image_box_beside_real_panels_is_dropped(lvlm, diagnostics):
    def script(request):
        w, h = request.metadata["view"].size
        return {"panels": [{"bbox_2d": [0, 0, w, h], "label": None, "kind": "photo"},
                           *panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "photo")])(request)["panels"]]}

    parser = SetOfMarksPanelParser(lvlm(script), extra_views="never")
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [p.label for p in parse.panels] == ["A", "B"]
    assert diagnostics["lvlm.panels.box.whole_image"] == 1


def test_no_box_at_all_gives_one_whole_figure_panel(lvlm, diagnostics):
    parser = SetOfMarksPanelParser(lvlm(lambda r: {"panels": []}))
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [len(b) for b in backend_of(parser).batches] == [1, 3]  # an empty answer disagrees with the caption
    assert diagnostics["lvlm.panels.no_panels"] == 1
    (panel,) = parse.panels
    assert (panel.id, panel.box, panel.label, panel.provenance) == ("p0", (0.0, 0.0, 600.0, 400.0), None,
                                                                     "lvlm_panels:no_panels")


def test_unusable_answers_reject_the_figure_after_a_larger_retry(lvlm, diagnostics):
    parser = SetOfMarksPanelParser(lvlm(lambda r: "I cannot help with that."), extra_views="never")
    with pytest.raises(Reject) as caught:
        parser.parse(figure_image(), CAPTION_AB)
    assert caught.value.reason == "lvlm_unusable_answer"
    assert [[r.max_tokens for r in b] for b in backend_of(parser).batches] == [[1024], [2048]]
    assert diagnostics["lvlm.panels.retried"] == 1 and diagnostics["lvlm.panels.status.unparseable"] == 1


def test_unusable_answers_of_every_view_reject_the_figure(lvlm):
    parser = SetOfMarksPanelParser(lvlm(lambda r: "I cannot help with that."), max_tokens=300)
    with pytest.raises(Reject, match="lvlm_unusable_answer"):
        parser.parse(figure_image(), CAPTION_AB)
    budgets = [r.max_tokens for r in backend_of(parser).requests]
    assert budgets == [300, 600, 300, 300, 300, 600, 600, 600]  # full view, its retry, three views, their retries


def test_one_usable_view_saves_the_figure(lvlm):
    def script(request):
        if request.metadata["view"].kind == "full":
            return "I cannot help with that."
        return panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "photo")])(request)

    parser = SetOfMarksPanelParser(lvlm(script), scales=1, crops=0)
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [(p.label, p.provenance) for p in parse.panels] == [("A", "lvlm_panels:votes=1/2"),
                                                               ("B", "lvlm_panels:votes=1/2")]


def test_a_cut_off_answer_is_retried_and_the_retry_counted(lvlm, diagnostics):
    good = panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "photo")])

    def script(request):
        return (good(request), "stop") if request.max_tokens > 1024 else ('{"panels": [{"bbox_2d": [1, 2', "length")

    parser = SetOfMarksPanelParser(lvlm(script))
    parse = parser.parse(figure_image(), CAPTION_AB)
    assert [p.label for p in parse.panels] == ["A", "B"]
    assert diagnostics["lvlm.panels.retried"] == 1 and diagnostics["lvlm.panels.requests"] == 1


# --- the marker detector -------------------------------------------------------------------------------------------

P0, P1 = Panel("p0", (0.0, 0.0, 300.0, 400.0), label="A"), Panel("p1", (300.0, 0.0, 600.0, 400.0), label="B")
RIGHT_ARROW, RIGHT_TIP = (60.0, 200.0, 140.0, 220.0), (140.0, 210.0)
UP_ARROW, UP_TIP = (400.0, 100.0, 420.0, 180.0), (410.0, 100.0)


def marker_script(per_panel: dict[str, list[tuple[Any, str, Any]]], raw: dict[str, Any] | None = None):
    """Each panel crop answers its ``(figure box, kind, figure tip or None)`` marks in view pixels."""

    def script(request):
        view = request.metadata["view"]
        if raw and view.name in raw:
            return raw[view.name]
        out = []
        for box, kind, tip in per_panel.get(view.name, []):
            vtip = None if tip is None else [round(v) for v in view.to_view((*tip, *tip))[:2]]
            out.append({"bbox_2d": in_view(view, box), "kind": kind, "tip": vtip})
        return {"markers": out}

    return script


def test_markers_of_all_panels_in_one_backend_call(lvlm, diagnostics):
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": [(RIGHT_ARROW, "arrow", RIGHT_TIP)],
                                                       "p1": [(UP_ARROW, "arrowhead", UP_TIP)]})))
    image = figure_image()
    markers = detector.detect(image, [P0, P1])
    (batch,) = backend_of(detector).batches
    assert [r.metadata["view"].name for r in batch] == ["p0", "p1"]
    assert [r.metadata["task"] for r in batch] == ["markers", "markers"]
    view = batch[1].metadata["view"]
    assert view.crop == P1.box and view.size == (308, 392) and batch[1].image.size == view.size
    assert [(m.panel_id, m.kind, m.id) for m in markers] == [("p0", "arrow", ""), ("p1", "arrowhead", "")]
    right, up = markers
    assert close(right.box, RIGHT_ARROW) and close(up.box, UP_ARROW)
    assert close(right.tip, RIGHT_TIP) and close(up.tip, UP_TIP)
    assert angle_between(right.direction, 0.0) < 2.5 and angle_between(up.direction, 90.0) < 2.5
    assert diagnostics["lvlm.markers.requests"] == 2


def test_arrow_directions_left_and_down(lvlm):
    left = ((150.0, 100.0, 250.0, 120.0), "arrow", (150.0, 110.0))
    down = ((100.0, 250.0, 120.0, 350.0), "arrow", (110.0, 350.0))
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": [left, down]})))
    markers = detector.detect(figure_image(), [P0])
    assert angle_between(markers[0].direction, 180.0) < 2.5 and angle_between(markers[1].direction, 270.0) < 2.5


def test_a_tip_outside_its_panel_is_clipped_to_it(lvlm):
    def raw(request):
        view = request.metadata["view"]
        return {"markers": [{"bbox_2d": in_view(view, (250.0, 300.0, 290.0, 320.0)), "kind": "arrow",
                             "tip": [view.size[0] + 20, -15]}]}

    detector = LVLMMarkerDetector(lvlm(raw))
    (marker,) = detector.detect(figure_image(), [P0])
    assert marker.tip == (300.0, 0.0)


def test_marker_kinds_synonyms_and_typed_non_pointers(lvlm, diagnostics):
    marks = [((50.0, 50.0, 70.0, 70.0), "Star", (60.0, 60.0)), ((100.0, 60.0, 160.0, 110.0), "ellipse", None),
             ((20.0, 300.0, 60.0, 330.0), "rectangle", None), ((200.0, 150.0, 230.0, 170.0), "blob", None),
             ((180.0, 330.0, 200.0, 350.0), "band_marker", None), ((120.0, 250.0, 180.0, 270.0), "connector", None),
             ((220.0, 40.0, 240.0, 60.0), "triangle", (220.0, 60.0))]
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": marks})))
    markers = detector.detect(figure_image(), [P0])
    assert [m.kind for m in markers] == ["asterisk", "circle", "box", "band_marker", "connector", "arrowhead"]
    assert [m.tip is None for m in markers] == [True, True, True, True, True, False]
    assert [m.direction is None for m in markers] == [True, True, True, True, True, False]
    assert close(markers[3].box, (180.0, 330.0, 200.0, 350.0))
    assert diagnostics["lvlm.markers.unknown_kind"] == 1


def test_a_mark_without_a_kind_or_too_small_is_dropped(lvlm, diagnostics):
    raw = {"p0": {"markers": [{"bbox_2d": [10, 10, 60, 60], "tip": None},
                              {"bbox_2d": [100, 100, 101, 101], "kind": "box", "tip": None},
                              {"bbox_2d": [120, 120, 160, 160], "kind": "box", "tip": None}]}}
    detector = LVLMMarkerDetector(lvlm(marker_script({}, raw)))
    markers = detector.detect(figure_image(), [P0])
    assert [m.kind for m in markers] == ["box"]
    assert diagnostics["lvlm.markers.box.missing_label"] == 1 and diagnostics["lvlm.markers.box.too_small"] == 1


def test_an_unusable_marker_answer_rejects_by_default(lvlm):
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": [(RIGHT_ARROW, "arrow", RIGHT_TIP)]},
                                                      {"p1": "No marks here, sorry."})))
    with pytest.raises(Reject) as caught:
        detector.detect(figure_image(), [P0, P1])
    assert caught.value.reason == "lvlm_unusable_answer" and "p1" in caught.value.detail


def test_skip_leaves_the_panel_without_markers(lvlm, diagnostics):
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": [(RIGHT_ARROW, "arrow", RIGHT_TIP)],
                                                       "p1": [(UP_ARROW, "arrow", UP_TIP)]},
                                                      {"p1": "No marks here, sorry."})), on_unusable="skip")
    markers = detector.detect(figure_image(), [P0, P1])
    assert [(m.panel_id, m.kind) for m in markers] == [("p0", "arrow")]
    assert diagnostics["lvlm.markers.skipped_panels"] == 1
    assert [[r.metadata["view"].name for r in b] for b in backend_of(detector).batches] == [["p0", "p1"], ["p1"]]


def test_a_panel_that_cannot_be_sent_is_counted_and_skipped(lvlm, diagnostics):
    thin = Panel("p2", (0.0, 0.0, 600.0, 2.0))
    detector = LVLMMarkerDetector(lvlm(marker_script({"p0": [(RIGHT_ARROW, "arrow", RIGHT_TIP)]})))
    markers = detector.detect(figure_image(), [thin, P0])
    assert [m.panel_id for m in markers] == ["p0"]
    assert diagnostics["lvlm.markers.unsendable_panels"] == 1
    assert [r.metadata["view"].name for r in backend_of(detector).requests] == ["p0"]


# --- the caption splitter ------------------------------------------------------------------------------------------

CAPTION = ("Mouse kidney. (A) Tubules at day 3; arrows mark nuclei. (B) Glomeruli at day 7. Scale bars, 50 um. "
           "Source data are available online for this figure.")


def units_script(assignment: list[list[str]] | Callable[[list[str]], Any]):
    def script(request):
        units = request.metadata["units"]
        if callable(assignment):
            return assignment(units)
        return {"units": [{"unit": i, "labels": labs} for i, labs in enumerate(assignment)]}

    return script


def test_caption_units():
    caption = "Title. (A) Cells at day 3. (B) Cells at day 7 (arrows). Source data are available online for this figure."
    assert [caption[s:e] for s, e in caption_units(caption)] == [
        "Title.", "(A) Cells at day 3.", "(B) Cells at day 7 (arrows).",
        "Source data are available online for this figure."]
    inline = "Cells at day 3 (A) and day 7 (B). Scale bar, 10 um."
    assert [inline[s:e] for s, e in caption_units(inline)] == ["Cells at day 3 (A) and day 7 (B).", "Scale bar, 10 um."]
    semi = "Mouse kidney: A, tubules; B, glomeruli."
    spans = caption_units(semi)
    assert all(semi[s:e] == semi[s:e].strip() for s, e in spans)
    assert " ".join(semi[s:e] for s, e in spans).split() == semi.split()  # the units cover the caption
    assert caption_units("") == [] and caption_units("   ") == []


def test_units_assigned_by_the_model_become_segments(lvlm, diagnostics):
    splitter = LVLMCaptionSplitter(lvlm(units_script([[], ["A"], ["B"], [], []])))
    split = splitter.split(CAPTION, ["A", "B"])
    (request,) = backend_of(splitter).requests
    assert request.image is None and request.metadata["task"] == "splitter" and request.metadata["caption"] == CAPTION
    assert request.metadata["units"] == ["Mouse kidney.", "(A) Tubules at day 3; arrows mark nuclei.",
                                         "(B) Glomeruli at day 7.", "Scale bars, 50 um.",
                                         "Source data are available online for this figure."]
    assert "4: Source data" in request.prompt and "A, B" in request.prompt
    assert split.preamble == "Mouse kidney."
    assert split.segments == {"A": "Tubules at day 3; arrows mark nuclei.", "B": "Glomeruli at day 7."}
    assert split.shared == "Scale bars, 50 um."  # the source-data note belongs to no panel
    assert split.clauses == LabelCaptionSplitter().split(CAPTION, ["A", "B"]).clauses
    assert [(c.kind, c.labels) for c in split.clauses] == [("arrow", ["A"])]
    assert split.subcaption("B") == "Mouse kidney. Glomeruli at day 7. Scale bars, 50 um."
    assert not any(k.startswith("lvlm.splitter.fallback") for k in diagnostics)
    assert diagnostics["lvlm.splitter.requests"] == 1


def test_a_unit_of_two_labels_goes_to_both_and_labels_are_normalised(lvlm):
    splitter = LVLMCaptionSplitter(lvlm(units_script([[], ["(a)"], ["A", "b", "B"], [], []])))
    split = splitter.split(CAPTION, ["A", "B"])
    assert split.segments == {"A": "Tubules at day 3; arrows mark nuclei. Glomeruli at day 7.",
                              "B": "Glomeruli at day 7."}


def test_labels_come_from_the_caption_when_the_parser_read_none(lvlm):
    splitter = LVLMCaptionSplitter(lvlm(units_script([[], ["A"], ["B"], ["A"], []])))
    split = splitter.split(CAPTION, None)
    assert "figure: A, B." in backend_of(splitter).requests[0].prompt
    assert split.segments == {"A": "Tubules at day 3; arrows mark nuclei. Scale bars, 50 um.",
                              "B": "Glomeruli at day 7."}
    assert split.shared == ""


def test_later_unlabelled_units_are_shared_and_earlier_ones_preamble(lvlm):
    caption = "Kidney. Sections of mice. (A) Tubules. Counts are means. (B) Glomeruli."
    units = [caption[s:e] for s, e in caption_units(caption)]
    assert units == ["Kidney.", "Sections of mice.", "(A) Tubules.", "Counts are means.", "(B) Glomeruli."]
    splitter = LVLMCaptionSplitter(lvlm(units_script([[], [], ["A"], [], ["B"]])))
    split = splitter.split(caption, ["A", "B"])
    assert split.preamble == "Kidney. Sections of mice."
    assert split.shared == "Counts are means."
    assert split.segments == {"A": "Tubules.", "B": "Glomeruli."}


def test_unknown_labels_and_bad_units_are_counted_and_ignored(lvlm, diagnostics):
    def answer(units):
        return {"units": [{"unit": 1, "labels": ["A", "Z"]}, {"unit": 2, "labels": "B"}, {"unit": 99, "labels": ["A"]},
                          {"unit": -1, "labels": ["B"]}, {"unit": "3", "labels": ["A"]}, {"unit": True, "labels": ["B"]},
                          {"labels": ["A"]}, "unit 4"]}

    splitter = LVLMCaptionSplitter(lvlm(units_script(answer)))
    split = splitter.split(CAPTION, ["A", "B"])
    assert split.segments == {"A": "Tubules at day 3; arrows mark nuclei.", "B": "Glomeruli at day 7."}
    assert split.shared == "Scale bars, 50 um." and split.preamble == "Mouse kidney."
    assert diagnostics["lvlm.splitter.unknown_label"] == 1
    assert diagnostics["lvlm.splitter.bad_unit"] == 6


@pytest.mark.parametrize("reply, why", [("I would rather not.", "unparseable"), ("", "empty"),
                                        ({"units": [{"unit": i, "labels": []} for i in range(5)]}, "no_assignment"),
                                        ({"units": [{"unit": 0, "labels": ["Q"]}]}, "no_assignment")])
def test_fallback_to_the_rules(lvlm, diagnostics, reply, why):
    splitter = LVLMCaptionSplitter(lvlm(lambda r: reply))
    split = splitter.split(CAPTION, ["A", "B"])
    assert split == LabelCaptionSplitter().split(CAPTION, ["A", "B"])
    assert diagnostics[f"lvlm.splitter.fallback.{why}"] == 1
    assert sum(v for k, v in diagnostics.items() if k.startswith("lvlm.splitter.fallback.")) == 1
    assert len(backend_of(splitter).requests) == (2 if why == "unparseable" else 1)  # one retry of an unparseable one


@pytest.mark.parametrize("caption, labels", [("Kidney section of a mouse at day 3.", None),
                                             ("Kidney section of a mouse at day 3.", ["A"]),
                                             (CAPTION, ["A", " "])])
def test_fewer_than_two_labels_ask_nothing(lvlm, diagnostics, caption, labels):
    splitter = LVLMCaptionSplitter(lvlm(units_script([["A"]] * 5)))
    split = splitter.split(caption, labels)
    assert split == LabelCaptionSplitter().split(caption, labels)
    assert diagnostics["lvlm.splitter.fallback.too_few_labels"] == 1
    assert backend_of(splitter).batches == [] and "lvlm.splitter.requests" not in diagnostics


def test_shared_by_length_reaches_the_rules(lvlm):
    splitter = LVLMCaptionSplitter(lvlm(units_script([])), shared_by_length=True)
    assert splitter.rules.split(CAPTION, None) == LabelCaptionSplitter(shared_by_length=True).split(CAPTION, None)


def test_assign_delegates_to_the_rules_with_labels_and_positions(lvlm):
    splitter = LVLMCaptionSplitter(lvlm(units_script([[], ["A"], ["B"], [], []])))
    split = splitter.split(CAPTION, ["A", "B"])
    figure = Figure(id="f", width=600, height=400, caption=CAPTION,
                    panels=[Panel("p0", P0.box, label="B"), Panel("p1", P1.box, label="A"), Panel("p2", P1.box)])
    assert splitter.assign(split, figure) == {"p0": "B", "p1": "A"}

    caption = "Kidney sections. Left, cells at day 3. Right, cells at day 7."
    engine_module._ENGINES.clear()
    positions = LVLMCaptionSplitter(lvlm(units_script([[], ["left"], ["right"]])))
    split = positions.split(caption, None)
    assert "figure: left, right." in backend_of(positions).requests[0].prompt
    assert set(split.segments) == {"left", "right"} and split.preamble == "Kidney sections."
    assert "day 3" in split.segments["left"] and "day 7" in split.segments["right"]
    figure = Figure(id="f", width=600, height=400, caption=caption, panels=[Panel("p0", P1.box), Panel("p1", P0.box)])
    assert positions.assign(split, figure) == {"p1": "left", "p0": "right"}
    assert positions.assign(split, figure) == LabelCaptionSplitter().assign(split, figure)


# --- the grounding stage -------------------------------------------------------------------------------------------


def grounding_figure() -> Figure:
    """Panel A with an arrow (and its marker region, as region mining gives it), panel B with a band marker only
    and a region of its own, panel C with an arrow but no sub-caption."""
    panels = [Panel("p0", P0.box, label="A", subcaption="Tubules at day 3; arrows mark nuclei."),
              Panel("p1", (300.0, 0.0, 600.0, 200.0), label="B", subcaption="Blot; triangles mark bands."),
              Panel("p2", (300.0, 200.0, 600.0, 400.0), label="C")]
    markers = [Marker("m0", "arrow", RIGHT_ARROW, panel_id="p0", tip=RIGHT_TIP, direction=0.0),
               Marker("m1", "band_marker", (320.0, 50.0, 340.0, 70.0), panel_id="p1"),
               Marker("m2", "arrow", (400.0, 300.0, 440.0, 310.0), panel_id="p2", tip=(440.0, 305.0), direction=0.0)]
    figure = Figure(id="f", width=600, height=400, caption=CAPTION_AB, panels=panels, markers=markers)
    split = CaptionSplit(caption=CAPTION_AB, clauses=[MarkerClause("arrow", "arrows mark nuclei.", ["A"])])
    figure.regions = MarkerRegionMiner().mine(figure, split, [])
    assert [(r.panel_id, r.marker_ids, r.texts, r.provenance) for r in figure.regions] == [
        ("p0", ["m0"], ["arrows mark nuclei."], "marker:arrow")]
    figure.regions.append(Region("r1", "p1", (310.0, 40.0, 360.0, 80.0), texts=["a band"], provenance="manual"))
    return figure


NEAR = (60.0, 195.0, 115.0, 235.0)  # centre 33 px from the arrow's: 0.07 of the panel diagonal
FAR = (20.0, 20.0, 80.0, 80.0)  # 0.35 of the diagonal away


def grounding_script(proposals: list[tuple[Any, str]] | str):
    def script(request):
        if isinstance(proposals, str):
            return proposals
        view = request.metadata["view"]
        return {"regions": [{"bbox_2d": in_view(view, box), "phrase": phrase} for box, phrase in proposals]}

    return script


def test_a_proposal_near_the_marker_is_kept_and_a_far_one_gated_out(lvlm, diagnostics):
    figure = grounding_figure()
    marker_region = figure.regions[0].box
    grounder = LVLMRegionGrounder(lvlm(grounding_script([(NEAR, "the nuclei"), (FAR, "the capsule")])))
    out = grounder.process(figure, figure_image())
    (request,) = backend_of(grounder).requests  # only panel A is asked
    assert request.metadata["view"].name == "p0" and request.metadata["task"] == "grounding"
    assert "panel A" in request.prompt and "arrows mark nuclei" in request.prompt
    assert [(r.id, r.panel_id, r.provenance) for r in out.regions] == [
        ("r0", "p1", "manual"), ("r1", "p0", "lvlm_grounding"), ("r2", "p0", "marker:arrow")]
    untouched, kept, marked = out.regions
    assert (untouched.box, untouched.texts) == ((310.0, 40.0, 360.0, 80.0), ["a band"])
    assert close(kept.box, NEAR) and kept.marker_ids == ["m0"] and kept.score == 0.9
    assert kept.texts == ["the nuclei", "arrows mark nuclei."]
    assert marked.box == marker_region and marked.marker_ids == ["m0"]  # supported: not dilated
    assert diagnostics["lvlm.grounding.proposals"] == 2 and diagnostics["lvlm.grounding.kept"] == 1


def test_a_marker_region_without_a_nearby_proposal_is_dilated(lvlm, diagnostics):
    figure = grounding_figure()
    marker_region = figure.regions[0].box
    grounder = LVLMRegionGrounder(lvlm(grounding_script([(FAR, "the capsule")])), dilation=1.5)
    out = grounder.process(figure, figure_image())
    assert [(r.id, r.panel_id, r.provenance) for r in out.regions] == [("r0", "p1", "manual"),
                                                                       ("r1", "p0", "marker:arrow+dilated")]
    assert out.regions[1].box == box_clip(box_dilate(marker_region, 1.5), P0.box)
    assert out.regions[1].texts == ["arrows mark nuclei."]
    assert diagnostics["lvlm.grounding.kept"] == 0


def test_no_pointing_marker_no_request(lvlm, diagnostics):
    figure = grounding_figure()
    figure.markers = [m for m in figure.markers if m.kind == "band_marker"]
    figure.regions = [r for r in figure.regions if r.panel_id == "p1"]
    before = [dataclass_tuple(r) for r in figure.regions]
    grounder = LVLMRegionGrounder(lvlm(grounding_script([(NEAR, "the nuclei")])))
    out = grounder.process(figure, figure_image())
    assert backend_of(grounder).batches == []
    assert [dataclass_tuple(r) for r in out.regions] == before


def test_an_unusable_grounding_answer_keeps_the_regions_or_rejects(lvlm, diagnostics):
    figure = grounding_figure()
    before = [dataclass_tuple(r) for r in figure.regions]
    grounder = LVLMRegionGrounder(lvlm(grounding_script("Nothing to box.")))
    out = grounder.process(figure, figure_image())
    assert [dataclass_tuple(r) for r in out.regions] == before
    assert diagnostics["lvlm.grounding.skipped"] == 1
    engine_module._ENGINES.clear()
    strict = LVLMRegionGrounder(lvlm(grounding_script("Nothing to box.")), on_unusable="reject")
    with pytest.raises(Reject, match="lvlm_unusable_answer"):
        strict.process(grounding_figure(), figure_image())


def test_a_proposal_without_a_phrase_is_dropped(lvlm, diagnostics):
    def script(request):
        view = request.metadata["view"]
        return {"regions": [{"bbox_2d": in_view(view, NEAR)}]}

    figure = grounding_figure()
    out = LVLMRegionGrounder(lvlm(script)).process(figure, figure_image())
    assert [r.provenance for r in out.regions] == ["manual", "marker:arrow+dilated"]
    assert diagnostics["lvlm.grounding.box.missing_label"] == 1


def dataclass_tuple(region: Region) -> tuple:
    return (region.id, region.panel_id, region.box, tuple(region.marker_ids), tuple(region.texts), region.provenance)


# --- the describer -------------------------------------------------------------------------------------------------

LONG = " ".join(f"word{i}" for i in range(50))


def describer_figure() -> Figure:
    panels = [Panel("p0", P0.box, label="A", subcaption="Tubules at day 3."), Panel("p1", P1.box)]
    regions = [Region("r0", "p0", (60.0, 190.0, 140.0, 240.0), marker_ids=["m0"], texts=["arrows mark nuclei."])]
    markers = [Marker("m0", "arrow", RIGHT_ARROW, panel_id="p0", tip=RIGHT_TIP)]
    return Figure(id="f", width=600, height=400, caption=CAPTION_AB, panels=panels, markers=markers, regions=regions)


def describer_script(texts: dict[str, Any]):
    def script(request):
        reply = texts[request.metadata["view"].name]
        return reply if isinstance(reply, str) else {"description": reply[0]}

    return script


def test_descriptions_of_panels_and_regions(lvlm, diagnostics):
    describer = LVLMDescriber(lvlm(describer_script({"p0": ("Confocal image  of tubules.",), "p1": (LONG,),
                                                     "p0/r0": ("",)})), group="crop")
    figure = describer.process(describer_figure(), figure_image())
    (batch,) = backend_of(describer).batches
    assert [r.metadata["view"].name for r in batch] == ["p0", "p1", "p0/r0"]
    assert [r.metadata["task"] for r in batch] == ["descriptions"] * 3
    assert batch[2].metadata["view"].crop == (60.0, 190.0, 140.0, 240.0)
    assert "panel A" in batch[0].prompt and "Tubules at day 3." in batch[0].prompt
    assert "arrows mark nuclei." in batch[2].prompt
    assert figure.panels[0].description == "Confocal image of tubules."
    assert figure.panels[1].description == " ".join(f"word{i}" for i in range(40))
    assert figure.regions[0].description is None
    assert diagnostics["lvlm.descriptions.shortened"] == 1 and diagnostics["lvlm.descriptions.skipped"] == 1


def test_descriptions_of_panels_only_and_a_word_limit(lvlm, diagnostics):
    describer = LVLMDescriber(lvlm(describer_script({"p0": ("one two three four",), "p1": ("five six",)})),
                              regions=False, max_words=3, group="crop")
    figure = describer.process(describer_figure(), figure_image())
    assert [r.metadata["view"].name for r in backend_of(describer).requests] == ["p0", "p1"]
    assert [p.description for p in figure.panels] == ["one two three", "five six"]
    assert diagnostics["lvlm.descriptions.shortened"] == 1


def test_an_unusable_description_is_skipped_or_rejects(lvlm, diagnostics):
    texts = {"p0": ("Tubules.",), "p1": "I see a picture.", "p0/r0": ("Nuclei.",)}
    describer = LVLMDescriber(lvlm(describer_script(texts)), group="crop")
    figure = describer.process(describer_figure(), figure_image())
    assert [figure.panels[0].description, figure.panels[1].description, figure.regions[0].description] == [
        "Tubules.", None, "Nuclei."]
    assert diagnostics["lvlm.descriptions.skipped"] == 1
    engine_module._ENGINES.clear()
    strict = LVLMDescriber(lvlm(describer_script(texts)), on_unusable="reject", group="crop")
    with pytest.raises(Reject) as caught:
        strict.process(describer_figure(), figure_image())
    assert caught.value.reason == "lvlm_unusable_answer" and "p1" in caught.value.detail
    engine_module._ENGINES.clear()
    empty = LVLMDescriber(lvlm(describer_script({**texts, "p1": ("  ",)})), on_unusable="reject", group="crop")
    with pytest.raises(Reject, match="empty"):
        empty.process(describer_figure(), figure_image())


def test_one_request_per_panel_describes_the_panel_and_its_numbered_regions(lvlm, diagnostics):
    """The default: each panel crop with its regions as numbered boxes in the crop's pixels, one answer for all."""
    answers = {"p0": {"description": "Tubules  in cortex.", "regions": [{"region": 0, "description": "A nucleus."},
                                                                         {"region": 7, "description": "stray"},
                                                                         {"region": [0], "description": "odd key"},
                                                                         {"region": False, "description": "a flag"}]},
               "p1": "not JSON at all"}
    describer = LVLMDescriber(lvlm(lambda request: answers[request.metadata["view"].name]))
    figure = describer.process(describer_figure(), figure_image())
    batch, retry = backend_of(describer).batches  # the unparseable answer is asked again, with a larger budget
    assert [r.metadata["view"].name for r in batch] == ["p0", "p1"] and [r.metadata["view"].name for r in retry] == ["p1"]
    view, region = batch[0].metadata["view"], figure.regions[0]
    assert f"0: {[round(v) for v in view.to_view(region.box)]}" in batch[0].prompt and "arrows mark nuclei." in batch[0].prompt
    assert batch[0].metadata["regions"] == [region.box] and batch[1].metadata["regions"] == []
    assert batch[0].max_tokens == 2 * batch[1].max_tokens  # room for the region's sentence
    assert figure.panels[0].description == "Tubules in cortex." and region.description == "A nucleus."
    assert figure.panels[1].description is None and diagnostics["lvlm.descriptions.skipped"] == 1
    assert diagnostics["lvlm.descriptions.unknown_region"] == 1  # region 7 of a panel with one region


# --- the shared engine and its cache -------------------------------------------------------------------------------


def test_a_second_run_is_answered_from_the_cache(lvlm, diagnostics, tmp_path):
    settings = lvlm(panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "chart")]), cache=True)
    image = figure_image()
    first = SetOfMarksPanelParser(settings)
    parse = first.parse(image, CAPTION_AB)
    assert len(backend_of(first).requests) == 1 and diagnostics["lvlm.panels.cache_hits"] == 0
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 1
    again = SetOfMarksPanelParser(settings)
    assert again.engine is first.engine  # one engine per settings and process
    assert again.parse(image, CAPTION_AB) == parse
    assert len(backend_of(first).requests) == 1
    assert diagnostics["lvlm.panels.cache_hits"] == 1 and diagnostics["lvlm.panels.requests"] == 2
    engine_module._ENGINES.clear()  # a new process: the cache file is read again
    fresh = SetOfMarksPanelParser(settings)
    assert fresh.engine is not first.engine
    assert fresh.parse(image, CAPTION_AB) == parse
    assert backend_of(fresh).batches == []
    assert diagnostics["lvlm.panels.cache_hits"] == 2


def test_components_of_equal_settings_share_one_engine(lvlm):
    settings = lvlm(lambda r: {"panels": []})
    parser, detector = SetOfMarksPanelParser(settings), LVLMMarkerDetector(dict(settings))
    assert parser.engine is detector.engine and shared_engine(settings) is parser.engine
    other = shared_engine({**settings, "temperature": 0.5})
    assert other is not parser.engine and other.settings.temperature == 0.5
    request = other.request("hi", task="x")
    assert (request.model, request.temperature, request.expect, request.metadata) == ("m", 0.5, "any", {"task": "x"})


def test_ask_counts_under_the_component(lvlm, diagnostics):
    engine = shared_engine(lvlm(lambda r: '{"a": 1}' if r.prompt == "json" else "prose"))
    answers = engine.ask([engine.request("json"), engine.request("prose", expect=None)], "probe")
    assert [a.text for a in answers] == ['{"a": 1}', "prose"] and answers[0].status == "ok"
    assert answers[1].status is None
    assert {k: v for k, v in diagnostics.items() if k.startswith("lvlm.probe.")} == {
        "lvlm.probe.requests": 2, "lvlm.probe.tokens_in": 20, "lvlm.probe.tokens_out": 10,
        "lvlm.probe.tokens_image": 8, "lvlm.probe.status.ok": 1}
    assert engine.ask([], "probe") == []
    result = parsed(Answer("```json\n[{'a': 1}]\n```"), "probe")
    assert result.value == [{"a": 1}] and diagnostics["lvlm.probe.repair.python_literal"] == 1
    assert "lvlm.probe.repair.fenced" not in diagnostics


def test_settings_are_checked(lvlm):
    settings = lvlm(lambda r: "")
    with pytest.raises(RecipeError, match="model"):
        shared_engine({**settings, "model": ""})
    with pytest.raises(RecipeError, match="max_pixels"):
        shared_engine({**settings, "min_pixels": 10_000, "max_pixels": 5_000})
    with pytest.raises(RecipeError, match="retry_factor"):
        shared_engine({**settings, "retry_factor": 1.0})
    with pytest.raises(RecipeError, match="colour"):
        shared_engine({**settings, "colour": "blue"})
    with pytest.raises(LVLMError, match="mapping"):
        shared_engine("Qwen/Qwen2.5-VL-7B-Instruct")
    assert isinstance(shared_engine(EngineSettings(**{**settings, "max_pixels": 100_000})), Engine)


# --- backends ------------------------------------------------------------------------------------------------------


def test_a_third_party_backend_is_selected_by_name(lvlm):
    settings = lvlm(lambda r: "")
    engine = shared_engine(settings)
    assert type(engine.backend) is ScriptedBackend
    assert registry("lvlm_backends").get("scripted").owner == "scripted-lvlm-backends"
    with_model = shared_engine({**settings, "backend": "with_model", "model": "org/vl-7b"})
    assert (with_model.backend.model, with_model.backend.device) == ("org/vl-7b", "cpu")
    given = shared_engine({**settings, "backend": "with_model", "backends": {"with_model": {"model": "served",
                                                                                           "device": "cuda"}}})
    assert (given.backend.model, given.backend.device) == ("served", "cuda")
    parser = build("figure_parsers", "lvlm_panels", {"engine": {**settings, "backend": "with_model"}})
    assert [p.provenance for p in parser.parse(figure_image(), None).panels] == ["lvlm_panels:no_panels"]


def test_an_unknown_backend_names_the_available_ones(lvlm):
    settings = lvlm(lambda r: "")
    with pytest.raises(Panel2PatchError) as caught:
        shared_engine({**settings, "backend": "qwen-local"})
    assert isinstance(caught.value, (RecipeError, UnknownComponentError))
    message = str(caught.value)
    assert "qwen-local" in message
    for name in ("vllm", "openai", "transformers", "recorded", "reference", "scripted"):
        assert name in message
    with pytest.raises(Panel2PatchError, match="available: .*scripted"):
        build("figure_parsers", "lvlm_panels", {"engine": {**settings, "backend": "qwen-local"}})


def test_wrong_backend_arguments_are_clear_errors(lvlm):
    settings = lvlm(lambda r: "")
    with pytest.raises(RecipeError, match=r"lvlm_backends 'scripted' takes no argument 'temperture'; it accepts: script"):
        shared_engine({**settings, "backends": {"scripted": {"script": "script0", "temperture": 0}}})
    with pytest.raises(RecipeError, match=r"'script' expects str, got int 3"):
        shared_engine({**settings, "backends": {"scripted": {"script": 3}}})
    with pytest.raises(RecipeError, match="missing a required argument: 'script'"):
        shared_engine({**settings, "backends": {}})
    with pytest.raises(RecipeError, match="no script named 'nope'"):  # a value the factory refuses
        shared_engine({**settings, "backends": {"scripted": {"script": "nope"}}})
    with pytest.raises(RecipeError, match="missing a required argument: 'annotations'"):
        shared_engine({**settings, "backend": "reference"})
    with pytest.raises(LVLMError, match="no such file"):
        shared_engine({**settings, "backend": "recorded", "backends": {"recorded": {"path": "/nonexistent/a.jsonl"}}})


def test_the_recorded_backend_replays_a_cache(lvlm, tmp_path):
    settings = lvlm(panel_answer([(LEFT, "A", "photo"), (RIGHT, "B", "chart")]), cache=True)
    image = figure_image()
    parse = SetOfMarksPanelParser(settings).parse(image, CAPTION_AB)
    engine_module._ENGINES.clear()
    replay = {**settings, "backend": "recorded", "cache": None,
              "backends": {"recorded": {"path": str(tmp_path / "answers.jsonl")}}}
    assert SetOfMarksPanelParser(replay).parse(image, CAPTION_AB) == parse
    with pytest.raises(LVLMError, match="no recorded answer"):
        SetOfMarksPanelParser(replay).parse(figure_image((640, 400)), CAPTION_AB)


# --- recipes and registries ----------------------------------------------------------------------------------------


def shipped_lvlm_recipes() -> list[str]:
    return sorted(name for name in config.shipped() if name.startswith("lvlm_"))


def test_the_lvlm_demo_recipe_is_shipped():
    assert "lvlm_demo" in shipped_lvlm_recipes()


@pytest.mark.parametrize("name", shipped_lvlm_recipes())
def test_shipped_lvlm_recipes_validate(name, capsys):
    recipe = config.load(name)
    checked = config.validate(recipe)
    by_key = {key: (kind, comp) for key, kind, comp in checked}
    lvlm_components = {comp for _, comp in by_key.values() if comp.startswith("lvlm_")}
    assert lvlm_components, f"{name} uses no LVLM component"
    settings = config.settings(recipe, "lvlm")
    assert isinstance(settings, EngineSettings) and settings.model
    assert settings.backend in registry("lvlm_backends").names()
    if name == "lvlm_demo":
        assert by_key["mine.parser"] == ("figure_parsers", "lvlm_panels")
        assert by_key["mine.markers"] == ("marker_detectors", "lvlm_markers")
        assert by_key["mine.splitter"] == ("caption_splitters", "lvlm_splitter")
        assert by_key["mine.grounding"] == ("region_grounders", "lvlm_grounding")
        assert by_key["mine.descriptions"] == ("describers", "lvlm_descriptions")
        assert settings.backend == "reference" and settings.cache == "out/lvlm_demo/answers.jsonl"
        assert recipe.config["mine"]["parser"]["args"]["engine"] == recipe.config["lvlm"]  # ${lvlm} resolved
    from panel2patch.cli import main

    assert main(["validate", name]) == 0
    assert f"OK ({len(checked)} components)" in capsys.readouterr().out


def test_a_bad_lvlm_section_fails_validation():
    recipe = config.load("lvlm_demo", ["lvlm.retry_factor=0.5"])
    with pytest.raises(RecipeError, match="retry_factor"):
        config.validate(recipe)
    recipe = config.load("lvlm_demo", ["mine.parser.args.crops=two"])
    with pytest.raises(RecipeError, match="crops"):
        config.validate(recipe)


def test_the_components_are_registered():
    assert "lvlm_panels" in registry("figure_parsers").names()
    assert "lvlm_markers" in registry("marker_detectors").names()
    assert "lvlm_splitter" in registry("caption_splitters").names()
    assert "lvlm_grounding" in registry("region_grounders").names()
    assert "lvlm_descriptions" in registry("describers").names()
    assert {"vllm", "openai", "transformers", "recorded", "reference"} <= set(registry("lvlm_backends").names())
    assert registry("figure_parsers").get("lvlm_panels").factory is SetOfMarksPanelParser
    assert registry("lvlm_backends").get("recorded").owner == "panel2patch.parsers.lvlm.plugin"
    assert config.slots()["mine.grounding"].name == "region_grounders"
    assert config.slots()["mine.descriptions"].name == "describers"


def test_sanitised_panel_boxes_and_crop_views_agree():
    """The mapping the components rely on: a crop view's box in view pixels maps back onto the figure."""
    image = figure_image()
    view, crop = crop_view(image, (100.4, 50.6, 399.2, 300.0), "p9", MAX_PIXELS)
    assert view.crop == (100.0, 50.0, 400.0, 300.0) and crop.size == view.size and view.name == "p9"
    items, counts = sanitise_boxes([{"bbox_2d": in_view(view, (150.0, 100.0, 250.0, 200.0), 3), "label": "A"}],
                                   view, SIZE)
    assert not counts and close(items[0].box, (150.0, 100.0, 250.0, 200.0), 0.01)


def test_a_bare_list_answer_is_usable_at_once(lvlm, diagnostics):
    """Qwen2.5-VL's usual grounding answer, a fenced bare list, is read at once: no retry, status ok."""
    image = figure_image()

    def bare(request):
        view = request.metadata["view"]
        items = [{"bbox_2d": in_view(view, LEFT), "label": "A", "kind": "photo"},
                 {"bbox_2d": in_view(view, RIGHT), "label": "B", "kind": "chart"}]
        return "```json\n" + json.dumps(items) + "\n```"

    parser = SetOfMarksPanelParser(engine=lvlm(bare))
    panels = parser.parse(image, "(A) Cells. (B) Counts.").panels
    assert [p.label for p in panels] == ["A", "B"]
    assert diagnostics["lvlm.panels.requests"] == 1 and diagnostics["lvlm.panels.status.ok"] == 1
    assert diagnostics["lvlm.panels.retried"] == 0


def test_printed_sub_panels_of_a_caption_label_are_kept(lvlm, diagnostics):
    """A caption naming ``(Ai–ii)`` reads as label A; the printed Ai and Aii are its panels, not unknown labels."""
    image = figure_image()
    top, bottom = (LEFT[0], LEFT[1], LEFT[2], (LEFT[1] + LEFT[3]) / 2), (LEFT[0], (LEFT[1] + LEFT[3]) / 2, *LEFT[2:])

    def answer(request):
        view = request.metadata["view"]
        return {"panels": [{"bbox_2d": in_view(view, top), "label": "Ai", "kind": "photo"},
                           {"bbox_2d": in_view(view, bottom), "label": "Aii", "kind": "photo"},
                           {"bbox_2d": in_view(view, RIGHT), "label": "B", "kind": "chart"},
                           {"bbox_2d": in_view(view, RIGHT), "label": "Q", "kind": "chart"}]}

    parser = SetOfMarksPanelParser(engine=lvlm(answer), extra_views="never")
    panels = parser.parse(image, "(Ai–ii) Cells at day 3 and day 7. (B) Counts.").panels
    assert [p.label for p in panels] == ["Ai", "Aii", "B"]
    assert diagnostics["lvlm.panels.box.unknown_label"] == 1  # Q


def test_dropped_clusters_are_counted_not_lost_silently(lvlm, diagnostics):
    """Two boxes labelled A: one panel A, the other counted; an unlabelled box over a labelled panel: counted."""
    image = figure_image()
    small = (RIGHT[0], RIGHT[1], RIGHT[0] + 40, RIGHT[1] + 40)  # the smaller of two equally voted A boxes loses

    def answer(request):
        view = request.metadata["view"]
        return {"panels": [{"bbox_2d": in_view(view, LEFT), "label": "A", "kind": "photo"},
                           {"bbox_2d": in_view(view, small), "label": "A", "kind": "chart"},
                           {"bbox_2d": in_view(view, LEFT), "label": None, "kind": "photo"}]}

    parser = SetOfMarksPanelParser(engine=lvlm(answer), extra_views="never")
    panels = parser.parse(image, "(A) Cells. Scale bar, 10 µm.").panels
    assert [p.label for p in panels] == ["A"]
    assert diagnostics["lvlm.panels.duplicate_label"] == 1 and diagnostics["lvlm.panels.unlabelled_overlap"] == 1


@pytest.mark.parametrize(("line", "why"), [("not json", "JSONDecodeError"), ('{"id": "f0"}', "KeyError: 'image'"),
                                           ('{"id": "f0", "image": "index.jsonl"}', "UnidentifiedImageError")])
def test_a_bad_reference_index_is_a_clear_error(tmp_path, line, why):
    from panel2patch.errors import Panel2PatchError
    from panel2patch.parsers.lvlm.reference import ReferenceBackend

    (tmp_path / "f0.json").write_text(json.dumps({"id": "f0", "width": 10, "height": 10, "caption": "c",
                                                  "schema_version": 1}))
    (tmp_path / "index.jsonl").write_text(line + "\n")
    with pytest.raises(Panel2PatchError, match=f"index.jsonl: line 1: {why}"):
        ReferenceBackend(str(tmp_path / "f0.json"), str(tmp_path / "index.jsonl"))
