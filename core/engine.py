"""The training engine: model wrapper, one level's step, and the DeepSpeed trainer.

A step of level M encodes figures and their panels, of level P panels and their regions, of level R
region crops and their parent panels, all in one vision-tower pass; the text tower is frozen, so text
embeddings come from :class:`~panel2patch.textcache.TextEmbeddingCache`. Loss terms read a
:class:`LevelOutputs`. :class:`Trainer` runs the schedule on DeepSpeed (ZeRO from the recipe, fp32 on
CPU with gloo, bf16 on GPU), evaluates in-batch retrieval on the held-out split, checkpoints
(model, optimizer, LR scheduler, schedule, data positions, RNG states) and exports an open_clip model.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import math
import os
import platform
import random
import shutil
import socket
import sys
import time
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import Recipe, build, components, validate
from .errors import Panel2PatchError, RecipeError
from .hierarchy import (
    CorpusCounts,
    LevelBatch,
    LevelLoader,
    LoaderOptions,
    StreamSpec,
    check_resumable,
    held_out_batches,
    scan,
)
from .manager import build as build_component
from .manager import plugin_manager
from .registry import matches
from .run import RunInfo
from .textcache import TextEmbeddingCache, default_cache_dir, text_fingerprint, text_tower_names

EXPORT_WEIGHTS = "open_clip_model.safetensors"
EXPORT_CONFIG = "open_clip_config.json"


class TrainError(Panel2PatchError):
    """Training cannot start or continue (bad settings, no checkpoint to resume, corpus too small)."""


# --------------------------------------------------------------------------------------------------
# Settings (the plain keys of the recipe's ``train`` section)
# --------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """``train.data``: the corpus and how level batches are made.

    ``batch_size``: samples per level batch on each rank, an int or ``{level: int}`` (names or codes).
    ``held_out``: fraction of figures (by key hash) kept out of training for validation.
    ``max_children``: children encoded per parent in M and P steps (a random subset beyond it).
    """

    corpus: str = ""
    batch_size: int | dict[str, int] = 32
    workers: int = 2
    pin_memory: bool = True
    prefetch: int = 2
    shuffle_buffer: int = 1000
    held_out: float = 0.02
    max_children: int = 8


@dataclass
class OptimConfig:
    """``train.optim``: AdamW with linear warm-up and cosine decay (DeepSpeed ``WarmupCosineLR``).

    Training length is ``max_steps`` optimizer steps, or ``epochs`` passes (see :meth:`Trainer.plan`).
    """

    lr: float = 1e-5
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-6
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    epochs: float | None = None
    max_steps: int | None = None


@dataclass
class CheckpointConfig:
    """``train.checkpoint``: DeepSpeed checkpoints every ``every_n_steps`` and at the end; ``keep`` newest kept."""

    dir: str | None = None
    every_n_steps: int = 1000
    keep: int = 2


@dataclass
class ValidationConfig:
    """``train.validation``: in-batch retrieval on the held-out split."""

    batch_size: int = 32
    max_batches: int = 20
    workers: int = 0


@dataclass
class TextCacheConfig:
    """``train.text_cache``: on-disk text embeddings of the frozen text tower (``dir`` None: user cache)."""

    enabled: bool = True
    dir: str | None = None


@dataclass
class TrainConfig:
    """The plain keys of the ``train`` section (components sit in ``model/levels/aggregator/losses/schedule``)."""

    output_dir: str = "out/train"
    seed: int = 0
    eval_every: int = 0
    log_every: int = 10
    export: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    text_cache: TextCacheConfig = field(default_factory=TextCacheConfig)
    deepspeed: dict[str, Any] = field(default_factory=dict)


COMPONENT_KEYS = ("model", "levels", "aggregator", "losses", "schedule")


def parse_section(cls: type, data: Any, where: str, source: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: key {where!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in names:
            raise RecipeError(f"{source}: unknown key {where}.{key}; known keys: {', '.join(sorted(names))}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = parse_section(hint, value, f"{where}.{key}", source)
        elif not matches(value, hint):
            raise RecipeError(f"{source}: key {where}.{key} expects {hint}, got {type(value).__name__} {value!r}")
        else:
            values[key] = value
    return cls(**values)


def parse_train_config(section: Mapping[str, Any], source: str) -> TrainConfig:
    """Read the plain keys of a recipe's ``train`` section; errors name the file and key."""
    plain = {k: v for k, v in section.items() if k not in COMPONENT_KEYS}
    cfg = parse_section(TrainConfig, plain, "train", source)
    if not cfg.data.corpus:
        raise RecipeError(f"{source}: key train.data.corpus is missing (a corpus directory with **/*.tar shards)")
    if cfg.optim.max_steps is None and cfg.optim.epochs is None:
        raise RecipeError(f"{source}: set train.optim.max_steps or train.optim.epochs")
    if len(cfg.optim.betas) != 2:
        raise RecipeError(f"{source}: key train.optim.betas must hold two numbers")
    for key in ("optimizer", "scheduler"):
        if key in cfg.deepspeed:
            raise RecipeError(
                f"{source}: key train.deepspeed.{key} is set by panel2patch from train.optim; remove it"
            )
    return cfg


