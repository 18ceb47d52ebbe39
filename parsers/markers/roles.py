"""Step 4 of the detector: which arrows point at a feature, which mark blot bands, which are diagram arrows.

Shape alone cannot tell a pointer from the arrows of a schematic; where it is drawn can
(:mod:`panel2patch.parsers.markers.context`). A marker is *on paper* when the ground around it is flat
and light (flat dark ground is a fluorescence or darkfield picture's), and it points *at a picture*
when most of the ground ahead of its tip is off the paper's level and not a flat light fill.

* ``band_marker``: short, level, dark triangles drawn on paper beside a greyscale picture, in a column
  (two or more with the same direction, tips level with one another) or alone where the picture's
  grey ground fills the area ahead: the band labels of western blots and gels. An arrow with a shaft
  found there stays an ``arrow`` (it points at its band) and never becomes a connector.
* ``arrow`` / ``arrowhead`` (pointers): drawn on a picture, or on paper pointing at one (an arrow from
  the margin into a micrograph). In photo panels (and panels of unknown kind) a bare arrowhead on
  paper is kept as well: pointer glyphs stand in a picture's margin and on the flat parts of
  renderings and cartoons.
* ``connector``: an arrow with a shaft drawn on paper that points at no picture, in a panel of known
  kind: flow-chart and schematic connectors, timelines, axis arrows, vectors in plots. Not a pointer.
* Dropped: a bare triangle on the paper of a chart panel that points at no picture (a data or legend
  marker, a Delta), and a bare arrowhead smaller than ``min_head`` pixels (chart data markers and
  fragments of fluorescence are that small; pointers are drawn about as large as the figure's text).
* Boxes and insets that frame plain light paper (legend swatches and frames, flow-chart and table
  boxes) are dropped too (:func:`drop_paper_boxes`): zoom boxes, highlights and insets frame pictures.
"""

from __future__ import annotations

import math

import numpy as np

from .context import LIGHT, Context, flat_share, marker_context, mode_level
from .found import FoundMarker
from .layers import Layers

#: Flat share of the surround at and above which a marker is drawn on paper (see :mod:`.context`).
ON_PAPER = 0.7
#: Horizontal within this many degrees (band markers).
LEVEL_DEGREES = 12.0
#: Paper is light: grey level of the surround's most common level at and above which it can be paper.
PAPER_LEVEL = LIGHT
#: Flat share of a box's inside at and above which (on light paper) it frames nothing of a picture.
PAPER_BOX_SHARE = 0.8


def assign_roles(found: list[FoundMarker], layers: Layers, panel_kind: str, min_head: float) -> list[FoundMarker]:
    """Arrows and arrowheads of ``found`` re-typed (or dropped) by where they are drawn; others unchanged."""
    arrows = [f for f in found if f.kind in ("arrow", "arrowhead") and f.tip is not None]
    for f in arrows:
        f.context = marker_context(layers, f)
    band = _band_columns(arrows, layers)
    out = []
    for f in found:
        if f.kind not in ("arrow", "arrowhead") or f.tip is None:
            out.append(f)
            continue
        if id(f) in band:
            if f.kind == "arrowhead":
                f.kind = "band_marker"  # an arrow beside a blot stays an arrow: a pointer at its band
        elif f.kind == "arrowhead" and f.size < min_head:
            continue
        elif on_paper(f.context):
            at_picture = f.context.at_picture
            if f.kind == "arrowhead":
                if panel_kind == "chart" and not at_picture:
                    continue  # a chart glyph
            elif not at_picture and panel_kind != "unknown":
                f.kind = "connector"
        out.append(f)
    return out


def drop_paper_boxes(found: list[FoundMarker], layers: Layers, panel_kind: str) -> list[FoundMarker]:
    """Boxes and insets less those that frame plain paper (a legend swatch, a flow-chart or table box, a
    legend frame): a zoom box, a highlight or an inset frames part of a picture, a heat map or a
    rendering, which is not nearly all one light grey level inside. Panels of unknown kind keep all."""
    if panel_kind == "unknown":
        return found
    h, w = layers.gray.shape
    out = []
    for f in found:
        if f.kind in ("box", "inset"):
            x0, y0, x1, y1 = (int(round(v)) for v in f.box)
            inside = layers.gray[max(0, y0 + 3) : min(h, y1 - 3), max(0, x0 + 3) : min(w, x1 - 3)]
            if inside.size >= 16 and flat_share(inside) >= PAPER_BOX_SHARE and mode_level(inside) >= PAPER_LEVEL:
                continue
        out.append(f)
    return out


