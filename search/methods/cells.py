"""Search of a "cell" space (NB201, or any space of a few op genes) on its own LUT: the
largest capacity (MACs or params) under a latency budget and size limits.

Cell spaces are small enough for every registered method, the query-efficient ones included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lutfarm.search.methods.registry import run_method
from lutfarm.search.objectives.space import GeneSpace, within
from lutfarm.spaces.registry import ArchError


@dataclass(frozen=True)
class CellConstraints:
    budget_ms: float | None = None
    max_mmacs: float | None = None
    max_mparams: float | None = None


def cell_gene_space(layout) -> GeneSpace:
    sizes = tuple(int(n) for n in layout.gene_sizes)
    return GeneSpace(len(sizes), sizes)


def space_size(layout) -> int:
    return int(np.prod([int(n) for n in layout.gene_sizes], dtype=float))


def _per_arch(layout, fn, scale: float):
    """A per-arch figure of the layout as a vectorised metric (each arch computed once)."""
    seen: dict[tuple[int, ...], float] = {}

    def metric(genes) -> np.ndarray:
        out = []
        for row in np.atleast_2d(genes):
            arch = tuple(int(v) for v in row)
            if arch not in seen:
                seen[arch] = fn(arch) / scale
            out.append(seen[arch])
        return np.array(out)
    return metric


def evolve_cells(layout, table, limits: CellConstraints, method: str = "constrained",
                 population: int = 50, generations: int = 20, seed: int = 0,
                 objective: str = "mmacs") -> dict:
    """The best arch by ``objective`` (mmacs or mparams) within ``limits``; ``table`` a
    ``lutfarm.lut.cells.CellTable`` (None: no latency budget can be kept)."""
    if limits.budget_ms is not None:
        if table is None:
            raise ArchError("a latency budget needs the space's LUT (--lut)")
        table.check_complete()
    space = cell_gene_space(layout)
    mm = _per_arch(layout, layout.macs, 1e6)
    mp = _per_arch(layout, layout.params, 1e6)
    goal = mm if objective == "mmacs" else mp
    latency = table.latency if table is not None else None

    feasible = within((latency, limits.budget_ms), (mm, limits.max_mmacs),
                      (mp, limits.max_mparams))

    t0 = time.perf_counter()
    r = run_method(method, space, goal, feasible, population * generations, seed,
                   population)
    wall = time.perf_counter() - t0
    if not len(r.arch) or not feasible(np.array([r.arch]))[0]:
        raise ArchError(f"no {layout.space} arch meets the limits ({_limits_text(limits)}); "
                        f"loosen them")
    arch = tuple(int(v) for v in r.arch)
    genes = np.array([arch])
    out = {"arch": list(arch), "arch_str": layout.arch_to_text(arch),
           "space": layout.space, "layout": layout.name, "objective": objective,
           "objective_value": float(r.objective), "mmacs": float(mm(genes)[0]),
           "mparams": float(mp(genes)[0]), "method": r.method,
           "evaluations": r.evaluations, "wall_s": wall, "constraints": vars(limits)}
    if latency is not None:
        out["latency_ms"] = float(latency(genes)[0])
    return out


def _limits_text(limits: CellConstraints) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in vars(limits).items() if v is not None) or "none"
