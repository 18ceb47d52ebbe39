"""``panel2patch mine``: figures + captions -> figure/panel/region corpus.

Every input item ends in exactly one place: the corpus or the rejects file (with a reason). Work is split
deterministically: item ``i`` of the source belongs to mining shard ``i % n``; within a shard, items are grouped in
chunks of ``chunk_size`` that the writer commits atomically, so a killed run restarted with the same command skips
committed chunks and produces the same corpus. Components count what went wrong with :func:`count_diagnostic`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .components import CaptionSplitter, FigureStage
from .config import Recipe, build, component_keys, settings, slots, validate
from .data import CaptionSplit, Figure, SourceItem
from .errors import Panel2PatchError, Reject
from .images import open_image, stored_form
from .manager import plugin_manager
from .run import RunInfo, versions

TARGETS = ("panels", "markers", "regions")
#: The kernel's own mining slots; other ``mine.*`` slots belong to kinds that plugins add.
PIPELINE_SLOTS = ("source", "parser", "markers", "splitter", "regions", "cleaners", "writer")


@dataclass
class ChunkStats:
    inputs: int = 0
    figures: int = 0
    counts: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)
    cleaners: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    seconds: Counter = field(default_factory=Counter)
    diagnostics: Counter = field(default_factory=Counter)
    ids: Any = field(default_factory=hashlib.sha1)  # digest of the chunk's input ids, checked on resume

    def to_json(self) -> dict[str, Any]:
        return {"ids_sha1": self.ids.hexdigest(), "inputs": self.inputs, "figures": self.figures,
                "counts": dict(self.counts), "rejects": dict(self.rejects),
                "cleaners": {k: dict(v) for k, v in self.cleaners.items()},
                "seconds": {k: round(v, 4) for k, v in self.seconds.items()}, "diagnostics": dict(self.diagnostics)}

    def add(self, other: dict[str, Any]) -> None:
        self.inputs += other["inputs"]
        self.figures += other["figures"]
        self.counts.update(other["counts"])
        self.rejects.update(other["rejects"])
        for name, removed in other["cleaners"].items():
            self.cleaners[name].update(removed)
        self.seconds.update(other["seconds"])
        self.diagnostics.update(other.get("diagnostics", {}))


_DIAGNOSTICS: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("diagnostics", default=None)


def count_diagnostic(signature: str, n: int = 1) -> None:
    """Count ``signature`` (``"lvlm.panels.status.unparseable"``) against the figure being mined: the counts go into
    the figure's ``diagnostics`` and the run's summary, rejected figures' too. Does nothing outside mining."""
    counts = _DIAGNOSTICS.get()
    if counts is not None and n:
        counts[signature] += n


def check_id(figure_id: str) -> None:
    if not figure_id or not figure_id.strip():
        raise Reject("missing_id", "empty figure id")
    if "/" in figure_id or "\\" in figure_id or ".." in figure_id or any(ord(c) < 32 for c in figure_id):
        detail = "contains a path separator, '..' or a control character; ids name figures, not paths"
        raise Reject("unsafe_id", f"figure id {figure_id!r} {detail}")


def assign_subcaptions(figure: Figure, split: CaptionSplit, splitter: CaptionSplitter) -> None:
    """Give each panel the sub-caption the splitter assigns it; a single unassigned panel gets the whole caption."""
    assigned = splitter.assign(split, figure)
    for panel in figure.panels:
        panel.preamble = split.preamble or None
        key = assigned.get(panel.id)
        if key is not None:
            panel.subcaption = split.subcaption(key)
    if len(figure.panels) == 1 and figure.panels[0].subcaption is None:
        figure.panels[0].subcaption = figure.caption.strip()


