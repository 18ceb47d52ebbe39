"""Distributed set-up: torch.distributed through DeepSpeed for any launcher, seeding, and metric means over ranks."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Mapping
from typing import Any

from panel2patch.run import world_info

from .errors import TrainError


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> tuple[int, int, int, Any]:
    """Initialise torch.distributed through DeepSpeed; returns ``(rank, world_size, local_rank, device)``.

    Ranks come from :func:`panel2patch.run.world_info`: launched by ``deepspeed``/``torchrun`` or under
    ``srun`` (with ``MASTER_ADDR``/``MASTER_PORT`` exported); launched alone this process is a world
    of one. Backend: NCCL with CUDA, gloo on CPU (which also gets its cores split between the
    local ranks unless ``OMP_NUM_THREADS`` is set).
    """
    import deepspeed
    import torch

    rank, local_rank, world_size = world_info()
    if world_size > 1 and ("MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ):
        raise TrainError(f"{world_size} ranks were started but MASTER_ADDR/MASTER_PORT are not set: under srun "
                         "export them (the first node and a free port), or start the run with the deepspeed launcher")
    if world_size == 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    # torch.distributed reads the ranks from these variables, whichever launcher gave them
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(local_rank)})
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        if "OMP_NUM_THREADS" not in os.environ:
            local = int(os.environ.get("LOCAL_SIZE") or os.environ.get("LOCAL_WORLD_SIZE") or "1")
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local)))
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), local_rank, device


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def mean_over_ranks(parts: Mapping[str, list[Any]], world_size: int, device: Any) -> dict[str, float]:
    """Mean of each metric over micro-steps and ranks (ranks that lack a metric do not count)."""
    import torch
    import torch.distributed as dist

    keys = sorted(parts)
    if world_size > 1:
        names = [None] * world_size
        dist.all_gather_object(names, keys)
        keys = sorted({k for ks in names for k in ks})
    sums = torch.zeros(len(keys), dtype=torch.float64)
    counts = torch.zeros(len(keys), dtype=torch.float64)
    for i, key in enumerate(keys):
        values = parts.get(key, [])
        if values:
            sums[i] = float(torch.stack([v.float().cpu() for v in values]).sum())
            counts[i] = len(values)
    if world_size > 1:
        packed = torch.stack([sums, counts]).to(device if device.type == "cuda" else "cpu")
        dist.all_reduce(packed)
        sums, counts = packed[0].cpu(), packed[1].cpu()
    return {k: float(sums[i] / counts[i]) for i, k in enumerate(keys) if counts[i] > 0}
