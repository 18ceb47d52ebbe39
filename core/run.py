"""What a run knows about itself: its ranks (from any launcher), the versions it ran with, and what
lifecycle hooks are told."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .errors import Panel2PatchError

#: Distributions every run records; a run adds its own (``versions("deepspeed")``).
CORE_DISTRIBUTIONS = ("numpy", "pillow", "pluggy", "omegaconf", "webdataset")

# (rank, local rank, world size) variables, most specific launcher first: torchrun and deepspeed, then srun.
_LAUNCHERS = (("RANK", "LOCAL_RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"))


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


def world_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` as set by torchrun, deepspeed or SLURM; ``(0, 0, 1)`` alone."""
    for rank_var, local_var, size_var in _LAUNCHERS:
        if rank_var in os.environ and size_var in os.environ:
            try:
                rank, size = int(os.environ[rank_var]), int(os.environ[size_var])
                local = int(os.environ.get(local_var, "0"))
            except ValueError:
                values = f"{rank_var}={os.environ[rank_var]!r} {size_var}={os.environ[size_var]!r}"
                raise Panel2PatchError(f"launcher variables {values} are not integers") from None
            if not 0 <= rank < size:
                raise Panel2PatchError(f"launcher set {rank_var}={rank} outside 0..{size_var}-1={size - 1}")
            return rank, local, size
    return 0, 0, 1


def versions(*distributions: str) -> dict[str, str]:
    """Python's, panel2patch's and the installed versions of the core and the named distributions."""
    from . import __version__

    out = {"python": platform.python_version(), "panel2patch": __version__}
    for dist in (*CORE_DISTRIBUTIONS, *distributions):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
