"""Region mining: the area each marker points at, paired with the caption clause that mentions it.

Geometry (figure pixels, clipped to the marker's panel):

* arrow / arrowhead with a tip: a square around the tip, shifted ``lead`` of its side along the
  pointing direction; its side is ``arrow_scale`` x the arrow's length, within ``[min_frac, max_frac]``
  of the panel's short side;
* asterisk / symbol: a square of ``symbol_scale`` x the glyph size centred on it, same bounds;
* box, circle and inset: the marked box itself;
* ``band_marker`` (a triangle beside a blot band) and ``connector`` (a diagram arrow): no region. The
  marker detector tells them from pointers so that they are treated apart: a band marker labels a
  band, which the caption does not describe as a marked area, and a connector points at nothing in a
  picture. Neither gates caption-grounded proposals either.

Dual-path fusion (parsers that also propose caption-grounded boxes): a proposal is kept only when its
centre lies within ``tau`` (normalised by the panel diagonal) of a marker centre; regions of markers
with no kept proposal around them are dilated by ``dilation``; then NMS over the union at ``nms_iou``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from panel2patch.components import RegionMiner
from panel2patch.data import Box, CaptionSplit, Figure, Marker, MarkerClause, Panel, Region
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.boxes import box_center, box_clip, box_dilate, box_nms

#: which caption clause kinds describe which marker kinds
CLAUSE_KINDS: dict[str, tuple[str, ...]] = {
    "arrow": ("arrow", "arrowhead"),
    "arrowhead": ("arrowhead", "arrow"),
    "asterisk": ("asterisk", "symbol"),
    "symbol": ("symbol", "asterisk"),
    "box": ("box",),
    "circle": ("circle",),
    "inset": ("inset", "box"),
}


#: Marker kinds that mark no region and support no proposal (see the module docstring).
NOT_MINED: tuple[str, ...] = ("band_marker", "connector")


def _square(cx: float, cy: float, side: float) -> Box:
    half = side / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


class MarkerRegionMiner(RegionMiner):
    """Regions from markers (and, when given, parser proposals gated by marker proximity)."""

    def __init__(
        self,
        arrow_scale: float = 1.2,
        symbol_scale: float = 4.0,
        lead: float = 0.3,
        min_frac: float = 0.08,
        max_frac: float = 0.5,
        tau: float = 0.15,
        dilation: float = 1.5,
        nms_iou: float = 0.5,
        require_text: bool = True,
    ) -> None:
        self.arrow_scale, self.symbol_scale, self.lead = arrow_scale, symbol_scale, lead
        self.min_frac, self.max_frac = min_frac, max_frac
        self.tau, self.dilation, self.nms_iou = tau, dilation, nms_iou
        self.require_text = require_text

    def marker_box(self, marker: Marker, panel: Panel) -> Box | None:
        """The area ``marker`` points at, in figure pixels, or None for markers that mark nothing."""
        pw, ph = panel.box[2] - panel.box[0], panel.box[3] - panel.box[1]
        lo, hi = self.min_frac * min(pw, ph), self.max_frac * min(pw, ph)
        mw, mh = marker.box[2] - marker.box[0], marker.box[3] - marker.box[1]
        if marker.kind in NOT_MINED:
            return None
        if marker.kind in ("arrow", "arrowhead"):
            side = min(max(self.arrow_scale * max(mw, mh), lo), hi)
            if marker.tip is None:
                cx, cy = box_center(marker.box)
            else:
                cx, cy = marker.tip
                if marker.direction is not None:
                    rad = math.radians(marker.direction)  # counter-clockwise, y up
                    cx += self.lead * side * math.cos(rad)
                    cy -= self.lead * side * math.sin(rad)
            box = _square(cx, cy, side)
        elif marker.kind in ("asterisk", "symbol"):
            side = min(max(self.symbol_scale * max(mw, mh), lo), hi)
            box = _square(*box_center(marker.box), side)
        elif marker.kind in ("box", "circle", "inset"):
            box = marker.box
        else:
            return None
        box = box_clip(box, panel.box)
        return box if box[2] > box[0] and box[3] > box[1] else None

    @staticmethod
    def texts(marker: Marker, panel: Panel, clauses: Sequence[MarkerClause]) -> list[str]:
        """Clauses of a matching kind that name the panel (or no panel), then the marker's own text."""
        kinds = CLAUSE_KINDS.get(marker.kind, (marker.kind,))
        out = []
        for clause in clauses:
            if clause.kind not in kinds:
                continue
            if clause.labels and panel.label not in clause.labels:
                continue
            if clause.text not in out:
                out.append(clause.text)
        if marker.text and marker.text not in out:
            out.append(marker.text)
        return out

    def mine(self, figure: Figure, split: CaptionSplit, proposals: Sequence[Region]) -> list[Region]:
        panels = {p.id: p for p in figure.panels}
        marker_regions: list[Region] = []
        for marker in figure.markers:
            panel = panels.get(marker.panel_id) if marker.panel_id else None
            if panel is None:
                continue
            box = self.marker_box(marker, panel)
            if box is None:
                continue
            texts = self.texts(marker, panel, split.clauses)
            if self.require_text and not texts:
                continue
            marker_regions.append(
                Region(id="", panel_id=panel.id, box=box, marker_ids=[marker.id], texts=texts,
                       score=marker.score, provenance=f"marker:{marker.kind}")
            )
        if not proposals:
            return numbered(marker_regions)
        return numbered(self.fuse(figure, marker_regions, proposals))

    def fuse(self, figure: Figure, marker_regions: list[Region], proposals: Sequence[Region]) -> list[Region]:
        """Dual-path fusion (module docstring): proposals kept near a marker, unsupported marker regions dilated,
        NMS over the union; ids are left to the caller."""
        panels = {p.id: p for p in figure.panels}
        kept: list[Region] = []
        supported: set[str] = set()
        for prop in proposals:
            panel = panels.get(prop.panel_id)
            if panel is None:
                continue
            diag = math.hypot(panel.box[2] - panel.box[0], panel.box[3] - panel.box[1]) or 1.0
            cx, cy = box_center(prop.box)
            near = [
                m.id for m in figure.markers
                if m.panel_id == prop.panel_id and m.kind not in NOT_MINED
                and math.hypot(cx - box_center(m.box)[0], cy - box_center(m.box)[1]) / diag <= self.tau
            ]
            if near:
                supported.update(near)
                kept.append(Region(id="", panel_id=prop.panel_id, box=box_clip(prop.box, panel.box), marker_ids=near,
                                   texts=list(prop.texts), score=prop.score, provenance=prop.provenance or "proposal"))
        for region in marker_regions:
            if not supported.intersection(region.marker_ids) and not region.provenance.endswith("+dilated"):
                region.box = box_clip(box_dilate(region.box, self.dilation), panels[region.panel_id].box)
                region.provenance += "+dilated"
        union = kept + marker_regions
        if len(union) < 2:
            return union
        keep = box_nms([r.box for r in union], [r.score for r in union], self.nms_iou)
        return [union[k] for k in sorted(keep)]



def numbered(regions: list[Region]) -> list[Region]:
    """``regions`` with ids ``r0``, ``r1`` ... in order."""
    for n, region in enumerate(regions):
        region.id = f"r{n}"
    return regions


@hookimpl
def register_region_miners(register):
    register("marker_regions", MarkerRegionMiner)
