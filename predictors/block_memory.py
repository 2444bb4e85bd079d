"""Peak memory and model bytes of blocks a sampled LUT did not measure, from the ones it did.

A TFLite-Micro arena holds a block's live activations (weights stay in flash), so it is
nearly linear in the activation sizes: the input, the expanded tensor before and after the
depthwise convolution, and the output (bytes at int8). A model's bytes (its flash on an MCU)
are its int8 weights, per-channel quantisation and int32 biases, and the flatbuffer's own
structure. A non-negative least-squares fit on such features plus a constant prices the
unmeasured blocks; its held-out error (a fifth of the measured blocks, kept out of a first
fit) travels with the predictions."""

from __future__ import annotations

import numpy as np

from lutfarm.lut.metrics import latency_metrics


def activation_features(cases: list) -> np.ndarray:
    rows = []
    for c in cases:
        ho, wo = c.out_hw if c.h else (1, 1)
        mid = c.cin * (c.exp or 1)
        rows.append([c.h * c.w * c.cin, c.h * c.w * mid, ho * wo * mid, ho * wo * c.cout, 1.0]
                    if c.h else [c.cin, c.cin, c.cout, c.cout, 1.0])
    return np.array(rows, float)


def weight_features(cases: list) -> np.ndarray:
    """int8 weights, per-channel figures (scales, zero points, biases) and a constant."""
    return np.array([[c.params, c.cin * (c.exp or 1) * 2 + c.cout, 1.0] for c in cases], float)


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls
    scale = x.max(axis=0)
    scale[scale == 0] = 1
    coef, _ = nnls(x / scale, y)
    return coef / scale


def predict_memory(measured: dict, unmeasured: list, seed: int = 0,
                   features=activation_features) -> tuple[dict, dict]:
    """``measured``: {case: peak bytes}. Returns ({key: predicted bytes}, held-out metrics);
    ``features=weight_features`` predicts model bytes instead."""
    cases = list(measured)
    y = np.array([measured[c] for c in cases], float)
    x = features(cases)
    held = {}
    if len(cases) >= 10:
        order = np.random.default_rng(seed).permutation(len(cases))
        n_val = max(2, len(cases) // 5)
        val, train = order[:n_val], order[n_val:]
        pred = x[val] @ _fit(x[train], y[train])
        held = {k: v for k, v in latency_metrics(np.maximum(pred, 1.0), y[val]).items()
                if k in ("mape", "within_10pct", "within_5pct", "n")}
    coef = _fit(x, y)
    if not unmeasured:
        return {}, held
    pred = np.maximum(features(unmeasured) @ coef, 0.0)
    return {c.key: int(round(p)) for c, p in zip(unmeasured, pred)}, held
