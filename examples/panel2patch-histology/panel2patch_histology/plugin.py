"""Components, a component kind and its hook spec, of the histology example plugin.

Besides subclassing built-ins (a region miner with wider defaults, a cleaner), the plugin adds a kind of
its own: *stain classifiers*, registered through its own hook ``register_stain_classifiers`` and
selected by the recipe slot ``mine.stains``. Mining runs them after region mining.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pluggy

from panel2patch.components import BoxCleaner, FigureStage
from panel2patch.data import Figure
from panel2patch.hookspecs import hookimpl, hookspec
from panel2patch.plugins.regions import MarkerRegionMiner
from panel2patch.registry import Kind


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


class StainClassifier(FigureStage):
    """Base class of the ``stain_classifiers`` kind: names the stain of a figure's photographic panels
    in their ``description`` ("stain: H&E")."""


class ColourStainClassifier(StainClassifier):
    """Stain from the mean colour of a panel's tissue pixels (those darker than ``background``):

    mostly dark panels are fluorescence; pink-purple tissue (red and blue above green) is H&E; brown
    tissue (red > green > blue) is DAB immunohistochemistry; anything else is ``other``.
    """

    def __init__(self, background: int = 220, dark_share: float = 0.6) -> None:
        self.background, self.dark_share = background, dark_share

    def stain(self, pixels: np.ndarray) -> str:
        luma = pixels.mean(axis=2)
        if (luma < 60).mean() >= self.dark_share:
            return "fluorescence"
        tissue = pixels[luma < self.background]
        if len(tissue) == 0:
            return "other"
        r, g, b = tissue.mean(axis=0)
        if r > g + 20 and b > g + 20:
            return "H&E"
        if r > g + 10 and g > b + 10:
            return "DAB"
        return "other"

    def process(self, figure: Figure, image) -> Figure:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        for panel in figure.panels:
            if panel.kind != "photo":
                continue
            x0, y0, x1, y1 = (int(round(v)) for v in panel.box)
            crop = pixels[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
            if crop.size:
                panel.description = f"stain: {self.stain(crop)}"
        return figure


class HistologySpecs:
    """Hook specs of the histology domain."""

    @hookspec
    def register_stain_classifiers(self, register):
        """Register stain classifiers: factories of :class:`StainClassifier`."""


STAIN_CLASSIFIERS = Kind("stain_classifiers", "register_stain_classifiers", StainClassifier, "mine.stains")


@hookimpl
def add_hookspecs(pluginmanager: pluggy.PluginManager):
    pluginmanager.add_hookspecs(HistologySpecs)


@hookimpl
def register_kinds(register):
    register(STAIN_CLASSIFIERS.name, STAIN_CLASSIFIERS)


@hookimpl
def register_stain_classifiers(register):
    register("colour_stain", ColourStainClassifier)


@hookimpl
def register_region_miners(register):
    register("histology_regions", HistologyRegionMiner)


@hookimpl
def register_box_cleaners(register):
    register("top_k_regions", TopKRegions)
