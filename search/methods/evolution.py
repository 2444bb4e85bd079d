"""Search under constraints: random search, regularised evolution, OFA-style evolution.

Every method maximises ``objective(archs) -> values`` (vectorised over a population) subject
to ``feasible(archs) -> bool mask``. Infeasible candidates are rejected and resampled before
they are evaluated, as in OFA/MCUNet, so every evaluation counts towards the budget only if it
could be the answer. Results keep the order of evaluations, for best-so-far curves.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lutfarm.errors import LutfarmError
from lutfarm.search.objectives.space import GeneSpace

Objective = Callable[[np.ndarray], np.ndarray]
Feasible = Callable[[np.ndarray], np.ndarray]


class SearchError(LutfarmError, ValueError):
    """A search that cannot run (e.g. no feasible architecture can be found)."""


@dataclass
class SearchResult:
    method: str
    arch: list[int]
    objective: float
    evaluations: int
    wall_s: float
    history: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # objective per evaluation
    archs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), int))

    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(self.history)

    def to_frame(self):
        """Every evaluation in order: the arch (as a digit string), its objective value and
        the best value so far."""
        import pandas as pd

        archs = ["".join(map(str, a)) for a in self.archs] if self.archs.ndim == 2 and \
            len(self.archs) == len(self.history) else [None] * len(self.history)
        return pd.DataFrame({"arch": archs, "objective": self.history,
                             "best_so_far": self.best_so_far()})


def _always(archs):
    return np.ones(len(archs), bool)


def sample_feasible(space: GeneSpace, n: int, feasible: Feasible, rng, tries: int = 200,
                    source: Callable[[int], np.ndarray] | None = None,
                    seeds: np.ndarray | None = None) -> np.ndarray:
    """``n`` feasible archs by rejection, vectorised; SearchError if they are too rare.

    Under a tight budget uniform samples are almost never feasible; then half of each round
    comes from random walks (mutations) around the feasible archs found so far, or around
    ``seeds`` (e.g. the fastest arch of the LUT)."""
    source = source or (lambda k: space.random(k, rng))
    out: list[np.ndarray] = []
    pool = seeds[feasible(seeds)] if seeds is not None and len(seeds) else np.zeros((0, space.genes), int)
    have = 0
    for round_ in range(tries):
        k = max(2 * (n - have), 16)
        cand = source(k)
        found = np.concatenate([pool, *out]) if out else pool
        if round_ >= 2 and len(found) and have < n:
            walk = space.mutate(found[rng.integers(0, len(found), k)], 2.0 / space.genes, rng)
            cand = np.concatenate([cand[: k // 2], walk[: k - k // 2]])
        ok = cand[feasible(cand)]
        out.append(ok)
        have += len(ok)
        if have >= n:
            return np.concatenate(out)[:n]
    raise SearchError(f"found only {have} of {n} architectures that meet the constraints in "
                      f"{tries} rounds; loosen the budget")


def distinct_feasible(space: GeneSpace, archs: np.ndarray | None,
                      feasible: Feasible = _always) -> np.ndarray:
    """The feasible archs of ``archs`` in their order, each code (``space.encode``) once."""
    if archs is None or not len(archs):
        return np.zeros((0, space.genes), np.int64)
    archs = np.asarray(archs)[feasible(archs)]
    _, first = np.unique(space.encode(archs), return_index=True)
    return archs[np.sort(first)]


def random_search(space: GeneSpace, objective: Objective, budget: int,
                  feasible: Feasible = _always, seed: int = 0,
                  seeds: np.ndarray | None = None) -> SearchResult:
    """``budget`` distinct feasible archs drawn uniformly (all of them if fewer exist)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    archs = sample_feasible(space, budget, feasible, rng, seeds=seeds)
    _, first = np.unique(space.encode(archs), return_index=True)
    for _ in range(20):
        if len(first) >= budget:
            break
        archs = np.concatenate([archs[np.sort(first)],
                                sample_feasible(space, budget, feasible, rng, seeds=seeds)])
        _, first = np.unique(space.encode(archs), return_index=True)
    archs = archs[np.sort(first)][:budget]
    values = objective(archs)
    best = int(np.argmax(values))
    return SearchResult("random", archs[best].tolist(), float(values[best]), budget,
                        time.perf_counter() - t0, values, archs)


