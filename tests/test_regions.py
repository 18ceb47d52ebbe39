"""Region mining from markers, and dual-path fusion with caption-grounded proposals."""

from panel2patch.components import CaptionSplit, MarkerClause
from panel2patch.data import Figure, Marker, Panel, Region, box_center
from panel2patch.plugins.regions import MarkerRegionMiner


def figure() -> Figure:
    panel = Panel("p0", (0.0, 0.0, 400.0, 400.0), label="A")
    markers = [
        Marker("m0", "arrow", (90.0, 96.0, 110.0, 104.0), panel_id="p0", tip=(110.0, 100.0), direction=0.0),
        Marker("m1", "asterisk", (300.0, 300.0, 310.0, 310.0), panel_id="p0"),
    ]
    return Figure("f", 400, 400, "(A) Arrow marks a cyst; asterisk marks necrosis.", panels=[panel], markers=markers)


SPLIT = CaptionSplit("c", "", {"A": "x"}, "", [MarkerClause("arrow", "Arrow marks a cyst", ["A"]),
                                              MarkerClause("asterisk", "asterisk marks necrosis", ["B"])])


def test_arrow_region_lies_ahead_of_the_tip_and_takes_its_clause():
    (region,) = MarkerRegionMiner().mine(figure(), SPLIT, [])
    assert region.marker_ids == ["m0"] and region.texts == ["Arrow marks a cyst"]
    cx, cy = box_center(region.box)
    assert cx > 110.0 and abs(cy - 100.0) < 1e-6  # shifted along the pointing direction (+x)
    # the asterisk's clause names panel B only, so it gives no region in A


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
