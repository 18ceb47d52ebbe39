"""Registrations of the LVLM data engine: the ``lvlm_backends`` kind (where answers come from; chosen by the ``lvlm``
settings, not by a recipe slot), the ``lvlm`` settings section, and the LVLM figure parser, marker detector and
caption splitter. Implementations are imported when the registries are collected."""

from __future__ import annotations

import pluggy

from panel2patch.hookspecs import hookimpl, hookspec
from panel2patch.registry import Kind

from .cache import Backend

BACKENDS = Kind("lvlm_backends", "register_lvlm_backends", Backend)


class LVLMSpecs:
    """Hook specs of the LVLM data engine."""

    @hookspec
    def register_lvlm_backends(self, register):
        """Register LVLM backends: factories of :class:`~panel2patch.parsers.lvlm.cache.Backend` (one batch of
        requests in, one answer per request out), selected by the ``lvlm.backend`` setting."""


@hookimpl
def add_hookspecs(pluginmanager: pluggy.PluginManager):
    pluginmanager.add_hookspecs(LVLMSpecs)


@hookimpl
def register_kinds(register):
    register(BACKENDS.name, BACKENDS)


@hookimpl
def register_settings(register):
    from .engine import EngineSettings

    register("lvlm", EngineSettings)


@hookimpl
def register_lvlm_backends(register):
    from .backends import OpenAIBackend, TransformersBackend, VllmBackend
    from .cache import RecordedBackend
    from .reference import ReferenceBackend

    register("vllm", VllmBackend)
    register("openai", OpenAIBackend)
    register("transformers", TransformersBackend)
    register("recorded", RecordedBackend)
    register("reference", ReferenceBackend)


@hookimpl
def register_figure_parsers(register):
    from .panels import SetOfMarksPanelParser

    register("lvlm_panels", SetOfMarksPanelParser)


@hookimpl
def register_marker_detectors(register):
    from .markers import LVLMMarkerDetector

    register("lvlm_markers", LVLMMarkerDetector)


@hookimpl
def register_caption_splitters(register):
    from .captions import LVLMCaptionSplitter

    register("lvlm_splitter", LVLMCaptionSplitter)