# --------------------------------------------------------------------------------------------------
# Model wrapper and level step
# --------------------------------------------------------------------------------------------------


@dataclass
class LevelOutputs:
    """What loss terms see for one level batch (float32 tensors on the training device).

    ``image``/``text``: L2-normalised embeddings ``[N, D]`` of every image of the batch and its paired
    text; rows ``[0, num_samples)`` are the level's samples. ``dense``: the patch tokens projected into
    the joint space, ``[N, D, gh, gw]`` (None for vision towers without a patch grid). Edges, ROI boxes
    (parent model-input pixels) and validity come from :class:`~panel2patch.hierarchy.LevelBatch`.
    ``patch_size``: ``(ph, pw)`` model-input pixels per patch. ``rank``/``world_size``: for losses that
    gather across ranks.
    """

    level: str
    num_samples: int
    image: Any
    text: Any
    logit_scale: Any
    edge_child: Any
    edge_parent: Any
    roi_boxes: Any
    roi_valid: Any
    dense: Any
    patch_size: tuple[int, int]
    aggregator: Any
    rank: int = 0
    world_size: int = 1


@functools.cache
def _wrapper_class() -> type:
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import VisionTransformer
    from torch import nn

    class HierarchicalCLIP(nn.Module):
        """An open_clip model plus the aggregator's parameters, as DeepSpeed trains them.

        ``forward(images, text_tokens=None)`` returns ``image`` (normalised ``[N, D]``), ``dense``
        (``[N, D, gh, gw]`` or None), ``logit_scale`` (exp, clamped at 100 as open_clip does) and, when
        tokens are given (trainable text tower), ``text``.
        """

        def __init__(self, clip: nn.Module, aggregator: nn.Module | None = None) -> None:
            super().__init__()
            # DeepSpeed broadcasts parameters as byte views, which 0-d tensors do not allow
            for name in ("logit_scale", "logit_bias"):
                param = getattr(clip, name, None)
                if isinstance(param, nn.Parameter) and param.ndim == 0:
                    setattr(clip, name, nn.Parameter(param.detach().reshape(1), requires_grad=param.requires_grad))
            self.clip = clip
            self.aggregator = aggregator

        def forward(self, images: torch.Tensor, text_tokens: torch.Tensor | None = None) -> dict[str, Any]:
            visual = self.clip.visual
            if isinstance(visual, VisionTransformer) and visual.proj is not None and visual.attn_pool is None:
                out = visual.forward_intermediates(
                    images, indices=1, normalize_intermediates=True, output_fmt="NCHW"
                )
                pooled = out["image_features"]
                dense = torch.einsum("nchw,cd->ndhw", out["image_intermediates"][-1], visual.proj)
            else:
                pooled, dense = visual(images), None
            result = {
                "image": F.normalize(pooled, dim=-1),
                "dense": dense,
                "logit_scale": self.clip.logit_scale.clamp(max=math.log(100.0)).exp().reshape(()),
            }
            if text_tokens is not None:
                result["text"] = F.normalize(self.clip.encode_text(text_tokens), dim=-1)
            return result

    return HierarchicalCLIP


def wrap_model(clip: Any, aggregator_module: Any = None) -> Any:
    """The ``nn.Module`` DeepSpeed trains: ``clip`` plus the aggregator's parameters (if any)."""
    return _wrapper_class()(clip, aggregator_module)


