"""What the zero-shot and linear-probe evaluators share: image features of a task split, the classification metrics
(recomputable on any resample of the examples) and the evaluator base class that reads each task once."""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panel2patch.components import Evaluator
from panel2patch.data import Score
from panel2patch.errors import Panel2PatchError

from .tasks import ClassificationTask, Example, TaskError, read_task

#: Metrics of a task, each computed from rows ``[label, s_0 .. s_{C-1}]`` (class scores: log-probabilities); ``top5``
#: only for tasks of over 5 classes.
METRICS = ("top1", "top5", "balanced_accuracy", "macro_f1", "auroc")

# ---------------------------------------------------------------- features


@dataclass
class Features:
    """Image features of one split: ``features [n, D]`` (L2-normalised), ``labels [n]``, row ``ids`` (``task/id``)
    and ``skipped`` (``"id: reason"`` of the images left out)."""

    features: np.ndarray
    labels: np.ndarray
    ids: tuple[str, ...]
    skipped: list[str]

    def subset(self, index: Sequence[int]) -> Features:
        return Features(self.features[index], self.labels[index], tuple(self.ids[i] for i in index), self.skipped)


def encode_split(model: Any, task: ClassificationTask, split: str) -> Features:
    """``model.encode_images`` over the readable images of ``task``'s split; :class:`TaskError` when none is."""
    examples = task.split(split)
    kept: list[Example] = []
    skipped = [f"{task.name}/{s}" for s in task.skipped.get(split, [])]

    def images() -> Iterator[Any]:
        for example in examples:
            try:
                image = example.image()
            except Panel2PatchError as exc:
                skipped.append(f"{task.name}/{example.id}: {exc}")
                continue
            kept.append(example)
            yield image

    features = np.asarray(model.encode_images(images(), total=len(examples)), dtype=np.float32)
    if not kept:
        first = f"; first problem: {skipped[0]}" if skipped else ""
        raise TaskError(f"task {task.name!r}: split {split!r} has no readable image ({len(skipped)} skipped){first}")
    return Features(features, np.array([e.label for e in kept], dtype=np.int64),
                    tuple(f"{task.name}/{e.id}" for e in kept), skipped)


# ---------------------------------------------------------------- metrics


def task_metrics(n_classes: int) -> tuple[str, ...]:
    """The metrics reported for a task of ``n_classes`` classes (top-5 is 1 by construction with 5 or fewer)."""
    return tuple(m for m in METRICS if m != "top5" or n_classes > 5)


def metric_value(metric: str, rows: np.ndarray) -> float:
    """``metric`` of rows ``[label, s_0 .. s_{C-1}]`` (class scores; the prediction is the argmax, the first on ties).

    Balanced accuracy is the mean recall of the classes present, macro-F1 averages the classes present or predicted,
    AUROC is the macro mean of one-vs-rest AUROCs over the classes with positives and negatives among the rows (nan
    when there is none; with every class present it equals scikit-learn's ``multi_class="ovr"`` macro AUROC)."""
    # numpy and rank formulas, equal to scikit-learn's balanced_accuracy_score, f1_score(average="macro",
    # zero_division=0) and roc_auc_score, at a fraction of their cost: bootstrap intervals recompute them ~1000 times
    from scipy.stats import rankdata

    rows = np.asarray(rows, dtype=np.float64)
    if len(rows) == 0:
        return float("nan")
    y, p = rows[:, 0].astype(np.int64), rows[:, 1:]
    pred = p.argmax(1)
    if metric == "top1":
        return float(np.mean(pred == y))
    if metric == "top5":
        return float(np.mean((np.argsort(-p, axis=1, kind="stable")[:, :5] == y[:, None]).any(1)))
    if metric == "balanced_accuracy":
        return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))
    if metric == "macro_f1":
        f1 = []
        for c in np.union1d(y, pred):
            tp, fp, fn = np.sum((pred == c) & (y == c)), np.sum((pred == c) & (y != c)), np.sum((pred != c) & (y == c))
            f1.append(2.0 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0)
        return float(np.mean(f1))
    if metric == "auroc":
        aucs = []
        for c in np.unique(y):
            positive = y == c
            n_pos, n_neg = int(positive.sum()), int((~positive).sum())
            if n_neg:  # Mann-Whitney U over average ranks: ties count one half, as in roc_auc_score
                ranks = rankdata(p[:, c])
                aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
        return float(np.mean(aucs)) if aucs else float("nan")
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


def task_scores(prefix: str, task: str, rows: np.ndarray, ids: tuple[str, ...],
                skipped: Sequence[str] = ()) -> dict[str, Score]:
    """``{prefix}/{task}/{metric}`` Scores over ``rows`` plus the counts ``n`` and, when images were left out,
    ``skipped`` (its ids are ``"id: reason"``)."""
    out = {}
    for metric in task_metrics(rows.shape[1] - 1):
        statistic = functools.partial(metric_value, metric)
        out[f"{prefix}/{task}/{metric}"] = Score(statistic(rows), rows, ids, statistic)
    out[f"{prefix}/{task}/n"] = Score(float(len(rows)), None, ())
    if skipped:
        out[f"{prefix}/{task}/skipped"] = Score(float(len(skipped)), None, tuple(skipped))
    return out


