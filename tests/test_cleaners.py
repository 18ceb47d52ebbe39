"""Box cleaners: every rule, threshold and target, and the hierarchy kept consistent when panels go."""

from __future__ import annotations

import pytest

from panel2patch import manager
from panel2patch.data import Figure, Marker, Panel, Region


def cleaner(name: str, **args):
    return manager.build("box_cleaners", name, args)


def figure(panels=(), markers=(), regions=(), width=1000, height=1000) -> Figure:
    return Figure("f", width, height, "", panels=list(panels), markers=list(markers), regions=list(regions))


def ids(items) -> list[str]:
    return [item.id for item in items]


def attachments(fig: Figure) -> dict[str, str | None]:
    return {m.id: m.panel_id for m in fig.markers}


def test_every_cleaner_is_registered_under_its_name():
    names = ["clip_to_image", "drop_degenerate", "box_nms", "marker_gate", "panel_containment", "photo_panels_only"]
    assert set(names) <= set(manager.registry("box_cleaners").names())
    fig = figure()
    for name in names:
        assert cleaner(name).clean(fig) is fig


# --- clip_to_image -----------------------------------------------------------------------------------


def test_clip_to_image_clips_panels_markers_and_regions():
    fig = figure(
        panels=[Panel("p0", (-10.0, -5.0, 50.0, 90.0)), Panel("p1", (50.0, 0.0, 100.0, 80.0))],
        markers=[Marker("m0", "arrow", (90.0, 70.0, 120.0, 100.0), panel_id="p1")],
        regions=[Region("r0", "p0", (-5.0, 10.0, 30.0, 85.0)), Region("r1", "p1", (60.0, 10.0, 70.0, 20.0))],
        width=100, height=80,
    )
    out = cleaner("clip_to_image").clean(fig)
    assert [p.box for p in out.panels] == [(0.0, 0.0, 50.0, 80.0), (50.0, 0.0, 100.0, 80.0)]
    assert [m.box for m in out.markers] == [(90.0, 70.0, 100.0, 80.0)]
    assert [r.box for r in out.regions] == [(0.0, 10.0, 30.0, 80.0), (60.0, 10.0, 70.0, 20.0)]


def test_clip_to_image_removes_boxes_left_without_area():
    fig = figure(
        panels=[Panel("p0", (0.0, 0.0, 50.0, 80.0)), Panel("p_right", (100.0, 10.0, 130.0, 40.0)),
                Panel("p_below", (10.0, 80.0, 20.0, 95.0))],
        markers=[Marker("m0", "arrow", (10.0, 10.0, 20.0, 20.0), panel_id="p0"),
                 Marker("m_left", "arrow", (-20.0, 0.0, -5.0, 10.0)),
                 Marker("m_above", "asterisk", (30.0, -9.0, 40.0, 0.0))],
        regions=[Region("r0", "p0", (5.0, 5.0, 25.0, 25.0)), Region("r_out", "p0", (20.0, 81.0, 30.0, 90.0))],
        width=100, height=80,
    )
    out = cleaner("clip_to_image").clean(fig)
    assert ids(out.panels) == ["p0"] and ids(out.markers) == ["m0"] and ids(out.regions) == ["r0"]


def test_clip_to_image_clips_only_its_targets_and_a_removed_panel_takes_its_regions_and_markers():
    fig = figure(
        panels=[Panel("p0", (0.0, 0.0, 100.0, 80.0)), Panel("p1", (100.0, 0.0, 200.0, 80.0))],
        markers=[Marker("m0", "arrow", (90.0, 10.0, 120.0, 20.0), panel_id="p0"),
                 Marker("m1", "arrow", (150.0, 10.0, 160.0, 20.0), panel_id="p1")],
        regions=[Region("r0", "p0", (90.0, 30.0, 110.0, 40.0)), Region("r1", "p1", (150.0, 30.0, 160.0, 40.0))],
        width=100, height=80,
    )
    out = cleaner("clip_to_image", targets=["panels"]).clean(fig)
    assert ids(out.panels) == ["p0"]
    assert attachments(out) == {"m0": "p0", "m1": None}  # detached, not removed nor clipped
    assert [m.box for m in out.markers] == [(90.0, 10.0, 120.0, 20.0), (150.0, 10.0, 160.0, 20.0)]
    assert ids(out.regions) == ["r0"] and out.regions[0].box == (90.0, 30.0, 110.0, 40.0)