def patch_size(clip: Any) -> tuple[int, int]:
    size = getattr(clip.visual, "patch_size", (1, 1))
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class TextSource:
    """Text embeddings for a batch: looked up in a cache when the tower is frozen, else encoded in the graph.

    ``frozen`` with ``cache`` None encodes without gradient at every use (no caching).
    """

    def __init__(self, clip: Any, tokenizer: Any, device: Any, frozen: bool, cache: TextEmbeddingCache | None):
        self.clip, self.tokenizer, self.device = clip, tokenizer, device
        self.frozen = frozen
        self.cache = cache

    def encode(self, texts: list[str]) -> Any:
        """Normalised embeddings without gradient (the cache's encoder)."""
        import torch

        with torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            return self.clip.encode_text(tokens, normalize=True)

    def embeddings(self, texts: list[str]) -> Any:
        if self.cache is not None:
            return self.cache(texts).to(self.device, non_blocking=True)
        return self.encode(texts).float()

    def forward(self, model: Callable[..., dict[str, Any]], images: Any, texts: list[str]) -> tuple[dict[str, Any], Any]:
        """``model``'s outputs for ``images`` and the texts' embeddings: from the cache (or encoded without
        gradient) when the tower is frozen, else from the same forward."""
        if self.frozen:
            return model(images), self.embeddings(texts)
        out = model(images, self.tokenizer(texts).to(self.device))
        return out, out["text"]


