"""Base classes, one per component kind. Domain packages subclass them and register the subclass.

Instances are built from recipes as ``factory(**args)``; every argument a component takes is a
keyword argument with a type annotation (``panel2patch validate`` checks recipe values against it).
Heavy libraries (torch, transformers, vllm, onnxruntime) are imported inside methods, never at module
import.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from .data import Figure, FigureParse, Marker, Panel, Region
    from .hierarchy import LevelSample


class FigureParser(abc.ABC):
    """Finds the panels of a figure (boxes, labels, kinds) in original-image pixels."""

    @abc.abstractmethod
    def parse(self, image: Image.Image, caption: str | None) -> FigureParse:
        """Parse an RGB image. ``caption`` may be None; parsers that ground text use it."""


class MarkerDetector(abc.ABC):
    """Finds visual pointers (arrows, asterisks, boxes, insets) inside the given panels."""

    @abc.abstractmethod
    def detect(self, image: Image.Image, panels: Sequence[Panel]) -> list[Marker]:
        """Return markers in figure pixels, each with ``panel_id`` set when it lies in a panel."""


@dataclass
class MarkerClause:
    """A caption clause about a marker type: ``kind`` as in :class:`~panel2patch.data.Marker`."""

    kind: str
    text: str
    labels: list[str] = field(default_factory=list)


@dataclass
class CaptionSplit:
    """A caption cut by panel label.

    ``segments`` maps each label (as printed, in caption order) to its own text; ``preamble`` is the
    text shared by all panels before the first label, ``shared`` the trailing shared sentences
    ("Scale bars, 50 µm."). :meth:`subcaption` joins them for one label.
    """

    caption: str
    preamble: str = ""
    segments: dict[str, str] = field(default_factory=dict)
    shared: str = ""
    clauses: list[MarkerClause] = field(default_factory=list)

    def subcaption(self, label: str) -> str:
        parts = [self.preamble, self.segments.get(label, ""), self.shared]
        return " ".join(p.strip() for p in parts if p and p.strip())

    def to_json(self) -> dict[str, Any]:
        return {
            "preamble": self.preamble,
            "segments": dict(self.segments),
            "shared": self.shared,
            "subcaptions": {label: self.subcaption(label) for label in self.segments},
            "clauses": [vars(c) for c in self.clauses],
        }


class CaptionSplitter(abc.ABC):
    """Cuts a caption into per-panel sub-captions."""

    @abc.abstractmethod
    def split(self, caption: str, labels: Sequence[str] | None) -> CaptionSplit:
        """``labels`` are the panel labels read from the image, when known; they guide the split."""


class RegionMiner(abc.ABC):
    """Turns markers and parser proposals into regions paired with caption text."""

    @abc.abstractmethod
    def mine(self, figure: Figure, split: CaptionSplit, proposals: Sequence[Region]) -> list[Region]:
        """Return regions in figure pixels; ``figure`` already holds panels and markers."""


class BoxCleaner(abc.ABC):
    """Removes or fixes boxes of a mined figure. Cleaners run in recipe order."""

    @abc.abstractmethod
    def clean(self, figure: Figure) -> Figure:
        """Return the cleaned figure (may be the same object, modified)."""


@dataclass
class SourceItem:
    """One raw figure from a source. ``error`` is set (and the image may be empty) for bad items.

    The image is either in memory (``image``) or read on demand from ``path`` by :meth:`image_bytes`,
    so that shards skipping an item never read it.
    """

    id: str
    image: bytes
    caption: str | None
    origin: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    path: str | None = None

    def image_bytes(self) -> bytes:
        if self.path is not None and not self.image:
            with open(self.path, "rb") as f:
                return f.read()
        return self.image


class Source(abc.ABC):
    """Yields raw figures. Sharding is the caller's job: a source yields everything, in a fixed order."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[SourceItem]: ...


