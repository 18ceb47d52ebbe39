"""Evaluator ``linear_probe``: logistic regression (scikit-learn, CPU) on frozen image features of tasks on disk.

The probe trains on a task's train split and is scored on its test split; a task without a train split is cut into
a train and a test part, stratified by class and seeded. The inverse regularisation ``C`` is chosen from a grid by
top-1 accuracy on a stratified validation part of the training examples (ties: the lower validation log-loss), then
the probe is refitted on all of them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .classification import Features, TaskEvaluator, encode_split
from .tasks import ClassificationTask, TaskError

DEFAULT_C = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held)`` indices: per class, ``round(fraction * n)`` examples held out, at least one and never all of
    a class with two or more (a single example stays in ``rest``); the same for a seed."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == c))
        if len(index) > 1:
            held.extend(index[:min(len(index) - 1, max(1, round(fraction * len(index))))])
    held = np.sort(np.asarray(held, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), held), held


def fit_probe(x: np.ndarray, y: np.ndarray, grid: tuple[float, ...], val_fraction: float, seed: int,
              max_iter: int = 1000) -> tuple[Any, float]:
    """A ``LogisticRegression`` fitted on ``(x, y)`` and its ``C``: the grid's best on a validation part, or its only
    value; 1.0 when no validation part can be held out (every class has a single example)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    def fit(c: float, index: np.ndarray) -> Any:
        with warnings.catch_warnings():  # a C too weak for the data may not converge: validation rules it out
            warnings.simplefilter("ignore", ConvergenceWarning)
            return LogisticRegression(C=c, max_iter=max_iter).fit(x[index], y[index])

    best = grid[0] if len(grid) == 1 else 1.0
    if len(grid) > 1:
        rest, val = stratified_split(y, val_fraction, seed)
        if len(val) and len(np.unique(y[rest])) > 1:
            quality = []
            for c in grid:
                probs = fit(c, rest).predict_proba(x[val])  # columns: the classes of y[rest], which hold y[val]'s
                truth = np.searchsorted(np.unique(y[rest]), y[val])
                quality.append((np.mean(probs.argmax(1) == truth), np.mean(np.log(probs[np.arange(len(val)), truth]))))
            best = grid[max(range(len(grid)), key=quality.__getitem__)]
    return fit(best, np.arange(len(y))), best


class LinearProbe(TaskEvaluator):
    """Linear probe of each task: trained on ``train_split``, scored on ``split`` (entries may set either); a task
    without ``train_split`` holds out ``holdout`` of ``split`` for testing and trains on the rest.

    ``C``: a value, a grid (chosen on ``val_fraction`` of the training examples) or None for :data:`DEFAULT_C`.
    Scores per task as in zero-shot under ``linear_probe/<task>/`` (from ``predict_log_proba``), plus the plain values
    ``n_train`` and ``C`` (the chosen one); ``linear_probe/mean/<metric>`` averages the tasks.
    """

    prefix = "linear_probe"
    entry_keys = ("split", "train_split")

    def __init__(self, tasks: list[dict], split: str = "test", train_split: str = "train", holdout: float = 0.5,
                 C: float | list[float] | None = None, val_fraction: float = 0.2, seed: int = 0,
                 max_iter: int = 1000) -> None:
        super().__init__(tasks)
        grid = DEFAULT_C if C is None else C if isinstance(C, list) else [C]
        if not grid or not all(isinstance(c, (int, float)) and c > 0 for c in grid):
            raise ValueError(f"linear_probe: C must be a positive number or a non-empty list of them, not {C!r}")
        for key, value in (("holdout", holdout), ("val_fraction", val_fraction)):
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"linear_probe: {key} must be a fraction between 0 and 1, not {value!r}")
        if not all(isinstance(s, str) and s for s in (split, train_split)):
            raise ValueError("linear_probe: split and train_split must be split names")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"linear_probe: max_iter must be a positive integer, not {max_iter!r}")
        self.grid = tuple(sorted(float(c) for c in grid))
        self.split, self.train_split, self.holdout, self.val_fraction = split, train_split, holdout, val_fraction
        self.seed, self.max_iter = seed, max_iter

    def score_task(self, model: Any, task: ClassificationTask, entry: dict[str, Any]
                   ) -> tuple[np.ndarray, Features, dict[str, float]]:
        split, train_split = entry.get("split", self.split), entry.get("train_split", self.train_split)
        test = encode_split(model, task, split)
        if train_split in task.splits and train_split != split:
            train = encode_split(model, task, train_split)
            test.skipped = train.skipped + test.skipped
        else:
            rest, held = stratified_split(test.labels, self.holdout, self.seed)
            train, test = test.subset(rest), test.subset(held)
        if len(test.labels) == 0 or len(np.unique(train.labels)) < 2:
            raise TaskError(f"linear_probe: task {task.name!r} needs a training part with two classes or more and a "
                            f"test part; it has {len(train.labels)} training and {len(test.labels)} test images")
        probe, c = fit_probe(train.features, train.labels, self.grid, self.val_fraction, self.seed, self.max_iter)
        # classes the probe never saw score below every log-probability (finite: scikit-learn refuses -inf)
        scores = np.full((len(test.labels), len(task.classes)), np.finfo(np.float64).min)
        scores[:, probe.classes_] = probe.predict_log_proba(test.features)
        return np.column_stack([test.labels, scores]), test, {"n_train": len(train.labels), "C": c}

