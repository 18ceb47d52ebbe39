"""Built-in loss terms: intra-level CLIP contrast, inter-level message passing, ROI-align consistency.

Registered names: ``clip_contrastive`` (:class:`~panel2patch.objectives.contrastive.ClipContrastive`),
``interlevel_contrastive`` (:class:`~panel2patch.objectives.interlevel.InterLevel`), ``roi_consistency``
(:class:`~panel2patch.objectives.roi.RoiConsistency`). Recipes give each its ``weight`` in ``args``.
"""

from __future__ import annotations

from panel2patch.hookspecs import hookimpl
from panel2patch.objectives.contrastive import ClipContrastive
from panel2patch.objectives.interlevel import InterLevel
from panel2patch.objectives.roi import RoiConsistency


@hookimpl
def register_loss_terms(register):
    register("clip_contrastive", ClipContrastive)
    register("interlevel_contrastive", InterLevel)
    register("roi_consistency", RoiConsistency)