def mean_over_tasks(metric: str, sizes: tuple[int, ...], rows: np.ndarray) -> float:
    """Mean of ``metric`` over the tasks of rows ``[task, label, s_0 .. s_{C_task-1}, nan padding]`` (``sizes[t]`` is
    task t's class count); tasks absent from the rows, not reporting ``metric`` or scoring nan are left out."""
    rows = np.asarray(rows, dtype=np.float64)
    values = [metric_value(metric, rows[rows[:, 0] == t, 1:2 + sizes[t]])
              for t in np.unique(rows[:, 0]).astype(int) if metric in task_metrics(sizes[t])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def summary_scores(prefix: str, results: Sequence[tuple[np.ndarray, tuple[str, ...]]]) -> dict[str, Score]:
    """``{prefix}/mean/{metric}``: the mean of the per-task values of each task's ``(rows, ids)``, as Scores whose rows
    (all tasks' rows, tagged with the task index) resample across tasks."""
    if not results:
        return {}
    sizes = tuple(rows.shape[1] - 1 for rows, _ in results)
    width = 2 + max(sizes)
    rows = np.vstack([np.pad(np.column_stack([np.full(len(r), t, dtype=np.float64), r]),
                             ((0, 0), (0, width - 1 - r.shape[1])), constant_values=np.nan)
                      for t, (r, _) in enumerate(results)])
    ids = tuple(i for _, task_ids in results for i in task_ids)
    out = {}
    for metric in METRICS:
        if any(metric in task_metrics(s) for s in sizes):
            statistic = functools.partial(mean_over_tasks, metric, sizes)
            out[f"{prefix}/mean/{metric}"] = Score(statistic(rows), rows, ids, statistic)
    return out


# ---------------------------------------------------------------- evaluators of tasks


class TaskEvaluator(Evaluator):
    """Base of evaluators scoring classification tasks on disk. ``tasks`` are recipe entries ``{name, path, ...}``
    (``name`` defaults to the folder name; further keys: ``entry_keys``); each task is read once. Subclasses implement
    :meth:`score_task`; :meth:`evaluate` adds per-task Scores under ``{prefix}/{task}/`` and ``{prefix}/mean/``."""

    needs_corpus = False
    prefix = ""
    entry_keys: tuple[str, ...] = ()

    def __init__(self, tasks: list[dict]) -> None:
        self.tasks = task_entries(tasks, self.entry_keys, self.prefix)
        self._read: dict[str, ClassificationTask] = {}

    def task(self, entry: dict[str, Any]) -> ClassificationTask:
        if entry["name"] not in self._read:
            self._read[entry["name"]] = read_task(entry["path"], entry["name"])
        return self._read[entry["name"]]

    @abc.abstractmethod
    def score_task(self, model: Any, task: ClassificationTask, entry: dict[str, Any]
                   ) -> tuple[np.ndarray, Features, dict[str, float]]:
        """Rows ``[label, s_0 .. s_{C-1}]`` of the scored examples, their features (ids, skipped) and extra plain
        values to report (``{key: value}``)."""

    def evaluate(self, model: Any, data: Any) -> dict[str, Score]:
        scores: dict[str, Score] = {}
        results = []
        for entry in self.tasks:
            task = self.task(entry)
            rows, feats, extra = self.score_task(model, task, entry)
            scores.update(task_scores(self.prefix, task.name, rows, feats.ids, feats.skipped))
            scores.update({f"{self.prefix}/{task.name}/{k}": Score(float(v), None, ()) for k, v in extra.items()})
            results.append((rows, feats.ids))
        scores.update(summary_scores(self.prefix, results))
        return scores


def task_entries(tasks: Any, keys: Sequence[str], owner: str) -> list[dict[str, Any]]:
    """Recipe task entries checked: a list of mappings with ``path`` (and optional ``keys``); ``name`` defaults to
    the folder name and must be unique, without ``/`` and not ``mean``. ``ValueError`` says what is wrong."""
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"{owner}: 'tasks' must be a non-empty list of {{name, path, ...}} entries")
    out, allowed = [], {"name", "path", *keys}
    for i, entry in enumerate(tasks):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ValueError(f"{owner}: tasks[{i}] must be a mapping with a 'path' (a task folder)")
        extra = sorted(set(entry) - allowed)
        if extra:
            raise ValueError(f"{owner}: tasks[{i}] has unknown keys {extra}; allowed: {', '.join(sorted(allowed))}")
        name = entry.get("name") or Path(entry["path"]).name
        if not isinstance(name, str) or "/" in name or name == "mean" or not name.strip():
            raise ValueError(f"{owner}: tasks[{i}] name {name!r} must be a non-empty string without '/', not 'mean'")
        for key in ("split", "train_split"):
            if key in entry and (not isinstance(entry[key], str) or not entry[key]):
                raise ValueError(f"{owner}: tasks[{i}] {key} must be a split name")
        out.append({**entry, "name": name})
    names = [e["name"] for e in out]
    if len(set(names)) < len(names):
        raise ValueError(f"{owner}: task names must be unique, got {names}")
    return out


def check_templates(templates: Any, where: str) -> list[str] | None:
    """``templates`` as a list of strings with ``{c}`` (None stays None); ``ValueError`` otherwise."""
    if templates is None:
        return None
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) and "{c}" in t
                                                                      for t in templates):
        raise ValueError(f"{where}: templates must be a non-empty list of strings with a {{c}} placeholder")
    return templates