# --- drop_degenerate ---------------------------------------------------------------------------------
# A 1000 x 1000 figure: the default area floor (0.0005) is 500 px.

DEFAULT_CASES = {
    "side_at_min": (0.0, 0.0, 8.0, 96.0),  # side 8, aspect 12, area 768: kept
    "side_under_min": (0.0, 0.0, 7.5, 90.0),  # side 7.5 (aspect 12, area 675)
    "area_at_min": (0.0, 0.0, 20.0, 25.0),  # area 500: kept
    "area_under_min": (0.0, 0.0, 20.0, 24.0),  # area 480 (sides 20, 24)
    "aspect_at_max": (0.0, 0.0, 10.0, 120.0),  # aspect 12: kept
    "aspect_over_max": (0.0, 0.0, 121.0, 10.0),  # aspect 12.1 (side 10, area 1210)
}


def test_drop_degenerate_default_thresholds_on_panels_and_regions():
    fig = figure(panels=[Panel(name, box) for name, box in DEFAULT_CASES.items()])
    out = cleaner("drop_degenerate").clean(fig)
    assert ids(out.panels) == ["side_at_min", "area_at_min", "aspect_at_max"]

    fig = figure(panels=[Panel("p0", (0.0, 0.0, 1000.0, 1000.0))],
                 regions=[Region(name, "p0", box) for name, box in DEFAULT_CASES.items()])
    out = cleaner("drop_degenerate").clean(fig)
    assert ids(out.regions) == ["side_at_min", "area_at_min", "aspect_at_max"]


def test_drop_degenerate_min_side():
    fig = figure(panels=[Panel("wide", (0.0, 0.0, 30.0, 20.0)), Panel("narrow", (0.0, 0.0, 30.0, 19.0))])
    out = cleaner("drop_degenerate", min_side=20.0, min_area_frac=0.0, max_aspect=100.0).clean(fig)
    assert ids(out.panels) == ["wide"]


def test_drop_degenerate_min_area_frac():
    # 100 x 100 figure: a floor of 0.04 is 400 px
    fig = figure(panels=[Panel("at", (0.0, 0.0, 20.0, 20.0)), Panel("under", (0.0, 0.0, 20.0, 19.5))],
                 width=100, height=100)
    out = cleaner("drop_degenerate", min_side=0.0, min_area_frac=0.04, max_aspect=100.0).clean(fig)
    assert ids(out.panels) == ["at"]


def test_drop_degenerate_max_aspect_either_orientation():
    fig = figure(panels=[Panel("tall_ok", (0.0, 0.0, 10.0, 20.0)), Panel("tall", (0.0, 0.0, 10.0, 21.0)),
                         Panel("wide_ok", (0.0, 0.0, 20.0, 10.0)), Panel("wide", (0.0, 0.0, 21.0, 10.0))])
    out = cleaner("drop_degenerate", min_side=0.0, min_area_frac=0.0, max_aspect=2.0).clean(fig)
    assert ids(out.panels) == ["tall_ok", "wide_ok"]


def test_drop_degenerate_zero_width_box_is_removed_by_the_aspect_rule():
    fig = figure(panels=[Panel("p0", (0.0, 0.0, 100.0, 100.0))],
                 regions=[Region("line", "p0", (5.0, 0.0, 5.0, 50.0)), Region("r0", "p0", (0.0, 0.0, 10.0, 10.0))])
    out = cleaner("drop_degenerate", min_side=0.0, min_area_frac=0.0).clean(fig)
    assert ids(out.regions) == ["r0"]


def test_drop_degenerate_figure_without_size_compares_area_in_pixels():
    fig = figure(panels=[Panel("big", (0.0, 0.0, 10.0, 10.0)), Panel("small", (0.0, 0.0, 4.0, 4.0))],
                 width=0, height=0)
    out = cleaner("drop_degenerate", min_side=0.0, min_area_frac=50.0).clean(fig)
    assert ids(out.panels) == ["big"]


def test_drop_degenerate_targets_panels_and_regions_by_default():
    tiny = (0.0, 0.0, 2.0, 2.0)
    fig = figure(
        panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0)), Panel("p_tiny", tiny)],
        markers=[Marker("m0", "arrow", tiny, panel_id="p0"), Marker("m1", "arrow", tiny, panel_id="p_tiny")],
        regions=[Region("r0", "p0", (0.0, 0.0, 100.0, 100.0)), Region("r_tiny", "p0", tiny),
                 Region("r1", "p_tiny", tiny)],
    )
    out = cleaner("drop_degenerate").clean(fig)
    assert ids(out.panels) == ["p0"] and ids(out.regions) == ["r0"]
    assert attachments(out) == {"m0": "p0", "m1": None}  # markers are not a default target


