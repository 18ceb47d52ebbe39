"""Region mining from markers, and dual-path fusion with caption-grounded proposals."""

from __future__ import annotations

import pytest

from panel2patch import manager
from panel2patch.data import CaptionSplit, Figure, Marker, MarkerClause, Panel, Region
from panel2patch.parsers.boxes import box_center
from panel2patch.plugins.regions import MarkerRegionMiner

# A 400 x 400 panel: with the default min_frac / max_frac a region's side lies in [32, 200].
PANEL = Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A")


def approx_box(*values):
    return pytest.approx(values, abs=1e-9)


def figure() -> Figure:
    panel = Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A")
    markers = [
        Marker("m0", "arrow", (90.0, 96.0, 110.0, 104.0), panel_id="p0", tip=(110.0, 100.0), direction=0.0),
        Marker("m1", "asterisk", (300.0, 300.0, 310.0, 310.0), panel_id="p0"),
    ]
    return Figure("f", 400, 400, "(A) Arrow marks a cyst; asterisk marks necrosis.", panels=[panel], markers=markers)


SPLIT = CaptionSplit("c", "", {"A": "x"}, "", [MarkerClause("arrow", "Arrow marks a cyst", ["A"]),
                                              MarkerClause("asterisk", "asterisk marks necrosis", ["B"])])


def test_the_miner_is_registered_as_marker_regions():
    miner = manager.build("region_miners", "marker_regions", {"tau": 0.2, "require_text": False})
    assert isinstance(miner, MarkerRegionMiner) and miner.tau == 0.2 and miner.require_text is False


def test_arrow_region_lies_ahead_of_the_tip_and_takes_its_clause():
    (region,) = MarkerRegionMiner().mine(figure(), SPLIT, [])
    assert region.marker_ids == ["m0"] and region.texts == ["Arrow marks a cyst"]
    cx, cy = box_center(region.box)
    assert cx > 110.0 and abs(cy - 100.0) < 1e-6  # shifted along the pointing direction (+x)
    # the asterisk's clause names panel B only, so it gives no region in A


# --- marker_box --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "box"),
    [
        # side 1.2 x 20 = 24, raised to 32; centre 0.3 x 32 ahead of the tip
        (Marker("m", "arrow", (90.0, 96.0, 110.0, 104.0), tip=(110.0, 100.0), direction=0.0),
         (103.6, 84.0, 135.6, 116.0)),
        (Marker("m", "arrowhead", (96.0, 90.0, 104.0, 110.0), tip=(100.0, 100.0), direction=90.0),  # up: -y
         (84.0, 74.4, 116.0, 106.4)),
        (Marker("m", "arrow", (90.0, 96.0, 110.0, 104.0), tip=(110.0, 100.0), direction=180.0),
         (84.4, 84.0, 116.4, 116.0)),
        (Marker("m", "arrow", (90.0, 96.0, 110.0, 104.0), tip=(110.0, 100.0)), (94.0, 84.0, 126.0, 116.0)),
        (Marker("m", "arrow", (90.0, 96.0, 110.0, 104.0)), (84.0, 84.0, 116.0, 116.0)),  # no tip: its centre
        (Marker("m", "arrow", (100.0, 195.0, 200.0, 205.0)), (90.0, 140.0, 210.0, 260.0)),  # side 1.2 x 100
        (Marker("m", "arrow", (100.0, 195.0, 300.0, 205.0)), (100.0, 100.0, 300.0, 300.0)),  # 240 cut to 200
        (Marker("m", "asterisk", (300.0, 300.0, 310.0, 310.0)), (285.0, 285.0, 325.0, 325.0)),  # 4 x 10
        (Marker("m", "symbol", (199.0, 199.0, 201.0, 201.0)), (184.0, 184.0, 216.0, 216.0)),  # 8 raised to 32
        (Marker("m", "symbol", (170.0, 170.0, 230.0, 230.0)), (100.0, 100.0, 300.0, 300.0)),  # 240 cut to 200
        (Marker("m", "asterisk", (385.0, 5.0, 395.0, 15.0)), (370.0, 0.0, 400.0, 30.0)),  # clipped to the panel
        (Marker("m", "box", (20.0, 30.0, 60.0, 90.0)), (20.0, 30.0, 60.0, 90.0)),
        (Marker("m", "circle", (20.0, 30.0, 60.0, 90.0)), (20.0, 30.0, 60.0, 90.0)),
        (Marker("m", "inset", (380.0, 380.0, 420.0, 420.0)), (380.0, 380.0, 400.0, 400.0)),
    ],
)
def test_marker_box_geometry(marker, box):
    assert MarkerRegionMiner().marker_box(marker, PANEL) == approx_box(*box)


