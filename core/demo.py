"""Demo compound figures with exact ground truth: ``panel2patch demo-data OUT --n N --seed S``.

Each figure is assembled from real biomedical images bundled inside the scikit-image wheel (nothing is
downloaded; see :data:`PHOTO_SOURCES`) and from bar, line and scatter charts drawn with PIL. Layouts,
gutters, backgrounds, panel-label styles and positions, insets, markers and caption phrasing vary; the
same ``(seed, index)`` always gives byte-identical files.

Output of :func:`write_demo`::

    OUT/images/<id>.png          the figure (ids demo-00000, demo-00001, ...)
    OUT/captions.jsonl           {"id", "image" (relative to OUT), "caption"} per line, in id order
    OUT/annotations/<id>.json    the ground truth, :meth:`panel2patch.data.Figure.to_json`
    OUT/demo.json                seed, n, versions, counts and the scikit-image images used

Ground-truth conventions (all boxes ``(x0, y0, x1, y1)`` in figure pixels, origin top-left; ``x1``/``y1``
are exclusive pixel edges, so a box is the exact extent of the pixels it covers):

* Panel ``box``: the panel's full extent, i.e. its image area (photo or chart, axes and tick labels
  included) united with its label box when the label is printed outside the image area, in the margin
  strip next to it. Panels never overlap. ``label`` is the bare label as read (``"A"``, ``"b"``, ``"ii"``,
  ``"A1"``; parentheses and circles are decoration, not part of the label); ``label_box`` covers every
  drawn pixel of the label (glyphs, parentheses, circle, background patch). Single-panel figures may be
  unlabelled (``label`` None). ``kind`` is ``"photo"`` or ``"chart"``; ``provenance`` names the content
  (``skimage.data.retina``, ``chart:bar``).
* Marker ``box``: the tight box of the marker's drawn pixels (its text label excluded). Kinds: ``arrow``
  (shaft + filled triangular head; ``tip`` is the head's apex, ``direction`` the pointing direction in
  degrees counter-clockwise from +x with y up), ``asterisk`` (a ``*`` glyph or drawn strokes), ``box``
  (solid or dashed rectangle outline, including the outline marking an inset's source area and the one
  marking an area enlarged in another panel) and ``inset`` (the zoomed crop with its border). ``text`` is
  the short text printed next to the marker ("Stent", "Site A") or None. ``panel_id`` is always set.
* Region ``box``: arrow, a square of side ``clip(0.8 * arrow length, 24, 96)`` centred on the tip;
  box and inset, the interior inside the outline; asterisk, a square three times the asterisk's larger
  side centred on it. Region boxes are clipped to the panel's image area. ``marker_ids`` holds the one
  marker the region comes from; ``texts`` holds every marker clause of the marker's kind in the panel's
  sub-caption.
* Captions follow the grammar in the "Caption grammar" section below. For each panel label ``L``,
  ``subcaption = preamble + " " + segment(L) + " " + shared`` with empty parts dropped, where
  ``preamble`` is the text before the first label token, ``segment(L)`` the text after the label
  token(s) that mention ``L`` up to the next label token (token removed, whitespace stripped; a grouped
  token such as ``(B, C)`` or ``c–e`` gives its segment to every panel it names) and ``shared`` the
  trailing sentences from :data:`SHARED_SENTENCES` that end the caption. ``Panel.preamble`` holds the
  preamble alone (None when empty). An unlabelled single panel has no label token: its preamble is the
  whole caption before the shared sentences and its sub-caption the whole caption.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shutil
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import __version__
from .data import Box, Figure, Marker, Panel, Region
from .errors import Panel2PatchError

#: Bumped whenever the same seed would produce different figures.
GENERATOR_VERSION = 1

#: Figure sides stay within these bounds (pixels).
MIN_SIDE, MAX_SIDE = 400, 1400

# --------------------------------------------------------------------------------------------------
# Caption grammar: every word a demo caption can contain comes from this section.
# --------------------------------------------------------------------------------------------------

PREAMBLES = (
    "Histological and imaging features of experimental colitis.",
    "Retinal findings in a model of diabetic microangiopathy.",
    "Morphology of suspended cells under different culture conditions.",
    "Multimodal imaging of tissue remodelling after injury.",
    "Quantitative phase and fundus imaging of the study cohort.",
    "Characterisation of the lesion model used throughout this study.",
    "Representative images and quantification of the main findings.",
)
PREAMBLE_EXTRAS = (
    "Images are representative of three independent experiments.",
    "All samples were processed in parallel.",
)
#: Sentences that may end a caption and belong to every panel.
SHARED_SENTENCES = (
    "Scale bars, 50 µm.",
    "Scale bar, 100 µm.",
    "Data are mean ± s.d.",
    "Data are representative of three independent experiments.",
)
CONDITIONS = (
    "at baseline", "at day 3", "at day 7", "after treatment", "in the control group",
    "in the treated group", "at 4 weeks",
)
CHART_TEXT = {
    "bar": ("Quantification of", ("gland area", "lesion count per field", "vessel density", "signal intensity")),
    "line": ("Time course of", ("cell diameter", "mean signal intensity", "lesion area", "perfusion")),
    "scatter": ("Correlation of", ("gland area with stain intensity", "vessel density with lesion count",
                                   "cell diameter with phase shift")),
}
#: Marker clauses per kind; ``{t}`` is a target phrase of the panel's image, ``{x}`` a marker text,
#: ``{p}`` the label of the panel showing an enlarged area.
CLAUSES = {
    "arrow_one": ("The arrow marks {t}.", "Arrow indicates {t}.", "The arrow points to {t}."),
    "arrow_many": ("Arrows indicate {t}.", "Arrows point to {t}."),
    "arrow_text": ('The arrow labelled "{x}" marks {t}.',),
    "asterisk_one": ("Asterisk marks {t}.", "The asterisk denotes {t}."),
    "asterisk_many": ("Asterisks mark {t}.", "Asterisks denote {t}."),
    "box_solid": ("The box outlines {t}.", "The boxed region highlights {t}."),
    "box_dashed": ("Dashed box shows {t}.", "The dashed box outlines {t}."),
    "box_zoom": ("The boxed area is enlarged in {p}.",),
    "box_inset": ("The box marks the area enlarged in the inset.",),
    "inset": ("Inset shows a higher magnification of the boxed area.", "Inset, magnified view of {t}."),
}
#: Label-token forms per caption style; ``{l}`` one label, ``{a}``/``{b}`` the first/last of a group.
TOKENS = {
    "paren": {"one": ("({l})",), "pair": ("({a}, {b})", "({a} and {b})"), "range": ("({a}–{b})", "({a}-{b})")},
    "comma": {"one": ("{l},",), "pair": ("{a} and {b},",), "range": ("{a}–{b},", "{a}–{b}")},
    "close": {"one": ("{l})",), "pair": ("{a} and {b})",), "range": ("{a}–{b})",)},
}
MARKER_TEXTS = ("Stent", "Site A", "Site B", "Lesion", "Gland", "Nucleus", "OD")


@dataclass(frozen=True)
class PhotoSource:
    """A bundled scikit-image picture: loader name, file in the wheel, licence and caption words."""

    function: str
    filename: str
    license: str
    subject: str
    targets: tuple[str, ...]
    window: tuple[float, float, float, float]  # crop limits, fractions of width/height


PHOTO_SOURCES: dict[str, PhotoSource] = {
    s.function: s
    for s in (
        PhotoSource("immunohistochemistry", "ihc.png", "no known copyright restrictions (CMMI)",
                    "FHL2 immunostaining of colonic glands",
                    ("DAB-positive epithelium", "the gland lumen", "the lamina propria", "a crypt"),
                    (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("cell", "cell.png", "CC0", "Quantitative phase image of a suspended cell",
                    ("the cell membrane", "the nucleus", "a cytoplasmic vesicle"), (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("retina", "retina.jpg", "CC0", "Colour fundus photograph of the left eye",
                    ("the optic disc", "a retinal vein", "the macula", "an arteriole"), (0.18, 0.18, 0.82, 0.82)),
        PhotoSource("microaneurysms", "microaneurysms.png", "CC0", "Fundus detail",
                    ("microaneurysms", "a small haemorrhage", "a capillary"), (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("shepp_logan_phantom", "phantom.png", "synthetic (mathematical phantom)",
                    "Reconstructed CT slice of the head phantom",
                    ("the ventricle", "a small lesion", "the skull"), (0.08, 0.08, 0.92, 0.92)),
    )
}


def _pick(rng: np.random.Generator, seq: Any) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _token(style: str, labels: list[str], numbered: bool, rng: np.random.Generator) -> str:
    forms = TOKENS[style]
    if len(labels) == 1:
        return _pick(rng, forms["one"]).format(l=labels[0])
    if len(labels) == 2 or numbered:
        return _pick(rng, forms["pair"]).format(a=labels[0], b=labels[-1])
    return _pick(rng, forms["range"]).format(a=labels[0], b=labels[-1])


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _description(rng: np.random.Generator, plan: list[_PanelPlan]) -> str:
    """One sentence describing a group of panels that show the same kind of content."""
    first = plan[0]
    conditions = [CONDITIONS[i] for i in sorted(rng.choice(len(CONDITIONS), size=len(plan), replace=False))]
    if first.kind == "chart":
        verb, subjects = CHART_TEXT[first.chart]
        return f"{verb} {_pick(rng, subjects)} {_joined(conditions)}."
    return f"{PHOTO_SOURCES[first.source].subject} {_joined(conditions)}."


def _clauses(rng: np.random.Generator, plan: list[_PanelPlan], labels: list[str]) -> dict[str, list[str]]:
    """Marker clauses of a caption segment, by marker kind, for the markers drawn in ``plan``."""
    markers = [m for p in plan for m in p.markers]
    out: dict[str, list[str]] = {}
    for p in plan:
        targets = PHOTO_SOURCES[p.source].targets if p.source else ("the region of interest",)
        for m in p.markers:
            m.target = _pick(rng, targets)
    arrows = [m for m in markers if m.kind == "arrow"]
    if arrows:
        key = "arrow_one" if len(arrows) == 1 else "arrow_many"
        texts = [_pick(rng, CLAUSES[key]).format(t=arrows[0].target)]
        texts += [_pick(rng, CLAUSES["arrow_text"]).format(x=m.text, t=m.target) for m in arrows if m.text]
        out["arrow"] = texts
    stars = [m for m in markers if m.kind == "asterisk"]
    if stars:
        key = "asterisk_one" if len(stars) == 1 else "asterisk_many"
        out["asterisk"] = [_pick(rng, CLAUSES[key]).format(t=stars[0].target)]
    boxes: list[str] = []
    for role in ("solid", "dashed", "inset", "zoom"):
        for m in [m for m in markers if m.kind == "box" and m.role == role][:1]:
            zoom_label = labels[m.zoom_into] if m.zoom_into is not None else ""
            boxes.append(_pick(rng, CLAUSES[f"box_{role}"]).format(t=m.target, p=zoom_label))
    if boxes:
        out["box"] = boxes
    insets = [m for m in markers if m.kind == "inset"]
    if insets:
        out["inset"] = [_pick(rng, CLAUSES["inset"]).format(t=insets[0].target)]
    return out


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------


def bundled_sources() -> dict[str, Path]:
    """The :data:`PHOTO_SOURCES` files present inside the installed scikit-image, by loader name.

    Only files shipped in the wheel count: scikit-image downloads the others on demand, which the demo
    never does.
    """
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return {name: folder / s.filename for name, s in PHOTO_SOURCES.items() if (folder / s.filename).is_file()}


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> Image.Image:
    import skimage
    import skimage.data

    available = bundled_sources()
    if name not in available:
        raise Panel2PatchError(
            f"scikit-image {skimage.__version__} does not ship "
            f"{PHOTO_SOURCES[name].filename}; the demo uses only bundled images "
            f"({', '.join(available) or 'none found'}); install scikit-image>=0.24"
        )
    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB" if arr.ndim == 3 else "L")


_LUTS = {
    "gray": lambda g: (g, g, g),
    "green": lambda g: (0, g, 0),
    "magenta": lambda g: (g, 0, g),
    "hot": lambda g: (min(255, 3 * g), max(0, min(255, 3 * g - 255)), max(0, 3 * g - 510)),
}


def _source_picture(name: str, rng: np.random.Generator) -> Image.Image:
    """The source picture, randomly flipped and (for grayscale sources) pseudo-coloured, as RGB."""
    img = _photo(name)
    if img.mode == "L":
        lut = _LUTS[_pick(rng, ("gray", "gray", "green", "magenta", "hot"))]
        table = [c for channel in range(3) for c in (lut(g)[channel] for g in range(256))]
        img = img.convert("RGB").point(table)
    for op in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM):
        if rng.random() < 0.5:
            img = img.transpose(op)
    return img


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's bundled scalable font: no dependence on system fonts.
    return ImageFont.load_default(size=size)


# --------------------------------------------------------------------------------------------------
# Drawing primitives: every shape is drawn through a mask so that its exact pixel box is known.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rect:
    """Integer pixel rectangle; ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    def box(self) -> Box:
        return (float(self.x0), float(self.y0), float(self.x1), float(self.y1))