def test_drop_degenerate_only_named_targets():
    tiny = (0.0, 0.0, 2.0, 2.0)
    fig = figure(panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0)), Panel("p_tiny", tiny)],
                 markers=[Marker("m0", "arrow", tiny, panel_id="p0"),
                          Marker("m1", "arrow", (0.0, 0.0, 50.0, 50.0), panel_id="p0")],
                 regions=[Region("r_tiny", "p0", tiny)])
    out = cleaner("drop_degenerate", targets=["markers"]).clean(fig)
    assert ids(out.panels) == ["p0", "p_tiny"] and ids(out.markers) == ["m1"] and ids(out.regions) == ["r_tiny"]


# --- box_nms -----------------------------------------------------------------------------------------
A = (0.0, 0.0, 100.0, 100.0)
B = (10.0, 0.0, 110.0, 100.0)  # IoU with A: 0.82
C = (60.0, 0.0, 160.0, 100.0)  # IoU with B: 0.33, with A: 0.25


def test_box_nms_keeps_the_best_scored_region_per_panel_by_default():
    fig = figure(
        panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0)), Panel("p1", (0.0, 0.0, 500.0, 500.0))],
        regions=[Region("r0", "p0", A, score=0.8), Region("r1", "p0", B, score=0.9),
                 Region("r2", "p1", A, score=0.7), Region("r3", "p0", C, score=0.1)],
    )
    out = cleaner("box_nms").clean(fig)
    assert ids(out.regions) == ["r1", "r2", "r3"]  # kept in their order


def test_box_nms_default_iou_is_one_half():
    # boxes nested in A: IoU is their height share
    fig = figure(panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0)), Panel("p1", (0.0, 0.0, 500.0, 500.0))],
                 regions=[Region("a0", "p0", A, score=0.9), Region("over", "p0", (0.0, 0.0, 100.0, 52.0), score=0.5),
                          Region("a1", "p1", A, score=0.9), Region("under", "p1", (0.0, 0.0, 100.0, 48.0), score=0.5)])
    assert ids(cleaner("box_nms").clean(fig).regions) == ["a0", "a1", "under"]


def test_box_nms_iou_threshold():
    regions = [Region("r0", "p0", B, score=0.9), Region("r1", "p0", C, score=0.5)]
    fig = figure(panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0))], regions=regions)
    assert ids(cleaner("box_nms", iou=0.3).clean(fig).regions) == ["r0"]
    fig = figure(panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0))], regions=list(regions))
    assert ids(cleaner("box_nms", iou=0.34).clean(fig).regions) == ["r0", "r1"]


def test_box_nms_class_agnostic():
    fig = figure(
        panels=[Panel("p0", (0.0, 0.0, 500.0, 500.0)), Panel("p1", (0.0, 0.0, 500.0, 500.0))],
        regions=[Region("r0", "p0", A, score=0.8), Region("r1", "p0", B, score=0.9),
                 Region("r2", "p1", A, score=0.95), Region("r3", "p0", C, score=0.1)],
    )
    out = cleaner("box_nms", per_label=False).clean(fig)
    assert ids(out.regions) == ["r2", "r3"]


def test_box_nms_on_panels_groups_by_label_with_unlabelled_panels_together():
    fig = figure(
        panels=[Panel("pA", A, label="A", score=0.9), Panel("pB", B, label="B", score=0.8),
                Panel("p_none", B, label=None, score=0.7), Panel("p_empty", A, label="", score=0.6),
                Panel("pA2", B, label="A", score=0.5)],
        markers=[Marker("m0", "arrow", A, panel_id="p_empty", score=0.1),
                 Marker("m1", "arrow", B, panel_id="pA", score=0.2)],
        regions=[Region("r0", "p_empty", A, score=0.1), Region("r1", "pA2", A, score=0.2),
                 Region("r2", "pB", A, score=0.3)],
    )
    out = cleaner("box_nms", targets=["panels"]).clean(fig)
    assert ids(out.panels) == ["pA", "pB", "p_none"]
    assert ids(out.regions) == ["r2"]  # regions are not a target here: only those of removed panels go
    assert attachments(out) == {"m0": None, "m1": "pA"}


