"""Benchmark mode on NAS-Bench-201: real accuracies, real device latencies, known optimum.

An NB201 cell has 6 edges, each one of 5 ops, so 5^6 = 15625 architectures; the table
(``nb201_master.csv``, read by ``lutfarm.spaces.nb201``) gives each one's test accuracy and its
latency on many devices. For a device and a latency budget the oracle is the best accuracy
among archs within the budget; a search method "queries" accuracies one at a time (latency is
known, like a LUT) and is scored by its best accuracy after k queries, averaged over seeds.

Part of that oracle is luck: 15 625 cells compute only 6 466 functions
(``spaces.nb201.cell_class_key``), and cells of one class differ by their training run's noise.
So regret is also reported against the best class mean (each class's accuracy averaged over its
members), with the found cell's class mean: what a search can be expected to reach. Searches
query canonically (``NB201Table.canonical_space``: never two members of one class) and begin
where compute is (``macs_starts``). Even so a search sees one training run per class: the
single-sample floor (``single_sample_floor``) is the class regret of querying every feasible
class once, and under some budgets it is above 0.1 points on its own.
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
    macs: np.ndarray | None = None             # per arch code, every edge's op counted

    def __post_init__(self) -> None:
        if self.classes is None:
            self.classes = cell_classes()
        if self.macs is None:
            self.macs = cell_macs()

    @property
    def live_macs(self) -> np.ndarray:
        """Per arch code: the fewest MACs among its class, i.e. the ops that reach the output
        (a conv on an edge the output never sees is the only difference between members)."""
        least = np.full(self.classes.max() + 1, np.inf)
        np.minimum.at(least, self.classes, self.macs)
        return least[self.classes]

    def canonical_space(self) -> GeneSpace:
        """The genes, with ``encode`` naming an arch's class: every method's "never query an
        arch twice" becomes "never query two members of one class"."""
        return ClassSpace(SPACE.genes, SPACE.choices, classes=self.classes)

    @property
    def class_mean(self) -> np.ndarray:
        """Per arch code: the mean accuracy of its class (the function it computes)."""
        sums = np.bincount(self.classes, weights=self.accuracy)
        return (sums / np.bincount(self.classes))[self.classes]

    def devices(self) -> list[str]:
        return sorted(self.latency)

    def lookup(self, column: np.ndarray, archs) -> np.ndarray:
        return column[SPACE.encode(np.asarray(archs))]


@dataclass(frozen=True, eq=False)
class ClassSpace(GeneSpace):
    """NB201's gene space whose codes are isomorphism classes (``NB201Table.canonical_space``)."""

    classes: np.ndarray | None = None

    def encode(self, pop: np.ndarray) -> np.ndarray:
        return self.classes[GeneSpace.encode(self, pop)]


