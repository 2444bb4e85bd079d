"""Search over spaces whose archs choose which blocks run (MCUNet): archs as gene rows of the
layout (``to_genes`` / ``from_genes``), metrics as per-case vectors gathered through the
layout's ``case_index`` and summed (MACs, latency) or maxed (peak memory). The evolution and
random search of ``search.evolution`` run on these genes unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lutfarm.search.methods.registry import run_method
from lutfarm.search.objectives.space import GeneSpace, within
from lutfarm.spaces.cases import BlockCase

# The seed's evolution (OFA / MCUNet): a block's choices mutate with 0.1, the resolution with 0.5
BLOCK_MUTATION = 0.1
RESOLUTION_MUTATION = 0.5


def subnet_space(layout) -> GeneSpace:
    choices = layout.gene_choices()
    return GeneSpace(len(choices), tuple(choices))


def mutation_probs(layout, block: float = BLOCK_MUTATION,
                   resolution: float = RESOLUTION_MUTATION) -> np.ndarray:
    """Per-gene mutation probability: ``block`` for kernels, expands, depths and the width,
    ``resolution`` for the last gene."""
    probs = np.full(len(layout.gene_choices()), block)
    probs[-1] = resolution
    return probs


@dataclass
class CaseMetric:
    """metric(genes) = reduce over the arch's cases of a per-case value (sum or max)."""

    layout: object
    values: np.ndarray            # per case id, plus the neutral value last (for -1)
    reduce: str = "sum"
    name: str = ""

    def __call__(self, genes) -> np.ndarray:
        ids, _ = self.layout.case_index(genes)
        taken = self.values[ids]
        return taken.sum(axis=1) if self.reduce == "sum" else taken.max(axis=1)

    @classmethod
    def from_cases(cls, layout, value: Callable[[BlockCase], float], reduce: str,
                   name: str) -> CaseMetric:
        values = np.array([value(c) for c in layout.case_list()] + [0.0])
        return cls(layout, values, reduce, name)


def subnet_macs(layout) -> CaseMetric:
    return CaseMetric.from_cases(layout, lambda c: c.macs / 1e6, "sum", "MMACs")


def subnet_params(layout) -> CaseMetric:
    return CaseMetric.from_cases(layout, lambda c: c.params / 1e6, "sum", "M params")


def subnet_weight_kb(layout) -> CaseMetric:
    """Analytical flash of an arch's model: its weights at int8, KiB (no flatbuffer, biases
    or firmware: a lower bound)."""
    return CaseMetric.from_cases(layout, lambda c: c.params / 1024, "sum",
                                 "int8 weights KiB (analytical)")


def subnet_peak_activation(layout) -> CaseMetric:
    """The seed's analytical peak memory: the largest live activation, KiB at int8."""
    return CaseMetric.from_cases(layout, lambda c: c.activation_peak / 1024, "max",
                                 "peak activation KiB (analytical, int8)")


@dataclass
class SubnetConstraints:
    """Any mix of limits; ``None`` leaves one out."""

    budget_ms: float | None = None
    max_memory_kb: float | None = None
    max_mmacs: float | None = None
    max_flash_kb: float | None = None


def _why_infeasible(space, c, latency, memory_kb, mm, flash_kb, n: int = 2000) -> str:
    """Which constraint rules out how many of ``n`` random archs, and which lack the data."""
    rng = np.random.default_rng(0)
    g = space.random(n, rng)
    parts = []
    if c.budget_ms is not None:
        lat = latency(g)
        parts.append(f"{int(np.isinf(lat).sum())} of {n} random archs have no latency in the "
                     f"LUT, {int((lat > c.budget_ms).sum())} exceed --budget-ms {c.budget_ms:g}")
    if c.max_memory_kb is not None:
        mem = memory_kb(g)
        parts.append(f"{int(np.isinf(mem).sum())} have no memory figure, "
                     f"{int((mem > c.max_memory_kb).sum())} exceed --max-memory-kb "
                     f"{c.max_memory_kb:g}")
    if c.max_flash_kb is not None:
        flash = flash_kb(g)
        parts.append(f"{int(np.isinf(flash).sum())} have no flash figure, "
                     f"{int((flash > c.max_flash_kb).sum())} exceed --max-flash-kb "
                     f"{c.max_flash_kb:g}")
    if c.max_mmacs is not None:
        parts.append(f"{int((mm(g) > c.max_mmacs).sum())} exceed --max-mmacs {c.max_mmacs:g}")
    return "; ".join(parts) or "no constraint was given"