def regularized_evolution(space: GeneSpace, objective: Objective, budget: int,
                          feasible: Feasible = _always, population: int = 50,
                          tournament: int = 10, mutation_prob: float | None = None,
                          seed: int = 0, seeds: np.ndarray | None = None,
                          starts: np.ndarray | None = None) -> SearchResult:
    """Real et al.: tournament selection, mutate the winner, the oldest member dies. The first
    population is ``starts`` (feasible, distinct; e.g. the archs a cheap proxy likes best),
    topped up with uniform samples."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    p = mutation_prob if mutation_prob is not None else 1.0 / space.genes
    size = min(population, budget)
    first = distinct_feasible(space, starts, feasible)[:size]
    if len(first) < size:
        more = random_search(space, objective, size, feasible, seed, seeds).archs
        first = distinct_feasible(space, np.concatenate([first, more]) if len(first) else more,
                                  feasible)[:size]
    scores = objective(first)
    pop = deque(zip(first, scores))
    archs, history = list(first), list(scores)
    seen = set(space.encode(first).tolist())
    while len(history) < budget:
        idx = rng.choice(len(pop), size=min(tournament, len(pop)), replace=False)
        parent = max((pop[i] for i in idx), key=lambda m: m[1])[0]
        for _ in range(100):   # an arch already evaluated is not worth a query: mutate again
            child = sample_feasible(space, 1, feasible, rng, source=lambda k, parent=parent:
                                    space.mutate(np.repeat(parent[None], k, 0), p, rng))[0]
            if int(space.encode(child[None])[0]) not in seen:
                break
        seen.add(int(space.encode(child[None])[0]))
        score = float(objective(child[None])[0])
        pop.append((child, score))
        pop.popleft()
        archs.append(child)
        history.append(score)
    history_a = np.array(history)
    best = int(np.argmax(history_a))
    return SearchResult("regularized-evolution", archs[best].tolist(), float(history_a[best]),
                        len(history_a), time.perf_counter() - t0, history_a, np.array(archs))


def constrained_evolution(space: GeneSpace, objective: Objective, feasible: Feasible = _always,
                          population: int = 100, generations: int = 500,
                          parent_ratio: float = 0.25, mutate_prob: float = 0.1,
                          mutation_ratio: float = 0.5, seed: int = 0,
                          seeds: np.ndarray | None = None) -> SearchResult:
    """OFA/MCUNet: keep the top quarter, refill half by mutation and half by crossover,
    resampling children that break the constraints; a whole generation is one vector op."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    pop = sample_feasible(space, population, feasible, rng, seeds=seeds)
    n_par = max(2, int(population * parent_ratio))
    n_mut = int((population - n_par) * mutation_ratio)
    n_cross = population - n_par - n_mut
    best_arch, best_val, evaluations, history = None, -np.inf, 0, []
    for _ in range(generations):
        values = objective(pop)
        evaluations += len(pop)
        order = np.argsort(-values)
        if values[order[0]] > best_val:
            best_val, best_arch = float(values[order[0]]), pop[order[0]].copy()
        history.append(best_val)
        parents = pop[order[:n_par]]

        def mutants(k, parents=parents):
            return space.mutate(parents[rng.integers(0, n_par, k)], mutate_prob, rng,
                                at_least_one=False)

        def crosses(k, parents=parents):
            return space.crossover(parents[rng.integers(0, n_par, k)],
                                   parents[rng.integers(0, n_par, k)], rng)

        pop = np.concatenate([parents, sample_feasible(space, n_mut, feasible, rng, source=mutants),
                              sample_feasible(space, n_cross, feasible, rng, source=crosses)])
    return SearchResult("constrained-evolution", best_arch.tolist(), best_val, evaluations,
                        time.perf_counter() - t0, np.array(history), pop)
