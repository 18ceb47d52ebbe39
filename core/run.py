"""What lifecycle hooks learn about the run they observe."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunInfo:
    """``command`` is ``mine``/``train``/``eval``; ranks come from the launcher's environment."""

    command: str
    recipe: Any
    output_dir: str
    rank: int = 0
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launcher_rank() -> tuple[int, int]:
    """(rank, world size) as set by deepspeed, torchrun or SLURM; (0, 1) when launched alone."""
    for rank_var, size_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if rank_var in os.environ and size_var in os.environ:
            return int(os.environ[rank_var]), int(os.environ[size_var])
    return 0, 1