def evolve_subnets(layout, table=None, constraints: SubnetConstraints | None = None,
                   method: str = "constrained", population: int = 100, generations: int = 500,
                   seed: int = 0, latency_model: str = "plain", objective: str = "mmacs",
                   accuracy=None, random_draws: int = 0) -> dict:
    """The seed's search on a subnet space: maximise ``objective`` (a capacity proxy until an
    accuracy predictor is given) under latency (from ``table``, a ``SubnetTable``), peak
    memory (the LUT's measured per-block peak where it has one, else the analytical peak
    activation) and MACs limits; ``accuracy`` (``search.accuracy_objective``) replaces the
    proxy. Returns the JSON-ready result; with ``random_draws`` K, also K other feasible
    subnets drawn uniformly (``random_feasible``, as text), to check the winner against."""
    import time

    from lutfarm.search.methods.evolution import SearchError

    c = constraints or SubnetConstraints()
    if c.budget_ms is not None and table is None:
        raise SearchError("a latency budget needs a LUT (--lut) to price the subnets")
    space = subnet_space(layout)
    mm, analytical = subnet_macs(layout), subnet_peak_activation(layout)
    goal = accuracy or (mm if objective == "mmacs" else subnet_params(layout))
    if table is not None:       # a few cases the runtime could not take: archs needing
        table.check_complete(0.05)  # them are infeasible; more means the LUT is unfinished

    def latency(g):
        return np.nan_to_num(table.latency(g, latency_model, missing="nan"), nan=np.inf)
    measured_memory = table is not None and table.measures_memory

    def memory_kb(g):
        if not measured_memory:
            return analytical(g)
        return np.nan_to_num(table.peak_memory(g, missing="nan") / 1024, nan=np.inf)

    measured_flash = table is not None and table.measures_flash
    weights = subnet_weight_kb(layout)

    def flash_kb(g):
        if not measured_flash:
            return weights(g)
        return np.nan_to_num(table.flash_bytes(g, missing="nan") / 1024, nan=np.inf)

    feasible = within((latency, c.budget_ms), (mm, c.max_mmacs), (memory_kb, c.max_memory_kb),
                      (flash_kb, c.max_flash_kb))

    if measured_memory and c.max_memory_kb is not None:
        lacking = table.memory_missing()
        if lacking:    # such archs would be infeasible for want of data, not for their memory
            raise SearchError(
                f"--max-memory-kb: the LUT has no memory figure for {len(lacking)} of its "
                f"cases (e.g. {', '.join(lacking[:3])}), so no arch that uses them can be "
                "checked; re-run the sampled profile (lutfarm predicts memory for the blocks "
                "it does not measure since this version) or leave --max-memory-kb out")
    if measured_flash and c.max_flash_kb is not None and table.flash_missing():
        lacking = table.flash_missing()
        raise SearchError(
            f"--max-flash-kb: the LUT has no model size for {len(lacking)} of its cases (e.g. "
            f"{', '.join(lacking[:3])}); re-export it from a store measured with this version, "
            "or leave --max-flash-kb out")
    smallest = layout.to_genes([layout.smallest_arch()])    # a start for tight limits
    t0 = time.perf_counter()
    try:
        r = run_method(method, space, goal, feasible, population * generations, seed,
                       population, smallest, mutation_probs(layout))
    except SearchError as exc:
        raise SearchError(f"{exc}; {_why_infeasible(space, c, latency, memory_kb, mm, flash_kb)}") \
            from None
    wall = time.perf_counter() - t0
    genes = np.array([r.arch])
    arch = layout.from_genes(genes)[0].canonical()
    out = {"arch": arch.to_json(), "arch_str": arch.to_str(), "space": layout.space,
           "layout": layout.name, "objective": objective,
           "objective_value": float(r.objective), "mmacs": float(mm(genes)[0]),
           "peak_activation_kb": float(analytical(genes)[0]),
           "peak_memory_kb": float(memory_kb(genes)[0]),
           "memory_method": ((table.lut.meta.get("memory_method") or "measured")
                             + (" (persistent parts summed)" if table.adds_persistent else ""))
           if measured_memory else "analytical",
           "flash_kb": float(flash_kb(genes)[0]),
           "flash_method": _flash_method(table) if measured_flash else weights.name,
           "method": r.method, "evaluations": r.evaluations, "wall_s": wall,
           "constraints": vars(c)}
    if accuracy is not None:
        out.update(accuracy=float(r.objective), accuracy_source=accuracy.name)
    if random_draws:
        from lutfarm.search.methods.evolution import distinct_feasible, sample_feasible
        drawn = sample_feasible(space, 4 * random_draws, feasible,
                                np.random.default_rng([seed, 7]), seeds=smallest)
        texts = {arch.to_str()}
        out["random_feasible"] = []
        for other in layout.from_genes(distinct_feasible(space, drawn, feasible)):
            text = layout.arch_to_text(other.canonical())
            if text not in texts and len(texts) <= random_draws:
                texts.add(text)
                out["random_feasible"].append(text)
    if table is not None:
        out.update(latency_ms=float(latency(genes)[0]), latency_model=latency_model,
                   lut_device=table.lut.device, lut_runtime=table.lut.runtime,
                   unpriced_cases=table.missing())
        if table.lut.meta.get("emulated"):
            out["emulated"] = table.lut.meta["emulated"]
        if table.lut.target:
            out["target"] = table.lut.target
    return out



def _flash_method(table) -> str:
    target = table.lut.target
    if target and target.get("fw_text") is not None:
        return f"measured model bytes + the {target['board']} firmware's code and data"
    return "measured model bytes (no firmware: not measured on a microcontroller)"