def on_paper(c: Context) -> bool:
    """Drawn on paper: a flat, light surround. Flat dark ground is a picture's (fluorescence, darkfield)."""
    return c.surround >= ON_PAPER and c.paper >= PAPER_LEVEL


def _level(direction: float | None) -> bool:
    if direction is None:
        return False
    d = direction % 180.0
    return min(d, 180.0 - d) <= LEVEL_DEGREES


def _band_columns(arrows: list[FoundMarker], layers: Layers) -> set[int]:
    """Ids of the arrows that stand in a column of band markers (see the module docstring)."""
    cands = []
    out: set[int] = set()
    for f in arrows:
        x0, y0, x1, y1 = f.box
        long_side, short_side = max(x1 - x0, y1 - y0), max(1.0, min(x1 - x0, y1 - y0))
        if not _level(f.direction) or not on_paper(f.context) or long_side > 2.5 * short_side:
            continue
        ahead = _grey_ahead(f, layers)
        if ahead is None or not _dark(f, layers):
            continue
        cands.append(f)
        if ahead >= 0.5:  # a grey picture (a blot's ground) fills the area ahead: no column needed
            out.add(id(f))
    for f in cands:
        height = f.box[3] - f.box[1]
        right = math.cos(math.radians(f.direction)) > 0
        for g in cands:
            if g is f or (math.cos(math.radians(g.direction)) > 0) != right:
                continue
            if abs(g.tip[0] - f.tip[0]) <= max(4.0, 0.15 * height) and abs(g.tip[1] - f.tip[1]) >= 0.8 * height:
                out.add(id(f))
                break
    return out


def _dark(f: FoundMarker, layers: Layers) -> bool:
    """Whether the marker is drawn in black or dark grey (band markers are; coloured pointers beside a
    picture are not), read at the middle of its head (a third of the way from its base to its tip)."""
    h, w = layers.gray.shape
    tail = f.tail if f.tail is not None and f.kind == "arrowhead" else None
    if tail is None:
        return True  # an arrow's shaft and head share its layer's colour: the layer tells
    x = int(round((2 * tail[0] + f.tip[0]) / 3.0))
    y = int(round((2 * tail[1] + f.tip[1]) / 3.0))
    patch = layers.rgb[max(0, y - 1) : min(h, y + 2), max(0, x - 1) : min(w, x + 2)].reshape(-1, 3).astype(np.int16)
    if patch.size == 0:
        return False
    colour = np.median(patch, axis=0)
    return bool(colour.max() - colour.min() <= 40 and colour.mean() <= f.context.paper - 80)


def _grey_ahead(f: FoundMarker, layers: Layers) -> float | None:
    """None unless the area ahead of the tip (three marker lengths, three marker heights) is greyscale and
    holds something drawn or imaged (darker pixels than the paper, in no colour); else the share of
    that area off the paper's grey level by 6 or more (about 1 ahead of a blot with a grey ground)."""
    h, w = layers.gray.shape
    x0, y0, x1, y1 = f.box
    size = max(x1 - x0, 4.0)
    height = max(y1 - y0, 4.0)
    right = math.cos(math.radians(f.direction)) > 0
    tx, ty = f.tip
    ax0, ax1 = (tx + 1, tx + 1 + 3 * size) if right else (tx - 1 - 3 * size, tx - 1)
    ax0, ax1 = max(0, int(ax0)), min(w, int(math.ceil(ax1)))
    ay0, ay1 = max(0, int(ty - 1.5 * height)), min(h, int(math.ceil(ty + 1.5 * height)))
    if ax1 - ax0 < 3 or ay1 - ay0 < 3:
        return None
    rgb = layers.rgb[ay0:ay1, ax0:ax1].astype(np.int16)
    gray = layers.gray[ay0:ay1, ax0:ax1].astype(np.int16)
    ink = gray <= f.context.paper - 30
    if ink.sum() < max(8.0, 0.5 * (ay1 - ay0)):  # not even a frame line across the way
        return None
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    if np.median(chroma[ink]) > 25 or np.median(chroma) > 25:
        return None
    return float(np.mean(np.abs(gray - f.context.paper) >= 6))
