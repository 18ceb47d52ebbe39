"""Records that cross module boundaries: panels, markers, regions, figures, source items, splits, training samples,
evaluation scores. Coordinates: every box is ``(x0, y0, x1, y1)`` in float pixels of the original figure image, origin at the top-left
corner, ``x1 > x0`` and ``y1 > y0``. Region boxes are in figure coordinates too and name their parent panel by id.
:meth:`Figure.to_json` / :meth:`Figure.from_json` are the corpus schema."""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import Reject

SCHEMA_VERSION = 1

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass
class Panel:
    """One panel of a compound figure: ``label`` the panel letter as printed (``"A"``, ``"b"``, ``"ii"``) or None when
    none was read; ``kind`` ``"photo"``, ``"chart"``, ``"diagram"`` or ``"unknown"``; ``subcaption`` includes the
    shared ``preamble`` (also stored on its own)."""

    id: str
    box: Box
    label: str | None = None
    label_box: Box | None = None
    kind: str = "unknown"
    score: float = 1.0
    subcaption: str | None = None
    preamble: str | None = None
    description: str | None = None
    provenance: str = ""


@dataclass
class Marker:
    """A visual mark: ``kind`` arrow/arrowhead/asterisk/box/inset/symbol/label, or band_marker/connector (no pointers);
    ``tip`` the pointed-at point of an arrow (figure pixels); ``direction`` the pointing direction in degrees,
    counter-clockwise from +x with y up (0 = right, 90 = up); ``text`` a label printed next to the marker, if any."""

    id: str
    kind: str
    box: Box
    panel_id: str | None = None
    tip: Point | None = None
    direction: float | None = None
    text: str | None = None
    score: float = 1.0


@dataclass
class Region:
    """A marked area inside a panel, paired with the caption clauses that mention it (and an optional description)."""

    id: str
    panel_id: str
    box: Box
    marker_ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    score: float = 1.0
    provenance: str = ""
    description: str | None = None


@dataclass
class FigureParse:
    """What a figure parser returns: panels (with labels and kinds) and optional extras; ``proposals``: caption-grounded
    region boxes from text-grounding parsers (LVLMs), for dual-path fusion with markers."""

    width: int
    height: int
    panels: list[Panel]
    markers: list[Marker] = field(default_factory=list)
    proposals: list[Region] = field(default_factory=list)


@dataclass
class Figure:
    """One corpus sample: a figure, its caption, its source's ``metadata`` (article ids, licence), the mined hierarchy,
    ``diagnostics``: what its components counted while mining it (:func:`panel2patch.mining.count_diagnostic`)."""

    id: str
    width: int
    height: int
    caption: str
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    panels: list[Panel] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    components: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, int] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        """The figure of a corpus JSON member, its types checked (pydantic); ``ValueError`` says what is wrong."""
        from pydantic import ValidationError

        figure_id, version = (data.get("id"), data.get("schema_version")) if isinstance(data, dict) else (None, None)
        if version != SCHEMA_VERSION:
            raise ValueError(f"figure {figure_id!r}: corpus schema version {version!r}, this panel2patch reads version "
                             f"{SCHEMA_VERSION}; re-mine the corpus or install a matching release")
        try:
            figure = _figure_schema().validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where, problem = ".".join(str(part) for part in first["loc"]), first["msg"]
        else:
            where, problem = _inconsistency(figure) or ("", "")
            if not problem:
                return figure
        raise ValueError(f"figure {figure_id!r}: {where}: {problem}")


@dataclass
class MarkerClause:
    """A caption clause about a marker type: ``kind`` as in :class:`Marker`."""

    kind: str
    text: str
    labels: list[str] = field(default_factory=list)


@dataclass
class CaptionSplit:
    """A caption cut by panel label: ``segments`` maps each label (as printed, in caption order) to its own text;
    ``preamble`` is the text shared by all panels before the first label, ``shared`` the trailing shared sentences
    ("Scale bars, 50 µm."). :meth:`subcaption` joins them for one label."""

    caption: str
    preamble: str = ""
    segments: dict[str, str] = field(default_factory=dict)
    shared: str = ""
    clauses: list[MarkerClause] = field(default_factory=list)

    def subcaption(self, label: str) -> str:
        parts = [self.preamble, self.segments.get(label, ""), self.shared]
        return " ".join(p.strip() for p in parts if p and p.strip())

    def to_json(self) -> dict[str, Any]:
        return {"preamble": self.preamble, "segments": dict(self.segments), "shared": self.shared,
                "subcaptions": {label: self.subcaption(label) for label in self.segments},
                "clauses": [vars(c) for c in self.clauses]}


