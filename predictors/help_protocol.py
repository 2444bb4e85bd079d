"""HELP's published few-shot protocol on the shared data, so our figures sit beside theirs.

FBNet (help_fbnet_latency.csv): meta-train devices' models learn from archs 0..3999, the query
set is archs 4000..4999, the 10 adaptation samples come from 0..3999. NB201
(nb201_master.csv): query = NB201 indices 900..1899 and adaptation from 0..899, each keeping
the middle 80 % by latency on the target device; meta-train models learn from every arch
outside the query set. Spearman ρ over the query set, mean over seeds of the 10 samples.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from scipy import stats

from lutfarm.predictors.encoding import one_hot, with_pairs
from lutfarm.predictors.fewshot import FewShotTransfer
from lutfarm.predictors.persistence import PredictorError
from lutfarm.spaces.nb201 import OPS, read_nb201

HELP_PUBLISHED = {
    "fbnet": {"raspi4": 0.887, "eyeriss": 0.943, "fpga": 0.892},
    "nb201": {"titan_rtx_256": 0.987, "gold_6226": 0.989, "pixel2": 0.802, "raspi4": 0.890,
              "eyeriss": 0.940, "fpga": 0.985},
}


def _fbnet(data: Path):
    rows = list(csv.DictReader(open(data / "help_fbnet_latency.csv")))
    archs = np.array([[int(x) for x in r["ops"].split()] for r in rows])
    lat = {c[:-3]: np.array([float(r[c]) for r in rows]) for c in rows[0] if c.endswith("_ms")}
    return one_hot(archs, 9), lat


def _nb201(data: Path):
    table = read_nb201(data / "nb201_master.csv")
    return with_pairs(table.archs, len(OPS)), table.latency


def _middle(idx: np.ndarray, y: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(y[idx], [10, 90])
    return idx[(y[idx] >= lo) & (y[idx] <= hi)]


def evaluate(space: str, data: str | Path, seeds: int = 10, samples: int = 10) -> dict:
    """Per meta-test device and mean Spearman, ours beside HELP's published figures."""
    data = Path(data)
    needed = ["device_splits.json", "help_fbnet_latency.csv" if space == "fbnet"
              else "nb201_master.csv"]
    missing = [n for n in needed if not (data / n).is_file()]
    if missing:
        raise PredictorError(f"{', '.join(missing)} not in {data}; pass --data with the shared "
                             f"data folder (shared/data) or set LUTFARM_DATA")
    splits = json.loads((data / "device_splits.json").read_text())
    if space == "fbnet":
        x, lat = _fbnet(data)
        split = splits["HELP_fbnet"]
        query, pool = np.arange(4000, 5000), np.arange(0, 4000)
        meta_rows = pool
    elif space == "nb201":
        x, lat = _nb201(data)
        split = splits["HELP_nasbench201"]
        query, pool = np.arange(900, 1900), np.arange(0, 900)
        meta_rows = np.setdiff1d(np.arange(len(x)), query)
    else:
        raise PredictorError(f"unknown space {space!r}: fbnet or nb201")
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
