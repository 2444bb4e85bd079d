"""Architectures as integer genes, and per-gene additive metrics evaluated for a whole
population at once (the same gather-and-sum the LUT query uses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lutfarm.spaces.cases import BlockCase
from lutfarm.spaces.fbnet import FBNetLayout


@dataclass(frozen=True)
class GeneSpace:
    """``genes`` positions, each choosing one of ``choices`` options: one count for every gene
    (FBNet: 22 x 9) or one per gene (MCUNet: kernels, expands, depths, width, resolution)."""

    genes: int
    choices: int | tuple[int, ...]

    @property
    def sizes(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.choices, dtype=np.int64), (self.genes,))

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if isinstance(self.choices, int):
            return rng.integers(0, self.choices, size=(n, self.genes))
        return (rng.random((n, self.genes)) * self.sizes).astype(np.int64)

    def mutate(self, pop: np.ndarray, prob, rng: np.random.Generator,
               at_least_one: bool = True) -> np.ndarray:
        """Resample each gene with probability ``prob`` (a number, or one per gene) to a
        different choice, and at least one gene per child."""
        pop = np.array(pop, copy=True)
        mask = rng.random(pop.shape) < prob
        if at_least_one:
            mask[np.arange(len(pop)), rng.integers(0, self.genes, len(pop))] = True
        if isinstance(self.choices, int):
            fresh = rng.integers(0, self.choices - 1, size=pop.shape)
        else:
            sizes = self.sizes
            mask &= sizes > 1                     # a gene with one choice never changes
            fresh = (rng.random(pop.shape) * np.maximum(sizes - 1, 1)).astype(np.int64)
        fresh += fresh >= pop                     # a different choice, uniformly
        pop[mask] = fresh[mask]
        return pop

    def crossover(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover: each gene from either parent."""
        return np.where(rng.random(a.shape) < 0.5, a, b)

    def encode(self, pop: np.ndarray) -> np.ndarray:
        """Mixed-radix integer of each arch: a hashable id (and, while it fits in 64 bits, a
        table index; longer genomes wrap around, which keeps it a good hash)."""
        sizes = self.sizes
        weights = np.ones(self.genes, dtype=np.int64)
        with np.errstate(over="ignore"):
            for i in range(self.genes - 2, -1, -1):
                weights[i] = weights[i + 1] * sizes[i + 1]
            return np.asarray(pop, dtype=np.int64) @ weights


def within(*limits) -> Callable[[np.ndarray], np.ndarray]:
    """A feasibility test from (metric, limit) pairs: every metric at most its limit (a pair
    whose limit is None is left out); vectorised over a population like the metrics."""
    kept = [(metric, limit) for metric, limit in limits if limit is not None]

    def feasible(genes) -> np.ndarray:
        ok = np.ones(len(np.atleast_2d(genes)), bool)
        for metric, limit in kept:
            ok &= metric(genes) <= limit
        return ok
    return feasible


def fbnet_space(layout: FBNetLayout) -> GeneSpace:
    from lutfarm.spaces.fbnet import NUM_OPS
    return GeneSpace(layout.num_layers, NUM_OPS)


@dataclass
class AdditiveMetric:
    """metric(arch) = fixed + Σ_l table[l, arch[l]], vectorised over a population."""

    table: np.ndarray
    fixed: float = 0.0
    name: str = ""

    def __call__(self, archs) -> np.ndarray:
        a = np.asarray(archs)
        return self.table[np.arange(self.table.shape[0]), a].sum(axis=1) + self.fixed

    @classmethod
    def from_cases(cls, layout: FBNetLayout, value: Callable[[BlockCase], float],
                   name: str) -> AdditiveMetric:
        table = np.array([[value(c) for c in row] for row in layout.choice_cases()], float)
        return cls(table, float(sum(value(c) for c in layout.fixed_cases())), name)


def macs(layout: FBNetLayout) -> AdditiveMetric:
    return AdditiveMetric.from_cases(layout, lambda c: c.macs / 1e6, "MMACs")


def params(layout: FBNetLayout) -> AdditiveMetric:
    return AdditiveMetric.from_cases(layout, lambda c: c.params / 1e6, "M params")


@dataclass
class LatencyMetric:
    """A LatencyTable as a search metric: milliseconds per arch, by the table's own sum."""

    table: object               # lutfarm.lut.LatencyTable
    model: str = "plain"        # or "overhead" (see lutfarm.lut.query)
    name: str = ""

    def __call__(self, archs) -> np.ndarray:
        return self.table.latency(archs, self.model)