def test_marker_box_parameters():
    miner = MarkerRegionMiner(arrow_scale=2.0, symbol_scale=1.0, lead=0.5, min_frac=0.01, max_frac=0.9)
    arrow = Marker("m", "arrow", (90.0, 96.0, 110.0, 104.0), tip=(110.0, 100.0), direction=0.0)
    assert miner.marker_box(arrow, PANEL) == approx_box(110.0, 80.0, 150.0, 120.0)
    assert miner.marker_box(Marker("m", "asterisk", (300.0, 300.0, 310.0, 310.0)), PANEL) == approx_box(
        300.0, 300.0, 310.0, 310.0)
    assert miner.marker_box(Marker("m", "asterisk", (199.0, 199.0, 201.0, 201.0)), PANEL) == approx_box(
        198.0, 198.0, 202.0, 202.0)  # raised to 0.01 x 400
    assert miner.marker_box(Marker("m", "asterisk", (0.0, 0.0, 400.0, 400.0)), PANEL) == approx_box(
        20.0, 20.0, 380.0, 380.0)  # cut to 0.9 x 400


def test_marker_box_bounds_follow_the_panel_short_side():
    wide = Panel("p0", (0.0, 0.0, 400.0, 200.0))  # short side 200: sides within [16, 100]
    miner = MarkerRegionMiner()
    assert miner.marker_box(Marker("m", "symbol", (199.0, 99.0, 201.0, 101.0)), wide) == approx_box(
        192.0, 92.0, 208.0, 108.0)
    assert miner.marker_box(Marker("m", "arrow", (150.0, 95.0, 250.0, 105.0)), wide) == approx_box(
        150.0, 50.0, 250.0, 150.0)


def test_markers_that_mark_nothing_have_no_box():
    miner = MarkerRegionMiner()
    assert miner.marker_box(Marker("m", "label", (10.0, 10.0, 30.0, 30.0)), PANEL) is None
    assert miner.marker_box(Marker("m", "box", (410.0, 10.0, 430.0, 30.0)), PANEL) is None  # outside its panel


# --- texts -------------------------------------------------------------------------------------------


def test_texts_take_clauses_of_matching_kinds_for_the_panel_then_the_marker_text():
    clauses = [
        MarkerClause("arrow", "arrows: cysts", []),
        MarkerClause("arrowhead", "arrowheads in A", ["A", "C"]),
        MarkerClause("arrowhead", "arrowheads in B", ["B"]),
        MarkerClause("box", "boxed: inset", []),
        MarkerClause("asterisk", "asterisks", []),
        MarkerClause("arrow", "arrows: cysts", ["A"]),
    ]
    texts = MarkerRegionMiner.texts
    assert texts(Marker("m", "arrowhead", (0, 0, 1, 1), text="cyst"), PANEL, clauses) == [
        "arrows: cysts", "arrowheads in A", "cyst"]
    assert texts(Marker("m", "arrow", (0, 0, 1, 1), text="arrows: cysts"), PANEL, clauses) == [
        "arrows: cysts", "arrowheads in A"]
    assert texts(Marker("m", "inset", (0, 0, 1, 1)), PANEL, clauses) == ["boxed: inset"]
    assert texts(Marker("m", "circle", (0, 0, 1, 1)), PANEL, clauses) == []
    assert texts(Marker("m", "symbol", (0, 0, 1, 1)), PANEL, clauses) == ["asterisks"]
    assert texts(Marker("m", "star", (0, 0, 1, 1)), PANEL, [MarkerClause("star", "stars", [])]) == ["stars"]


