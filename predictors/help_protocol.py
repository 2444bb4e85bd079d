"""HELP's published few-shot protocol on the shared data, so our figures sit beside theirs.

FBNet (help_fbnet_latency.csv): meta-train devices' models learn from archs 0..3999, the query
set is archs 4000..4999, the 10 adaptation samples come from 0..3999. NB201
(nb201_master.csv): query = NB201 indices 900..1899 and adaptation from 0..899, each keeping
the middle 80 % by latency on the target device; meta-train models learn from every arch
outside the query set. Spearman ρ over the query set, mean over seeds of the 10 samples.

``evaluate_targets`` runs the same protocol on any device of the data (those outside HELP's
meta-test split too: edge GPUs and TPUs, the i7), with the free features, beside the two
baselines a transfer must beat: FLOPs alone (no samples) and a model of the 10 samples alone.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.linear_model import RidgeCV

from lutfarm.predictors.encoding import one_hot, with_pairs
from lutfarm.predictors.fewshot import ALPHAS, FewShotTransfer
from lutfarm.predictors.persistence import PredictorError
from lutfarm.spaces import get_layout
from lutfarm.spaces.nb201 import OPS, read_nb201

HELP_PUBLISHED = {
    "fbnet": {"raspi4": 0.887, "eyeriss": 0.943, "fpga": 0.892},
    "nb201": {"titan_rtx_256": 0.987, "gold_6226": 0.989, "pixel2": 0.802, "raspi4": 0.890,
              "eyeriss": 0.940, "fpga": 0.985},
}


def _fbnet(data: Path):
    """Encoding, latencies, free features (log MFLOPs, log params, op counts), LUT sums."""
    rows = list(csv.DictReader(open(data / "help_fbnet_latency.csv")))
    archs = np.array([[int(x) for x in r["ops"].split()] for r in rows])
    lat = {c[:-3]: np.array([float(r[c]) for r in rows]) for c in rows[0] if c.endswith("_ms")}
    base = np.column_stack([np.log([float(r["mflops"]) for r in rows]),
                            np.log([float(r["mparams"]) for r in rows]),
                            *(np.sum(archs == op, axis=1) for op in range(9))])
    luts = {c.split("_")[2]: np.log([float(r[c]) for r in rows]) for c in rows[0]
            if c.startswith("lutsum_cifar100_") and c.endswith("_latency")}
    return one_hot(archs, 9), lat, base, luts


def _nb201(data: Path):
    table = read_nb201(data / "nb201_master.csv")
    x = with_pairs(table.archs, len(OPS))
    # the file's FLOPs column has gaps; the space computes every arch's (one per op multiset)
    layout, memo = get_layout("nb201", "cifar10"), {}
    keys = [tuple(sorted(a)) for a in table.archs.tolist()]
    for key, arch in zip(keys, table.archs.tolist()):
        if key not in memo:
            memo[key] = (layout.macs(arch), layout.params(arch))
    counts = [np.sum(table.archs == op, axis=1) for op in range(len(OPS))]
    base = np.column_stack([np.log([memo[k] for k in keys]), *counts])
    return x, table.latency, base, {}


def _standard(m: np.ndarray) -> np.ndarray:
    sd = m.std(axis=0)
    return (m - m.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _middle(idx: np.ndarray, y: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(y[idx], [10, 90])
    return idx[(y[idx] >= lo) & (y[idx] <= hi)]


def evaluate(space: str, data: str | Path, seeds: int = 10, samples: int = 10) -> dict:
    """Per meta-test device and mean Spearman, ours beside HELP's published figures."""
    x, lat, _, _, split, query, pool, meta_rows = _setting(space, Path(data))
    model = FewShotTransfer(space, "onehot" if space == "fbnet" else "pairs").fit_meta(
        x[meta_rows], {d: lat[d][meta_rows] for d in split["meta_train"]})
    per_device = {}
    for device in split["meta_test"]:
        y = lat[device]
        q = _middle(query, y) if space == "nb201" else query
        a_pool = _middle(pool, y) if space == "nb201" else pool
        rhos = []
        for seed in range(seeds):
            a = np.random.default_rng(seed).choice(a_pool, samples, replace=False)
            model.adapt(x[a], y[a], device)
            rhos.append(stats.spearmanr(model.predict(x[q]), y[q]).statistic)
        per_device[device] = float(np.mean(rhos))
    help_ = HELP_PUBLISHED[space]
    return {"space": space, "samples": samples, "seeds": seeds, "spearman": per_device,
            "mean": float(np.mean(list(per_device.values()))), "help": help_,
            "help_mean": float(np.mean(list(help_.values())))}