def test_box_nms_on_markers_groups_by_kind():
    fig = figure(markers=[Marker("m0", "arrow", A, score=0.5), Marker("m1", "arrow", B, score=0.9),
                          Marker("m2", "asterisk", A, score=0.4)],
                 regions=[Region("r0", "p0", A, score=0.9), Region("r1", "p0", B, score=0.1)])
    out = cleaner("box_nms", targets=["markers"]).clean(fig)
    assert ids(out.markers) == ["m1", "m2"] and ids(out.regions) == ["r0", "r1"]
    fig = figure(markers=[Marker("m0", "arrow", A, score=0.5), Marker("m1", "arrow", B, score=0.9),
                          Marker("m2", "asterisk", A, score=0.4)])
    assert ids(cleaner("box_nms", targets=["markers"], per_label=False).clean(fig).markers) == ["m1"]


def test_box_nms_several_targets():
    fig = figure(panels=[Panel("p0", A, label="A", score=0.9), Panel("p1", B, label="A", score=0.8),
                         Panel("p2", (200.0, 0.0, 700.0, 500.0), label="B")],
                 markers=[Marker("m0", "arrow", A, score=0.5), Marker("m1", "arrow", B, score=0.9)],
                 regions=[Region("r0", "p2", A, score=0.2), Region("r1", "p2", B, score=0.3)])
    out = cleaner("box_nms", targets=["panels", "markers", "regions"]).clean(fig)
    assert ids(out.panels) == ["p0", "p2"] and ids(out.markers) == ["m1"] and ids(out.regions) == ["r1"]


# --- marker_gate -------------------------------------------------------------------------------------
# Panel p0 is 300 x 400: its diagonal is 500, so the default tau (0.25) is 125 px.


def gate_figure() -> Figure:
    return figure(
        panels=[Panel("p0", (0.0, 0.0, 300.0, 400.0)), Panel("p1", (300.0, 0.0, 600.0, 400.0))],
        markers=[Marker("m0", "arrow", (90.0, 90.0, 110.0, 110.0), panel_id="p0"),  # centre (100, 100)
                 Marker("m1", "arrow", (305.0, 295.0, 315.0, 305.0), panel_id="p1"),  # centre (310, 300)
                 Marker("m2", "asterisk", (195.0, 345.0, 205.0, 355.0))],  # in no panel, centre (200, 350)
        regions=[
            Region("at_tau", "p0", (165.0, 190.0, 185.0, 210.0)),  # centre 125 px from m0
            Region("beyond_tau", "p0", (168.0, 194.0, 188.0, 214.0)),  # 130 px
            Region("anchored", "p0", (270.0, 370.0, 290.0, 390.0), marker_ids=["m0"]),  # far, but a marker's
            Region("near_other_panel", "p0", (280.0, 290.0, 300.0, 310.0)),  # 20 px from m1 (panel p1)
            Region("near_unassigned", "p0", (190.0, 340.0, 210.0, 360.0)),  # on m2 (no panel)
            Region("in_p1", "p1", (300.0, 290.0, 320.0, 310.0)),  # on m1
            Region("no_panel", "p9", (90.0, 90.0, 110.0, 110.0)),
        ],
    )


def test_marker_gate_default_tau_normalised_by_panel_diagonal():
    fig = gate_figure()
    out = cleaner("marker_gate").clean(fig)
    assert ids(out.regions) == ["at_tau", "anchored", "in_p1"]
    assert ids(out.panels) == ["p0", "p1"] and ids(out.markers) == ["m0", "m1", "m2"]


def test_marker_gate_tau():
    out = cleaner("marker_gate", tau=0.3).clean(gate_figure())
    assert ids(out.regions) == ["at_tau", "beyond_tau", "anchored", "in_p1"]
    out = cleaner("marker_gate", tau=0.2).clean(gate_figure())
    assert ids(out.regions) == ["anchored", "in_p1"]


def test_marker_gate_anchored_region_passes_even_without_its_panel():
    fig = figure(regions=[Region("r0", "p9", (0.0, 0.0, 10.0, 10.0), marker_ids=["m0"]),
                          Region("r1", "p9", (0.0, 0.0, 10.0, 10.0))])
    assert ids(cleaner("marker_gate").clean(fig).regions) == ["r0"]


