"""Mining several figures at once: ``panel2patch mine --pool N`` runs N figures of a chunk in threads of each worker.

Meant for recipes whose components wait on a model (the LVLM components): while one figure waits for its answers,
the others queue their requests, and the shared engine sends everything queued as one batch (see
:meth:`panel2patch.parsers.lvlm.engine.Engine.ask`), so one ``generate`` call of a vllm engine holds the requests of
up to N figures. The corpus is the same as without a pool: figures are written, rejected and counted in source order,
chunk by chunk, so resume after a kill works as before. Components run concurrently, so they must be thread-safe
(the LVLM components are; the CPU ones are not promised to be); lifecycle hooks may be called from the pool's threads.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from panel2patch.components import Writer
from panel2patch.mining import ChunkStats, Miner

SourceArgs = tuple[Any, bool, int]  # (source item, is a duplicate, position in the shard)


class _Recorder(Writer):
    """Holds one figure's ``write``/``reject`` call until it is replayed, in source order, on the real writer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def completed(self, chunk: str) -> dict[str, Any] | None:
        raise AssertionError("a pooled figure does not manage chunks")

    def begin(self, chunk: str) -> None:
        raise AssertionError("a pooled figure does not manage chunks")

    def write(self, figure, image_bytes, image_ext) -> None:
        self.calls.append(("write", (figure, image_bytes, image_ext)))

    def reject(self, figure_id, reason, detail) -> None:
        self.calls.append(("reject", (figure_id, reason, detail)))

    def commit(self, stats) -> None:
        raise AssertionError("a pooled figure does not manage chunks")

    def finish(self, manifest) -> None:
        raise AssertionError("a pooled figure does not manage chunks")


class PooledMiner(Miner):
    """A :class:`~panel2patch.mining.Miner` that mines ``pool`` figures at once (see the module docstring)."""

    def __init__(self, *args: Any, pool: int = 2, **kwargs: Any) -> None:
        if pool < 1:
            raise ValueError(f"pool must be >= 1, not {pool}")
        super().__init__(*args, **kwargs)
        self.pool = pool
        self._waiting: list[tuple[SourceArgs, ChunkStats]] = []
        self._threads = ThreadPoolExecutor(pool, thread_name_prefix="panel2patch-mine")

    def _process(self, item, duplicate, stats, position) -> None:
        self._waiting.append(((item, duplicate, position), stats))
        if len(self._waiting) >= self.pool:
            self._flush()

    def _close_chunk(self, chunk, current, committed, total) -> None:
        self._flush()
        super()._close_chunk(chunk, current, committed, total)

    def run_shard(self, progress=True) -> ChunkStats:
        try:
            return super().run_shard(progress)
        finally:
            self._threads.shutdown(wait=True)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        outcomes = list(self._threads.map(self._mine_alone, [args for args, _ in waiting]))
        for (recorder, alone), (_, stats) in zip(outcomes, waiting):
            for call, args in recorder.calls:
                getattr(self.writer, call)(*args)
            stats.add(alone.to_json())

    def _mine_alone(self, args: SourceArgs) -> tuple[_Recorder, ChunkStats]:
        """One figure through :meth:`Miner._process` with its own stats and a writer that holds its output."""
        item, duplicate, position = args
        recorder, alone = _Recorder(), ChunkStats()
        view = copy.copy(self)  # the same components, another writer
        view.writer = recorder
        Miner._process(view, item, duplicate, alone, position)
        return recorder, alone

