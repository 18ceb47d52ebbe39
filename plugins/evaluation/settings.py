"""The ``eval`` section's plain settings (its evaluators sit in the ``eval.evaluators`` slot)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from panel2patch.config import positive

#: What ``eval.split`` may name: training's held-out figures, or every figure of the corpus.
SPLITS = ("held_out", "all")


@dataclass
class EvalSettings:
    """``models``: label -> ``{loader, args, checkpoint}`` (:mod:`~panel2patch.plugins.evaluation.models`; default:
    the trained export, if any, beside the recipe's initialisation). ``reference``: the model others are compared
    with (default: the first). ``corpus``/``held_out``: default ``train.data``'s; ``split``: ``held_out`` or ``all``.
    ``levels``: ``[{name, args}]`` (default ``train.levels``, else figure, panel, region). ``out``: the output folder
    (default ``OUTPUT_DIR/eval``). ``bootstrap`` resamples at ``confidence`` give every interval."""

    models: Optional[dict[str, Any]] = None
    reference: Optional[str] = None
    corpus: Optional[str] = None
    split: str = "held_out"
    held_out: Optional[float] = None
    levels: Optional[list[Any]] = None
    out: Optional[str] = None
    batch_size: int = 64
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    plot: bool = True

    def check(self) -> None:
        positive("batch_size", self.batch_size)
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.held_out is not None and not 0.0 < self.held_out < 1.0:
            raise ValueError(f"held_out must be in (0, 1), got {self.held_out}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.bootstrap < 0:
            raise ValueError(f"bootstrap must be >= 0, got {self.bootstrap}")