@dataclass
class SourceItem:
    """One raw figure from a source. ``error`` is set (and the image may be empty) for bad items. The image is in
    memory (``image``) or read on demand from ``path`` by :meth:`image_bytes`, so shards skipping an item never read it.
    """

    id: str
    image: bytes
    caption: str | None
    origin: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    error: Reject | None = None
    path: str | None = None

    def image_bytes(self) -> bytes:
        return self.image if self.path is None or self.image else pathlib.Path(self.path).read_bytes()


@dataclass(frozen=True)
class Node:
    """A related box of a level sample (a child panel or region, or the parent panel), figure pixels."""

    id: str
    box: Box
    texts: tuple[str, ...]


@dataclass(frozen=True)
class LevelSample:
    """One training sample of a level: the crop ``box`` (figure pixels) and its candidate ``texts`` (one picked at
    random per use). ``children`` are the boxes encoded with it for inter-level message passing (M: panels,
    P: regions); ``parent`` is the box whose feature map the sample is compared with (R: its panel)."""

    level: str
    id: str
    box: Box
    texts: tuple[str, ...]
    children: tuple[Node, ...] = ()
    parent: Node | None = None


@dataclass
class LevelOutputs:
    """What loss terms see for one level batch (float32 tensors on the training device). ``image``/``text``:
    L2-normalised embeddings ``[N, D]`` of every image of the batch and its paired text; rows ``[0, num_samples)`` are
    the level's samples. ``dense``: the patch tokens projected into the joint space, ``[N, D, gh, gw]`` (None for vision
    towers without a patch grid). ``edge_child`` / ``edge_parent``: child -> parent row pairs; ``roi_boxes`` (parent
    model-input pixels) and ``roi_valid`` for region rows. ``patch_size``: ``(ph, pw)`` model-input pixels per patch.
    ``aggregator``: the run's :class:`~panel2patch.components.Aggregator`; ``rank``/``world_size``: for gathers."""

    level: str
    num_samples: int
    image: Any
    text: Any
    logit_scale: Any
    edge_child: Any
    edge_parent: Any
    roi_boxes: Any
    roi_valid: Any
    dense: Any
    patch_size: tuple[int, int]
    aggregator: Any
    rank: int = 0
    world_size: int = 1


def _inconsistency(figure: Figure) -> tuple[str, str] | None:
    """Where and how a well-typed figure contradicts itself: a box not finite, ordered and inside the image (1 px
    slack), a duplicate id, or a panel/marker id that resolves to nothing."""
    w, h = figure.width, figure.height
    if w <= 0 or h <= 0:
        return "width", f"image size {w}x{h} is not positive"
    panel_ids, marker_ids = {p.id for p in figure.panels}, {m.id for m in figure.markers}
    for name, items in (("panels", figure.panels), ("markers", figure.markers), ("regions", figure.regions)):
        seen: set[str] = set()
        for i, item in enumerate(items):
            boxes = {"box": item.box, "label_box": getattr(item, "label_box", None)}
            refs = {"panel_id": (getattr(item, "panel_id", None), panel_ids)}
            refs.update({f"marker_ids.{n}": (ref, marker_ids) for n, ref in enumerate(getattr(item, "marker_ids", ()))})
            tip = getattr(item, "tip", None)
            problems = [("id", f"duplicate id {item.id!r}")] if item.id in seen else []
            problems += [(k, f"{list(b)} is not a finite box inside the {w}x{h} image") for k, b in boxes.items()
                         if b is not None and not (-1 <= b[0] < b[2] <= w + 1 and -1 <= b[1] < b[3] <= h + 1)]
            problems += [(k, f"{ref!r} names no {k.split('_')[0]} of the figure") for k, (ref, known) in refs.items()
                         if ref is not None and ref not in known]
            problems += [("tip", f"{list(tip)} is not finite")] if tip and not all(map(math.isfinite, tip)) else []
            if problems:
                return f"{name}.{i}.{problems[0][0]}", problems[0][1]
            seen.add(item.id)
    return None


@functools.cache
def _figure_schema() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(Figure)


@dataclass
class Score:
    """An evaluation metric, ``value == statistic(rows)``: ``rows`` (numpy) has one row per query, named by ``ids`` so
    two models' scores pair up; ``statistic`` maps any subset of rows to the metric (None: their mean), so intervals
    resample queries. ``rows`` None marks a count (a gallery size): no interval."""

    value: float
    rows: Any
    ids: tuple[str, ...]
    statistic: Any = None
