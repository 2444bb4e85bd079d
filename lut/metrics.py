"""How good a latency prediction is: one definition of each metric, used everywhere.

Shares (within ±5 %, ±10 %) are fractions 0-1 of predictions whose relative error is inside
the band; MAPE is a fraction too (0.05 = 5 %); RMSE is in milliseconds; Spearman ρ and
Kendall τ (tau-b, ties handled) measure rank agreement, which is what a search needs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from lutfarm.errors import LutfarmError


class MetricsError(LutfarmError, ValueError):
    """Predictions and measurements that cannot be compared."""


def relative_errors(predicted, measured) -> np.ndarray:
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    if p.shape != m.shape or p.ndim != 1:
        raise MetricsError(f"need two equal 1-D arrays, got {p.shape} and {m.shape}")
    if np.any(m <= 0):
        raise MetricsError("measured values must be positive (drop unreachable or empty archs)")
    return (p - m) / m


def rank_metrics(predicted, truth) -> dict[str, float]:
    """Spearman ρ and Kendall τ-b (NaN when fewer than 3 values or one side is constant)."""
    p, m = np.asarray(predicted, float), np.asarray(truth, float)
    ok = len(m) >= 3 and np.ptp(p) > 0 and np.ptp(m) > 0
    return {"spearman": float(stats.spearmanr(p, m).statistic) if ok else float("nan"),
            "kendall": float(stats.kendalltau(p, m).statistic) if ok else float("nan")}


def latency_metrics(predicted, measured) -> dict[str, float]:
    """within_5pct, within_10pct, mape, rmse_ms, spearman, kendall, mean_ratio, n."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    rel = relative_errors(p, m)
    n = len(m)
    return {
        "n": int(n),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "mape": float(np.mean(np.abs(rel))),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        **rank_metrics(p, m),
        "mean_ratio": float(np.mean(p / m)),
    }


def ratio_stats(ratios) -> dict:
    """n, median, min and max of a set of ratios (e.g. predicted / measured memory)."""
    r = np.asarray(ratios, float)
    if not len(r):
        return {}
    return {"n": int(len(r)), "median": float(np.median(r)), "min": float(r.min()),
            "max": float(r.max())}