# --- mine without proposals --------------------------------------------------------------------------


def mining_figure() -> Figure:
    panels = [Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A"), Panel("p1", (400.0, 0.0, 800.0, 400.0), label="B")]
    markers = [
        Marker("m0", "arrow", (90.0, 96.0, 110.0, 104.0), panel_id="p0", tip=(110.0, 100.0), direction=0.0),
        Marker("m1", "asterisk", (300.0, 300.0, 310.0, 310.0), panel_id="p0", score=0.7),
        Marker("m2", "label", (10.0, 10.0, 30.0, 30.0), panel_id="p0"),  # marks nothing
        Marker("m3", "arrow", (90.0, 96.0, 110.0, 104.0)),  # in no panel
        Marker("m4", "arrow", (90.0, 96.0, 110.0, 104.0), panel_id="p9"),  # in an unknown panel
        Marker("m5", "box", (420.0, 20.0, 460.0, 60.0), panel_id="p1"),  # no clause, no text
        Marker("m6", "circle", (500.0, 100.0, 540.0, 140.0), panel_id="p1", text="x1", score=0.6),
    ]
    return Figure("f", 800, 400, "", panels=panels, markers=markers)


MINING_SPLIT = CaptionSplit("c", "", {"A": "a", "B": "b"}, "", [
    MarkerClause("arrow", "Arrow marks a cyst", ["A"]), MarkerClause("asterisk", "asterisk marks necrosis", []),
    MarkerClause("label", "labels", [])])


def as_rows(regions):
    return [(r.id, r.panel_id, r.box, r.marker_ids, r.texts, r.score, r.provenance) for r in regions]


def test_mine_makes_one_region_per_marker_with_a_box_a_panel_and_a_text():
    regions = MarkerRegionMiner().mine(mining_figure(), MINING_SPLIT, [])
    assert as_rows(regions) == [
        ("r0", "p0", approx_box(103.6, 84.0, 135.6, 116.0), ["m0"], ["Arrow marks a cyst"], 1.0, "marker:arrow"),
        ("r1", "p0", (285.0, 285.0, 325.0, 325.0), ["m1"], ["asterisk marks necrosis"], 0.7, "marker:asterisk"),
        ("r2", "p1", (500.0, 100.0, 540.0, 140.0), ["m6"], ["x1"], 0.6, "marker:circle"),
    ]


def test_mine_without_require_text_keeps_markers_nothing_describes():
    regions = MarkerRegionMiner(require_text=False).mine(mining_figure(), MINING_SPLIT, [])
    assert [(r.id, r.marker_ids, r.texts) for r in regions] == [
        ("r0", ["m0"], ["Arrow marks a cyst"]), ("r1", ["m1"], ["asterisk marks necrosis"]),
        ("r2", ["m5"], []), ("r3", ["m6"], ["x1"])]


# --- dual-path fusion --------------------------------------------------------------------------------
# Panel p0 is 400 x 400: the default tau (0.15) of its diagonal is 84.85 px.


def fusion_figure() -> Figure:
    markers = [
        Marker("m0", "arrow", (90.0, 96.0, 110.0, 104.0), panel_id="p0", tip=(110.0, 100.0), direction=0.0),
        Marker("m1", "asterisk", (300.0, 300.0, 310.0, 310.0), panel_id="p0"),  # centre (305, 305)
        Marker("m2", "box", (370.0, 20.0, 398.0, 48.0), panel_id="p0"),  # centre (384, 34)
        Marker("m3", "asterisk", (40.0, 340.0, 50.0, 350.0)),  # in no panel, centre (45, 345)
    ]
    return Figure("f", 400, 400, "", panels=[Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A")], markers=markers)


FUSION_SPLIT = CaptionSplit("c", "", {"A": "a"}, "", [
    MarkerClause("arrow", "arrow text", []), MarkerClause("asterisk", "asterisk text", []),
    MarkerClause("box", "box text", [])])


def proposals() -> list[Region]:
    return [
        Region("", "p0", (115.0, 90.0, 135.0, 110.0), texts=["cyst"], score=0.9, provenance="grounding"),  # m0
        Region("", "p0", (295.0, 350.0, 335.0, 410.0), texts=["edge"], score=0.8),  # 75.7 px from m1
        Region("", "p0", (35.0, 335.0, 55.0, 355.0), texts=["on m3"], score=0.95),  # m3 is in no panel
        Region("", "p0", (10.0, 150.0, 30.0, 170.0), texts=["far"], score=0.95),  # 100 px from m0
        Region("", "p9", (115.0, 90.0, 135.0, 110.0), texts=["unknown panel"], score=0.95),
    ]


def test_fusion_keeps_supported_proposals_dilates_unsupported_markers_then_suppresses():
    regions = MarkerRegionMiner().mine(fusion_figure(), FUSION_SPLIT, proposals())
    assert as_rows(regions) == [
        ("r0", "p0", (115.0, 90.0, 135.0, 110.0), ["m0"], ["cyst"], 0.9, "grounding"),
        ("r1", "p0", (295.0, 350.0, 335.0, 400.0), ["m1"], ["edge"], 0.8, "proposal"),  # clipped to the panel
        ("r2", "p0", approx_box(103.6, 84.0, 135.6, 116.0), ["m0"], ["arrow text"], 1.0, "marker:arrow"),
        ("r3", "p0", (285.0, 285.0, 325.0, 325.0), ["m1"], ["asterisk text"], 1.0, "marker:asterisk"),
        # 28 px dilated by 1.5 about (384, 34), then clipped to the panel
        ("r4", "p0", (363.0, 13.0, 400.0, 55.0), ["m2"], ["box text"], 1.0, "marker:box+dilated"),
    ]


def test_fusion_dilates_a_marker_region_once():
    """A second fusion (a grounding stage after a parser's proposals) leaves an already dilated region as it is."""
    miner, figure = MarkerRegionMiner(), fusion_figure()
    first = miner.mine(figure, FUSION_SPLIT, proposals())
    dilated = next(r for r in first if r.provenance.endswith("+dilated"))
    again = miner.fuse(figure, first, [])
    assert [(r.box, r.provenance) for r in again if r.marker_ids == dilated.marker_ids
            and r.provenance.startswith("marker:")] == [(dilated.box, "marker:box+dilated")]


def test_fusion_suppression_is_class_agnostic_at_nms_iou():
    # the first proposal lies inside the arrow's 32 px square: IoU 400 / 1024 = 0.39
    regions = MarkerRegionMiner(nms_iou=0.3).mine(fusion_figure(), FUSION_SPLIT, proposals())
    assert [(r.id, r.provenance) for r in regions] == [
        ("r0", "proposal"), ("r1", "marker:arrow"), ("r2", "marker:asterisk"), ("r3", "marker:box+dilated")]


def test_fusion_tau_is_a_share_of_the_panel_diagonal():
    # 300 x 400 panel: diagonal 500, so tau 0.15 is 75 px
    fig = Figure("f", 300, 400, "", panels=[Panel("p0", (0.0, 0.0, 300.0, 400.0))],
                 markers=[Marker("m0", "asterisk", (95.0, 95.0, 105.0, 105.0), panel_id="p0", text="cells"),
                          Marker("m1", "asterisk", (95.0, 295.0, 105.0, 305.0), panel_id="p0", text="debris")])
    at = Region("", "p0", (135.0, 150.0, 155.0, 170.0), texts=["at"], score=0.5)  # 75 px from m0, 147 from m1
    beyond = Region("", "p0", (138.0, 154.0, 158.0, 174.0), texts=["beyond"], score=0.4)  # 80 px, 144 px

    def mined(tau):
        regions = MarkerRegionMiner(tau=tau, nms_iou=1.0).mine(fig, CaptionSplit("c"), [at, beyond])
        return [(r.texts, r.marker_ids, r.provenance) for r in regions]

    assert mined(0.15) == [(["at"], ["m0"], "proposal"), (["cells"], ["m0"], "marker:asterisk"),
                           (["debris"], ["m1"], "marker:asterisk+dilated")]
    assert mined(0.2) == [(["at"], ["m0"], "proposal"), (["beyond"], ["m0"], "proposal"),
                          (["cells"], ["m0"], "marker:asterisk"), (["debris"], ["m1"], "marker:asterisk+dilated")]
    # every marker within reach supports a proposal
    assert mined(0.5) == [(["at"], ["m0", "m1"], "proposal"), (["beyond"], ["m0", "m1"], "proposal"),
                          (["cells"], ["m0"], "marker:asterisk"), (["debris"], ["m1"], "marker:asterisk")]


def test_fusion_keeps_proposals_near_markers_and_dilates_unsupported_markers():
    split = CaptionSplit("c", "", {"A": "x"}, "", [MarkerClause("arrow", "Arrow marks a cyst", []),
                                                  MarkerClause("asterisk", "asterisk marks necrosis", [])])
    near = Region("", "p0", (115.0, 90.0, 135.0, 110.0), texts=["cyst"], score=0.9, provenance="proposal")
    far = Region("", "p0", (10.0, 350.0, 30.0, 370.0), texts=["far"], score=0.9, provenance="proposal")
    miner = MarkerRegionMiner(tau=0.15, dilation=2.0, nms_iou=0.9)
    plain = {r.marker_ids[0]: r for r in miner.mine(figure(), split, [])}
    fused = miner.mine(figure(), split, [near, far])
    texts = [r.texts for r in fused]
    assert ["cyst"] in texts and ["far"] not in texts
    asterisk = next(r for r in fused if r.marker_ids == ["m1"])
    arrow = next(r for r in fused if r.marker_ids == ["m0"] and r.provenance.startswith("marker"))
    width = lambda r: r.box[2] - r.box[0]
    assert asterisk.provenance.endswith("+dilated") and width(asterisk) > width(plain["m1"])
    assert width(arrow) == width(plain["m0"])  # supported by a proposal: not dilated
    assert [r.id for r in fused] == [f"r{i}" for i in range(len(fused))]
    assert asterisk.box == (265.0, 265.0, 345.0, 345.0)  # the 40 px square doubled


# --- marker kinds that mark no region ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["band_marker", "connector"])
def test_band_markers_and_connectors_are_not_mined(kind):
    """A triangle beside a blot band and a diagram arrow point, but not at an area a caption describes."""
    marker = Marker("m0", kind, (90.0, 96.0, 110.0, 104.0), panel_id="p0", tip=(110.0, 100.0), direction=0.0,
                    text="p43")
    fig = Figure("f", 400, 400, "", panels=[Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A")], markers=[marker])
    split = CaptionSplit("c", "", {"A": "x"}, "", [MarkerClause("arrow", "Arrows mark cleaved caspase-8", []),
                                                  MarkerClause(kind, "named after the kind", [])])
    miner = MarkerRegionMiner(require_text=False)
    assert miner.marker_box(marker, PANEL) is None
    assert miner.mine(fig, split, []) == []
    # nor does it keep a caption-grounded proposal next to it alive
    proposal = Region("", "p0", (115.0, 90.0, 135.0, 110.0), texts=["band"], score=0.9)
    assert miner.mine(fig, split, [proposal]) == []
    # the same drawing typed as a pointer is mined
    pointer = Marker("m0", "arrowhead", marker.box, panel_id="p0", tip=marker.tip, direction=0.0)
    fig.markers = [pointer]
    assert [r.marker_ids for r in miner.mine(fig, split, [])] == [["m0"]]