def parameter_counts(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def level_step(
    model: Callable[..., dict[str, Any]],
    batch: LevelBatch,
    texts: TextSource,
    terms: Sequence[tuple[str, Any]],
    aggregator: Any,
    device: Any,
    dtype: Any,
    patch: tuple[int, int],
    rank: int = 0,
    world_size: int = 1,
) -> tuple[Any, dict[str, Any]]:
    """Forward one level batch and sum the weighted loss terms.

    Returns ``(loss, parts)``: ``loss`` a scalar tensor (None when no term applies), ``parts`` the
    unweighted value of each applied term (detached tensors) keyed ``LEVEL/TERM``.
    """
    images = batch.images.to(device=device, dtype=dtype, non_blocking=True)
    out, text = texts.forward(model, images, batch.texts)
    dense = out["dense"]
    outputs = LevelOutputs(
        level=batch.level,
        num_samples=batch.num_samples,
        image=out["image"].float(),
        text=text.float(),
        logit_scale=out["logit_scale"].float(),
        edge_child=batch.edge_child.to(device),
        edge_parent=batch.edge_parent.to(device),
        roi_boxes=batch.roi_boxes.to(device),
        roi_valid=batch.roi_valid.to(device),
        dense=dense.float() if dense is not None else None,
        patch_size=patch,
        aggregator=aggregator,
        rank=rank,
        world_size=world_size,
    )
    total = None
    parts: dict[str, Any] = {}
    for name, term in terms:
        value = term(outputs)
        if value is None:
            continue
        parts[f"{batch.level}/{name}"] = value.detach()
        weighted = value * float(term.weight)
        total = weighted if total is None else total + weighted
    if total is not None:
        parts[f"{batch.level}/loss"] = total.detach()
    return total, parts


def retrieval_recall(image: Any, text: Any, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """In-batch retrieval hit counts for paired rows: ``i2t_r{k}``, ``t2i_r{k}`` (sums, not means)."""
    sim = image @ text.T
    diag = sim.diagonal()
    i2t_rank = (sim > diag[:, None]).sum(dim=1)
    t2i_rank = (sim.T > diag[:, None]).sum(dim=1)
    out = {}
    for k in ks:
        out[f"i2t_r{k}"] = float((i2t_rank < k).sum())
        out[f"t2i_r{k}"] = float((t2i_rank < k).sum())
    return out


def evaluate_levels(
    model: Callable[..., dict[str, Any]],
    texts: TextSource,
    levels: Sequence[Any],
    shards: list[str],
    held_out: float,
    transform: Any,
    preprocess_cfg: Mapping[str, Any],
    device: Any,
    dtype: Any,
    batch_size: int,
    max_batches: int | None,
    workers: int = 0,
) -> dict[str, float]:
    """Mean in-batch R@1/R@5 (image->text and text->image) per level on the held-out split.

    Keys ``eval/LEVEL/i2t_r1`` ...; ``eval/LEVEL/samples`` counts the evaluated pairs. Batches smaller
    than 2 are skipped (retrieval among one pair is meaningless).
    """
    import torch

    metrics: dict[str, float] = {}
    for level in levels:
        sums: dict[str, float] = {}
        count = 0
        for batch in held_out_batches(level, shards, held_out, batch_size, transform, preprocess_cfg,
                                      workers=workers, max_batches=max_batches):
            if batch.num_samples < 2:
                continue
            with torch.no_grad():
                images = batch.images.to(device=device, dtype=dtype)
                out, text = texts.forward(model, images, batch.texts)
            for key, value in retrieval_recall(out["image"].float(), text.float()).items():
                sums[key] = sums.get(key, 0.0) + value
            count += batch.num_samples
        metrics[f"eval/{level.name}/samples"] = float(count)
        for key, value in sums.items():
            metrics[f"eval/{level.name}/{key}"] = value / count
    return metrics


# --------------------------------------------------------------------------------------------------
# Distributed set-up
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> tuple[int, int, int, Any]:
    """Initialise torch.distributed through DeepSpeed; returns ``(rank, world_size, local_rank, device)``.

    Launched by ``deepspeed``/``torchrun`` the environment says who is who; under ``srun`` the SLURM
    variables do (with ``MASTER_ADDR``/``MASTER_PORT`` exported); launched alone this process is a world
    of one. Backend: NCCL with CUDA, gloo on CPU (which also gets its cores split between the
    local ranks unless ``OMP_NUM_THREADS`` is set).
    """
    import deepspeed
    import torch

    if "RANK" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise TrainError("started by srun with several tasks: export MASTER_ADDR and MASTER_PORT (the first "
                             "node and a free port), or start the run with the deepspeed launcher")
        os.environ.update({"RANK": os.environ["SLURM_PROCID"], "WORLD_SIZE": os.environ["SLURM_NTASKS"],
                           "LOCAL_RANK": os.environ.get("SLURM_LOCALID", "0")})
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
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


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "panel2patch": __version__}
    for dist in ("torch", "torchvision", "open_clip_torch", "deepspeed", "webdataset"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """How long the run is: ``total_steps`` optimizer steps; ``steps_per_epoch`` when epochs were asked."""

    total_steps: int
    steps_per_epoch: int | None
    shares: dict[str, float]


class Trainer:
    """Zoom-in hierarchical pretraining of one recipe on DeepSpeed.

    ``Trainer(recipe, resume).fit()`` runs the whole training; ``resume`` is ``"latest"``, a checkpoint
    directory (a DeepSpeed tag folder) or None. Every rank builds its own Trainer.
    """

    def __init__(self, recipe: Recipe, resume: str | None = None) -> None:
        validate(recipe)
        self.recipe = recipe
        self.cfg = parse_train_config(recipe.section("train"), recipe.source)
        self.resume = resume
        self.model_loader = build(recipe, "train.model")
        self.levels = build(recipe, "train.levels")
        if not self.levels:
            raise RecipeError(f"{recipe.source}: key 'train.levels' is empty")
        self.aggregator = build(recipe, "train.aggregator") or build_component("aggregators", "mean")
        self.schedule = build(recipe, "train.schedule")
        names = [node["name"] for key, _, node in components(recipe) if key.startswith("train.losses[")]
        self.terms = list(zip(_unique_names(names), build(recipe, "train.losses")))
        self.alias = self._aliases()
        self.step = 0
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
        shares = {self._resolve(k, "train.schedule"): v for k, v in self.schedule.shares().items()}
        sizes = self.batch_sizes()
        per_level = {}
        for name, share in shares.items():
            n = counts.samples[name]["train"]
            if n == 0:
                raise TrainError(f"the schedule trains level {name!r} but the corpus has no {name} samples in its training split")
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

        ds_cfg = self._deepspeed_config()
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
        agg_module = self.aggregator.setup(dim)
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

        optimizer = self._optimizer(model)
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

    def _deepspeed_config(self) -> dict[str, Any]:
        import torch

        cfg = json.loads(json.dumps(self.cfg.deepspeed))  # a deep copy of plain data
        cfg.setdefault("gradient_accumulation_steps", 1)
        cfg.setdefault("train_micro_batch_size_per_gpu", max(self.batch_sizes().values()))
        cfg.setdefault("steps_per_print", 10**9)
        cfg.setdefault("zero_optimization", {"stage": 0})
        cfg["zero_allow_untested_optimizer"] = True
        bf16 = cfg.setdefault("bf16", {"enabled": "auto"})
        if bf16.get("enabled") == "auto":
            bf16["enabled"] = torch.cuda.is_available()
        if int(cfg["zero_optimization"].get("stage", 0)) > 2:
            raise RecipeError(
                f"{self.recipe.source}: train.deepspeed.zero_optimization.stage 3 is not supported (the patch map "
                "reads vision weights outside module forwards); use stage 0, 1 or 2"
            )
        if cfg.get("fp16", {}).get("enabled"):
            raise RecipeError(f"{self.recipe.source}: train.deepspeed.fp16 is not supported; use bf16 (GPU) or fp32 (CPU)")
        optim = self.cfg.optim
        cfg["scheduler"] = {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": 1,
                "warmup_num_steps": max(1, int(optim.warmup_steps)),
                "warmup_type": "linear",
                "warmup_min_ratio": 0.0,
                "cos_min_ratio": float(optim.min_lr_ratio),
            },
        }
        return cfg

    def _optimizer(self, model: Any) -> Any:
        """torch AdamW; no weight decay on gains, biases, embeddings and the logit scale (open_clip's rule)."""
        import torch

        optim = self.cfg.optim
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            exclude = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
            (no_decay if exclude else decay).append(param)
        groups = [g for g in ({"params": decay, "weight_decay": optim.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        if not groups:
            raise TrainError("the model has no trainable parameter; check the loader's freezing settings")
        return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps)

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
        (self.out_dir / "config.yaml").write_text(self.recipe.to_yaml(), encoding="utf-8")
        info = {
            "recipe": self.recipe.source,
            "versions": versions(),
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

    # -- checkpoints ------------------------------------------------------------------------------

    def _client_state(self) -> dict[str, Any]:
        return {
            "panel2patch": {
                "step": self.step,
                "schedule": self.schedule.state_dict(),
                "data": {name: loader.state_dict() for name, loader in self.loaders.items()},
                "plan": dataclasses.asdict(self.plan_),
            }
        }

    def save_checkpoint(self) -> Path:
        """Save a DeepSpeed checkpoint ``step-NNNNNNNN`` (all ranks) plus this rank's RNG states."""
        import torch

        tag = f"step-{self.step:08d}"
        self.engine.save_checkpoint(str(self.ckpt_dir), tag=tag, client_state=self._client_state(),
                                    exclude_frozen_parameters=True)
        torch.save(_rng_state(), self.ckpt_dir / tag / f"rng_rank{self.rank:05d}.pt")
        torch.distributed.barrier()
        if self.is_main and self.cfg.checkpoint.keep > 0:
            tags = sorted(p for p in self.ckpt_dir.glob("step-*") if p.is_dir())
            for old in tags[: -self.cfg.checkpoint.keep]:
                shutil.rmtree(old, ignore_errors=True)
        torch.distributed.barrier()
        return self.ckpt_dir / tag

    def _locate(self, resume: str) -> tuple[Path, str]:
        if resume == "latest":
            latest = self.ckpt_dir / "latest"
            if not latest.is_file():
                raise TrainError(f"--resume latest: no checkpoint in {self.ckpt_dir} (no 'latest' file)")
            return self.ckpt_dir, latest.read_text().strip()
        path = Path(resume)
        if not path.is_dir():
            raise TrainError(f"--resume {resume}: not a checkpoint directory")
        if (path / "latest").is_file():
            return path, (path / "latest").read_text().strip()
        return path.parent, path.name

    def _load_checkpoint(self, resume: str) -> None:
        import torch

        load_dir, tag = self._locate(resume)
        path, client = self.engine.load_checkpoint(str(load_dir), tag=tag, load_module_strict=False)
        if path is None or client is None or "panel2patch" not in client:
            raise TrainError(f"cannot load checkpoint {load_dir / tag}: not a panel2patch training checkpoint")
        state = client["panel2patch"]
        try:
            self.schedule.load_state_dict(state["schedule"])
        except ValueError as exc:
            raise TrainError(f"cannot resume from {load_dir / tag}: {exc}") from None
        if state["plan"]["total_steps"] != self.plan_.total_steps:
            raise TrainError(
                f"cannot resume from {load_dir / tag}: it plans {state['plan']['total_steps']} steps, the recipe "
                f"now gives {self.plan_.total_steps}; keep optim.max_steps/epochs and batch sizes unchanged"
            )
        self.step = int(state["step"])
        self.loaders = self._loaders(state["data"])
        rng = load_dir / tag / f"rng_rank{self.rank:05d}.pt"
        if rng.is_file():
            _set_rng_state(torch.load(rng, weights_only=False))
        self._print(f"resumed from {load_dir / tag} at step {self.step}")

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

    def _reduce(self, parts: Mapping[str, list[Any]]) -> dict[str, float]:
        """Mean of each metric over micro-steps and ranks (ranks that lack a metric do not count)."""
        import torch
        import torch.distributed as dist

        keys = sorted(parts)
        if self.world_size > 1:
            names = [None] * self.world_size
            dist.all_gather_object(names, keys)
            keys = sorted({k for ks in names for k in ks})
        sums = torch.zeros(len(keys), dtype=torch.float64)
        counts = torch.zeros(len(keys), dtype=torch.float64)
        for i, key in enumerate(keys):
            values = parts.get(key, [])
            if values:
                sums[i] = float(torch.stack([v.float().cpu() for v in values]).sum())
                counts[i] = len(values)
        if self.world_size > 1:
            packed = torch.stack([sums, counts]).to(self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(packed)
            sums, counts = packed[0].cpu(), packed[1].cpu()
        return {k: float(sums[i] / counts[i]) for i, k in enumerate(keys) if counts[i] > 0}

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
        metrics = self._reduce(parts)
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

    def trained_state_dict(self) -> dict[str, Any]:
        """The open_clip state dict in fp32.

        Frozen weights keep their loaded values. Trainable weights: with ZeRO stage >= 1, DeepSpeed's fp32
        master copy read from the final checkpoint (``zero_to_fp32``); with stage 0, the module's
        weights (bf16-rounded when training ran in bf16).
        """
        import torch

        module = self.engine.module.clip
        if self._frozen_fp32 is not None:
            state = {k: v.float() if v.is_floating_point() else v for k, v in self._frozen_fp32.items()}
        else:
            state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        stage = int(self.ds_config.get("zero_optimization", {}).get("stage", 0))
        if stage >= 1:
            from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

            latest = (self.ckpt_dir / "latest").read_text().strip()
            with contextlib.redirect_stdout(sys.stderr):
                fp32 = get_fp32_state_dict_from_zero_checkpoint(str(self.ckpt_dir), tag=latest,
                                                                exclude_frozen_parameters=True)
            for key, value in fp32.items():
                if key.startswith("clip."):
                    state[key[len("clip."):]] = value.float().cpu()
        else:
            for name, param in module.named_parameters():
                if param.requires_grad:
                    state[name] = param.detach().float().cpu()
        return {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}

    def export(self) -> Path | None:
        """Write ``OUTPUT/export``: ``open_clip_config.json`` + ``open_clip_model.safetensors``.

        Load with ``open_clip.create_model('local-dir:OUTPUT/export')`` (any architecture, custom ones
        included) or ``open_clip.create_model(NAME, pretrained='OUTPUT/export/open_clip_model.safetensors')``.
        """
        import torch

        out = self.out_dir / "export"
        state = self.trained_state_dict() if self.is_main else None
        if self.is_main:
            export_model(self.engine.module.clip, state, self.model_loader.model_config(), out)
            self._print(f"exported the trained model to {out}")
        torch.distributed.barrier()
        return out


def export_model(clip: Any, state: Mapping[str, Any], model_cfg: Mapping[str, Any] | None, out: Path) -> None:
    """Save ``state`` (an open_clip state dict) and its config so stock open_clip loads it."""
    import safetensors.torch
    from open_clip.push_to_hf_hub import save_config_for_hf

    out.mkdir(parents=True, exist_ok=True)
    state = dict(state)
    if model_cfg is not None and not model_cfg.get("nonscalar_logit_scale", False):
        for name in ("logit_scale", "logit_bias"):
            if name in state and state[name].numel() == 1:
                state[name] = state[name].reshape(())
    safetensors.torch.save_file(dict(state), str(out / EXPORT_WEIGHTS))
    if model_cfg is not None:
        save_config_for_hf(clip, out / EXPORT_CONFIG, model_config=dict(model_cfg))


def _unique_names(names: Sequence[str]) -> list[str]:
    total = collections.Counter(names)
    seen: collections.Counter[str] = collections.Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if total[name] == 1 else f"{name}{seen[name]}")
    return out

