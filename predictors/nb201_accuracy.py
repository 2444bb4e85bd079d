"""Accuracy predictors on NAS-Bench-201's real CIFAR-10 accuracies: Kendall τ on held-out
archs against the number of training archs (ReNAS's setting is 424)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import stats

from lutfarm.predictors.accuracy import MLPPredictor
from lutfarm.predictors.encoding import one_hot
from lutfarm.spaces.nb201 import OPS, read_nb201

METHODS = ("mse", "pairwise", "fbnetv3")


def load(path: str | Path):
    """(one-hot archs, CIFAR-10 accuracy, free statistics: MFLOPs, params, edge-GPU latency)."""
    table = read_nb201(path)
    x = one_hot(table.archs, len(OPS))
    free = np.nan_to_num(np.column_stack([table.mflops, table.mparams,
                                          table.latency["edgegpu"]]), nan=0.0)
    return x, table.accuracy["cifar10"], free


def evaluate(path: str | Path, sizes=(50, 100, 424, 1000), methods=METHODS, test: int = 3000,
             epochs: int = 300, seed: int = 0) -> dict:
    x, y, free = load(path)
    perm = np.random.default_rng(seed).permutation(len(y))
    held, pool = perm[:test], perm[test:]
    out: dict = {}
    for method in methods:
        out[method] = {}
        for n in sizes:
            t0 = time.perf_counter()
            m = MLPPredictor(x.shape[1], seed=seed, meta={"space": "nb201"})
            if method == "fbnetv3":   # free statistics of every unlabelled arch in the pool
                m.pretrain(x[pool], free[pool], epochs=30)
                m.fit(x[pool[:n]], y[pool[:n]], "huber", epochs, freeze_epochs=epochs // 2)
            else:
                m.fit(x[pool[:n]], y[pool[:n]], method, epochs)
            tau = stats.kendalltau(m.predict(x[held]), y[held]).statistic
            out[method][n] = {"kendall": float(tau), "train_s": time.perf_counter() - t0}
    return out
