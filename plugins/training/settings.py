"""Schema of the ``train`` section's plain settings (see :mod:`panel2patch.config`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from panel2patch.config import parse_settings, positive


@dataclass
class DataSettings:
    """``train.data``: the corpus and how level batches are made.

    ``batch_size``: samples per level batch on each rank, an int or ``{level: int}`` (names or codes).
    ``held_out``: fraction of figures (by key hash) kept out of training for validation.
    ``max_children``: children encoded per parent in M and P steps (a random subset beyond it).
    """

    corpus: str = ""
    batch_size: Any = 32
    workers: int = 2
    pin_memory: bool = True
    prefetch: int = 2
    shuffle_buffer: int = 1000
    held_out: float = 0.02
    max_children: int = 8

    def check(self) -> None:
        sizes = self.batch_size.values() if isinstance(self.batch_size, Mapping) else [self.batch_size]
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"batch_size must be a positive int or {{level: positive int}}, got {self.batch_size!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if not 0.0 <= self.held_out < 1.0:
            raise ValueError(f"held_out must be in [0, 1), got {self.held_out}")
        positive("max_children", self.max_children)


@dataclass
class OptimSettings:
    """``train.optim``: AdamW with linear warm-up and cosine decay (DeepSpeed ``WarmupCosineLR``).

    Training length is ``max_steps`` optimizer steps, or ``epochs`` passes over the largest level.
    """

    lr: float = 1e-5
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-6
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    epochs: Optional[float] = None
    max_steps: Optional[int] = None

    def check(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if len(self.betas) != 2:
            raise ValueError("betas must hold two numbers")
        if self.max_steps is None and self.epochs is None:
            raise ValueError("max_steps or epochs must be set")
        positive("max_steps", self.max_steps)
        positive("epochs", self.epochs)


@dataclass
class CheckpointSettings:
    """``train.checkpoint``: DeepSpeed checkpoints every ``every_n_steps`` and at the end; ``keep`` newest kept."""

    dir: Optional[str] = None
    every_n_steps: int = 1000
    keep: int = 2


@dataclass
class ValidationSettings:
    """``train.validation``: in-batch retrieval on the held-out split."""

    batch_size: int = 32
    max_batches: int = 20
    workers: int = 0

    def check(self) -> None:
        positive("batch_size", self.batch_size)


@dataclass
class TextCacheSettings:
    """``train.text_cache``: on-disk text embeddings of the frozen text tower (``dir`` None: user cache)."""

    enabled: bool = True
    dir: Optional[str] = None


@dataclass
class TrainSettings:
    """The plain keys of ``train`` (its components sit in the slots the component kinds declare)."""

    output_dir: str = "out/train"
    seed: int = 0
    eval_every: int = 0
    log_every: int = 10
    export: bool = True
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    text_cache: TextCacheSettings = field(default_factory=TextCacheSettings)
    deepspeed: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.data.corpus:
            raise ValueError("data.corpus is missing (a corpus directory with **/*.tar shards)")
        for key in ("optimizer", "scheduler"):
            if key in self.deepspeed:
                raise ValueError(f"deepspeed.{key} is set by panel2patch from train.optim; remove it")


def parse_train_settings(section: Mapping[str, Any], source: str, component_keys: tuple[str, ...] = ()) -> TrainSettings:
    """The plain keys of a recipe's ``train`` section (keys in ``component_keys`` are left out)."""
    return parse_settings(TrainSettings, {k: v for k, v in section.items() if k not in component_keys}, "train", source)
