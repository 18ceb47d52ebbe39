"""Mining on every core: ``panel2patch mine --workers N`` runs N worker processes, each a mining shard of its own.

Rank ``r`` of ``n`` (from ``--shard`` or the launcher) with ``N`` workers runs shards ``r*N .. r*N+N-1`` of ``n*N``,
each in a spawned process that builds its own components (models and OCR engines load once per worker), uses
``cores / N`` threads and sees its share of the GPUs (:func:`gpu_share`). Each worker keeps the single-process
guarantees (atomic chunks, resume after kill -9, every input in the corpus or a reject); the corpus members are the
same for any N. A re-run resumes with the same N (the
shard count is part of what a chunk records). One progress bar counts the items of all workers.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import sys
from typing import Any

from panel2patch.errors import Panel2PatchError
from panel2patch.run import world_info

#: Thread budgets the libraries of mining read at start-up (OpenCV's own pool included).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "OPENCV_FOR_THREADS_NUM")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, as container and SLURM limits set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """The cores available to this rank: its CPU affinity shared among the ranks torchrun started on this node."""
    return max(1, available_cores() // local_ranks()[1])


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (SLURM sets it per task), else every GPU
    the NVIDIA driver lists (read from ``/proc``, so that this process does not start CUDA before its workers)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in (part.strip() for part in listed.split(",")) if g]
    try:
        return [str(n) for n in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def gpu_share(gpus: list[str], local_rank: int, local_ranks: int, worker: int, workers: int) -> list[str]:
    """The GPUs of one worker: the node's ``gpus`` dealt out among the ranks torchrun started on it (each sees them
    all), then among the rank's workers; workers share a GPU when there are fewer GPUs than workers."""
    if not gpus:
        return []
    mine = gpus[local_rank::local_ranks] or [gpus[local_rank % len(gpus)]]
    return mine[worker::workers] or [mine[worker % len(mine)]]


def local_ranks() -> tuple[int, int]:
    """``(local rank, ranks on this node)``: the launcher's local rank (:func:`panel2patch.run.world_info`) and
    torchrun's ``LOCAL_WORLD_SIZE`` (1 when unset: SLURM restricts each task's CPUs and GPUs itself)."""
    size = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return world_info()[1], max(1, int(size)) if size.isdigit() else 1


def use_gpu_share() -> None:
    """Restrict this one-worker process to its rank's GPUs (``CUDA_VISIBLE_DEVICES``), before CUDA starts."""
    gpus = visible_gpus()
    share = gpu_share(gpus, *local_ranks(), 0, 1)
    if share != gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(share)


def worker_limits(limit: int | None, workers: int) -> list[int | None]:
    """``--limit`` shared out over the workers (None: no limit)."""
    if limit is None:
        return [None] * workers
    return [limit // workers + (k < limit % workers) for k in range(workers)]


def make_miner(recipe: Any, shard: int, num_shards: int, limit: int | None, pool: int = 1) -> Any:
    """A :class:`~panel2patch.mining.Miner`, or with ``pool`` > 1 a :class:`~.mine_pool.PooledMiner`."""
    from panel2patch.mining import Miner

    if pool == 1:
        return Miner(recipe, shard, num_shards, limit=limit)
    from .mine_pool import PooledMiner

    return PooledMiner(recipe, shard, num_shards, limit=limit, pool=pool)


def mine_in_workers(recipe: Any, shard: int, num_shards: int, workers: int, limit: int | None = None,
                    progress: bool = True, pool: int = 1) -> Any:
    """Mine rank ``shard`` of ``num_shards`` with ``workers`` processes (each mining ``pool`` figures at once); the
    summed :class:`ChunkStats`."""
    from tqdm import tqdm

    from panel2patch.mining import ChunkStats

    context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or CUDA state
    messages = context.Queue()
    threads = max(1, available_cores() // workers)
    gpus, (local_rank, ranks) = visible_gpus(), local_ranks()
    procs = [
        context.Process(target=_worker, name=f"panel2patch-mine-{shard * workers + k}",
                        args=(recipe, shard * workers + k, num_shards * workers, limit_k, threads,
                              gpu_share(gpus, local_rank, ranks, k, workers), messages, pool))
        for k, limit_k in enumerate(worker_limits(limit, workers))
    ]
    for proc in procs:
        proc.start()
    total, finished, errors = ChunkStats(), set(), []
    bar = tqdm(desc=f"mine shard {shard}/{num_shards} ({workers} workers)", unit="fig", disable=not progress,
               file=sys.stderr)
    try:
        while len(finished) < workers:
            try:
                kind, who, value = messages.get(timeout=0.5)
            except queues.Empty:
                lost = [p for p in procs if p.exitcode not in (None, 0) and p.name not in finished]
                for proc in lost:  # killed (out of memory, a signal) before it could say so
                    errors.append(f"worker {proc.name} ended with exit code {proc.exitcode}")
                    finished.add(proc.name)
                continue
            if kind == "items":
                bar.update(value)
            elif kind == "done":
                total.add(value)
                finished.add(who)
            else:
                errors.append(f"worker {who}: {value}")
                finished.add(who)
    except BaseException:
        for proc in procs:
            proc.terminate()
        raise
    finally:
        bar.close()
    for proc in procs:
        proc.join()
    if errors:
        raise Panel2PatchError("; ".join(errors))
    return total


def _worker(recipe: Any, shard: int, num_shards: int, limit: int | None, threads: int, gpus: list[str],
            messages: Any, pool: int = 1) -> None:
    for name in THREAD_VARIABLES:  # before numpy, torch or onnxruntime are imported in this process
        os.environ[name] = str(threads)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    name = multiprocessing.current_process().name
    try:
        miner = make_miner(recipe, shard, num_shards, limit, pool)
        stats = miner.run_shard(progress=lambda n: messages.put(("items", name, n)))
        messages.put(("done", name, stats.to_json()))
    except Panel2PatchError as exc:
        messages.put(("error", name, str(exc)))
    except BaseException as exc:  # a bug: say what, then let the traceback reach the worker's stderr
        messages.put(("error", name, f"{type(exc).__name__}: {exc}"))
        raise
