"""Measuring a LUT's adjacent pairs in context and scoring what they add, over random splits.

``collect`` profiles (or reuses) a LUT, measures pairs adaptively and networks interleaved
with their blocks, and keeps every number in a ``PairFidelityData`` that can be saved and
scored again; ``score_splits`` reports each latency model on held-out networks over random
splits, with at most ``fit`` networks fitting the models that need networks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from lutfarm.lut.metrics import latency_metrics
from lutfarm.lut.query import LatencyTable, latency_each
from lutfarm.lut.table import LUT, LUTError
from lutfarm.predictors.in_context import InContextCorrection
from lutfarm.predictors.pair_context import PairContext
from lutfarm.spaces.cases import PairCase


@dataclass
class PairFidelityData:
    """Everything measured: the stored LUT, the pair rounds, the networks and their blocks."""

    runtime: str
    lut: dict                                   # space, layout, classes, device, meta, latency_ms
    pair_rounds: list[dict[str, float]]         # per pair group: key -> median ms
    pair_keys: list[list[str]]                  # the pairs of each group
    archs: list[list[int]]
    measured_ms: list[float]
    block_rounds: list[dict[str, float]]        # per network group: block key -> ms
    group: list[int]                            # arch -> its block round
    wall_s: float = 0.0
    pair_wall_s: float = 0.0
    lut_wall_s: float = 0.0
    block_speed: list[float] = field(default_factory=list)
    export: dict = field(default_factory=dict)  # the networks' export: cold count, seconds

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> PairFidelityData:
        return cls(**json.loads(Path(path).read_text()))

    def stored_lut(self) -> LUT:
        d = self.lut
        return LUT(d["space"], d["layout"], d["classes"], d["device"], self.runtime,
                   dict(d["latency_ms"]), meta=dict(d["meta"]))

    def tables(self) -> list[LatencyTable]:
        """One table per network: the stored LUT with the blocks timed around it."""
        lut = self.stored_lut()
        around = [LatencyTable(replace(lut, latency_ms={**lut.latency_ms, **r}))
                  for r in self.block_rounds]
        return [around[g] for g in self.group]

    def pair_context(self) -> PairContext:
        ctx = PairContext()
        overhead = self.lut["meta"]["overhead_case"]
        for r, keys in zip(self.pair_rounds, self.pair_keys):
            ctx.add(r, [PairCase.from_key(k) for k in keys], overhead)
        return ctx.fit()


@dataclass
class MeasuredPairs:
    """A fitted PairContext and the rounds it came from (key -> ms, and each round's pairs)."""

    context: PairContext
    rounds: list[dict[str, float]] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)

    def cost(self, lut_cases: int) -> dict:
        """What measuring them cost, in multiples of the plain LUT's case count."""
        timed = sum(len(r) for r in self.rounds)
        return {"pairs": len(self.context.measured), "cases_timed": timed,
                "lut_cases": lut_cases, "times_lut": timed / lut_cases if lut_cases else None}


def measure_pair_context(store, lut: LUT, devices, runtime, n_pairs: int, settings=None,
                         group: int = 16, seed: int = 0) -> MeasuredPairs:
    """Measure ``n_pairs`` adjacent pairs of the LUT's layout, half stratified over op couples,
    the rest adaptively ``group`` at a time where the fitted ensemble is least sure, each
    group timed in turn with its single blocks and the empty model."""
    from lutfarm.profiler.scheduling.networks import measure_pairs

    layout, table = lut.layout, LatencyTable(lut)
    out = MeasuredPairs(PairContext(seed=seed))
    ctx = out.context
    while len(ctx.measured) < n_pairs:
        want = n_pairs // 2 if not ctx.measured else min(group, n_pairs - len(ctx.measured))
        pairs = ctx.next_pairs(layout, table, max(want, 2))
        if not pairs:
            break
        rounds = measure_pairs(store, layout, pairs, devices, runtime, settings, every=group)
        before = len(ctx.measured)
        for k, r in zip(range(0, len(pairs), group), rounds):
            chunk = pairs[k:k + group]
            ctx.add(r, chunk, layout.overhead_case().key)
            out.rounds.append(r)
            out.keys.append([p.key for p in chunk])
        if len(ctx.measured) == before:
            raise LUTError(f"none of {len(pairs)} block pairs could be measured with "
                           f"{runtime.key}; see 'lutfarm campaigns' for why")
    ctx.fit()
    return out


