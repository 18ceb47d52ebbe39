"""The built-in parsers' registrations. Implementations are imported when the registries are collected,
not when the plugin manager starts, so that ``panel2patch --help`` stays fast."""

from __future__ import annotations

from panel2patch.hookspecs import hookimpl


@hookimpl
def register_figure_parsers(register):
    from .layout.parser import LayoutParser

    register("cpu_layout", LayoutParser)


@hookimpl
def register_marker_detectors(register):
    from .markers.detector import ShapeMarkerDetector

    register("shape_markers", ShapeMarkerDetector)


@hookimpl
def register_caption_splitters(register):
    from .captions.splitter import LabelCaptionSplitter

    register("label_splitter", LabelCaptionSplitter)
