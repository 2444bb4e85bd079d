"""Benchmark mode on NAS-Bench-201: real accuracies, real device latencies, known optimum.

An NB201 cell has 6 edges, each one of 5 ops, so 5^6 = 15625 architectures; the table
(``nb201_master.csv``, see ../shared/data/README.md) gives each one's test accuracy and its
latency on many devices. For a device and a latency budget the oracle is the best accuracy
among archs within the budget; a search method "queries" accuracies one at a time (latency is
known, like a LUT) and is scored by its best accuracy after k queries, averaged over seeds.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge

from predictors.encoding import one_hot
from search.evolution import random_search, regularized_evolution
from search.space import GeneSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
SPACE = GeneSpace(6, len(OPS))
DATASETS = {"cifar10": "c10_test_acc", "cifar100": "c100_test_acc",
            "imagenet16": "in16_test_acc"}
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_master.csv"


class NB201Error(ValueError):
    """The NB201 table is missing or lacks what was asked for."""


def parse_arch_str(arch: str) -> list[int]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> 6 op indices, edge order as written."""
    ops = re.findall(r"\|([a-z_0-9]+)~\d", arch)
    if len(ops) != 6 or any(o not in OPS for o in ops):
        raise NB201Error(f"not an NB201 arch string: {arch!r}")
    return [OPS.index(o) for o in ops]


@dataclass
class NB201Table:
    """Accuracy and latency columns indexed by the base-5 code of the 6 ops."""

    accuracy: np.ndarray
    latency: dict[str, np.ndarray]
    dataset: str

    def devices(self) -> list[str]:
        return sorted(self.latency)

    def lookup(self, column: np.ndarray, archs) -> np.ndarray:
        return column[SPACE.encode(np.asarray(archs))]


def load_nb201(path: str | os.PathLike | None = None, dataset: str = "cifar10") -> NB201Table:
    path = Path(path or os.environ.get("LUTFARM_NB201", DEFAULT_PATH))
    if not path.exists():
        raise NB201Error(f"NB201 table {path} not found; pass --nb201 PATH to nb201_master.csv "
                         f"(shared/data) or set LUTFARM_NB201")
    if dataset not in DATASETS:
        raise NB201Error(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        lat_cols = [c for c in reader.fieldnames if c.endswith(("_ms", "_latency"))]
        acc = np.full(SPACE.choices ** SPACE.genes, np.nan)
        lat = {c: np.full_like(acc, np.nan) for c in lat_cols}
        for row in reader:
            code = int(SPACE.encode(np.array(parse_arch_str(row["arch_str"]))))
            acc[code] = float(row[DATASETS[dataset]])
            for c in lat_cols:
                if row[c] not in ("", None):
                    lat[c][code] = float(row[c])
    if np.isnan(acc).any():
        raise NB201Error(f"{path} does not cover all 15625 NB201 archs")
    names = {c: c.removeprefix("help_").removeprefix("hwnb_c10_").removesuffix("_latency")
             .removesuffix("_ms") for c in lat_cols}
    return NB201Table(acc, {names[c]: v for c, v in lat.items()}, dataset)


def _ridge_guided(space, objective, feasible, budget, seed, warmup=20, proposals=32):
    """Predictor-guided evolution: mutate the best so far, query the child a ridge model on
    the one-hot encoding of everything queried so far likes best."""
    import time

    from search.evolution import SearchResult, sample_feasible
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    archs = sample_feasible(space, warmup, feasible, rng)
    scores = list(objective(archs))
    archs = list(archs)
    seen = {int(space.encode(a[None])[0]) for a in archs}

    while len(scores) < budget:
        model = Ridge(alpha=1.0).fit(one_hot(np.array(archs), space.choices), np.array(scores))
        top = np.array(archs)[np.argsort(scores)[-5:]]
        cands = sample_feasible(space, proposals, feasible, rng, source=lambda k, top=top: space.mutate(
            top[rng.integers(0, len(top), k)], 1 / space.genes, rng))
        codes = space.encode(cands)
        fresh = np.array([int(c) not in seen for c in codes])
        if fresh.any():
            cands, codes = cands[fresh], codes[fresh]
        best = int(np.argmax(model.predict(one_hot(cands, space.choices))))
        archs.append(cands[best])
        seen.add(int(codes[best]))
        scores.append(float(objective(cands[best][None])[0]))
    s = np.array(scores)
    return SearchResult("predictor-guided", archs[int(np.argmax(s))].tolist(), float(s.max()),
                        len(s), time.perf_counter() - t0, s, np.array(archs))


METHODS = {
    "random": lambda sp, obj, feas, budget, seed: random_search(sp, obj, budget, feas, seed),
    "evolution": lambda sp, obj, feas, budget, seed: regularized_evolution(
        sp, obj, budget, feas, population=20, tournament=5, seed=seed),
    "predictor": _ridge_guided,
}


@dataclass
class BenchResult:
    device: str
    budget_ms: float
    dataset: str
    queries: int
    seeds: int
    oracle_accuracy: float
    feasible_archs: int
    curves: dict[str, np.ndarray]        # method -> mean best accuracy after k queries

    def summary(self) -> dict:
        return {"device": self.device, "budget_ms": self.budget_ms, "dataset": self.dataset,
                "queries": self.queries, "seeds": self.seeds,
                "oracle_accuracy": self.oracle_accuracy, "feasible_archs": self.feasible_archs,
                "mean_found_accuracy": {m: float(c[-1]) for m, c in self.curves.items()},
                "mean_regret": {m: float(self.oracle_accuracy - c[-1])
                                for m, c in self.curves.items()}}


def bench(table: NB201Table, device: str, budget_ms: float, queries: int = 100,
          seeds: int = 20, methods: tuple[str, ...] = tuple(METHODS)) -> BenchResult:
    if device not in table.latency:
        raise NB201Error(f"no device {device!r} in the NB201 table; choose one of "
                         f"{', '.join(table.devices())}")
    lat = table.latency[device]
    ok = lat <= budget_ms
    if not ok.any():
        raise NB201Error(f"no NB201 arch runs within {budget_ms} ms on {device} "
                         f"(fastest {np.nanmin(lat):.3f} ms)")

    def objective(archs):
        return table.lookup(table.accuracy, archs)

    def feasible(archs):
        return table.lookup(lat, archs) <= budget_ms

    curves = {}
    for m in methods:
        runs = [METHODS[m](SPACE, objective, feasible, queries, seed).best_so_far()[:queries]
                for seed in range(seeds)]
        curves[m] = np.mean(runs, axis=0)
    return BenchResult(device, budget_ms, table.dataset, queries, seeds,
                       float(table.accuracy[ok].max()), int(ok.sum()), curves)