def collect(runtime, n_pairs: int, n_archs: int, db: Path, fresh: bool = True,
            device=None, group: int = 16, seed: int = 0) -> PairFidelityData:
    """Profile (fresh) or reuse the LUT in ``db``, measure ``n_pairs`` pairs (half stratified,
    the rest adaptively in groups of ``group``) and ``n_archs`` networks interleaved."""
    import time

    from lutfarm.lut import build_lut
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.scheduling.campaign import run_campaign
    from lutfarm.profiler.scheduling.networks import measure_interleaved
    from lutfarm.profiler.store import Store
    from lutfarm.spaces import get_layout
    from lutfarm.workflows.validate_networks import round_speeds, sample_archs

    device = device or LOCAL
    if fresh:
        Path(db).unlink(missing_ok=True)
    layout = get_layout("fbnet", "cifar")
    with Store(db) as store:
        t0 = time.time()
        run_campaign(store, layout, device, runtime)
        lut = build_lut(store, device.name, runtime.key)
        lut_wall = time.time() - t0
        table = LatencyTable(lut)
        t0 = time.time()
        measured_pairs = measure_pair_context(store, lut, [device], runtime, n_pairs,
                                              group=group, seed=seed)
        pair_wall = time.time() - t0
        archs = sample_archs(table, n_archs, seed)
        export = export_networks(layout, archs, runtime)
        measured = measure_interleaved(store, layout, archs, [device], runtime, every=1,
                                       target=lut.device)
    ok = [a for a in archs if a in measured.networks]
    return PairFidelityData(
        runtime=runtime.key,
        lut={"space": lut.space, "layout": lut.layout_name, "classes": lut.classes,
             "device": lut.device, "meta": lut.meta, "latency_ms": lut.latency_ms},
        pair_rounds=measured_pairs.rounds, pair_keys=measured_pairs.keys,
        archs=[list(a) for a in ok], export=export,
        measured_ms=[measured.networks[a] for a in ok], block_rounds=measured.rounds,
        group=[measured.group[a] for a in ok], pair_wall_s=pair_wall, lut_wall_s=lut_wall,
        block_speed=round_speeds(measured.rounds, lut.latency_ms))


def export_networks(layout, archs, runtime, workers: int | None = None) -> dict:
    """Export the networks (the cache's worker processes), timed: how many were not cached,
    the wall seconds, and seconds per exported network."""
    import time

    from lutfarm.profiler.export.cache import ModelCache
    from lutfarm.spaces.fbnet import NetworkCase

    cache = ModelCache()
    nets = {c.key: c for c in (NetworkCase(layout, tuple(a)) for a in archs)}
    cold = sum(cache.lookup(c, runtime.model_format, runtime.dtype) is None
               for c in nets.values())
    t0 = time.perf_counter()
    cache.get_many(nets, runtime.model_format, runtime.dtype, workers)
    wall = time.perf_counter() - t0
    return {"networks": len(nets), "cold": cold, "wall_s": wall,
            "s_per_cold_network": wall / cold if cold else None}


