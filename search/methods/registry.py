"""Every search method by name, in one registry that the command line's choices, the FBNet and
MCUNet searches and NB201's benchmark all read.

A method gets a gene space, an objective to maximise, a feasibility test and a budget of
objective evaluations; population-based ones also take a population size, start archs
(``seeds``: e.g. the fastest arch, for tight budgets) and per-gene mutation probabilities.
Query-efficient methods (local search, BANANAS, the ridge-guided one) enumerate or encode the
whole space, so they are offered only for small spaces (NAS-Bench-201's 15 625 cells).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lutfarm.search.methods.evolution import (
    SearchResult,
    constrained_evolution,
    random_search,
    regularized_evolution,
)
from lutfarm.search.methods.query_efficient import bananas, local_search


@dataclass(frozen=True)
class SearchMethod:
    name: str
    run: Callable[..., SearchResult]   # (space, objective, feasible, budget, seed, **how)
    about: str
    small_spaces_only: bool = False    # enumerates or encodes the whole space


def _constrained(space, objective, feasible, budget, seed, population=100, seeds=None,
                 mutation=None, starts=None):
    # whole generations are sampled at once: ``starts`` join the walks' pool like ``seeds``
    if starts is not None:
        seeds = starts if seeds is None else np.concatenate([seeds, starts])
    kw = {} if mutation is None else {"mutate_prob": mutation}
    return constrained_evolution(space, objective, feasible, population,
                                 max(1, budget // population), seed=seed, seeds=seeds, **kw)


def _regularized(space, objective, feasible, budget, seed, population=100, seeds=None,
                 mutation=None, tournament=10, starts=None):
    return regularized_evolution(space, objective, budget, feasible, population,
                                 tournament=tournament, mutation_prob=mutation, seed=seed,
                                 seeds=seeds, starts=starts)


def _random(space, objective, feasible, budget, seed, population=None, seeds=None,
            mutation=None, starts=None):
    # the baseline stays uniform: ``starts`` are ignored
    return random_search(space, objective, budget, feasible, seed, seeds=seeds)


def _predictor(space, objective, feasible, budget, seed, **_):
    from lutfarm.search.methods.nb201 import ridge_guided
    return ridge_guided(space, objective, feasible, budget, seed)


def _bananas_path(space, objective, feasible, budget, seed, starts=None, **_):
    from lutfarm.search.methods.nb201 import path_encoding
    return bananas(space, objective, budget, feasible, seed, encode=path_encoding, starts=starts)


METHODS: dict[str, SearchMethod] = {m.name: m for m in (
    SearchMethod("constrained", _constrained,
                 "OFA-style: keep the best quarter, refill by mutation and crossover"),
    SearchMethod("regularized", _regularized,
                 "Real et al.: tournament selection, the oldest member dies"),
    SearchMethod("random", _random, "distinct feasible archs drawn uniformly (the baseline)"),
    # population 50, tournament 10: with 20 and 5 evolution lost to random search under
    # raspi4's and pixel3's tight budgets (30 seeds, 150 queries); 50/10 beats it on every device
    SearchMethod("evolution", lambda sp, obj, feas, budget, seed, starts=None, **_: _regularized(
        sp, obj, feas, budget, seed, population=50, tournament=10, starts=starts),
        "regularized evolution tuned for 150-query budgets", small_spaces_only=True),
    SearchMethod("predictor", _predictor, "a ridge model on one-hot genes picks each query",
                 small_spaces_only=True),
    SearchMethod("local", lambda sp, obj, feas, budget, seed, starts=None, **_: local_search(
        sp, obj, budget, feas, seed, starts=starts), "best-improvement local search", small_spaces_only=True),
    # one-hot genes: with the path encoding BANANAS lost to random search under tight budgets
    # (dead-edge twins share one code); both fit the ranks of what was queried
    SearchMethod("bananas", lambda sp, obj, feas, budget, seed, starts=None, **_: bananas(
        sp, obj, budget, feas, seed, starts=starts), "BANANAS on one-hot genes", small_spaces_only=True),
    SearchMethod("bananas-path", _bananas_path, "BANANAS on NB201's path encoding",
                 small_spaces_only=True),
)}


def method_names(small_space: bool = False) -> list[str]:
    """The methods a space can use: all of them for a small one, the scalable ones else."""
    return [n for n, m in METHODS.items() if small_space or not m.small_spaces_only]


def run_method(name: str, space, objective, feasible, budget: int, seed: int = 0,
               population: int | None = None, seeds: np.ndarray | None = None,
               mutation=None, starts: np.ndarray | None = None) -> SearchResult:
    """Run the method ``name`` for ``budget`` objective evaluations; ``starts`` are archs to
    query first (a proxy's favourites) where the method has a start."""
    method = METHODS[name]
    how = {"seeds": seeds, "mutation": mutation}
    if starts is not None:
        how["starts"] = starts
    if population is not None:
        how["population"] = population
    return method.run(space, objective, feasible, budget, seed, **how)
