"""Accuracy predictors on NAS-Bench-201's real CIFAR-10 accuracies: Kendall τ on held-out
archs against the number of training archs (ReNAS's setting is 424)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from scipy import stats

from predictors.accuracy import MLPPredictor
from predictors.encoding import one_hot

METHODS = ("mse", "pairwise", "fbnetv3")


def load(path: str | Path):
    from search.nb201 import parse_arch_str

    rows = list(csv.DictReader(open(path)))
    x = one_hot(np.array([parse_arch_str(r["arch_str"]) for r in rows]), 5)
    y = np.array([float(r["c10_test_acc"]) for r in rows])

    def num(v):
        return float(v) if v else 0.0

    free = np.array([[num(r["c10_mflops"]), num(r["c10_mparams"]),
                      num(r["hwnb_c10_edgegpu_latency"])] for r in rows])
    return x, y, free


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
