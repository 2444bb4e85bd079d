"""Benchmark mode on NAS-Bench-201: real accuracies, real device latencies, known optimum.

An NB201 cell has 6 edges, each one of 5 ops, so 5^6 = 15625 architectures; the table
(``nb201_master.csv``, read by ``lutfarm.spaces.nb201``) gives each one's test accuracy and its
latency on many devices. For a device and a latency budget the oracle is the best accuracy
among archs within the budget; a search method "queries" accuracies one at a time (latency is
known, like a LUT) and is scored by its best accuracy after k queries, averaged over seeds.

Part of that oracle is luck: 15 625 cells compute only 6 466 functions
(``spaces.nb201.cell_class_key``), and cells of one class differ by their training run's noise.
So regret is also reported against the best class mean (each class's accuracy averaged over its
members), with the found cell's class mean: what a search can be expected to reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import Ridge

from lutfarm.predictors.encoding import one_hot
from lutfarm.search.methods.registry import run_method
from lutfarm.search.objectives.space import GeneSpace
from lutfarm.spaces.nb201 import DATASETS, NUM_EDGES, OPS, NB201Error, cell_class_key, read_nb201

SPACE = GeneSpace(NUM_EDGES, len(OPS))
# every input -> output path of the cell as edge indices (edges (1,0) (2,0) (2,1) (3,0) (3,1) (3,2))
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def path_encoding(archs) -> np.ndarray:
    """BANANAS' path encoding: one bit per (path, op sequence) the cell contains; a ``none``
    op on an edge cuts every path through it. 4 + 16 + 16 + 64 = 100 bits."""
    a = np.atleast_2d(np.asarray(archs))
    k = len(OPS) - 1                                     # ops other than none
    sizes = [k ** len(p) for p in PATHS]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.zeros((len(a), sum(sizes)), np.float32)
    rows = np.arange(len(a))
    for path, offset in zip(PATHS, offsets):
        ops = a[:, path]
        alive = (ops != 0).all(1)
        index = ((ops - 1) * k ** np.arange(len(path) - 1, -1, -1)).sum(1)
        out[rows[alive], offset + index[alive]] = 1.0
    return out


@dataclass
class NB201Table:
    """Accuracy and latency columns indexed by the base-5 code of the 6 ops."""

    accuracy: np.ndarray
    latency: dict[str, np.ndarray]
    dataset: str
    classes: np.ndarray | None = None          # isomorphism class id per arch code

    def __post_init__(self) -> None:
        if self.classes is None:
            self.classes = cell_classes()

    @property
    def class_mean(self) -> np.ndarray:
        """Per arch code: the mean accuracy of its class (the function it computes)."""
        sums = np.bincount(self.classes, weights=self.accuracy)
        return (sums / np.bincount(self.classes))[self.classes]

    def devices(self) -> list[str]:
        return sorted(self.latency)

    def lookup(self, column: np.ndarray, archs) -> np.ndarray:
        return column[SPACE.encode(np.asarray(archs))]


def cell_classes() -> np.ndarray:
    """The isomorphism class id (0 .. 6465) of every arch code."""
    import itertools
    every = itertools.product(range(SPACE.choices), repeat=SPACE.genes)   # in code order
    _, ids = np.unique([cell_class_key(a) for a in every], return_inverse=True)
    return ids


def load_nb201(path=None, dataset: str = "cifar10") -> NB201Table:
    """The table re-indexed by arch code, for O(1) lookups of whole populations."""
    if dataset not in DATASETS:
        raise NB201Error(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    data = read_nb201(path)
    codes = SPACE.encode(data.archs)
    if len(np.unique(codes)) != SPACE.choices ** SPACE.genes:
        raise NB201Error(f"{data.path} does not cover all 15625 NB201 archs")

    def by_code(column: np.ndarray) -> np.ndarray:
        out = np.full(SPACE.choices ** SPACE.genes, np.nan)
        out[codes] = column
        return out

    def latency(column: np.ndarray) -> np.ndarray:     # HW-NAS-Bench writes -1 where unmeasured
        return by_code(np.where(column > 0, column, np.nan))

    return NB201Table(by_code(data.accuracy[dataset]),
                      {d: latency(v) for d, v in data.latency.items()}, dataset)


def ridge_guided(space, objective, feasible, budget, seed, warmup=20, proposals=32):
    """Predictor-guided evolution: mutate the best so far, query the child a ridge model on
    the one-hot encoding of everything queried so far likes best."""
    import time

    from lutfarm.search.methods.evolution import SearchResult, sample_feasible
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


# the registry's methods the benchmark compares by default (``search.methods``)
BENCH_METHODS = ("random", "evolution", "predictor", "local", "bananas", "bananas-path")


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
    class_oracle_accuracy: float = float("nan")   # the best class mean within the budget
    feasible_classes: int = 0
    found_class_mean: dict[str, float] = field(default_factory=dict)   # mean over seeds

    def summary(self) -> dict:
        return {"device": self.device, "budget_ms": self.budget_ms, "dataset": self.dataset,
                "queries": self.queries, "seeds": self.seeds,
                "oracle_accuracy": self.oracle_accuracy, "feasible_archs": self.feasible_archs,
                "class_oracle_accuracy": self.class_oracle_accuracy,
                "feasible_classes": self.feasible_classes,
                "mean_found_accuracy": {m: float(c[-1]) for m, c in self.curves.items()},
                "mean_regret": {m: float(self.oracle_accuracy - c[-1])
                                for m, c in self.curves.items()},
                "mean_class_regret": {m: float(self.class_oracle_accuracy - v)
                                      for m, v in self.found_class_mean.items()}}


def bench(table: NB201Table, device: str, budget_ms: float, queries: int = 100,
          seeds: int = 20, methods: tuple[str, ...] = BENCH_METHODS) -> BenchResult:
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

    curves, found = {}, {}
    class_mean = table.class_mean
    for m in methods:
        runs = [run_method(m, SPACE, objective, feasible, queries, seed) for seed in range(seeds)]
        curves[m] = np.mean([r.best_so_far()[:queries] for r in runs], axis=0)
        found[m] = float(np.mean([table.lookup(class_mean, [r.arch])[0] for r in runs]))
    return BenchResult(device, budget_ms, table.dataset, queries, seeds,
                       float(table.accuracy[ok].max()), int(ok.sum()), curves,
                       float(class_mean[ok].max()), len(np.unique(table.classes[ok])), found)