def cell_macs() -> np.ndarray:
    """Every arch code's MACs on CIFAR-10 (the layout's own count; NB201's table lacks FLOPs
    for 6 180 cells). Each edge of a stage has one shape, so MACs add up per op."""
    from lutfarm.spaces.nb201 import LAYOUTS
    layout = LAYOUTS["cifar10"]
    none = layout.macs((0,) * NUM_EDGES)
    per_op = np.array([(layout.macs((op,) + (0,) * (NUM_EDGES - 1)) - none) for op in
                       range(len(OPS))], float)
    every = np.array(np.unravel_index(np.arange(SPACE.choices ** SPACE.genes),
                                      (SPACE.choices,) * SPACE.genes)).T
    return none + per_op[every].sum(1)


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
    the one-hot encoding of everything queried so far likes best (never an arch whose code,
    ``space.encode``, was queried before)."""
    import time

    from lutfarm.search.methods.evolution import (
        SearchResult,
        distinct_feasible,
        sample_feasible,
    )
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    archs = list(distinct_feasible(space, sample_feasible(space, 4 * warmup, feasible, rng),
                                   feasible)[:warmup])
    scores = list(objective(np.array(archs)))
    seen = {int(c) for c in space.encode(np.array(archs))}

    while len(scores) < budget:
        model = Ridge(alpha=1.0).fit(one_hot(np.array(archs), space.choices), np.array(scores))
        top = np.array(archs)[np.argsort(scores)[-5:]]
        for rate in (1, 2, 3, space.genes):     # widen the walk until something is untried
            cands = sample_feasible(space, proposals, feasible, rng,
                                    source=lambda k, top=top, rate=rate: space.mutate(
                                        top[rng.integers(0, len(top), k)], rate / space.genes,
                                        rng))
            codes = space.encode(cands)
            fresh = np.array([int(c) not in seen for c in codes])
            if fresh.any():
                break
        if not fresh.any():
            break                               # every reachable arch was queried
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
    floor_class_regret: float = float("nan")     # ``single_sample_floor``
    spread: dict[str, float] = field(default_factory=dict)   # class regret's standard error

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
                                      for m, v in self.found_class_mean.items()},
                "class_regret_stderr": dict(self.spread),
                "floor_class_regret": self.floor_class_regret}


START_POOL = 50


def single_sample_floor(table: NB201Table, ok: np.ndarray, draws: int = 200,
                        seed: int = 0) -> float:
    """The class regret of querying every feasible class once (a random feasible member
    each) and keeping the best value seen, averaged over ``draws``: what one training run per
    class can reach with no query limit. Below it, a search is lucky, not better."""
    rng = np.random.default_rng(seed)
    codes = np.flatnonzero(ok)
    class_mean = table.class_mean
    best = class_mean[codes].max()
    regret = []
    for _ in range(draws):
        order = rng.permutation(len(codes))
        _, first = np.unique(table.classes[codes[order]], return_index=True)
        picked = codes[order[first]]
        regret.append(best - class_mean[picked[np.argmax(table.accuracy[picked])]])
    return float(np.mean(regret))


def macs_starts(table: NB201Table, ok: np.ndarray, rng: np.random.Generator,
                top: int | None = None) -> np.ndarray:
    """Start archs for one run: the ``top`` feasible classes with the most live MACs (one
    member each), in a random order. In NB201 compute buys accuracy, so a search that starts
    there spends its first queries where the good cells are."""
    codes = np.flatnonzero(ok)
    _, first = np.unique(table.classes[codes], return_index=True)
    reps = codes[first]
    best = reps[np.argsort(-table.live_macs[reps], kind="stable")[:top or START_POOL]]
    every = np.array(np.unravel_index(rng.permutation(best), (SPACE.choices,) * SPACE.genes)).T
    return every


def bench(table: NB201Table, device: str, budget_ms: float, queries: int = 100,
          seeds: int = 20, methods: tuple[str, ...] = BENCH_METHODS, canonical: bool = True,
          starts: str = "macs") -> BenchResult:
    """Each method ``seeds`` times. ``canonical``: never two queries in one isomorphism class;
    ``starts="macs"``: methods with a start begin at the feasible classes with the most live
    MACs (``macs_starts``), ``"uniform"``: at random feasible archs. Random search is the
    uniform baseline either way."""
    if device not in table.latency:
        raise NB201Error(f"no device {device!r} in the NB201 table; choose one of "
                         f"{', '.join(table.devices())}")
    if starts not in ("macs", "uniform"):
        raise NB201Error(f"starts {starts!r}: choose macs or uniform")
    lat = table.latency[device]
    ok = lat <= budget_ms
    if not ok.any():
        raise NB201Error(f"no NB201 arch runs within {budget_ms} ms on {device} "
                         f"(fastest {np.nanmin(lat):.3f} ms)")

    def objective(archs):
        return table.lookup(table.accuracy, archs)

    def feasible(archs):
        return table.lookup(lat, archs) <= budget_ms

    space = table.canonical_space() if canonical else SPACE
    curves, found, spread = {}, {}, {}
    class_mean = table.class_mean
    for m in methods:
        runs = []
        for seed in range(seeds):
            first = (macs_starts(table, ok, np.random.default_rng([seed, 201]))
                     if starts == "macs" else None)
            runs.append(run_method(m, space, objective, feasible, queries, seed, starts=first))
        curves[m] = np.mean([r.best_so_far()[:queries] for r in runs], axis=0)
        means = [table.lookup(class_mean, [r.arch])[0] for r in runs]
        found[m] = float(np.mean(means))
        spread[m] = float(np.std(means, ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("nan")
    return BenchResult(device, budget_ms, table.dataset, queries, seeds,
                       float(table.accuracy[ok].max()), int(ok.sum()), curves,
                       float(class_mean[ok].max()), len(np.unique(table.classes[ok])), found,
                       single_sample_floor(table, ok), spread)