def _union(a: Box, b: Box | None) -> Box:
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _clip(box: Box, rect: _Rect) -> Box:
    return (max(box[0], rect.x0), max(box[1], rect.y0), min(box[2], rect.x1), min(box[3], rect.y1))


def _overlaps(box: Box, others: list[Box], margin: float = 4.0) -> bool:
    return any(
        box[0] < o[2] + margin and o[0] < box[2] + margin and box[1] < o[3] + margin and o[1] < box[3] + margin
        for o in others
    )


def _inside(box: Box, rect: _Rect, margin: float = 0.0) -> bool:
    return (box[0] >= rect.x0 + margin and box[1] >= rect.y0 + margin and box[2] <= rect.x1 - margin
            and box[3] <= rect.y1 - margin)


def _stamp(canvas: Image.Image, area: _Rect, color: tuple[int, int, int], draw_fn) -> Box | None:
    """Draw ``draw_fn(ImageDraw)`` (area-local coordinates) in ``color``, clipped to ``area``.

    Returns the figure-pixel box of the pixels actually drawn, or None when nothing was drawn.
    """
    mask = Image.new("L", (area.w, area.h), 0)
    draw_fn(ImageDraw.Draw(mask))
    bbox = mask.getbbox()
    if bbox is None:
        return None
    canvas.paste(color, (area.x0, area.y0, area.x1, area.y1), mask)
    return (float(area.x0 + bbox[0]), float(area.y0 + bbox[1]), float(area.x0 + bbox[2]), float(area.y0 + bbox[3]))


def _luma(canvas: Image.Image, box: Box) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    region = canvas.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))).convert("L")
    return float(np.asarray(region, dtype=np.float64).mean())


_INKS = ((255, 255, 255), (0, 0, 0), (255, 230, 0), (230, 20, 20), (20, 40, 200), (0, 220, 255))