def _setting(space: str, data: Path):
    """Encoding, latencies, free features, per-device LUT sums, split, query, pool, meta rows."""
    needed = ["device_splits.json", "help_fbnet_latency.csv" if space == "fbnet"
              else "nb201_master.csv"]
    missing = [n for n in needed if not (data / n).is_file()]
    if missing:
        raise PredictorError(f"{', '.join(missing)} not in {data}; pass --data with the shared "
                             f"data folder (shared/data) or set LUTFARM_DATA")
    splits = json.loads((data / "device_splits.json").read_text())
    if space == "fbnet":
        x, lat, base, luts = _fbnet(data)
        return (x, lat, base, luts, splits["HELP_fbnet"], np.arange(4000, 5000),
                np.arange(0, 4000), np.arange(0, 4000))
    if space == "nb201":
        x, lat, base, luts = _nb201(data)
        query = np.arange(900, 1900)
        return (x, lat, base, luts, splits["HELP_nasbench201"], query, np.arange(0, 900),
                np.setdiff1d(np.arange(len(x)), query))
    raise PredictorError(f"unknown space {space!r}: fbnet or nb201")


def _usable(idx: np.ndarray, y: np.ndarray, middle: bool) -> np.ndarray:
    idx = idx[np.isfinite(y[idx]) & (y[idx] > 0)]
    return _middle(idx, y) if middle else idx


def evaluate_targets(space: str, data: str | Path, targets: list[str] | None = None,
                     seeds: int = 10, samples: int = 10, first_seed: int = 0) -> dict:
    """Per target device: the transfer's ρ (``spearman``), FLOPs' ρ (``flops_spearman``) and
    ρ of a ridge model of the free features fitted on the samples alone
    (``samples_only_spearman``), each a mean over seeds ``first_seed`` … of the samples drawn.
    Default targets: every device of the data outside HELP's meta-train split; a meta-train
    device named as a target is left out of the meta-training for its own figures."""
    data = Path(data)
    x, lat, base, luts, split, query, pool, meta_rows = _setting(space, data)
    targets = targets or sorted(d for d in lat if d not in split["meta_train"])
    unknown = [t for t in targets if t not in lat]
    if unknown:
        raise PredictorError(f"no device {', '.join(unknown)} in the {space} data; choose from "
                             f"{', '.join(sorted(lat))}")
    middle = space == "nb201"
    models: dict[tuple, FewShotTransfer] = {}
    out = {}
    for device in targets:
        meta = tuple(d for d in split["meta_train"] if d != device)
        if meta not in models:
            models[meta] = FewShotTransfer(space, "onehot" if space == "fbnet" else "pairs") \
                .fit_meta(x[meta_rows], {d: lat[d][meta_rows] for d in meta})
        model = models[meta]
        own_lut = luts.get(device)
        # the free ranking comes first: FLOPs, or the device's own block-LUT sum where it has one
        free = _standard(base if own_lut is None else np.column_stack([own_lut, base]))
        y = lat[device]
        q, a_pool = _usable(query, y, middle), _usable(pool, y, middle)
        rho = {"spearman": [], "flops_spearman": [], "samples_only_spearman": []}
        for seed in range(first_seed, first_seed + seeds):
            a = np.random.default_rng(seed).choice(a_pool, samples, replace=False)
            model.adapt(x[a], y[a], device, free=free[a])
            rho["spearman"].append(_rho(model.predict(x[q], free=free[q]), y[q]))
            rho["flops_spearman"].append(_rho(base[q, 0], y[q]))
            alone = RidgeCV(alphas=ALPHAS).fit(free[a], np.log(y[a]))
            rho["samples_only_spearman"].append(_rho(alone.predict(free[q]), y[q]))
        out[device] = {k: float(np.mean(v)) for k, v in rho.items()}
        out[device].update(own_lut=own_lut is not None, meta_train=device in split["meta_train"],
                           meta_test=device in split["meta_test"])
    return {"space": space, "samples": samples, "seeds": seeds, "first_seed": first_seed,
            "devices": out}


def _rho(pred: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(pred, y).statistic)
