"""Components and hook specs of the histology example plugin."""

from __future__ import annotations

from collections import defaultdict

import pluggy

from panel2patch.components import BoxCleaner
from panel2patch.data import Figure
from panel2patch.hookspecs import hookimpl, hookspec
from panel2patch.plugins.regions import MarkerRegionMiner


class HistologyRegionMiner(MarkerRegionMiner):
    """Marker regions with wider defaults for arrows on low-magnification slides."""

    def __init__(self, arrow_scale: float = 2.5, min_frac: float = 0.15, max_frac: float = 0.6) -> None:
        super().__init__(arrow_scale=arrow_scale, min_frac=min_frac, max_frac=max_frac)


class TopKRegions(BoxCleaner):
    """Keeps the ``k`` highest-scoring regions of each panel."""

    def __init__(self, k: int = 3) -> None:
        self.k = k

    def clean(self, figure: Figure) -> Figure:
        by_panel = defaultdict(list)
        for region in figure.regions:
            by_panel[region.panel_id].append(region)
        keep = {id(r) for rs in by_panel.values() for r in sorted(rs, key=lambda r: -r.score)[: self.k]}
        figure.regions = [r for r in figure.regions if id(r) in keep]
        return figure


class HistologySpecs:
    """Hook specs of the histology domain."""

    @hookspec
    def register_stains(self, register):
        """Register stains: ``register(name, description)``."""


@hookimpl
def add_hookspecs(pluginmanager: pluggy.PluginManager):
    pluginmanager.add_hookspecs(HistologySpecs)


@hookimpl
def register_region_miners(register):
    register("histology_regions", HistologyRegionMiner)


@hookimpl
def register_box_cleaners(register):
    register("top_k_regions", TopKRegions)


@hookimpl
def register_stains(register):
    register("he", "haematoxylin and eosin")
