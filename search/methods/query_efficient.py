"""Searches that spend few accuracy queries (White et al.'s strong baselines on NAS-Bench-201).

- ``local_search``: from the best of a few random feasible archs, query every untried feasible
  neighbour (one gene changed), move to the best while it improves, restart at a local optimum.
- ``bananas``: an ensemble of MLPs on an encoding (NB201: the path encoding) predicts accuracy;
  each round queries the untried feasible candidates with the highest expected improvement
  over the best so far, the ensemble's spread as the uncertainty. Where the space is small
  enough (NB201: 15 625) every feasible arch is a candidate; otherwise mutations of the best.

Latency is free under a LUT, so both only ever query feasible archs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from lutfarm.search.methods.evolution import (
    Feasible,
    Objective,
    SearchResult,
    distinct_feasible,
    sample_feasible,
)
from lutfarm.search.objectives.space import GeneSpace

ENUMERATE_UP_TO = 50_000


class _Queries:
    """Every query in order, never the same arch twice."""

    def __init__(self, space: GeneSpace, objective: Objective, budget: int):
        self.space, self.objective, self.budget = space, objective, budget
        self.archs: list[np.ndarray] = []
        self.scores: list[float] = []
        self.seen: set[int] = set()

    @property
    def left(self) -> int:
        return self.budget - len(self.scores)

    def ask(self, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the archs actually queried: the untried ones, as many as the budget allows, and
        their values)."""
        codes = self.space.encode(archs)
        fresh, batch_codes = [], set()
        for i, c in enumerate(codes):      # untried, and once even within this batch
            if int(c) not in self.seen and int(c) not in batch_codes:
                fresh.append(i)
                batch_codes.add(int(c))
        fresh = fresh[: self.left]
        if not fresh:
            return archs[:0], np.zeros(0)
        batch = archs[fresh]
        values = self.objective(batch)
        for a, c, v in zip(batch, codes[fresh], values):
            self.seen.add(int(c))
            self.archs.append(a)
            self.scores.append(float(v))
        return batch, values

    def result(self, method: str, t0: float) -> SearchResult:
        s = np.array(self.scores)
        best = int(np.argmax(s))
        return SearchResult(method, self.archs[best].tolist(), float(s[best]), len(s),
                            time.perf_counter() - t0, s, np.array(self.archs))


def neighbours(space: GeneSpace, arch: np.ndarray) -> np.ndarray:
    """Every arch one gene away."""
    out = []
    for g, n in enumerate(space.sizes):
        for v in range(int(n)):
            if v != arch[g]:
                b = arch.copy()
                b[g] = v
                out.append(b)
    return np.array(out)


def local_search(space: GeneSpace, objective: Objective, budget: int,
                 feasible: Feasible, seed: int = 0, restarts: int = 10,
                 starts: np.ndarray | None = None) -> SearchResult:
    """``starts``, when given, are the first restart's candidates instead of uniform ones."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    q = _Queries(space, objective, budget)
    given = distinct_feasible(space, starts, feasible)[:restarts]
    while q.left > 0:
        pick = given if len(given) else sample_feasible(space, min(restarts, q.left), feasible,
                                                        rng)
        given = given[:0]
        first, values = q.ask(pick)
        if not len(values):
            continue
        here, best = first[int(np.argmax(values))], float(values.max())
        while q.left > 0:
            near = neighbours(space, here)
            near, values = q.ask(near[feasible(near)])
            if not len(values) or values.max() <= best:
                break                             # a local optimum: restart
            here, best = near[int(np.argmax(values))], float(values.max())
    return q.result("local-search", t0)


def _all_feasible(space: GeneSpace, feasible: Feasible) -> np.ndarray | None:
    total = int(np.prod(space.sizes.astype(float)))
    if total > ENUMERATE_UP_TO:
        return None
    grids = np.meshgrid(*[np.arange(int(n)) for n in space.sizes], indexing="ij")
    every = np.stack([g.ravel() for g in grids], 1)
    return every[feasible(every)]


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks mapped to standard-normal quantiles: the ensemble learns the order of the archs
    queried so far, and a few broken ones (NB201's 10 % archs) cannot dominate its loss."""
    ranks = stats.rankdata(values)
    return stats.norm.ppf((ranks - 0.5) / len(values))


def bananas(space: GeneSpace, objective: Objective, budget: int, feasible: Feasible,
            seed: int = 0, encode: Callable[[np.ndarray], np.ndarray] | None = None,
            initial: int = 10, per_round: int = 10, ensemble: int = 5,
            starts: np.ndarray | None = None) -> SearchResult:
    """``starts``, when given, are the first queries instead of uniform ones."""
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    encode = encode or (lambda a: np.eye(int(space.sizes.max()))[a].reshape(len(a), -1))
    q = _Queries(space, objective, budget)
    first = distinct_feasible(space, starts, feasible)[:min(initial, budget)]
    q.ask(first if len(first) else sample_feasible(space, min(initial, budget), feasible, rng))
    pool = _all_feasible(space, feasible)
    while q.left > 0:
        x, y = encode(np.array(q.archs)), normal_scores(np.array(q.scores))
        mu, sd = y.mean(), y.std() + 1e-9
        models = []
        for _ in range(ensemble):          # bootstrap resamples: the spread is the uncertainty
            pick = rng.integers(0, len(y), len(y))
            models.append(MLPRegressor(hidden_layer_sizes=(32, 32), max_iter=400,
                                       learning_rate_init=3e-3,
                                       random_state=int(rng.integers(1 << 31)))
                          .fit(x[pick], (y[pick] - mu) / sd))
        if pool is not None:
            cands = pool
        else:
            top = np.array(q.archs)[np.argsort(y)[-10:]]
            cands = sample_feasible(space, 200, feasible, rng, source=lambda k, top=top: space.mutate(
                top[rng.integers(0, len(top), k)], 1.0 / space.genes, rng))
        untried = np.array([int(c) not in q.seen for c in space.encode(cands)])
        cands = cands[untried]
        if not len(cands):
            break
        preds = np.stack([m.predict(encode(cands)) for m in models])
        mean, spread = preds.mean(0), preds.std(0) + 1e-9
        z = (mean - (y.max() - mu) / sd) / spread
        ei = (mean - (y.max() - mu) / sd) * stats.norm.cdf(z) + spread * stats.norm.pdf(z)
        q.ask(cands[np.argsort(-ei)[:min(per_round, q.left)]])
    return q.result("bananas", t0)
