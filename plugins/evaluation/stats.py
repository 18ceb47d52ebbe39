"""Bootstrap confidence intervals over queries for a :class:`~panel2patch.data.Score`, and paired differences.

Percentile intervals from :func:`scipy.stats.bootstrap`, resampling the score's rows (its queries). A paired difference
resamples the queries two scores share (matched by id), so both models see the same resample, which is what makes
a difference between two models on the same queries far tighter than their separate intervals suggest.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from panel2patch.data import Score


@dataclass
class Interval:
    value: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def evaluate_statistic(score: Score, rows: Any) -> float:
    return float(np.mean(rows, axis=0)) if score.statistic is None else float(score.statistic(rows))


def _bootstrap(data: tuple[Any, ...], statistic: Any, vectorized: bool, resamples: int, confidence: float,
               seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant resamples (every query a hit) make degenerate, yet right, intervals
        result = bootstrap(data, statistic, n_resamples=resamples, confidence_level=confidence, method="percentile",
                           vectorized=vectorized, paired=len(data) > 1, random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def interval(score: Score, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The score with its bootstrap interval (low == high == value for counts and single queries)."""
    rows = None if score.rows is None else np.asarray(score.rows)
    n = 0 if rows is None else len(rows)
    if rows is None or n < 2 or resamples < 1:
        return Interval(score.value, score.value, score.value, n)
    if score.statistic is None and rows.ndim == 1:
        low, high = _bootstrap((rows.astype(float),), np.mean, True, resamples, confidence, seed)
    else:
        low, high = _bootstrap((np.arange(n),), lambda idx: evaluate_statistic(score, rows[idx]), False,
                               resamples, confidence, seed)
    return Interval(score.value, low, high, n)


def paired_difference(a: Score, b: Score, resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> Interval | None:
    """``a - b`` on the queries both scored, with a paired bootstrap interval; None when they share no query."""
    if a.rows is None or b.rows is None:
        return None
    where_b = {q: i for i, q in enumerate(b.ids)}
    pairs = [(i, where_b[q]) for i, q in enumerate(a.ids) if q in where_b]
    if not pairs:
        return None
    ia, ib = (np.array(side) for side in zip(*pairs))
    rows_a, rows_b = np.asarray(a.rows)[ia], np.asarray(b.rows)[ib]

    def diff(idx: Any) -> float:
        return evaluate_statistic(a, rows_a[idx]) - evaluate_statistic(b, rows_b[idx])

    n = len(pairs)
    value = diff(np.arange(n))
    if n < 2 or resamples < 1:
        return Interval(value, value, value, n)
    if a.statistic is None and b.statistic is None and rows_a.ndim == 1:
        low, high = _bootstrap((rows_a.astype(float), rows_b.astype(float)),
                               lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), True,
                               resamples, confidence, seed)
    else:
        low, high = _bootstrap((np.arange(n),), diff, False, resamples, confidence, seed)
    return Interval(value, low, high, n)
