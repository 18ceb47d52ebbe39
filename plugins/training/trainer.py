"""The DeepSpeed trainer: plans the run, trains the scheduled levels, evaluates, checkpoints and exports.

:class:`Trainer` runs a recipe's schedule on DeepSpeed (ZeRO from the recipe, fp32 on CPU with gloo,
bf16 on GPU), evaluates in-batch retrieval on the held-out split, checkpoints (model, optimizer, LR
scheduler, schedule, data positions, RNG states) and exports an open_clip model.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panel2patch.config import Recipe, build, component_keys, components, validate
from panel2patch.errors import RecipeError
from panel2patch.manager import plugin_manager
from panel2patch.run import RunInfo, versions

from . import checkpoints
from .corpus_scan import CorpusCounts, scan
from .distributed import init_distributed, mean_over_ranks, seed_everything
from .errors import TrainError
from .evaluation import evaluate_levels
from .export import export_model, trained_state_dict
from .loaders import LevelLoader, LoaderOptions, StreamSpec, check_resumable
from .model import parameter_counts, patch_size, wrap_model
from .optimization import adamw, deepspeed_config
from .settings import parse_train_settings
from .step import TextSource, level_step
from .text_cache import TextEmbeddingCache, default_cache_dir, text_fingerprint, text_tower_names


class MetricsLog:
    """JSONL metrics and TensorBoard scalars (``OUTPUT/tensorboard``); main rank only."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.writer: Any = None
        self.file: Any = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.file = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")
        self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def log(self, step: int, metrics: Mapping[str, Any], kind: str = "train") -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, "time": time.time(), **metrics}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{key}" if kind != "eval" else key, value, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.writer.close()


@dataclass
class Plan:
    """How long the run is: ``total_steps`` optimizer steps; ``steps_per_epoch`` when epochs were asked."""

    total_steps: int
    steps_per_epoch: int | None
    shares: dict[str, float]


def level_shares(schedule: Any, horizon: int = 1200) -> dict[str, float]:
    """Fraction of steps in which each level of ``schedule`` is active, estimated over ``horizon`` steps."""
    counts = collections.Counter(name for step in range(horizon) for name in schedule.levels(step))
    return {name: n / horizon for name, n in counts.items()}