def test_marker_gate_zero_size_panel():
    fig = figure(panels=[Panel("p0", (50.0, 50.0, 50.0, 50.0))],
                 markers=[Marker("m0", "asterisk", (40.0, 40.0, 60.0, 60.0), panel_id="p0")],
                 regions=[Region("on", "p0", (45.0, 45.0, 55.0, 55.0)), Region("off", "p0", (46.0, 45.0, 56.0, 55.0))])
    # the distance is then compared in pixels
    assert ids(cleaner("marker_gate", tau=0.9).clean(fig).regions) == ["on"]


# --- panel_containment -------------------------------------------------------------------------------


def containment_figure() -> Figure:
    return figure(
        panels=[Panel("p0", (4.0, 0.0, 104.0, 100.0))],
        markers=[Marker("m0", "arrow", (0.0, 0.0, 200.0, 200.0), panel_id="p0")],
        regions=[
            Region("inside", "p0", (20.0, 20.0, 40.0, 40.0)),
            Region("six_tenths", "p0", (0.0, 0.0, 10.0, 10.0)),  # 60 of 100 px inside
            Region("half", "p0", (-1.0, 20.0, 9.0, 30.0)),  # 50 of 100 px inside
            Region("outside", "p0", (200.0, 0.0, 210.0, 10.0)),
            Region("flat", "p0", (50.0, 50.0, 50.0, 60.0)),
            Region("no_panel", "p9", (20.0, 20.0, 40.0, 40.0)),
        ],
    )


def test_panel_containment_default_share_and_clipping():
    out = cleaner("panel_containment").clean(containment_figure())
    assert [(r.id, r.box) for r in out.regions] == [("inside", (20.0, 20.0, 40.0, 40.0)),
                                                    ("six_tenths", (4.0, 0.0, 10.0, 10.0))]
    assert [p.box for p in out.panels] == [(4.0, 0.0, 104.0, 100.0)]
    assert [m.box for m in out.markers] == [(0.0, 0.0, 200.0, 200.0)]  # only regions are clipped


def test_panel_containment_min_inside():
    out = cleaner("panel_containment", min_inside=0.5).clean(containment_figure())
    assert [(r.id, r.box) for r in out.regions] == [("inside", (20.0, 20.0, 40.0, 40.0)),
                                                    ("six_tenths", (4.0, 0.0, 10.0, 10.0)),
                                                    ("half", (4.0, 20.0, 9.0, 30.0))]
    out = cleaner("panel_containment", min_inside=0.61).clean(containment_figure())
    assert ids(out.regions) == ["inside"]


# --- photo_panels_only -------------------------------------------------------------------------------


def kinds_figure() -> Figure:
    return figure(
        panels=[Panel("p_photo", A, kind="photo"), Panel("p_chart", B, kind="chart"),
                Panel("p_unknown", C, kind="unknown")],
        markers=[Marker("m_photo", "arrow", A, panel_id="p_photo"), Marker("m_chart", "arrow", B, panel_id="p_chart"),
                 Marker("m_free", "arrow", C)],
        regions=[Region("r_photo", "p_photo", A), Region("r_chart", "p_chart", B), Region("r_unknown", "p_unknown", C)],
    )


def test_photo_panels_only_removes_other_panels_with_their_regions_and_detaches_their_markers():
    out = cleaner("photo_panels_only").clean(kinds_figure())
    assert ids(out.panels) == ["p_photo"] and ids(out.regions) == ["r_photo"]
    assert attachments(out) == {"m_photo": "p_photo", "m_chart": None, "m_free": None}


def test_photo_panels_only_kinds():
    out = cleaner("photo_panels_only", kinds=["photo", "chart"]).clean(kinds_figure())
    assert ids(out.panels) == ["p_photo", "p_chart"] and ids(out.regions) == ["r_photo", "r_chart"]
    assert attachments(out) == {"m_photo": "p_photo", "m_chart": "p_chart", "m_free": None}
    out = cleaner("photo_panels_only", kinds=["unknown"]).clean(kinds_figure())
    assert ids(out.panels) == ["p_unknown"] and ids(out.regions) == ["r_unknown"]


def test_cleaners_accept_only_their_arguments():
    from panel2patch.errors import RecipeError

    with pytest.raises(RecipeError, match="takes no argument 'tau'"):
        cleaner("box_nms", tau=0.2)
    with pytest.raises(RecipeError, match="targets"):
        cleaner("clip_to_image", targets=["captions"])
