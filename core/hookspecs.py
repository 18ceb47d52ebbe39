"""Every hook panel2patch calls. The docstrings are the contract (``docs/plugins.md`` shows them all).

Registration hooks ``register_<kind>(register)`` run once per process when the registries are first needed (on every
rank): ``register(name, factory)`` adds a component; ``factory(**args)`` gets the recipe's ``args`` and returns an
instance of the kind's base class (:mod:`panel2patch.components` says what it does). A name taken twice (by two
plugins or two kinds) is an error naming both. Lifecycle hooks ``on_*`` observe on every rank (``is_main``: global
rank 0); return values are ignored. Implementations declare no default values for hook arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .run import RunInfo

hookspec = pluggy.HookspecMarker("panel2patch")
hookimpl = pluggy.HookimplMarker("panel2patch")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec(historic=True)
def add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add a domain's own hook specs: ``pluginmanager.add_hookspecs(MyDomainSpecs)``.

    Called once, at start-up, for every plugin (including plugins registered later). Add a separate
    spec class; never subclass the core specs.
    """


@hookspec
def register_figure_parsers(register: Register) -> None:
    """Register figure parsers: factories of :class:`~panel2patch.components.FigureParser`."""


@hookspec
def register_marker_detectors(register: Register) -> None:
    """Register marker detectors: factories of :class:`~panel2patch.components.MarkerDetector`."""


@hookspec
def register_caption_splitters(register: Register) -> None:
    """Register caption splitters: factories of :class:`~panel2patch.components.CaptionSplitter`."""


@hookspec
def register_region_miners(register: Register) -> None:
    """Register region miners: factories of :class:`~panel2patch.components.RegionMiner`."""


@hookspec
def register_box_cleaners(register: Register) -> None:
    """Register box cleaners: factories of :class:`~panel2patch.components.BoxCleaner`."""


@hookspec
def register_sources(register: Register) -> None:
    """Register corpus sources: factories of :class:`~panel2patch.components.Source`."""


@hookspec
def register_writers(register: Register) -> None:
    """Register corpus writers: factories of :class:`~panel2patch.components.Writer`."""


@hookspec
def register_model_loaders(register: Register) -> None:
    """Register model loaders: factories of :class:`~panel2patch.components.ModelLoader`."""


@hookspec
def register_levels(register: Register) -> None:
    """Register granularity levels: factories of :class:`~panel2patch.components.GranularityLevel`."""


@hookspec
def register_aggregators(register: Register) -> None:
    """Register aggregators: factories of :class:`~panel2patch.components.Aggregator`."""


@hookspec
def register_loss_terms(register: Register) -> None:
    """Register loss terms: factories of :class:`~panel2patch.components.LossTerm`."""


@hookspec
def register_schedules(register: Register) -> None:
    """Register schedules: factories of :class:`~panel2patch.components.Schedule`."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register evaluators: factories of :class:`~panel2patch.components.Evaluator`."""


@hookspec
def register_commands(register: Register) -> None:
    """Register ``panel2patch`` sub-commands: factories of :class:`~panel2patch.components.Command`.

    The name is the sub-command as typed (``"export-pairs"``). Called when the command line is built.
    """


@hookspec
def register_settings(register: Register) -> None:
    """Register the schema of a recipe section's plain settings: ``register(section, schema)``.

    ``schema`` is a dataclass usable as an OmegaConf structured config (optional ``check()`` for what types cannot say);
    ``panel2patch validate`` checks the section's non-component keys against it. One schema per section.
    """


@hookspec
def register_kinds(register: Register) -> None:
    """Register component kinds: ``register(name, spec)`` with a :class:`~panel2patch.registry.Kind`.

    A domain adds a kind in three steps: a hook spec ``register_<kind>`` of its own (through :func:`add_hookspecs`), a
    base class, and a :class:`~panel2patch.registry.Kind` naming both and the recipe slot that selects its components
    (``mine.<key>``: components whose base class subclasses :class:`~panel2patch.components.FigureStage` run in mining
    after region mining, before cleaning). Called once per process, when the kinds are first needed.
    """


@hookspec
def on_run_start(run: RunInfo, is_main: bool) -> None:
    """A run (``mine``, ``train``, ``eval``) starts, after its recipe was resolved. Every rank."""


@hookspec
def on_run_end(run: RunInfo, summary: dict[str, Any], is_main: bool) -> None:
    """A run finished without error; ``summary`` holds its counts. Every rank."""


@hookspec
def on_stage_start(run: RunInfo, stage: str, is_main: bool) -> None:
    """A named stage of a run starts (for example ``"parse"``, ``"write"``, ``"epoch"``). Every rank."""


@hookspec
def on_stage_end(run: RunInfo, stage: str, summary: dict[str, Any], is_main: bool) -> None:
    """A named stage ended; ``summary`` holds its counts. Every rank."""


@hookspec
def on_step_end(run: RunInfo, step: int, metrics: dict[str, float], is_main: bool) -> None:
    """An optimisation step (or a mined figure, in ``mine``) completed. ``step`` counts from 1."""


@hookspec
def on_error(run: RunInfo, stage: str, error: BaseException, is_main: bool) -> None:
    """An exception is about to end the run (or, in ``mine``, turn one figure into a reject)."""