def score_splits(data: PairFidelityData, fit: int = 40, splits: int = 20,
                 seed: int = 0) -> dict:
    """Each model's metrics pooled over ``splits`` random splits (``fit`` networks fit, the
    rest held out; the fit-free models are scored on the same held-out networks)."""
    archs = np.asarray(data.archs)
    measured = np.asarray(data.measured_ms)
    tables = data.tables()
    ctx = data.pair_context()
    n = len(archs)
    fit = min(fit, n - max(3, n // 3))
    plain = latency_each(tables, archs)
    overhead = latency_each(tables, archs, "overhead")
    deltas = {id(t): ctx.delta_ms(t) for t in tables}
    paired = overhead + np.array([PairContext.added(deltas[id(t)], a[None])[0]
                                  for t, a in zip(tables, archs)])
    preds: dict[str, list] = {k: [] for k in ("plain", "overhead", "pairs", "corrected",
                                              "pairs+corrected")}
    truth, errors = [], [[] for _ in range(n)]     # the corrected model's, per network
    for s in range(splits):
        order = np.random.default_rng(seed + s).permutation(n)
        tr, te = order[:fit], order[fit:]
        truth.append(measured[te])
        preds["plain"].append(plain[te])
        preds["overhead"].append(overhead[te])
        preds["pairs"].append(paired[te])
        corr = InContextCorrection().fit([tables[i] for i in tr], archs[tr], measured[tr])
        preds["corrected"].append(corr.predict([tables[i] for i in te], archs[te]))
        for i, p in zip(te, preds["corrected"][-1]):
            errors[i].append(p / measured[i] - 1)
        ratio = measured[tr] / paired[tr]
        pcorr = InContextCorrection().fit([tables[i] for i in tr], archs[tr],
                                          ratio * overhead[tr])
        preds["pairs+corrected"].append(
            pcorr.predict([tables[i] for i in te], archs[te]) * paired[te] / overhead[te])
    models = {}
    for name, p in preds.items():
        each = [latency_metrics(pp, tt) for pp, tt in zip(p, truth)]
        models[name] = {k: float(np.mean([e[k] for e in each])) for k in each[0]}
    lut_cases = len(data.lut["latency_ms"])
    return {"runtime": data.runtime, "n": n, "n_fit": fit, "n_test": n - fit,
            "splits": splits, "pairs_measured": len(ctx.measured), "lut_cases": lut_cases,
            "pairs_vs_lut": sum(len(k) for k in data.pair_keys) / lut_cases,
            "cost_vs_lut": sum(len(r) for r in data.pair_rounds) / lut_cases,
            "time_vs_lut": data.pair_wall_s / data.lut_wall_s if data.lut_wall_s else None,
            "wall_s": data.wall_s, "pair_wall_s": data.pair_wall_s,
            "lut_wall_s": data.lut_wall_s, "models": models,
            "error_correlates": error_correlates(data, tables, errors, paired / overhead - 1),
            "export": data.export}


def error_correlates(data: PairFidelityData, tables, errors, pair_share) -> dict:
    """Spearman ρ (and p) of the corrected model's held-out relative error (each network's
    mean over the splits that held it out) with what might explain it: the blocks' speed in
    its round (drift), its size, its weights, its MACs, its skips, its pairs' delta, the order
    it was measured in."""
    from scipy import stats

    layout = tables[0].layout
    keep = [i for i, e in enumerate(errors) if e]
    err = np.array([np.mean(errors[i]) for i in keep])
    cases = [layout.arch_cases(data.archs[i]) for i in keep]
    feats = {
        "block_speed": [data.block_speed[data.group[i]] for i in keep],
        "measured_ms": [data.measured_ms[i] for i in keep],
        "params": [sum(c.params for c in cs) for cs in cases],
        "macs": [sum(c.macs for c in cs) for cs in cases],
        "skips": [sum(c.kind == "Skip" for c in cs) for cs in cases],
        "pair_delta_share": [float(pair_share[i]) for i in keep],
        "order": [data.group[i] for i in keep],
    }
    out = {"n": len(keep), "error_sd": float(np.std(err))}
    for name, v in feats.items():
        r = stats.spearmanr(v, err)
        out[name] = {"rho": float(r.statistic), "p": float(r.pvalue)}
    return out
