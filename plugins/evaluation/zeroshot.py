"""Evaluator ``zero_shot``: classification by prompts, on tasks read from disk (see :mod:`.tasks`).

Each class is embedded as the mean of its prompts' embeddings (one per template, ``{c}`` replaced by the class
name), re-normalised (CLIP's and BiomedCLIP's practice). An image's class scores are its log-probabilities
``log_softmax(logit_scale * image @ classes)``: one-vs-rest AUROC ranks images by class probability (for two classes
the usual binary AUROC), and logs keep that ranking where probabilities would round to 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .classification import Features, TaskEvaluator, check_templates, encode_split
from .tasks import ClassificationTask

DEFAULT_TEMPLATES = ("{c}.", "an image of {c}.", "a biomedical image of {c}.", "a figure showing {c}.")


def class_embeddings(model: Any, classes: list[str], templates: list[str]) -> np.ndarray:
    """``[C, D]``: each class's mean prompt embedding, L2-normalised."""
    prompts = [t.replace("{c}", c) for c in classes for t in templates]
    emb = np.asarray(model.encode_texts(prompts), dtype=np.float64).reshape(len(classes), len(templates), -1).mean(1)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    rest = np.exp(z)
    rest[np.arange(len(z)), z.argmax(1)] = 0.0  # log1p of the others keeps gaps between near-certain rows
    return z - np.log1p(rest.sum(1, keepdims=True))


class ZeroShot(TaskEvaluator):
    """Zero-shot classification of each task's ``split`` (an entry's ``split`` overrides it).

    ``tasks``: entries ``{name, path, split?, templates?}``. Templates come from the entry, else the task's templates
    file, else ``templates``, else :data:`DEFAULT_TEMPLATES`. Scores per task: ``zero_shot/<task>/top1``, ``top5``
    (tasks of over 5 classes), ``balanced_accuracy``, ``macro_f1``, ``auroc``, the counts ``n`` and ``skipped`` (when
    images were left out); ``zero_shot/mean/<metric>`` averages the tasks.
    """

    prefix = "zero_shot"
    entry_keys = ("split", "templates")

    def __init__(self, tasks: list[dict], templates: list[str] | None = None, split: str = "test",
                 logit_scale: float = 100.0) -> None:
        super().__init__(tasks)
        for entry in self.tasks:
            check_templates(entry.get("templates"), f"zero_shot: task {entry['name']!r}")
        self.templates = check_templates(templates, "zero_shot")
        if not isinstance(split, str) or not split:
            raise ValueError("zero_shot: split must be a split name such as 'test'")
        if not isinstance(logit_scale, (int, float)) or not logit_scale > 0:
            raise ValueError(f"zero_shot: logit_scale must be a positive number, not {logit_scale!r}")
        self.split, self.logit_scale = split, float(logit_scale)

    def score_task(self, model: Any, task: ClassificationTask, entry: dict[str, Any]
                   ) -> tuple[np.ndarray, Features, dict[str, float]]:
        feats = encode_split(model, task, entry.get("split", self.split))
        templates = entry.get("templates") or task.templates or self.templates or list(DEFAULT_TEMPLATES)
        logits = self.logit_scale * feats.features.astype(np.float64) @ class_embeddings(model, task.classes,
                                                                                           templates).T
        return np.column_stack([feats.labels, log_softmax(logits)]), feats, {}

