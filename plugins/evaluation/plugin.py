"""The built-in evaluators' registrations; implementations (numpy, scipy, scikit-learn) are imported when the
registries are collected, not when the plugin manager starts, so that ``panel2patch --help`` stays fast."""

from __future__ import annotations

from panel2patch.hookspecs import hookimpl


@hookimpl
def register_evaluators(register):
    from .probe import LinearProbe
    from .retrieval import BoxTextRetrieval, CrossLevelRetrieval, Retrieval
    from .zeroshot import ZeroShot

    register("retrieval", Retrieval)
    register("cross_level_retrieval", CrossLevelRetrieval)
    register("box_text_retrieval", BoxTextRetrieval)
    register("zero_shot", ZeroShot)
    register("linear_probe", LinearProbe)
