"""Architecture-level latency predictors, trained on measured whole networks.

Three models, each scored on held-out networks with ``lut.metrics``:
- ``lut+residual``: the overhead-corrected LUT sum times the in-context factors per (op, stage)
  (``predictors.in_context.InContextCorrection``): few parameters, needs the device's LUT;
- ``mlp``: OFA's 3 x 400 MLP on the one-hot encoding (no LUT needed);
- ``gbm``: scikit-learn's histogram gradient boosting on the one-hot encoding.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from lutfarm.lut.metrics import latency_metrics
from lutfarm.lut.query import LatencyTable
from lutfarm.predictors.accuracy import MLPPredictor
from lutfarm.predictors.encoding import one_hot
from lutfarm.predictors.in_context import InContextCorrection
from lutfarm.spaces import parse_case_key
from lutfarm.spaces.fbnet import NUM_OPS, NetworkCase


def measured_networks(store, target: str, runtime: str, layout) -> tuple[np.ndarray, np.ndarray]:
    """(archs, median ms) of every whole network of ``layout`` measured on the target."""
    archs, ms = [], []
    for key, m in store.latest(target, runtime).items():
        if key.startswith(NetworkCase.PREFIX + "_"):
            case = parse_case_key(key)
            if case.layout == layout:
                archs.append(case.arch)
                ms.append(m.median_ms)
    return np.array(archs, int), np.array(ms)


def evaluate(table: LatencyTable, archs: np.ndarray, measured: np.ndarray,
             train_fraction: float = 0.5, seed: int = 0) -> dict:
    order = np.random.default_rng(seed).permutation(len(archs))
    n = int(round(len(archs) * train_fraction))
    tr, te = order[:n], order[n:]
    x = one_hot(archs, NUM_OPS)
    out = {}
    t0 = time.perf_counter()
    corr = InContextCorrection().fit(table, archs[tr], measured[tr])
    out["lut+residual"] = (corr.predict(table, archs), time.perf_counter() - t0)
    t0 = time.perf_counter()
    mlp = MLPPredictor(x.shape[1], seed=seed).fit(x[tr], np.log(measured[tr]), "mse", 400)
    out["mlp"] = (np.exp(mlp.predict(x)), time.perf_counter() - t0)
    t0 = time.perf_counter()
    gbm = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
    gbm.fit(x[tr], np.log(measured[tr]))
    out["gbm"] = (np.exp(gbm.predict(x)), time.perf_counter() - t0)
    result = {"n_train": int(n), "n_test": int(len(te)),
              "plain_lut": latency_metrics(table.latency(archs)[te], measured[te])}
    for name, (pred, seconds) in out.items():
        result[name] = {**latency_metrics(pred[te], measured[te]), "train_s": seconds}
    return result