class Trainer:
    """Zoom-in hierarchical pretraining of one recipe on DeepSpeed.

    ``Trainer(recipe, resume).fit()`` runs the whole training; ``resume`` is ``"latest"``, a checkpoint
    directory (a DeepSpeed tag folder) or None. Every rank builds its own Trainer.
    """

    def __init__(self, recipe: Recipe, resume: str | None = None) -> None:
        validate(recipe)
        self.recipe = recipe
        self.cfg = parse_train_settings(recipe.section("train"), recipe.source, component_keys("train"))
        self.resume = resume
        self.model_loader = build(recipe, "train.model")
        self.levels = build(recipe, "train.levels")
        if not self.levels:
            raise RecipeError(f"{recipe.source}: key 'train.levels' is empty")
        self.aggregator = build(recipe, "train.aggregator")
        self.schedule = build(recipe, "train.schedule")
        names = [node["name"] for key, _, node in components(recipe) if key.startswith("train.losses[")]
        self.terms = list(zip(_unique_names(names), build(recipe, "train.losses")))
        if self.aggregator is None:
            pooling = [name for name, term in self.terms if getattr(term, "needs_aggregator", False)]
            if pooling:
                raise RecipeError(
                    f"{recipe.source}: loss {pooling[0]!r} pools children into their parents, but key "
                    "'train.aggregator' is not set; name a registered aggregator there (panel2patch plugins lists them)"
                )
        self.alias = self._aliases()
        self.step = 0
        self.images_seen = 0  # images encoded by training steps on all ranks, related crops included
        self.engine: Any = None

    # -- set-up -----------------------------------------------------------------------------------

    def _aliases(self) -> dict[str, str]:
        alias: dict[str, str] = {}
        for level in self.levels:
            for key in (level.name, getattr(level, "code", "") or level.name):
                if key in alias and alias[key] != level.name:
                    raise RecipeError(f"{self.recipe.source}: levels {alias[key]!r} and {level.name!r} share the name {key!r}")
                alias[key] = level.name
        if len(set(alias.values())) != len(self.levels):
            raise RecipeError(f"{self.recipe.source}: key 'train.levels' lists a level twice")
        return alias

    def _resolve(self, name: str, where: str) -> str:
        if name not in self.alias:
            raise RecipeError(
                f"{self.recipe.source}: {where} names level {name!r}, but the recipe trains "
                f"{', '.join(sorted(self.alias))} (train.levels)"
            )
        return self.alias[name]

    def batch_sizes(self) -> dict[str, int]:
        spec = self.cfg.data.batch_size
        if isinstance(spec, int):
            return {level.name: spec for level in self.levels}
        sizes = {self._resolve(k, "train.data.batch_size"): int(v) for k, v in spec.items()}
        missing = [lv.name for lv in self.levels if lv.name not in sizes]
        if missing:
            raise RecipeError(f"{self.recipe.source}: key train.data.batch_size has no entry for {', '.join(missing)}")
        return sizes

    def plan(self, counts: CorpusCounts, world_size: int, gas: int) -> Plan:
        """``max_steps``, or ``epochs`` x steps per epoch, where an epoch is the number of optimizer steps in
        which every scheduled level sees each of its training samples once: for level L with share s_L of
        the steps, ``n_L / (batch_L * world_size * grad_accumulation * s_L)``, maximised over levels."""
        shares = {self._resolve(k, "train.schedule"): v for k, v in level_shares(self.schedule).items()}
        sizes = self.batch_sizes()
        per_level = {}
        for name, share in shares.items():
            n = counts.samples[name]["train"]
            if n == 0:
                raise TrainError(f"the schedule trains level {name!r} but the corpus has no {name} samples in its training split")
            if sizes[name] * world_size > n:  # a batch would repeat samples (and a huge one exhausts memory)
                raise TrainError(f"train.data.batch_size of level {name!r} is {sizes[name]} per rank x {world_size} "
                                 f"ranks, more than its {n} training samples; lower it or add figures")
            per_level[name] = math.ceil(n / (sizes[name] * world_size * gas * share))
        steps_per_epoch = max(per_level.values())
        if self.cfg.optim.max_steps is not None:
            return Plan(int(self.cfg.optim.max_steps), None, shares)
        return Plan(max(1, math.ceil(self.cfg.optim.epochs * steps_per_epoch)), steps_per_epoch, shares)

    def setup(self) -> None:
        import torch

        cfg = self.cfg
        # open_clip's gather and DeepSpeed call collectives that torch marks deprecated: say so once
        warnings.filterwarnings("once", category=FutureWarning, message=r".*all_gather.*")
        self.rank, self.world_size, self.local_rank, self.device = init_distributed()
        self.is_main = self.rank == 0
        seed_everything(cfg.seed)  # the same initial weights on every rank
        self.out_dir = Path(cfg.output_dir)
        self.ckpt_dir = Path(cfg.checkpoint.dir) if cfg.checkpoint.dir else self.out_dir / "checkpoints"
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.run = RunInfo("train", self.recipe.config, str(self.out_dir), self.rank, self.world_size,
                           extra={"recipe": self.recipe.source, "resume": self.resume})

        clip, self.transform, self.tokenizer = self.model_loader.load()
        self.clip = clip
        self.preprocess_cfg = dict(clip.visual.preprocess_cfg)
        trainable, total = parameter_counts(clip)
        self.param_counts = {"trainable": trainable, "total": total}
        self._print(f"parameters: {trainable:,} trainable / {total:,} total ({100.0 * trainable / max(total, 1):.2f}%)")
        text_names = set(text_tower_names(clip))
        text_frozen = not any(p.requires_grad for n, p in clip.named_parameters() if n in text_names)

        ds_cfg = deepspeed_config(cfg, max(self.batch_sizes().values()), self.recipe.source)
        bf16 = bool(ds_cfg.get("bf16", {}).get("enabled"))
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        fingerprint = None
        if text_frozen and cfg.text_cache.enabled:
            fingerprint = text_fingerprint(clip, self.tokenizer, sorted(text_names), extra=f"{self.dtype}")
        # frozen weights are exported from their original fp32 values, not the bf16 training copy
        trained = {n for n, p in clip.named_parameters() if p.requires_grad}
        self._frozen_fp32 = (
            {k: v.detach().clone() for k, v in clip.state_dict().items() if k not in trained}
            if bf16 and self.is_main else None
        )
        dim = int((self.model_loader.model_config() or {}).get("embed_dim") or clip.visual.output_dim)
        agg_module = self.aggregator.setup(dim) if self.aggregator is not None else None
        model = wrap_model(clip, agg_module)

        gas = int(ds_cfg["gradient_accumulation_steps"])
        self.counts = scan(cfg.data.corpus, self.levels, cfg.data.held_out)
        self.schedule.bind([lv.name for lv in self.levels])
        for term_name, term in self.terms:
            if term.levels is not None:
                term.levels = tuple(self._resolve(x, f"loss {term_name!r} levels") for x in term.levels)
        self.plan_ = self.plan(self.counts, self.world_size, gas)
        ds_cfg["scheduler"]["params"]["total_num_steps"] = self.plan_.total_steps
        train_counts = ", ".join(f"{n} {c['train']}" for n, c in self.counts.samples.items())
        self._print(f"corpus: {self.counts.figures['train']} training figures ({train_counts}), "
                    f"{self.counts.figures['held_out']} held out; {self.plan_.total_steps} steps on "
                    f"{self.world_size} rank(s)")

        optimizer = adamw(model, cfg.optim)
        import deepspeed

        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_cfg)
        # WarmupCosineLR starts at iteration -1 (lr 0) and the engine steps it after each optimizer
        # step; one step here makes step k train at lr * (k - 1) / warmup_steps (a resume overwrites it)
        self.engine.lr_scheduler.step()
        seed_everything(cfg.seed + self.rank)
        self.ds_config = ds_cfg
        self.gas = gas
        self.patch = patch_size(clip)
        self.texts = TextSource(self.engine.module.clip, self.tokenizer, self.device, text_frozen, None)
        if fingerprint is not None:
            directory = cfg.text_cache.dir or default_cache_dir()
            self.texts.cache = TextEmbeddingCache(self.texts.encode, fingerprint, directory)
        self.loaders = self._loaders({})
        self.log = MetricsLog(self.out_dir, self.is_main)
        if self.resume:
            self._load_checkpoint(self.resume)
        if self.is_main:
            self._write_run_files()

    def _print(self, message: str) -> None:
        if getattr(self, "is_main", True):
            print(f"[panel2patch train] {message}", file=sys.stderr, flush=True)

    def _loaders(self, positions: Mapping[str, Any]) -> dict[str, LevelLoader]:
        data = self.cfg.data
        sizes = self.batch_sizes()
        workers = max(0, int(data.workers))
        slots = self.world_size * max(1, workers)
        options = LoaderOptions(workers=workers, pin_memory=bool(data.pin_memory) and self.device.type == "cuda",
                                prefetch=max(1, int(data.prefetch)))
        loaders = {}
        for level in self.levels:
            per_shard = [self.counts.per_shard[s][level.name]["train"] for s in self.counts.shards]
            by_shard = len(per_shard) >= slots and all(n > 0 for n in per_shard)
            total = sum(per_shard)
            if total and not by_shard and total < slots:
                raise TrainError(
                    f"level {level.name!r} has {total} training samples, fewer than the {slots} readers "
                    f"({self.world_size} rank(s) x {max(1, workers)} worker(s)); lower train.data.workers"
                )
            spec = StreamSpec(
                shards=self.counts.shards, level=level, split="train", held_out=data.held_out,
                batch_size=sizes[level.name], seed=self.cfg.seed, rank=self.rank, world_size=self.world_size,
                shuffle_buffer=int(data.shuffle_buffer), infinite=True, by_shard=by_shard,
                max_children=int(data.max_children),
            )
            if level.name in positions:
                spec.skip = check_resumable(level.name, positions[level.name], spec, workers)
            loaders[level.name] = LevelLoader(spec, self.transform, self.preprocess_cfg, options)
        return loaders

    def _write_run_files(self) -> None:
        from omegaconf import OmegaConf

        recorded = self.recipe.recorded or self.recipe.config  # env interpolations stay unresolved
        (self.out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(recorded)), encoding="utf-8")
        info = {
            "recipe": self.recipe.source,
            "versions": versions("torch", "torchvision", "open_clip_torch", "deepspeed"),
            "world_size": self.world_size,
            "device": str(self.device),
            "dtype": str(self.dtype),
            "parameters": self.param_counts,
            "counts": self.counts.to_json(),
            "plan": dataclasses.asdict(self.plan_),
            "batch_sizes": self.batch_sizes(),
            "deepspeed": self.ds_config,
            "weights": getattr(self.model_loader, "weights", None),
            "text_cache": self.texts.cache.stats() if self.texts.cache is not None else None,
            "resumed_from": self.resume,
        }
        (self.out_dir / "run.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        split = self.counts.split_record(self.cfg.data.held_out)
        (self.out_dir / "split.json").write_text(json.dumps(split, indent=1, ensure_ascii=False), encoding="utf-8")

    # -- checkpoints ------------------------------------------------------------------------------

    def _run_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "images_seen": self.images_seen,
            "schedule": self.schedule.state_dict(),
            "data": {name: loader.state_dict() for name, loader in self.loaders.items()},
            "plan": dataclasses.asdict(self.plan_),
        }

    def save_checkpoint(self) -> Path:
        """Save a DeepSpeed checkpoint ``step-NNNNNNNN`` (all ranks) plus this rank's RNG states."""
        return checkpoints.save_checkpoint(self.engine, self.ckpt_dir, self.step, self._run_state(), self.rank,
                                           self.cfg.checkpoint.keep)

    def _load_checkpoint(self, resume: str) -> None:
        folder, state = checkpoints.load_checkpoint(self.engine, self.ckpt_dir, resume, self.rank)
        try:
            self.schedule.load_state_dict(state["schedule"])
        except ValueError as exc:
            raise TrainError(f"cannot resume from {folder}: {exc}") from None
        if state["plan"]["total_steps"] != self.plan_.total_steps:
            raise TrainError(
                f"cannot resume from {folder}: it plans {state['plan']['total_steps']} steps, the recipe "
                f"now gives {self.plan_.total_steps}; keep optim.max_steps/epochs and batch sizes unchanged"
            )
        self.step = int(state["step"])
        self.images_seen = int(state.get("images_seen", 0))
        self.loaders = self._loaders(state["data"])
        checkpoints.restore_rng_state(folder, self.rank)
        self._print(f"resumed from {folder} at step {self.step}")

    # -- training ---------------------------------------------------------------------------------

    def _hook(self, name: str, **kwargs: Any) -> None:
        getattr(plugin_manager().hook, name)(run=self.run, is_main=self.is_main, **kwargs)

    def _touch_unused(self, loss: Any) -> Any:
        # Every rank must produce a gradient for every trainable parameter (ZeRO reduces them in
        # lock-step); an aggregator whose term was skipped on this rank contributes an exact zero.
        module = self.engine.module.aggregator
        if module is None:
            return loss
        extra = sum(p.sum() for p in module.parameters() if p.requires_grad) * 0.0
        return extra if loss is None else loss + extra

    def train_step(self) -> dict[str, float]:
        """One optimizer step of the levels the schedule picks (``gradient_accumulation_steps`` micro-batches).

        Returns the step's metrics: ``LEVEL/TERM`` and ``LEVEL/loss`` (means over micro-batches and ranks),
        ``lr`` (the rate this step used), ``images_per_s`` (all ranks) and ``step_time_s``. ``self.active`` holds the levels trained.
        """
        import torch

        names = [self._resolve(n, "train.schedule") for n in self.schedule.levels(self.step)]
        lr = float(self.engine.get_lr()[0])
        start = time.perf_counter()
        parts: dict[str, list[Any]] = {}
        images = 0
        for _ in range(self.gas):
            total = None
            for name in names:
                batch = next(self.loaders[name])
                loss, level_parts = level_step(
                    self.engine, batch, self.texts, self.terms, self.aggregator, self.device, self.dtype,
                    self.patch, self.rank, self.world_size,
                )
                images += batch.num_images
                for key, value in level_parts.items():
                    parts.setdefault(key, []).append(value)
                if loss is not None:
                    total = loss if total is None else total + loss
            total = self._touch_unused(total)
            if total is None:
                raise TrainError(f"no loss term applies to levels {names}; check train.losses")
            self.engine.backward(total)
            self.engine.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        self.step += 1
        self.images_seen += images * self.world_size
        metrics = mean_over_ranks(parts, self.world_size, self.device)
        metrics["lr"] = lr
        metrics["images_per_s"] = images * self.world_size / max(elapsed, 1e-9)
        metrics["step_time_s"] = elapsed
        self.active = names
        return metrics

    def evaluate(self) -> dict[str, float]:
        """Held-out in-batch retrieval per level (every rank computes it; identical results)."""
        module = self.engine.module
        module.eval()
        try:
            metrics = evaluate_levels(
                module, self.texts, self.levels, self.counts.shards, self.cfg.data.held_out, self.transform,
                self.preprocess_cfg, self.device, self.dtype, self.cfg.validation.batch_size,
                self.cfg.validation.max_batches, self.cfg.validation.workers,
            )
        finally:
            module.train()
        return metrics

    def _eval_and_log(self) -> dict[str, float]:
        if self.counts.figures["held_out"] == 0:
            return {}
        self._hook("on_stage_start", stage="eval")
        metrics = self.evaluate()
        self.log.log(self.step, metrics, kind="eval")
        self._hook("on_stage_end", stage="eval", summary=dict(metrics))
        if self.is_main:
            shown = ", ".join(f"{lv.name} R@1 {metrics.get(f'eval/{lv.name}/i2t_r1', float('nan')):.3f}"
                              for lv in self.levels)
            self._print(f"step {self.step}: held-out {shown}")
        return metrics

    def fit(self) -> dict[str, Any]:
        """Set up, train to the planned step count, checkpoint, evaluate and export; returns the summary."""
        from tqdm import tqdm

        stage = "setup"
        try:
            self.setup()
            self._hook("on_run_start")
            cfg = self.cfg
            first_eval = self._eval_and_log() if self.step == 0 else {}
            stage = "train"
            self._hook("on_stage_start", stage="train")
            bar = tqdm(total=self.plan_.total_steps, initial=self.step, disable=not self.is_main,
                       desc="train", dynamic_ncols=True)
            last: dict[str, float] = {}
            saved_at = -1
            while self.step < self.plan_.total_steps:
                metrics = self.train_step()
                last = metrics
                self._hook("on_step_end", step=self.step, metrics=dict(metrics))
                if self.step % max(1, cfg.log_every) == 0 or self.step == self.plan_.total_steps:
                    self.log.log(self.step, {"levels": "+".join(self.active), **metrics})
                bar.update(1)
                bar.set_postfix({k.split("/")[0]: f"{v:.3f}" for k, v in metrics.items() if k.endswith("/loss")}
                                | {"img/s": f"{metrics['images_per_s']:.0f}"}, refresh=False)
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < self.plan_.total_steps:
                    stage = "eval"
                    self._eval_and_log()
                    stage = "train"
                if cfg.checkpoint.every_n_steps and self.step % cfg.checkpoint.every_n_steps == 0:
                    stage = "checkpoint"
                    self.save_checkpoint()
                    saved_at = self.step
                    stage = "train"
            bar.close()
            stage = "checkpoint"
            if saved_at != self.step:
                self.save_checkpoint()
            stage = "eval"
            final_eval = self._eval_and_log()
            stage = "export"
            export_dir = self.export() if cfg.export else None
            summary = {
                "steps": self.step,
                "images_seen": self.images_seen,
                "last": last,
                "eval_start": first_eval,
                "eval_end": final_eval,
                "export": str(export_dir) if export_dir else None,
                "checkpoint": str(self.ckpt_dir),
                "text_cache": self.texts.cache.stats() if self.texts.cache is not None else None,
            }
            self._hook("on_stage_end", stage="train", summary=summary)
            if self.is_main:
                (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
            self._hook("on_run_end", summary=summary)
            return summary
        except BaseException as exc:
            if getattr(self, "run", None) is not None:
                with contextlib.suppress(Exception):
                    self._hook("on_error", stage=stage, error=exc)
            raise
        finally:
            for loader in getattr(self, "loaders", {}).values():
                loader.close()
            if getattr(self, "log", None) is not None:
                self.log.close()
            if getattr(self, "texts", None) is not None and self.texts.cache is not None:
                self.texts.cache.close()

    # -- export -----------------------------------------------------------------------------------

    def export(self) -> Path | None:
        """Write ``OUTPUT/export``: ``open_clip_config.json`` + ``open_clip_model.safetensors`` (see
        :func:`~panel2patch.plugins.training.export.export_model` for loading it)."""
        import torch

        out = self.out_dir / "export"
        if self.is_main:
            stage = int(self.ds_config.get("zero_optimization", {}).get("stage", 0))
            state = trained_state_dict(self.engine.module.clip, self._frozen_fp32, stage, self.ckpt_dir)
            export_model(self.engine.module.clip, state, self.model_loader.model_config(), out)
            self._print(f"exported the trained model to {out}")
        torch.distributed.barrier()
        return out


def _unique_names(names: Sequence[str]) -> list[str]:
    total = collections.Counter(names)
    seen: collections.Counter[str] = collections.Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if total[name] == 1 else f"{name}{seen[name]}")
    return out