class Writer(abc.ABC):
    """Writes mined figures and rejects in chunks that commit atomically.

    A chunk holds the outcome of a fixed run of input items; a committed chunk is never rewritten, so a
    killed run restarted with the same command skips committed chunks and redoes the rest.
    """

    @abc.abstractmethod
    def completed(self, chunk: str) -> dict[str, Any] | None:
        """The stats passed to :meth:`commit` for an already committed chunk, else None."""

    @abc.abstractmethod
    def begin(self, chunk: str) -> None:
        """Start writing ``chunk`` (discarding any uncommitted leftovers of it)."""

    @abc.abstractmethod
    def write(self, figure: Figure, image_bytes: bytes, image_ext: str) -> None: ...

    @abc.abstractmethod
    def reject(self, figure_id: str, reason: str, detail: str) -> None: ...

    @abc.abstractmethod
    def commit(self, stats: dict[str, Any]) -> None:
        """Make the current chunk final, with its stats."""

    @abc.abstractmethod
    def finish(self, manifest: dict[str, Any]) -> None:
        """Write the run's manifest after the last chunk (``manifest["shard"]`` / ``["num_shards"]`` say
        which mining shard it describes)."""


class ModelLoader(abc.ABC):
    """Builds ``(model, preprocess, tokenizer)`` for training and evaluation."""

    @abc.abstractmethod
    def load(self) -> tuple[Any, Any, Any]: ...

    def model_config(self) -> dict[str, Any] | None:
        """The architecture config of the loaded model (open_clip's ``model_cfg``) for export, if known."""
        return None


class GranularityLevel(abc.ABC):
    """A level of the hierarchy (figure M, panel P, region R): which samples it makes from a figure.

    ``name`` is the level's registered name (``"figure"``), ``code`` its one-letter alias in schedules
    (``"M"``). Each sample carries its box in figure pixels, its candidate texts, and its related boxes:
    ``children`` (M: panels, P: regions) or a ``parent`` (R: the panel holding the region).
    """

    name: str = ""
    code: str = ""

    @abc.abstractmethod
    def samples(self, figure: Figure) -> list[LevelSample]:
        """The level's training samples in one figure, in a fixed order (no randomness here)."""


class Aggregator(abc.ABC):
    """Pools child embeddings into their parents: ``(children [N, D], parent_index [N], P) -> [P, D]``.

    Rows of parents with no child are unspecified (finite, never used): the caller leaves those
    parents out of inter-level losses.
    """

    def setup(self, dim: int) -> Any:
        """Called once with the embedding width before training.

        Return a ``torch.nn.Module`` holding the aggregator's trainable parameters (it is optimised and
        checkpointed with the model), or None for a parameter-free aggregator.
        """
        return None

    @abc.abstractmethod
    def __call__(self, children: Any, parent_index: Any, num_parents: int) -> Any: ...


class LossTerm(abc.ABC):
    """One weighted term of the training loss, computed from a level's step outputs.

    ``outputs`` is a :class:`panel2patch.engine.LevelOutputs`. ``levels`` restricts the term to some
    level names (None: every level it applies to).
    """

    weight: float = 1.0
    levels: tuple[str, ...] | None = None

    def applies(self, level: str) -> bool:
        return self.levels is None or level in self.levels

    @abc.abstractmethod
    def __call__(self, outputs: Any) -> Any:
        """Return an unweighted scalar tensor, or None when the term does not apply to these outputs."""


class Schedule(abc.ABC):
    """Chooses the active levels for each optimisation step; its state goes into checkpoints.

    Level names may be registered level names (``"panel"``) or their codes (``"P"``); the engine maps
    codes to names and rejects names the recipe does not train.
    """

    def bind(self, levels: Sequence[str]) -> None:
        """Called once by the engine, before the first step, with the recipe's level names in order."""
        self.available = list(levels)

    @abc.abstractmethod
    def levels(self, step: int) -> list[str]:
        """Level names active at ``step`` (counting from 0)."""

    def shares(self, horizon: int = 1200) -> dict[str, float]:
        """Fraction of steps in which each level is active, estimated over ``horizon`` steps."""
        counts: dict[str, int] = {}
        for step in range(horizon):
            for name in self.levels(step):
                counts[name] = counts.get(name, 0) + 1
        return {name: n / horizon for name, n in counts.items()}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