def _ink(rng: np.random.Generator, canvas: Image.Image, box: Box) -> tuple[int, int, int]:
    """A marker colour that stands out from the mean colour under ``box``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    under = np.asarray(canvas.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))), dtype=np.float64).reshape(-1, 3).mean(0)
    distance = [float(np.linalg.norm(np.asarray(ink) - under)) for ink in _INKS]
    good = [ink for ink, dist in zip(_INKS, distance) if dist > 220]
    return _pick(rng, good) if good else _INKS[int(np.argmax(distance))]


def _text_size(text: str, font: ImageFont.FreeTypeFont, stroke: int = 0) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` drawn at the origin with anchor "lt"."""
    return ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font, anchor="lt", stroke_width=stroke)


# --------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------

# A layout node is "leaf" or (axis, [(weight, node), ...]) with axis "h" (side by side) or "v" (stacked).


def _grid(rows: int, cols: int) -> Any:
    row = "leaf" if cols == 1 else ("h", [(1.0, "leaf")] * cols)
    return row if rows == 1 else ("v", [(1.0, row)] * rows)


def _layout(rng: np.random.Generator) -> tuple[str, Any]:
    kind = _pick(rng, ("grid", "grid", "grid", "grid", "tall_stack", "spanning", "mixed_rows"))
    if kind == "grid":
        return kind, _grid(int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    if kind == "tall_stack":
        stack = ("v", [(1.0, "leaf")] * int(rng.integers(2, 4)))
        tall = (float(rng.uniform(0.8, 1.5)), "leaf")
        return kind, ("h", [tall, (1.0, stack)] if rng.random() < 0.6 else [(1.0, stack), tall])
    if kind == "spanning":
        row = ("h", [(1.0, "leaf")] * int(rng.integers(2, 5)))
        span = (float(rng.uniform(0.8, 1.4)), "leaf")
        return kind, ("v", [span, (1.0, row)] if rng.random() < 0.5 else [(1.0, row), span])
    rows = [_grid(1, int(c)) for c in rng.integers(1, 5, size=int(rng.integers(2, 4)))]
    return kind, ("v", [(1.0, r) for r in rows])


def _nominal(node: Any) -> tuple[int, int]:
    """Leaves across and down: the size of the layout in cells."""
    if node == "leaf":
        return 1, 1
    axis, children = node
    sizes = [_nominal(c) for _, c in children]
    if axis == "h":
        return sum(s[0] for s in sizes), max(s[1] for s in sizes)
    return max(s[0] for s in sizes), sum(s[1] for s in sizes)


def _allocate(node: Any, rect: _Rect, gutter: int, out: list[_Rect]) -> None:
    """Cut ``rect`` into leaf rectangles in reading order, ``gutter`` pixels apart."""
    if node == "leaf":
        out.append(rect)
        return
    axis, children = node
    length = rect.w if axis == "h" else rect.h
    free = length - gutter * (len(children) - 1)
    total = sum(w for w, _ in children)
    pos = rect.x0 if axis == "h" else rect.y0
    for i, (weight, child) in enumerate(children):
        size = free - (pos - (rect.x0 if axis == "h" else rect.y0) - gutter * i) if i == len(children) - 1 \
            else int(free * weight / total)
        sub = _Rect(pos, rect.y0, pos + size, rect.y1) if axis == "h" else _Rect(rect.x0, pos, rect.x1, pos + size)
        _allocate(child, sub, gutter, out)
        pos += size + gutter


# --------------------------------------------------------------------------------------------------
# Figure assembly
# --------------------------------------------------------------------------------------------------


@dataclass
class _MarkerPlan:
    kind: str
    box: Box
    region: Box
    role: str = ""  # boxes: solid / dashed / inset / zoom
    tip: tuple[float, float] | None = None
    direction: float | None = None
    text: str | None = None
    zoom_into: int | None = None
    target: str = ""


@dataclass
class _PanelPlan:
    index: int
    cell: _Rect
    content: _Rect
    kind: str
    source: str | None = None
    chart: str = ""
    markers: list[_MarkerPlan] = field(default_factory=list)
    occupied: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class _Style:
    background: tuple[int, int, int]
    labels: str  # upper / lower / roman / numbered
    printed: str  # plain / paren / circled
    bold: bool
    boxed: bool
    corner: str  # tl / tr / bl / br
    outside: str  # "" (inside the image) / "top" / "bottom" / "left"
    font_size: int


_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii")


def _labels(style: _Style, cells: list[_Rect]) -> list[str]:
    n = len(cells)
    if style.labels == "upper":
        return [chr(ord("A") + i) for i in range(n)]
    if style.labels == "lower":
        return [chr(ord("a") + i) for i in range(n)]
    if style.labels == "roman":
        return list(_ROMAN[:n])
    # Row letter + column number, rows taken from the cells' top edges.
    tops = sorted({c.y0 for c in cells})
    labels, count = [], {}
    for c in cells:
        row = tops.index(c.y0)
        count[row] = count.get(row, 0) + 1
        labels.append(f"{chr(ord('A') + row)}{count[row]}")
    return labels


def _printed(style: _Style, label: str) -> str:
    return f"({label})" if style.printed == "paren" else label


def _plan_style(rng: np.random.Generator, cells: list[_Rect], layout: str) -> _Style:
    background = (0, 0, 0) if rng.random() < 0.25 else (255, 255, 255)
    numbered_ok = layout in ("grid", "mixed_rows") and len({c.y0 for c in cells}) > 1
    labels = _pick(rng, ("upper", "upper", "upper", "lower", "lower", "roman") + (("numbered",) if numbered_ok else ()))
    printed = _pick(rng, ("plain", "plain", "paren", "circled")) if labels != "numbered" else "plain"
    if printed == "circled" and labels == "roman":
        printed = "plain"
    smallest = min(min(c.w, c.h) for c in cells)
    size = int(np.clip(smallest * rng.uniform(0.07, 0.11), 12, 34))
    outside = "" if rng.random() < 0.6 else _pick(rng, ("top", "top", "bottom", "left"))
    corner = _pick(rng, ("tl", "tl", "tl", "tr", "bl", "br"))
    if outside == "top":
        corner = _pick(rng, ("tl", "tl", "tr"))
    elif outside == "bottom":
        corner = _pick(rng, ("bl", "br"))
    elif outside == "left":
        corner = "tl"
    bold = bool(rng.random() < 0.6) and labels != "roman"  # a stroke merges the dot of "i" into its stem
    return _Style(background, labels, printed, bold, bool(rng.random() < 0.3), corner, outside, size)


def _label_extent(style: _Style, text: str) -> tuple[int, int]:
    """Width and height of a drawn label, decoration included."""
    font = _font(style.font_size)
    l, t, r, b = _text_size(text, font, 1 if style.bold else 0)
    if style.printed == "circled":  # a circle, not an ellipse, around the glyphs
        side = int(round(1.45 * max(r - l, b - t))) + 2
        return side, side
    pad = _label_pad(style)
    return r - l + 2 * pad, b - t + 2 * pad


def _label_pad(style: _Style) -> int:
    return max(3, style.font_size // 5) if (style.boxed or style.printed == "circled") else 0


def _content_rect(style: _Style, cell: _Rect, strip: tuple[int, int]) -> _Rect:
    gap = max(2, style.font_size // 6)
    if style.outside == "top":
        return _Rect(cell.x0, cell.y0 + strip[1] + gap, cell.x1, cell.y1)
    if style.outside == "bottom":
        return _Rect(cell.x0, cell.y0, cell.x1, cell.y1 - strip[1] - gap)
    if style.outside == "left":
        return _Rect(cell.x0 + strip[0] + gap, cell.y0, cell.x1, cell.y1)
    return cell


def _draw_label(canvas: Image.Image, rng: np.random.Generator, style: _Style, plan: _PanelPlan, text: str) -> Box:
    """Draw the panel label at its corner; returns the box of every pixel it drew."""
    font = _font(style.font_size)
    stroke = 1 if style.bold else 0
    w, h = _label_extent(style, text)
    area = plan.cell if style.outside else plan.content
    inset = 0 if style.outside else max(3, style.font_size // 4)
    x = area.x0 + inset if style.corner[1] == "l" else area.x1 - inset - w
    y = area.y0 + inset if style.corner[0] == "t" else area.y1 - inset - h
    if style.outside == "left":
        x, y = plan.cell.x0, plan.content.y0
    elif style.outside:
        x = plan.content.x0 if style.corner[1] == "l" else plan.content.x1 - w
    frame = (float(x), float(y), float(x + w), float(y + h))
    under = _luma(canvas, frame)
    if style.outside:
        under = _luma(canvas, (x, y, x + 1, y + 1))
    ink = (255, 255, 255) if under < 128 else (0, 0, 0)
    if style.boxed:
        patch = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
        ink = (255, 255, 255) if patch == (0, 0, 0) else (0, 0, 0)
        _stamp(canvas, plan.cell, patch, lambda d: d.rectangle(
            (x - plan.cell.x0, y - plan.cell.y0, x - plan.cell.x0 + w - 1, y - plan.cell.y0 + h - 1), fill=255))
    l, t, r, b = _text_size(text, font, stroke)
    ox = x - plan.cell.x0 + (w - (r - l)) / 2 - l
    oy = y - plan.cell.y0 + (h - (b - t)) / 2 - t

    def glyphs(d: ImageDraw.ImageDraw) -> None:
        d.text((ox, oy), text, fill=255, font=font, anchor="lt", stroke_width=stroke, stroke_fill=255)
        if style.printed == "circled":
            d.ellipse((x - plan.cell.x0, y - plan.cell.y0, x - plan.cell.x0 + w - 1, y - plan.cell.y0 + h - 1),
                      outline=255, width=max(1, style.font_size // 14))

    drawn = _stamp(canvas, plan.cell, ink, glyphs)
    return frame if style.boxed or drawn is None else drawn


#: Largest enlargement of a source picture in a panel; beyond it photos turn to blur.
MAX_UPSCALE = 3.0


def _max_window(source: str, content: _Rect) -> float:
    """Width (source pixels) of the largest window with the content's aspect ratio in ``source``."""
    src = PHOTO_SOURCES[source]
    W, H = _photo(source).size
    return min((src.window[2] - src.window[0]) * W, (src.window[3] - src.window[1]) * H * content.w / content.h)


def _fitting(sources: list[str], content: _Rect) -> list[str]:
    """The sources that fill ``content`` without enlarging more than :data:`MAX_UPSCALE` times."""
    fit = [s for s in sources if _max_window(s, content) * MAX_UPSCALE >= content.w]
    return fit or [max(sources, key=lambda s: _max_window(s, content))]


def _render_photo(plan: _PanelPlan, picture: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Box]:
    """Crop a window of the content's aspect ratio from ``picture``; returns the crop and its window."""
    src = PHOTO_SOURCES[plan.source]
    W, H = picture.size
    lx0, ly0, lx1, ly1 = src.window[0] * W, src.window[1] * H, src.window[2] * W, src.window[3] * H
    aspect = plan.content.w / plan.content.h
    max_w = min(lx1 - lx0, (ly1 - ly0) * aspect)
    smallest = min(1.0, max(0.45, plan.content.w / MAX_UPSCALE / max_w))
    cw = max_w * rng.uniform(smallest, 1.0)
    ch = cw / aspect
    x0 = lx0 + rng.uniform(0, lx1 - lx0 - cw)
    y0 = ly0 + rng.uniform(0, ly1 - ly0 - ch)
    window = (x0, y0, x0 + cw, y0 + ch)
    size = (plan.content.w, plan.content.h)
    return picture.resize(size, Image.Resampling.BICUBIC, box=window), window


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw)


def _fmt(v: float) -> str:
    return f"{round(v, 6):g}"


def _render_chart(plan: _PanelPlan, rng: np.random.Generator, dark: bool, reserve: tuple[int, int]) -> Image.Image:
    """A bar, line or scatter chart with axes, ticks, tick labels and axis titles, filling the content."""
    w, h = plan.content.w, plan.content.h
    bg, fg = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (0, 0, 0))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    fs = int(np.clip(min(w, h) / 17, 9, 16))
    font = _font(fs)
    palette = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
    left, right = 3 * fs + fs + 6, 2 * fs  # room for half of the last x tick label
    top, bottom = max(fs // 2, reserve[0]) + 4, 2 * fs + 8 + fs + reserve[1]
    px0, py0, px1, py1 = left, top, w - right, h - bottom
    if px1 - px0 < 30 or py1 - py0 < 30:  # too small for axes: a bare sparkline-like plot
        px0, py0, px1, py1 = 4, 4 + reserve[0], w - 4, h - 4 - reserve[1]
    kind = plan.chart
    if kind == "bar":
        k = int(rng.integers(2, 6))
        groups = ("Ctrl", "WT", "KO", "Veh", "Drug", "Sham", "Day 1", "Day 7")
        names = [groups[i] for i in rng.choice(len(groups), k, replace=False)]
        values = rng.uniform(0.2, 1.0, size=k) * _pick(rng, (1.0, 10.0, 50.0, 100.0))
        errors = values * rng.uniform(0.05, 0.2, size=k)
        ytop = float((values + errors).max())
    elif kind == "line":
        npts = int(rng.integers(5, 11))
        xs = np.arange(npts, dtype=float) * _pick(rng, (1, 2, 6, 12))
        series = [np.cumsum(rng.uniform(0.0, 1.0, size=npts)) * _pick(rng, (1.0, 5.0, 20.0))
                  for _ in range(int(rng.integers(1, 4)))]
        ytop = float(max(s.max() for s in series))
    else:
        npts = int(rng.integers(20, 61))
        xs = rng.uniform(0, 1, size=npts) * _pick(rng, (1.0, 10.0, 100.0))
        ys = xs * rng.uniform(0.3, 1.5) + rng.normal(0, 0.15, size=npts) * xs.max()
        ys = ys - min(0.0, ys.min())
        ytop = float(ys.max())
    ystep = _nice_step(max(ytop, 1e-6), 4)
    ymax = ystep * math.ceil(max(ytop, 1e-6) / ystep)

    def ypix(v: float) -> float:
        return py1 - (py1 - py0) * v / ymax

    d.line((px0, py0, px0, py1), fill=fg, width=1)
    d.line((px0, py1, px1, py1), fill=fg, width=1)
    v = 0.0
    while v <= ymax + 1e-9:
        y = ypix(v)
        d.line((px0 - 4, y, px0, y), fill=fg)
        d.text((px0 - 6, y), _fmt(v), fill=fg, font=font, anchor="rm")
        v += ystep
    if kind == "bar":
        slot = (px1 - px0) / k
        for i in range(k):
            cx = px0 + slot * (i + 0.5)
            bw = slot * 0.6
            d.rectangle((cx - bw / 2, ypix(values[i]), cx + bw / 2, py1), fill=palette[i % len(palette)])
            top_e, bot_e = ypix(values[i] + errors[i]), ypix(values[i] - errors[i])
            d.line((cx, top_e, cx, bot_e), fill=fg)
            d.line((cx - bw / 6, top_e, cx + bw / 6, top_e), fill=fg)
            d.text((cx, py1 + 4), names[i], fill=fg, font=font, anchor="mt")
        xtitle = "Group"
    else:
        xmax_raw = float(xs.max()) if xs.max() > 0 else 1.0
        xstep = _nice_step(xmax_raw, 4)
        xmax = xstep * math.ceil(xmax_raw / xstep)

        def xpix(v: float) -> float:
            return px0 + (px1 - px0) * v / xmax

        v = 0.0
        while v <= xmax + 1e-9:
            x = xpix(v)
            d.line((x, py1, x, py1 + 4), fill=fg)
            d.text((x, py1 + 5), _fmt(v), fill=fg, font=font, anchor="mt")
            v += xstep
        r = max(2, fs // 5)
        if kind == "line":
            for i, s in enumerate(series):
                pts = [(xpix(a), ypix(b)) for a, b in zip(xs, s)]
                d.line(pts, fill=palette[i], width=2)
                for x, y in pts:
                    d.ellipse((x - r, y - r, x + r, y + r), fill=palette[i])
            xtitle = _pick(rng, ("Time (h)", "Day", "Week"))
        else:
            for a, b in zip(xs, ys):
                x, y = xpix(a), ypix(b)
                d.ellipse((x - r, y - r, x + r, y + r), outline=palette[0], width=1)
            xtitle = _pick(rng, ("Area (px)", "Intensity (a.u.)", "Diameter (um)"))
    d.text(((px0 + px1) / 2, h - 3 - reserve[1]), xtitle, fill=fg, font=font, anchor="md")
    ytitle = _pick(rng, ("Count per field", "Relative intensity", "Vessel density (%)", "Area (mm2)"))
    tw = int(d.textlength(ytitle, font=font)) + 2
    tmp = Image.new("L", (tw, fs + 4), 0)
    ImageDraw.Draw(tmp).text((0, 0), ytitle, fill=255, font=font)
    tmp = tmp.rotate(90, expand=True)
    if tmp.height <= h:
        img.paste(fg, (1, int((py0 + py1 - tmp.height) / 2)), tmp)
    return img


def _place(rng: np.random.Generator, plan: _PanelPlan, make, tries: int = 40):
    """Sample ``make(rng)`` until its footprint lies inside the content, clear of occupied boxes."""
    for _ in range(tries):
        item = make(rng)
        if item is None:
            continue
        footprint = item[0]
        if _inside(footprint, plan.content, 2) and not _overlaps(footprint, plan.occupied):
            return item
    return None


def _arrow_polygons(tip: tuple[float, float], direction: float, length: float, width: float):
    ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
    nx, ny = -uy, ux
    head = max(8.0, 0.35 * length)
    half_head = 0.55 * head
    tail = (tip[0] - ux * length, tip[1] - uy * length)
    base = (tip[0] - ux * head, tip[1] - uy * head)
    shaft = [
        (tail[0] + nx * width / 2, tail[1] + ny * width / 2),
        (base[0] + nx * width / 2, base[1] + ny * width / 2),
        (base[0] - nx * width / 2, base[1] - ny * width / 2),
        (tail[0] - nx * width / 2, tail[1] - ny * width / 2),
    ]
    triangle = [tip, (base[0] + nx * half_head, base[1] + ny * half_head),
                (base[0] - nx * half_head, base[1] - ny * half_head)]
    return shaft, triangle, tail


def _bounds(points: list[tuple[float, float]], pad: float = 1.0) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs) - pad, min(ys) - pad, max(xs) + pad + 1, max(ys) + pad + 1)


def _text_footprint(text: str, font, anchor_xy: tuple[float, float]) -> Box:
    l, t, r, b = _text_size(text, font)
    w, h = r - l, b - t
    return (anchor_xy[0] - w / 2, anchor_xy[1] - h / 2, anchor_xy[0] + w / 2, anchor_xy[1] + h / 2)


def _centred_text(d: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font) -> None:
    """Draw ``text`` with the centre of its bounding box at ``centre``."""
    l, t, r, b = _text_size(text, font)
    d.text((centre[0] - (l + r) / 2, centre[1] - (t + b) / 2), text, fill=255, font=font, anchor="lt")


def _draw_text_at(canvas: Image.Image, plan: _PanelPlan, text: str, font, centre: tuple[float, float], ink) -> None:
    c = plan.content
    _stamp(canvas, c, ink, lambda d: _centred_text(d, (centre[0] - c.x0, centre[1] - c.y0), text, font))


def _add_arrow(canvas: Image.Image, rng: np.random.Generator, plan: _PanelPlan) -> None:
    c = plan.content
    side = min(c.w, c.h)
    length = float(np.clip(side * rng.uniform(0.12, 0.25), 25, 110))
    width = max(2.0, round(length / 16))
    compass = rng.random() < 0.6
    direction = float(_pick(rng, (0, 45, 90, 135, 180, 225, 270, 315))) if compass else float(rng.uniform(0, 360))
    text = _pick(rng, MARKER_TEXTS) if rng.random() < 0.25 else None
    font = _font(int(np.clip(side / 18, 10, 18)))

    def make(r: np.random.Generator):
        tip = (float(r.uniform(c.x0 + 6, c.x1 - 6)), float(r.uniform(c.y0 + 6, c.y1 - 6)))
        shaft, triangle, tail = _arrow_polygons(tip, direction, length, width)
        foot = _bounds(shaft + triangle)
        label_foot = None
        if text:
            l, t, rr, b = _text_size(text, font)
            ux, uy = math.cos(math.radians(direction)), -math.sin(math.radians(direction))
            reach = 4 + abs(ux) * (rr - l) / 2 + abs(uy) * (b - t) / 2
            centre = (tail[0] - ux * reach, tail[1] - uy * reach)
            label_foot = _text_footprint(text, font, centre)
            if not _inside(label_foot, c, 2) or _overlaps(label_foot, plan.occupied):
                return None
        return foot, tip, shaft, triangle, label_foot

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, tip, shaft, triangle, label_foot = placed
    ink = _ink(rng, canvas, _bounds(shaft + triangle, 6))

    def shape(d: ImageDraw.ImageDraw) -> None:
        d.polygon([(x - c.x0, y - c.y0) for x, y in shaft], fill=255)
        d.polygon([(x - c.x0, y - c.y0) for x, y in triangle], fill=255)

    box = _stamp(canvas, c, ink, shape)
    if box is None:
        return
    if label_foot is not None:
        centre = ((label_foot[0] + label_foot[2]) / 2, (label_foot[1] + label_foot[3]) / 2)
        _draw_text_at(canvas, plan, text, font, centre, ink)
        plan.occupied.append(label_foot)
    plan.occupied.append(box)
    half = float(np.clip(0.8 * length, 24, 96)) / 2
    region = _clip((tip[0] - half, tip[1] - half, tip[0] + half, tip[1] + half), c)
    plan.markers.append(_MarkerPlan("arrow", box, region, tip=tip, direction=direction % 360.0,
                                    text=text if label_foot else None))


def _add_asterisk(canvas: Image.Image, rng: np.random.Generator, plan: _PanelPlan) -> None:
    c = plan.content
    size = float(np.clip(min(c.w, c.h) * rng.uniform(0.05, 0.09), 12, 32))
    glyph = rng.random() < 0.5
    arms = int(_pick(rng, (3, 4)))
    stroke = max(2, int(size / 8))

    def make(r: np.random.Generator):
        centre = (float(r.uniform(c.x0, c.x1)), float(r.uniform(c.y0, c.y1)))
        return (centre[0] - size, centre[1] - size, centre[0] + size, centre[1] + size), centre

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, (cx, cy) = placed
    ink = _ink(rng, canvas, (cx - size, cy - size, cx + size, cy + size))
    lx, ly = cx - c.x0, cy - c.y0

    def shape(d: ImageDraw.ImageDraw) -> None:
        if glyph:
            _centred_text(d, (lx, ly), "*", _font(int(size * 2.2)))
            return
        for i in range(arms):
            a = math.pi * i / arms + math.pi / 2
            dx, dy = math.cos(a) * size / 2, math.sin(a) * size / 2
            d.line((lx - dx, ly - dy, lx + dx, ly + dy), fill=255, width=stroke)

    box = _stamp(canvas, c, ink, shape)
    if box is None:
        return
    plan.occupied.append(box)
    bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 1.5 * max(box[2] - box[0], box[3] - box[1])
    plan.markers.append(_MarkerPlan("asterisk", box, _clip((bx - half, by - half, bx + half, by + half), c)))


def _outline(d: ImageDraw.ImageDraw, rect: tuple[int, int, int, int], width: int, dash: tuple[int, int] | None) -> None:
    """Rectangle outline covering pixels [x0, x1) x [y0, y1), solid or dashed (dashes at every corner)."""
    x0, y0, x1, y1 = rect
    if dash is None:
        d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=255, width=width)
        return
    on, off = dash
    if min(x1 - x0, y1 - y0) <= 2 * on + off:
        d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=255, width=width)
        return

    def runs(a: int, b: int) -> list[tuple[int, int]]:
        n = max(2, round((b - a + off) / (on + off)))
        step = (b - a - on) / (n - 1)
        return [(int(round(a + i * step)), int(round(a + i * step)) + on) for i in range(n)]

    for s, e in runs(x0, x1):
        d.rectangle((s, y0, e - 1, y0 + width - 1), fill=255)
        d.rectangle((s, y1 - width, e - 1, y1 - 1), fill=255)
    for s, e in runs(y0, y1):
        d.rectangle((x0, s, x0 + width - 1, e - 1), fill=255)
        d.rectangle((x1 - width, s, x1 - 1, e - 1), fill=255)


def _draw_box(canvas: Image.Image, plan: _PanelPlan, rect: tuple[int, int, int, int], width: int, ink,
              dash: tuple[int, int] | None = None) -> Box | None:
    c = plan.content
    local = (rect[0] - c.x0, rect[1] - c.y0, rect[2] - c.x0, rect[3] - c.y0)
    return _stamp(canvas, c, ink, lambda d: _outline(d, local, width, dash))


def _add_box(canvas: Image.Image, rng: np.random.Generator, plan: _PanelPlan) -> None:
    c = plan.content
    width = int(rng.integers(1, 4))
    dash = (int(rng.integers(5, 11)), int(rng.integers(3, 7))) if rng.random() < 0.5 else None
    text = _pick(rng, MARKER_TEXTS) if rng.random() < 0.2 else None
    font = _font(int(np.clip(min(c.w, c.h) / 18, 10, 18)))
    text_w, text_h = _text_size(text, font)[2:] if text else (0, 0)

    def make(r: np.random.Generator):
        bw, bh = int(c.w * r.uniform(0.15, 0.4)), int(c.h * r.uniform(0.15, 0.4))
        x0, y0 = int(r.integers(c.x0, c.x1 - bw)), int(r.integers(c.y0 + text_h + 4, c.y1 - bh))
        rect = (x0, y0, x0 + bw, y0 + bh)
        foot = (float(x0), float(y0 - (text_h + 4 if text else 0)), float(x0 + max(bw, text_w)), float(y0 + bh))
        return foot, rect

    if min(c.w, c.h) < 60 or c.h - text_h - 4 <= int(c.h * 0.4):
        return
    placed = _place(rng, plan, make)
    if placed is None:
        return
    foot, rect = placed
    ink = _ink(rng, canvas, rect)
    box = _draw_box(canvas, plan, rect, width, ink, dash)
    if box is None:
        return
    shown = None
    if text:
        _draw_text_at(canvas, plan, text, font, (rect[0] + text_w / 2, rect[1] - 3 - text_h / 2), ink)
        shown = text
    plan.occupied.append(foot)
    interior = (box[0] + width, box[1] + width, box[2] - width, box[3] - width)
    plan.markers.append(_MarkerPlan("box", box, interior, role="dashed" if dash else "solid", text=shown))


def _add_inset(canvas: Image.Image, rng: np.random.Generator, plan: _PanelPlan, label_corner: str | None) -> None:
    """A zoomed crop in a free corner with a border, and an outline around the area it shows."""
    c = plan.content
    border = int(rng.integers(2, 4))
    side = int(min(c.w, c.h) * rng.uniform(0.28, 0.36))
    zoom = float(_pick(rng, (2.0, 2.5, 3.0)))
    inner = side - 2 * border
    src = int(round(inner / zoom))
    corners = [k for k in ("tr", "br", "bl", "tl") if k != label_corner]
    corner = _pick(rng, corners)
    pad = 4
    ix = c.x0 + pad if corner[1] == "l" else c.x1 - pad - side
    iy = c.y0 + pad if corner[0] == "t" else c.y1 - pad - side
    inset = (ix, iy, ix + side, iy + side)
    if _overlaps(inset, plan.occupied):
        return

    def make(r: np.random.Generator):
        x0 = int(r.integers(c.x0 + 2, c.x1 - src - 4))
        y0 = int(r.integers(c.y0 + 2, c.y1 - src - 4))
        outer = (x0 - 2, y0 - 2, x0 + src + 2, y0 + src + 2)
        if _overlaps(outer, [inset], 6):
            return None
        return outer, (x0, y0)

    placed = _place(rng, plan, make)
    if placed is None:
        return
    _, (sx, sy) = placed
    ink = _pick(rng, ((255, 255, 255), (255, 230, 0))) if _luma(canvas, inset) < 140 else (0, 0, 0)
    line = 1 if src < 30 else 2
    zoomed = canvas.crop((sx, sy, sx + src, sy + src)).resize((inner, inner), Image.Resampling.BICUBIC)
    canvas.paste(zoomed, (ix + border, iy + border))
    inset_box = _draw_box(canvas, plan, inset, border, ink)
    source_box = _draw_box(canvas, plan, (sx - line, sy - line, sx + src + line, sy + src + line), line, ink)
    if inset_box is None or source_box is None:
        return
    plan.occupied += [inset_box, source_box]
    shown = (float(sx), float(sy), float(sx + src), float(sy + src))
    plan.markers.append(_MarkerPlan("box", source_box, shown, role="inset"))
    plan.markers.append(_MarkerPlan("inset", inset_box, (inset_box[0] + border, inset_box[1] + border,
                                                        inset_box[2] - border, inset_box[3] - border)))


def _add_zoom_box(canvas: Image.Image, rng: np.random.Generator, plan: _PanelPlan, target: _PanelPlan,
                  window: Box) -> Box | None:
    """Outline an area of ``plan`` with ``target``'s aspect ratio; returns that area in source pixels."""
    c = plan.content
    aspect = target.content.w / target.content.h
    line = 2

    def make(r: np.random.Generator):
        iw = int(c.w * r.uniform(0.25, 0.4))
        ih = int(round(iw / aspect))
        if ih < 12 or ih > c.h - 12:
            return None
        x0 = int(r.integers(c.x0 + line + 2, c.x1 - iw - line - 2))
        y0 = int(r.integers(c.y0 + line + 2, c.y1 - ih - line - 2))
        return (float(x0 - line), float(y0 - line), float(x0 + iw + line), float(y0 + ih + line)), (x0, y0, iw, ih)

    placed = _place(rng, plan, make)
    if placed is None:
        return None
    _, (x0, y0, iw, ih) = placed
    ink = _ink(rng, canvas, (x0, y0, x0 + iw, y0 + ih))
    box = _draw_box(canvas, plan, (x0 - line, y0 - line, x0 + iw + line, y0 + ih + line), line, ink)
    if box is None:
        return None
    plan.occupied.append(box)
    plan.markers.append(_MarkerPlan("box", box, (float(x0), float(y0), float(x0 + iw), float(y0 + ih)),
                                    role="zoom", zoom_into=target.index))
    fx = (window[2] - window[0]) / c.w
    fy = (window[3] - window[1]) / c.h
    return (window[0] + (x0 - c.x0) * fx, window[1] + (y0 - c.y0) * fy,
            window[0] + (x0 - c.x0 + iw) * fx, window[1] + (y0 - c.y0 + ih) * fy)


@dataclass
class DemoFigure:
    """A generated figure: the image and its exact ground truth."""

    image: Image.Image
    figure: Figure


def figure_id(index: int) -> str:
    return f"demo-{index:05d}"


def make_figure(seed: int, index: int) -> DemoFigure:
    """Generate figure ``index`` of the demo set ``seed``; deterministic in ``(seed, index)``."""
    if seed < 0 or index < 0:
        raise Panel2PatchError(f"demo seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, seed, index]))
    for _ in range(50):  # re-draw layouts whose panels would be too small
        layout, tree = _layout(rng)
        nx, ny = _nominal(tree)
        cell_w = rng.uniform(170, 440)
        cell_h = cell_w * rng.uniform(0.7, 1.3)
        W = int(np.clip(nx * cell_w, MIN_SIDE, MAX_SIDE))
        H = int(np.clip(ny * cell_h, MIN_SIDE, MAX_SIDE))
        gutter_mode = _pick(rng, ("wide", "wide", "narrow", "line"))
        low, high = {"wide": (8, 37), "narrow": (2, 5), "line": (1, 3)}[gutter_mode]
        gutter = int(rng.integers(low, high))
        margin = 0 if gutter_mode == "line" else int(rng.integers(0, 25))
        cells: list[_Rect] = []
        _allocate(tree, _Rect(margin, margin, W - margin, H - margin), gutter, cells)
        style = _plan_style(rng, cells, layout)
        unlabelled = len(cells) == 1 and rng.random() < 0.5
        labels = _labels(style, cells)
        extents = [_label_extent(style, _printed(style, label)) for label in labels]
        strip = (max(e[0] for e in extents), max(e[1] for e in extents))
        if unlabelled:
            style = dataclasses.replace(style, outside="")
        contents = [_content_rect(style, cell, strip) for cell in cells]
        if min(min(r.w, r.h) for r in contents) >= 90:
            break
    else:  # pragma: no cover - the layout space always has small enough grids
        raise Panel2PatchError(f"demo figure {index} (seed {seed}): no layout with panels >= 90 px found")

    background = style.background if gutter_mode != "line" else _pick(rng, ((255, 255, 255), (0, 0, 0)))
    canvas = Image.new("RGB", (W, H), background)
    dark = background == (0, 0, 0)
    available = sorted(bundled_sources())
    if not available:
        raise Panel2PatchError(
            "none of the scikit-image pictures the demo uses "
            f"({', '.join(s.filename for s in PHOTO_SOURCES.values())}) is bundled in the installed "
            "scikit-image; install scikit-image>=0.24 from its wheel"
        )
    primary = _pick(rng, available)
    plans: list[_PanelPlan] = []
    for i, (cell, content) in enumerate(zip(cells, contents)):
        photo = rng.random() < 0.7 or len(cells) == 1
        plan = _PanelPlan(i, cell, content, "photo" if photo else "chart")
        if photo:
            fitting = _fitting(available, content)
            plan.source = primary if rng.random() < 0.6 and primary in fitting else _pick(rng, fitting)
        else:
            plan.chart = _pick(rng, ("bar", "line", "scatter"))
        plans.append(plan)

    zoom_pairs: dict[int, int] = {}
    for i in range(len(plans) - 1):
        a, b = plans[i], plans[i + 1]
        roomy = min(a.content.w, a.content.h) >= 160
        if a.kind == b.kind == "photo" and not zoom_pairs and rng.random() < 0.3 and roomy:
            zoom_pairs[i] = i + 1
            b.source = a.source

    pictures: dict[int, Image.Image] = {}
    windows: dict[int, Box] = {}
    zoom_windows: dict[int, Box] = {}
    label_boxes: list[Box | None] = []
    for plan in plans:
        label = None if unlabelled else labels[plan.index]
        if plan.kind == "photo":
            if plan.index in zoom_windows:  # shows an area outlined in the previous panel
                picture = pictures[plan.index - 1]
                crop = picture.resize((plan.content.w, plan.content.h), Image.Resampling.BICUBIC,
                                      box=zoom_windows[plan.index])
            else:
                picture = _source_picture(plan.source, rng)
                crop, windows[plan.index] = _render_photo(plan, picture, rng)
            pictures[plan.index] = picture
            canvas.paste(crop, (plan.content.x0, plan.content.y0))
        else:
            reserve = (0, 0)
            if label is not None and not style.outside:
                need = _label_extent(style, _printed(style, label))[1] + max(3, style.font_size // 4) + 2
                reserve = (need, 0) if style.corner[0] == "t" else (0, need)
            chart_dark = dark and rng.random() < 0.5
            canvas.paste(_render_chart(plan, rng, chart_dark, reserve), (plan.content.x0, plan.content.y0))
        label_box = _draw_label(canvas, rng, style, plan, _printed(style, label)) if label is not None else None
        label_boxes.append(label_box)
        if label_box is not None:
            plan.occupied.append(label_box)
        if plan.kind != "photo":
            continue
        if plan.index in zoom_pairs and plan.index in windows:
            area = _add_zoom_box(canvas, rng, plan, plans[zoom_pairs[plan.index]], windows[plan.index])
            if area is not None:
                zoom_windows[zoom_pairs[plan.index]] = area
            else:  # no room for the outline: the next panel becomes an ordinary photo
                plans[zoom_pairs.pop(plan.index)].source = plan.source
        elif min(plan.content.w, plan.content.h) >= 200 and rng.random() < 0.3:
            _add_inset(canvas, rng, plan, None if style.outside or label is None else style.corner)
        for _ in range(int(_pick(rng, (0, 1, 1, 2, 2, 3, 4)))):
            kind = _pick(rng, ("arrow", "arrow", "arrow", "asterisk", "box"))
            {"arrow": _add_arrow, "asterisk": _add_asterisk, "box": _add_box}[kind](canvas, rng, plan)

    figure = _ground_truth(rng, seed, index, W, H, layout, style, plans, labels, label_boxes, unlabelled)
    return DemoFigure(canvas, figure)


def _groups(rng: np.random.Generator, plans: list[_PanelPlan], numbered: bool) -> list[list[_PanelPlan]]:
    """Consecutive panels that share one caption segment (same content, no cross-panel zoom)."""
    zooming = {m.zoom_into for p in plans for m in p.markers if m.zoom_into is not None}
    zooming |= {p.index for p in plans for m in p.markers if m.zoom_into is not None}
    groups: list[list[_PanelPlan]] = []
    i = 0
    while i < len(plans):
        size = 1
        if rng.random() < 0.3:
            size = int(_pick(rng, (2, 2, 3)))
        group = [plans[i]]
        while len(group) < size and i + len(group) < len(plans):
            nxt = plans[i + len(group)]
            same = (nxt.kind, nxt.source, nxt.chart) == (plans[i].kind, plans[i].source, plans[i].chart)
            if not same or nxt.index in zooming or plans[i].index in zooming:
                break
            group.append(nxt)
        if numbered and len(group) > 2:
            group = group[:2]
        groups.append(group)
        i += len(group)
    return groups


def _ground_truth(rng: np.random.Generator, seed: int, index: int, W: int, H: int, layout: str, style: _Style,
                  plans: list[_PanelPlan], labels: list[str], label_boxes: list[Box | None],
                  unlabelled: bool) -> Figure:
    """Compose the caption from the grammar and turn the drawing plans into the Figure record."""
    preamble_parts = [] if rng.random() < 0.1 else [_pick(rng, PREAMBLES)]
    if preamble_parts and rng.random() < 0.3:
        preamble_parts.append(_pick(rng, PREAMBLE_EXTRAS))
    has_photo = any(p.kind == "photo" for p in plans)
    has_chart = any(p.kind == "chart" for p in plans)
    shared_parts = []
    if has_photo and rng.random() < 0.4:
        shared_parts.append(_pick(rng, [s for s in SHARED_SENTENCES if s.startswith("Scale")]))
    if has_chart and rng.random() < 0.4:
        shared_parts.append(_pick(rng, [s for s in SHARED_SENTENCES if s.startswith("Data")]))
    shared = " ".join(shared_parts)
    caption_style = _pick(rng, ("paren", "paren", "comma", "close"))
    numbered = style.labels in ("numbered", "roman")

    segments: dict[int, tuple[str, dict[str, list[str]]]] = {}
    pieces = list(preamble_parts)
    for group in ([plans] if unlabelled else _groups(rng, plans, numbered)):
        group_labels = [labels[p.index] for p in group]
        clauses = _clauses(rng, group, labels)
        ordered = [c for kind in ("arrow", "asterisk", "box", "inset") for c in clauses.get(kind, [])]
        text = " ".join([_description(rng, group), *ordered])
        pieces.append(text if unlabelled else f"{_token(caption_style, group_labels, numbered, rng)} {text}")
        for p in group:
            segments[p.index] = (text, clauses)
    if shared:
        pieces.append(shared)
    caption = " ".join(pieces)
    preamble = " ".join(preamble_parts)
    if unlabelled:
        preamble = " ".join(preamble_parts + [segments[0][0]])

    panels, markers, regions = [], [], []
    for plan, label_box in zip(plans, label_boxes):
        text, clauses = segments[plan.index]
        segment = "" if unlabelled else text
        subcaption = " ".join(s for s in (preamble, segment, shared) if s)
        panels.append(Panel(
            id=f"p{plan.index}",
            box=_union(plan.content.box(), label_box),
            label=None if unlabelled else labels[plan.index],
            label_box=label_box,
            kind=plan.kind,
            subcaption=subcaption,
            preamble=preamble or None,
            provenance=f"skimage.data.{plan.source}" if plan.kind == "photo" else f"chart:{plan.chart}",
        ))
        for m in plan.markers:
            mid = f"m{len(markers)}"
            markers.append(Marker(id=mid, kind=m.kind, box=m.box, panel_id=f"p{plan.index}", tip=m.tip,
                                  direction=m.direction, text=m.text))
            regions.append(Region(id=f"r{len(regions)}", panel_id=f"p{plan.index}", box=m.region, marker_ids=[mid],
                                  texts=list(clauses.get(m.kind, [])), provenance="demo"))
    return Figure(
        id=figure_id(index),
        width=W,
        height=H,
        caption=caption,
        source=f"panel2patch demo-data seed={seed}",
        panels=panels,
        markers=markers,
        regions=regions,
        components={"generator": {"name": "panel2patch.demo", "version": GENERATOR_VERSION, "seed": seed,
                                  "index": index, "layout": layout,
                                  "label_style": "none" if unlabelled else style.labels,
                                  "label_print": "none" if unlabelled else style.printed,
                                  "label_position": "none" if unlabelled else style.outside or "inside",
                                  "caption_style": "none" if unlabelled else caption_style}},
    )


# --------------------------------------------------------------------------------------------------
# Writing a demo set
# --------------------------------------------------------------------------------------------------


def _prepare(out: Path) -> None:
    """Create ``out`` with its sub-folders. A previous demo set there (it has demo.json) is replaced;
    a non-empty folder without demo.json is refused so that nothing else is overwritten."""
    if out.exists() and not out.is_dir():
        raise Panel2PatchError(f"demo-data: {out} exists and is not a directory; choose another OUT")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "demo.json").is_file():
            raise Panel2PatchError(
                f"demo-data: {out} is not empty and holds no demo.json; choose an empty or new directory"
            )
        for sub in ("images", "annotations"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for name in ("captions.jsonl", "demo.json"):
            (out / name).unlink(missing_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)


def write_demo(out: str | os.PathLike[str], n: int, seed: int, progress: bool = True) -> dict[str, Any]:
    """Write ``n`` demo figures into ``out`` (layout in the module docstring); returns demo.json's content."""
    from tqdm import tqdm
    import skimage

    if n < 1:
        raise Panel2PatchError(f"demo-data: --n must be at least 1, got {n}")
    if seed < 0:
        raise Panel2PatchError(f"demo-data: --seed must be >= 0, got {seed}")
    out = Path(out)
    _prepare(out)
    counts: dict[str, Any] = {"figures": 0, "panels": {}, "labelled_panels": 0, "markers": {}, "regions": 0,
                              "layouts": {}}
    used: set[str] = set()
    with open(out / "captions.jsonl", "w", encoding="utf-8") as captions:
        for index in tqdm(range(n), desc="demo-data", unit="fig", disable=not progress):
            demo = make_figure(seed, index)
            fig = demo.figure
            demo.image.save(out / "images" / f"{fig.id}.png", format="PNG")
            (out / "annotations" / f"{fig.id}.json").write_text(
                json.dumps(fig.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            captions.write(json.dumps({"id": fig.id, "image": f"images/{fig.id}.png", "caption": fig.caption},
                                      ensure_ascii=False) + "\n")
            counts["figures"] += 1
            counts["regions"] += len(fig.regions)
            layout = fig.components["generator"]["layout"]
            counts["layouts"][layout] = counts["layouts"].get(layout, 0) + 1
            for p in fig.panels:
                counts["panels"][p.kind] = counts["panels"].get(p.kind, 0) + 1
                counts["labelled_panels"] += p.label is not None
                if p.provenance.startswith("skimage.data."):
                    used.add(p.provenance.removeprefix("skimage.data."))
            for m in fig.markers:
                counts["markers"][m.kind] = counts["markers"].get(m.kind, 0) + 1
    summary = {
        "seed": seed,
        "n": n,
        "version": __version__,
        "generator_version": GENERATOR_VERSION,
        "scikit_image_version": skimage.__version__,
        "counts": counts,
        "skimage_images": {name: {"file": PHOTO_SOURCES[name].filename, "license": PHOTO_SOURCES[name].license}
                           for name in sorted(used)},
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def main(args: Namespace) -> int:
    """``panel2patch demo-data OUT --n N --seed S``."""
    summary = write_demo(args.out, args.n, args.seed)
    c = summary["counts"]
    print(f"{c['figures']} figures, {sum(c['panels'].values())} panels, {sum(c['markers'].values())} markers, "
          f"{c['regions']} regions -> {args.out}")
    return 0
