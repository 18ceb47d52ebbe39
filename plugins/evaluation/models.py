"""The models an evaluation compares: each built by a registered model loader, weights optionally replaced.

A recipe's ``eval.models`` maps a label to ``{loader, args, checkpoint}``: ``loader`` is a model loader name (default:
the one in ``train.model``), ``args`` its arguments (merged over ``train.model.args`` when the loader is the same),
``checkpoint`` an export folder or a checkpoint file loaded into the built model. So ``{}`` is the training recipe's
own initialisation, ``{args: {pretrained: null}}`` its random-initialisation floor, ``{checkpoint: OUT/export}`` the
trained model and ``{args: {model: ViT-L-14, pretrained: BMC_CLIP.pt, config: null}}`` BMC-CLIP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panel2patch.errors import RecipeError

SPEC_KEYS = ("loader", "args", "checkpoint")


@dataclass
class ModelSpec:
    """What builds one compared model (see the module docstring)."""

    label: str
    loader: str
    args: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"loader": self.loader, "args": self.args, "checkpoint": self.checkpoint}


def model_specs(models: Mapping[str, Any] | None, train_model: Mapping[str, Any] | None, source: str) -> list[ModelSpec]:
    """``eval.models`` resolved against ``train.model``; with no ``eval.models``, the trained export if there is one."""
    base_name = (train_model or {}).get("name")
    base_args = dict((train_model or {}).get("args") or {})
    specs = []
    for label, body in (models or {}).items():
        body = {} if body is None else body
        if not isinstance(body, Mapping):
            raise RecipeError(f"{source}: key eval.models.{label} must be a mapping with {', '.join(SPEC_KEYS)}")
        extra = sorted(set(body) - set(SPEC_KEYS))
        if extra:
            raise RecipeError(f"{source}: key eval.models.{label} has unknown keys {extra}; use {', '.join(SPEC_KEYS)}")
        loader = body.get("loader") or base_name
        if not loader:
            raise RecipeError(f"{source}: key eval.models.{label} names no loader and the recipe has no train.model")
        args = dict(body.get("args") or {})
        if loader == base_name:
            args = {**base_args, **args}
        checkpoint = body.get("checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise RecipeError(f"{source}: key eval.models.{label}.checkpoint must be a path")
        specs.append(ModelSpec(str(label), loader, args, checkpoint))
    return specs


class EvalModel:
    """One model under test on one device: batched, normalised image, dense and text embeddings (no gradient).

    ``encode_images`` takes PIL images (an iterable, consumed batch by batch, so galleries need not fit in memory)
    and returns a float32 CPU tensor ``[N, D]``; ``encode_dense`` also returns the patch-token map ``[N, D, gh, gw]``
    projected into the joint space (None for towers without one); ``encode_texts`` caches each text's embedding.
    """

    def __init__(self, label: str, clip: Any, transform: Any, tokenizer: Any, device: Any,
                 batch_size: int = 64, progress: bool = True, info: Mapping[str, Any] | None = None) -> None:
        from panel2patch.plugins.training.model import patch_size, wrap_model

        self.label = label
        self.clip = clip.to(device).eval()
        self.module = wrap_model(self.clip).to(device).eval()
        self.transform = transform
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.progress = progress
        self.preprocess_cfg = dict(getattr(clip.visual, "preprocess_cfg", {}) or {})
        self.patch = patch_size(clip)
        self.dim = int(getattr(clip.visual, "output_dim", 0) or 0)
        self.info = dict(info or {})
        self._texts: dict[str, Any] = {}

    def _batches(self, images: Iterable[Any], total: int | None, what: str):
        from tqdm import tqdm

        batch: list[Any] = []
        with tqdm(total=total, desc=f"{self.label}: {what}", unit="img", disable=not self.progress,
                  leave=False, dynamic_ncols=True) as bar:
            for image in images:
                batch.append(self.transform(image.convert("RGB")))
                if len(batch) == self.batch_size:
                    yield batch
                    bar.update(len(batch))
                    batch = []
            if batch:
                yield batch
                bar.update(len(batch))

    def encode_images(self, images: Iterable[Any], total: int | None = None) -> Any:
        pooled, _ = self._encode(images, total, dense=False)
        return pooled

    def encode_dense(self, images: Iterable[Any], total: int | None = None) -> tuple[Any, Any]:
        return self._encode(images, total, dense=True)

    def _encode(self, images: Iterable[Any], total: int | None, dense: bool) -> tuple[Any, Any]:
        import torch

        pooled, maps = [], []
        with torch.no_grad():
            for batch in self._batches(images, total, "images"):
                x = torch.stack(batch).to(self.device)
                if dense:
                    out = self.module(x)
                    pooled.append(out["image"].float().cpu())
                    if out["dense"] is not None:
                        maps.append(out["dense"].float().cpu())
                else:
                    pooled.append(self.clip.encode_image(x, normalize=True).float().cpu())
        emb = torch.cat(pooled) if pooled else torch.zeros((0, self.dim))
        return emb, (torch.cat(maps) if maps else None)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        import torch

        todo = list(dict.fromkeys(t for t in texts if t not in self._texts))
        with torch.no_grad():
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i:i + self.batch_size]
                tokens = self.tokenizer(chunk).to(self.device)
                for text, row in zip(chunk, self.clip.encode_text(tokens, normalize=True).float().cpu()):
                    self._texts[text] = row
        if not texts:
            return torch.zeros((0, self.dim))
        return torch.stack([self._texts[t] for t in texts])


def load_model(spec: ModelSpec, device: Any, batch_size: int = 64, progress: bool = True, seed: int = 0) -> EvalModel:
    """Build ``spec``'s model with its loader, load its checkpoint, and wrap it for evaluation.

    The weights a loader initialises at random (a random-initialisation floor) are drawn from ``seed``, so a floor is
    the same model in every run."""
    import torch

    from panel2patch.manager import build
    from panel2patch.plugins.training.export import load_weights

    loader = build("model_loaders", spec.loader, spec.args)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip, transform, tokenizer = loader.load()
    if spec.checkpoint:
        if not Path(spec.checkpoint).exists():
            raise RecipeError(f"model {spec.label!r}: checkpoint {spec.checkpoint!r} does not exist")
        load_weights(clip, spec.checkpoint)
    info = {**spec.describe(), "weights": getattr(loader, "weights", None)}
    return EvalModel(spec.label, clip, transform, tokenizer, device, batch_size, progress, info)