@dataclass
class CorrectedLatency:
    """The LUT sum with the in-context correction its validation fitted (stored in the LUT's
    header); ``learn`` refits it with one more measured network, a verified search's winner."""

    table: object               # lutfarm.lut.LatencyTable
    correction: object          # lutfarm.predictors.in_context.InContextCorrection
    name: str = ""

    def __call__(self, archs) -> np.ndarray:
        return self.correction.predict(self.table, np.asarray(archs))

    def learn(self, arch, measured_ms: float) -> None:
        self.correction = self.correction.refit(self.table, [arch], [measured_ms])


@dataclass
class MeasuredScale:
    """The plain LUT sum times the largest measured / plain ratio a verified search's winners
    showed (1 before any): how a ``--verify`` run without a validation report learns what the
    plain sum misses. One factor for every arch, so the search cannot seek out archs it errs
    low on, as it does with a per-block correction fitted to a few networks."""

    base: LatencyMetric
    name: str = ""
    ratios: list[float] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return max(self.ratios) if self.ratios else 1.0

    def __call__(self, archs) -> np.ndarray:
        return self.base(archs) * self.scale

    def learn(self, arch, measured_ms: float) -> None:
        self.ratios.append(float(measured_ms) / float(self.base(np.array([arch]))[0]))


PLAIN_SAFE = 0.97     # held-out plain / measured at least this: plain errs on the safe side


def auto_latency_model(validation) -> str:
    """``plain`` unless the LUT's validation found the plain sum under-predicting networks
    (held-out mean predicted / measured below 0.97), then ``corrected``. Measured here with 20
    budgets (bench_verified_search): on ONNX Runtime the plain sum's winners all held their
    budget using a median 96.5 % of it, while the corrected model's broke it in 17 of 20 (the
    search picks exactly the archs whose correction errs low); a LUT whose plain sum
    under-predicts would break every budget it is trusted with. A verified search that gets
    ``plain`` here learns the rest from its own measured winners (``MeasuredScale``)."""
    if validation and validation.correction and validation.safe_margin < PLAIN_SAFE:
        return "corrected"
    return "plain"


def lut_latency(table, model: str = "plain"):
    """The LUT's latency for a search (``plain``, ``overhead`` or ``corrected``); refuses a LUT
    with a missing entry, or without what the model needs, up front."""
    table.check_complete()
    if model in ("overhead", "corrected"):
        table.overhead_shift()          # raises now if the LUT has no empty-model entry
    if model == "corrected":
        from lutfarm.lut.table import LUTError
        from lutfarm.predictors.in_context import InContextCorrection

        stored = table.lut.validation and table.lut.validation.correction
        if not stored:
            raise LUTError("the LUT carries no in-context correction: validate it (lutfarm lut "
                           "validate), export it again (lutfarm lut export), or search with "
                           "--latency plain")
        return CorrectedLatency(table, InContextCorrection.from_dict(stored, table),
                                f"{table.lut.device} ms")
    return LatencyMetric(table, model, f"{table.lut.device} ms")


@dataclass
class PeakMetric:
    """metric(arch) = max(fixed, max_l table[l, arch[l]]): a network's peak memory as the
    largest block peak, since blocks run one after another and only the tensor between two
    blocks outlives them (MCUNet's per-layer peak; whole-network arena planning may differ
    by the runtime's persistent buffers)."""

    table: np.ndarray
    fixed: float = 0.0
    name: str = ""

    def __call__(self, archs) -> np.ndarray:
        a = np.asarray(archs)
        return np.maximum(self.table[np.arange(self.table.shape[0]), a].max(axis=1), self.fixed)


def lut_peak_memory(lut) -> PeakMetric:
    """The LUT's per-block peak memory (KiB) as a search constraint; needs every case's."""
    from lutfarm.lut.table import LUTError

    mem = lut.peak_mem_bytes()
    layout = lut.layout
    missing = [c.key for row in layout.choice_cases() for c in row if c.key not in mem]
    missing += [c.key for c in layout.fixed_cases() if c.key not in mem]
    if missing:
        raise LUTError(f"the LUT has no peak memory for {len(missing)} cases (e.g. {missing[0]}); "
                       f"profile them again with this lutfarm to record memory")
    table = np.array([[mem[c.key] / 1024 for c in row] for row in layout.choice_cases()], float)
    fixed = max(mem[c.key] for c in layout.fixed_cases()) / 1024
    method = lut.meta.get("memory_method") or "memory"
    return PeakMetric(table, float(fixed), f"peak KiB ({method})")
