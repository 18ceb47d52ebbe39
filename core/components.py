"""Base classes, one per component kind, and the kernel's kinds (registered through ``register_kinds`` like a domain
package's). Domain packages subclass the base classes and register the subclasses. Instances are built from recipes
as ``factory(**args)``: every argument is a keyword argument with a type annotation (``panel2patch validate`` checks
recipe values against it). Heavy libraries (torch, transformers, vllm, onnxruntime) are imported inside methods."""

from __future__ import annotations

import abc
import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .config import MineSettings
from .hookspecs import hookimpl
from .registry import Kind

if TYPE_CHECKING:
    from PIL import Image

    from .data import CaptionSplit, Figure, FigureParse, LevelSample, Marker, Panel, Region, Score, SourceItem


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


class CaptionSplitter(abc.ABC):
    """Cuts a caption into per-panel sub-captions."""

    @abc.abstractmethod
    def split(self, caption: str, labels: Sequence[str] | None) -> CaptionSplit:
        """``labels`` are the panel labels read from the image, when known; they guide the split."""

    def assign(self, split: CaptionSplit, figure: Figure) -> dict[str, str]:
        """Which segment of ``split`` describes each panel: ``{panel id: segment key}``.

        The default pairs a panel with the segment of its printed label. Splitters whose segment keys are not labels
        (position words, sub-figure numbers) override this; the miner never interprets segment keys itself.
        """
        return {p.id: p.label for p in figure.panels if p.label is not None and p.label in split.segments}


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


class Source(abc.ABC):
    """Yields raw figures. Sharding is the caller's job: a source yields everything, in a fixed order."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[SourceItem]: ...


class FigureStage(abc.ABC):
    """A mining step that a domain kind adds: it amends a mined figure (regions already mined, cleaners
    not yet run). Base class for the components of kinds declared by plugins with a ``mine.*`` slot."""

    @abc.abstractmethod
    def process(self, figure: Figure, image: Image.Image) -> Figure:
        """Return the amended figure (may be the same object, modified)."""


class Writer(abc.ABC):
    """Writes mined figures and rejects in chunks that commit atomically.

    A chunk holds the outcome of a fixed run of input items; a committed chunk is never rewritten, so a
    killed run restarted with the same command skips committed chunks and redoes the rest.
    """

    @property
    def location(self) -> str:
        """Where the corpus goes (shown in messages and given to lifecycle hooks)."""
        return ""

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
        """Called once with the embedding width before training. Return a ``torch.nn.Module`` holding the aggregator's
        trainable parameters (optimised and checkpointed with the model), or None for a parameter-free aggregator."""
        return None

    @abc.abstractmethod
    def __call__(self, children: Any, parent_index: Any, num_parents: int) -> Any: ...


class LossTerm(abc.ABC):
    """One weighted term of the training loss, computed from a level's step outputs.

    ``outputs`` is a :class:`panel2patch.data.LevelOutputs`. ``levels`` restricts the term to some
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

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class Evaluator(abc.ABC):
    """Scores one model: ``model`` has ``encode_images(images)``, ``encode_texts(texts)`` (L2-normalised ``[N, D]``) and
    ``encode_dense(images)`` (those plus patch maps ``[N, D, gh, gw]``, or None); ``data`` holds the run's held-out
    corpus samples (None for evaluators with ``needs_corpus = False``). Returns ``{metric: Score}``."""
    needs_corpus: bool = True

    @abc.abstractmethod
    def evaluate(self, model: Any, data: Any) -> dict[str, Score]: ...


class Command(abc.ABC):
    """A ``panel2patch`` sub-command contributed by a plugin; ``help`` is its one-line summary.

    :meth:`configure` adds arguments (it must stay cheap: ``panel2patch --help`` calls it for every
    command); :meth:`run` does the work, importing heavy modules only then, and returns the exit code.
    Raise :class:`~panel2patch.errors.Panel2PatchError` for errors the user can fix.
    """

    help: str = ""

    def configure(self, parser: argparse.ArgumentParser) -> None:
        return None

    @abc.abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


KERNEL_KINDS = (
    Kind("sources", "register_sources", Source, "mine.source", required=True),
    Kind("figure_parsers", "register_figure_parsers", FigureParser, "mine.parser", required=True),
    Kind("marker_detectors", "register_marker_detectors", MarkerDetector, "mine.markers"),
    Kind("caption_splitters", "register_caption_splitters", CaptionSplitter, "mine.splitter", required=True),
    Kind("region_miners", "register_region_miners", RegionMiner, "mine.regions"),
    Kind("box_cleaners", "register_box_cleaners", BoxCleaner, "mine.cleaners", many=True),
    Kind("writers", "register_writers", Writer, "mine.writer", required=True),
    Kind("model_loaders", "register_model_loaders", ModelLoader, "train.model", required=True),
    Kind("levels", "register_levels", GranularityLevel, "train.levels", many=True, required=True),
    Kind("aggregators", "register_aggregators", Aggregator, "train.aggregator"),
    Kind("loss_terms", "register_loss_terms", LossTerm, "train.losses", many=True, required=True),
    Kind("schedules", "register_schedules", Schedule, "train.schedule", required=True),
    Kind("evaluators", "register_evaluators", Evaluator, "eval.evaluators", many=True),
    Kind("commands", "register_commands", Command))


@hookimpl
def register_settings(register):
    register("mine", MineSettings)


@hookimpl
def register_kinds(register):
    for kind in KERNEL_KINDS:
        register(kind.name, kind)
