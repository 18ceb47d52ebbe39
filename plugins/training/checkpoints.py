"""DeepSpeed checkpoints of a run: saved with each rank's RNG states, located for ``--resume``, loaded back."""

from __future__ import annotations

import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import TrainError

#: The key of the run's own state (step, schedule, data positions, plan) in DeepSpeed's client state.
CLIENT_KEY = "panel2patch"


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(engine: Any, ckpt_dir: Path, step: int, run_state: Mapping[str, Any], rank: int,
                    keep: int) -> Path:
    """Save a DeepSpeed checkpoint ``step-NNNNNNNN`` (all ranks) plus this rank's RNG states; the main rank
    then deletes all but the ``keep`` newest (``keep`` <= 0 keeps all)."""
    import torch

    tag = f"step-{step:08d}"
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={CLIENT_KEY: dict(run_state)},
                           exclude_frozen_parameters=True)
    torch.save(rng_state(), ckpt_dir / tag / f"rng_rank{rank:05d}.pt")
    torch.distributed.barrier()
    if rank == 0 and keep > 0:
        tags = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
        for old in tags[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    torch.distributed.barrier()
    return ckpt_dir / tag


def locate_checkpoint(ckpt_dir: Path, resume: str) -> tuple[Path, str]:
    """``(load_dir, tag)`` for ``--resume``: ``latest`` (of ``ckpt_dir``), a checkpoint folder with a
    ``latest`` file, or a tag folder."""
    if resume == "latest":
        latest = ckpt_dir / "latest"
        if not latest.is_file():
            raise TrainError(f"--resume latest: no checkpoint in {ckpt_dir} (no 'latest' file)")
        return ckpt_dir, latest.read_text().strip()
    path = Path(resume)
    if not path.is_dir():
        raise TrainError(f"--resume {resume}: not a checkpoint directory")
    if (path / "latest").is_file():
        return path, (path / "latest").read_text().strip()
    return path.parent, path.name


def load_checkpoint(engine: Any, load_dir: Path, tag: str) -> dict[str, Any]:
    """Load model, optimizer and LR scheduler into ``engine``; returns the run state saved with them."""
    path, client = engine.load_checkpoint(str(load_dir), tag=tag, load_module_strict=False)
    if path is None or client is None or CLIENT_KEY not in client:
        raise TrainError(f"cannot load checkpoint {load_dir / tag}: not a panel2patch training checkpoint")
    return client[CLIENT_KEY]


def restore_rng_state(load_dir: Path, tag: str, rank: int) -> None:
    """Restore this rank's RNG states saved with the checkpoint (if that file exists)."""
    import torch

    rng = load_dir / tag / f"rng_rank{rank:05d}.pt"
    if rng.is_file():
        set_rng_state(torch.load(rng, weights_only=False))
