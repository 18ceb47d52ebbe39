"""The kernel's component kinds and the ``mine`` settings schema, registered through the hooks domain
packages use."""

from __future__ import annotations

from . import components as c
from .hookspecs import hookimpl
from .registry import Kind
from .settings import MineSettings

KERNEL_KINDS = (
    Kind("sources", "register_sources", c.Source, "mine.source", required=True),
    Kind("figure_parsers", "register_figure_parsers", c.FigureParser, "mine.parser", required=True),
    Kind("marker_detectors", "register_marker_detectors", c.MarkerDetector, "mine.markers"),
    Kind("caption_splitters", "register_caption_splitters", c.CaptionSplitter, "mine.splitter", required=True),
    Kind("region_miners", "register_region_miners", c.RegionMiner, "mine.regions"),
    Kind("box_cleaners", "register_box_cleaners", c.BoxCleaner, "mine.cleaners", many=True),
    Kind("writers", "register_writers", c.Writer, "mine.writer", required=True),
    Kind("model_loaders", "register_model_loaders", c.ModelLoader, "train.model", required=True),
    Kind("levels", "register_levels", c.GranularityLevel, "train.levels", many=True, required=True),
    Kind("aggregators", "register_aggregators", c.Aggregator, "train.aggregator"),
    Kind("loss_terms", "register_loss_terms", c.LossTerm, "train.losses", many=True, required=True),
    Kind("schedules", "register_schedules", c.Schedule, "train.schedule", required=True),
    Kind("commands", "register_commands", c.Command),
)


@hookimpl
def register_settings(register):
    register("mine", MineSettings)


@hookimpl
def register_kinds(register):
    for kind in KERNEL_KINDS:
        register(kind.name, kind)