class Miner:
    """Runs the recipe's ``mine`` section over one shard; ``run_shard``'s ``progress`` is a bar or a per-item callable."""

    def __init__(self, recipe: Recipe, shard: int = 0, num_shards: int = 1, limit: int | None = None) -> None:
        self.recipe = recipe
        self.section = recipe.section("mine")
        self.shard, self.num_shards, self.limit = shard, num_shards, limit
        validate(recipe)
        mine = settings(recipe, "mine")
        self.chunk_size, self.max_pixels = mine.chunk_size, mine.max_pixels
        self.source = build(recipe, "mine.source")
        self.parser = build(recipe, "mine.parser")
        self.detector = build(recipe, "mine.markers")
        self.splitter = build(recipe, "mine.splitter")
        self.region_miner = build(recipe, "mine.regions")
        self.cleaners = build(recipe, "mine.cleaners")
        self.stages = self._domain_stages()
        self.cleaner_names = [f"{i}:{c['name'] if isinstance(c, dict) else c}" for i, c in enumerate(self.section.get("cleaners") or [])]
        self.writer = build(recipe, "mine.writer")
        self.components = {
            key: self.section[key] for key in component_keys("mine") if key not in ("source", "writer") and self.section.get(key)
        }
        # chunks record the settings and components that mined them: resuming with others is refused
        self.config_sha1 = hashlib.sha1(json.dumps([self.components, vars(mine)], sort_keys=True).encode()).hexdigest()
        self.hook = plugin_manager().hook
        self.run = RunInfo("mine", recipe.config, self.writer.location, shard, num_shards)

    def _domain_stages(self) -> list[tuple[str, FigureStage]]:
        """``(key, component)`` of the plugin kinds' ``mine.*`` slots that the recipe fills, in slot order."""
        stages: list[tuple[str, FigureStage]] = []
        for slot, kind in slots().items():
            section, key = slot.split(".", 1)
            if section == "mine" and key not in PIPELINE_SLOTS and issubclass(kind.base, FigureStage):
                built = build(self.recipe, slot)
                named = [(f"{key}[{n}]", s) for n, s in enumerate(built)] if kind.many else [(key, built)]
                stages += [(k, s) for k, s in named if s is not None]
        return stages

    def mine_one(self, item: SourceItem, stats: ChunkStats) -> tuple[Figure, bytes, str]:
        if item.error is not None:
            raise item.error
        check_id(item.id)
        if not isinstance(item.caption, str) or not item.caption.strip():
            raise Reject("missing_caption", "the figure has no caption text")
        t0 = time.perf_counter()
        try:
            raw = item.image_bytes()
        except OSError as exc:
            raise Reject("unreadable_file", str(exc)) from None
        image = open_image(raw, self.max_pixels)
        t1 = time.perf_counter()
        parse = self._call("parser", self.parser.parse, image, item.caption)
        t2 = time.perf_counter()
        figure = Figure(id=item.id, width=image.width, height=image.height, caption=item.caption.strip(), source=item.origin,
                        metadata=item.metadata, panels=parse.panels, markers=list(parse.markers), components=self.components)
        if self.detector is not None:
            figure.markers += self._call("markers", self.detector.detect, image, figure.panels)
        for n, marker in enumerate(figure.markers):
            marker.id = marker.id or f"m{n}"
        t3 = time.perf_counter()
        labels = [p.label for p in figure.panels if p.label]
        split = self._call("splitter", self.splitter.split, figure.caption, labels or None)
        assign_subcaptions(figure, split, self.splitter)
        if self.region_miner is not None:
            figure.regions = self._call("regions", self.region_miner.mine, figure, split, parse.proposals)
        for key, stage in self.stages:
            figure = self._call(key, stage.process, figure, image)
        for name, cleaner in zip(self.cleaner_names, self.cleaners):
            before = {t: len(getattr(figure, t)) for t in TARGETS}
            figure = self._call(f"cleaners[{name}]", cleaner.clean, figure)
            for t in TARGETS:
                stats.cleaners[name][t] += before[t] - len(getattr(figure, t))
        figure.diagnostics = dict(_DIAGNOSTICS.get() or {})
        try:
            Figure.from_json(figure.to_json())  # what every corpus reader accepts
        except ValueError as exc:
            raise Reject("inconsistent_figure", f"the components produced {exc}") from None
        t4 = time.perf_counter()
        stats.seconds.update({"decode": t1 - t0, "parse": t2 - t1, "markers": t3 - t2, "split_regions_clean": t4 - t3})
        data, ext = stored_form(raw, image)
        return figure, data, ext

    def _call(self, component: str, fn, *args):
        try:
            return fn(*args)
        except Reject:
            raise
        except Exception as exc:
            raise Reject("component_error", f"{component} raised {type(exc).__name__}: {exc}") from exc

    def items(self) -> Iterator[tuple[int, SourceItem, bool]]:
        """(position in shard, item, is_duplicate) for this shard's items, in source order."""
        seen: set[str] = set()
        position = 0
        for index, item in enumerate(self.source):
            duplicate = bool(item.id) and item.id in seen and item.error is None
            if item.error is None:
                seen.add(item.id)
            if index % self.num_shards != self.shard:
                continue
            if self.limit is not None and position >= self.limit:
                return
            yield position, item, duplicate
            position += 1

    def chunk_name(self, chunk: int) -> str:
        return f"{self.shard:03d}-{chunk:05d}"

    def run_shard(self, progress: bool | Callable[[int], None] = True) -> ChunkStats:
        from tqdm import tqdm

        is_main = self.run.is_main
        self.hook.on_run_start(run=self.run, is_main=is_main)
        self.hook.on_stage_start(run=self.run, stage="mine", is_main=is_main)
        total, current = ChunkStats(), ChunkStats()
        committed: dict[str, Any] | None = None  # stats of the committed chunk being skipped
        chunk = -1
        bar = tqdm(desc=f"mine shard {self.shard}/{self.num_shards}", unit="fig", disable=progress is not True, file=sys.stderr)
        try:
            for position, item, duplicate in self.items():
                if position // self.chunk_size != chunk:
                    if chunk >= 0:
                        self._close_chunk(chunk, current, committed, total)
                    chunk = position // self.chunk_size
                    current = ChunkStats()
                    committed = self.writer.completed(self.chunk_name(chunk))
                    if committed is None:
                        self.writer.begin(self.chunk_name(chunk))
                current.ids.update(item.id.encode("utf-8", "surrogatepass") + b"\0")
                progress(1) if callable(progress) else bar.update(1)
                if committed is not None:
                    continue
                self._process(item, duplicate, current, position)
                bar.set_postfix(figures=total.figures + current.figures, rejects=sum((total.rejects + current.rejects).values()), refresh=False)
            if chunk >= 0:
                self._close_chunk(chunk, current, committed, total)
        except BaseException as exc:
            self.hook.on_error(run=self.run, stage="mine", error=exc, is_main=is_main)
            raise
        finally:
            bar.close()
        if total.inputs != total.figures + sum(total.rejects.values()):
            raise Panel2PatchError("internal accounting error: inputs != figures + rejects")
        summary = total.to_json()
        self.hook.on_stage_end(run=self.run, stage="mine", summary=summary, is_main=is_main)
        self._write_manifest(total)
        self.hook.on_run_end(run=self.run, summary=summary, is_main=is_main)
        return total

    def _process(self, item: SourceItem, duplicate: bool, stats: ChunkStats, position: int) -> None:
        stats.inputs += 1
        token = _DIAGNOSTICS.set(Counter())
        try:
            if duplicate:
                raise Reject("duplicate_id", f"figure id {item.id!r} appeared earlier in the source")
            figure, data, ext = self.mine_one(item, stats)
        except Reject as exc:
            reason, detail = exc.reason, exc.detail
            self.writer.reject(item.id, reason, f"{detail} (from {item.origin})" if item.origin else detail)
            stats.rejects[reason] += 1
            if reason == "component_error":
                self.hook.on_error(run=self.run, stage="mine", error=exc, is_main=self.run.is_main)
            return
        finally:
            stats.diagnostics.update(_DIAGNOSTICS.get() or {})
            _DIAGNOSTICS.reset(token)
        self.writer.write(figure, data, ext)
        stats.figures += 1
        stats.counts.update(panels=len(figure.panels), markers=len(figure.markers), regions=len(figure.regions))
        self.hook.on_step_end(run=self.run, step=position + 1, metrics={"panels": len(figure.panels), "regions": len(figure.regions)}, is_main=self.run.is_main)

    def _close_chunk(self, chunk: int, current: ChunkStats, committed: dict[str, Any] | None, total: ChunkStats) -> None:
        if committed is None:
            data = {**current.to_json(), "config_sha1": self.config_sha1}
            self.writer.commit(data)
            total.add(data)
            return
        if committed.get("ids_sha1") != current.ids.hexdigest() or committed.get("config_sha1") != self.config_sha1:
            raise Panel2PatchError(
                f"chunk {self.chunk_name(chunk)} in {self.writer.location or 'the output'} was mined from other "
                "inputs or settings (source, shard count, chunk size, components or their args); resuming would "
                "mix two corpora. Write to a new output directory or remove the old one.")
        total.add(committed)

    def _write_manifest(self, total: ChunkStats) -> None:
        self.writer.finish({
            "kind": "panel2patch-corpus", "schema_version": 1, "shard": self.shard, "num_shards": self.num_shards,
            **total.to_json(), "recipe": self.recipe.source, "config": self.recipe.recorded or self.recipe.config,
            "versions": versions("torch", "torchvision", "rapidocr-onnxruntime", "opencv-python"), "command": sys.argv,
        })

