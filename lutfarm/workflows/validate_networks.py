"""How well does a LUT predict whole networks? Measure them, compare, and correct the sum.

Three predictions are reported side by side, on held-out architectures:

- ``plain``: FBNet's sum of the LUT entries;
- ``overhead``: the per-call cost of the runtime (the measured empty model) is inside every
  block entry, but a network pays it once: Σ (T_i − o) + o;
- ``corrected``: ``overhead`` scaled by learned in-context factors (``predictors.in_context``),
  fitted on measured networks of the training split only. It captures what isolated blocks
  cannot show: layout conversions that whole networks skip, fused residual adds, cache
  effects between neighbours.

By default blocks and networks are measured interleaved: each network is timed in one
campaign with the blocks it uses, and compared with those block times. On a shared or
throttling machine the LUT measured an hour ago describes another machine, and a comparison
with it would measure the drift instead of the LUT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lutfarm.lut.metrics import latency_metrics, ratio_stats
from lutfarm.lut.query import LatencyTable, latency_each
from lutfarm.lut.table import LUTError
from lutfarm.lut.validation_report import LUTValidation, ValidationRun
from lutfarm.plotting import figure
from lutfarm.predictors.in_context import InContextCorrection
from lutfarm.predictors.pair_context import PairContext
from lutfarm.profiler.store import ARENA_METHODS
from lutfarm.spaces.fbnet import NUM_OPS
from lutfarm_agent.runtimes import takes_turns


def sample_archs(table: LatencyTable, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    """The extremes, half-and-half mixes of them, then distinct random archs up to ``n``."""
    layers = table.layout.num_layers
    ext = table.extremes()
    fast, slow = ext["fastest"], ext["slowest"]
    half = layers // 2
    picked = [tuple(fast), tuple(slow), tuple(fast[:half] + slow[half:]),
              tuple(slow[:half] + fast[half:]),
              tuple(f if i % 2 else s for i, (f, s) in enumerate(zip(fast, slow)))]
    rng = np.random.default_rng(seed)
    seen = set(picked)
    while len(picked) < n:
        a = tuple(int(x) for x in rng.integers(0, NUM_OPS, layers))
        if a not in seen:
            seen.add(a)
            picked.append(a)
    return picked[:n]


@dataclass
class ValidationReport(ValidationRun):
    device: str
    runtime: str
    layout: str
    n: int
    n_train: int
    plain: dict
    overhead: dict
    corrected: dict
    plain_all: dict
    alpha: float
    rows: list[dict] = field(default_factory=list)   # arch, split, measured and predictions
    created: float = field(default_factory=time.time)
    fusion: list[dict] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)   # in-context cost factors
    correction: dict = field(default_factory=dict)   # InContextCorrection.to_dict(): for search
    block_rounds: list[float] = field(default_factory=list)   # block speed per group vs the LUT
    memory: dict = field(default_factory=dict)   # TFLite-Micro: per-layer peak vs network arena
    interleaved: str | None = None   # "samples": in turn; "cases": one after another; None
    paired: dict = field(default_factory=dict)   # the pairs' sum, no network fitted
    pair_cost: dict = field(default_factory=dict)   # MeasuredPairs.cost(): vs the plain LUT

    def stored(self) -> LUTValidation:
        """The versioned record the store and the LUT's header keep (metrics on held-out archs)."""
        return LUTValidation(
            "chain", self.device, self.runtime, self.layout, n=self.n - self.n_train,
            plain=self.plain, overhead=self.overhead, corrected=self.corrected,
            n_measured=self.n, n_train=self.n_train, plain_all_archs=self.plain_all,
            ridge_alpha=self.alpha, in_context_factors=self.factors,
            correction=self.correction, interleaved=self.interleaved,
            block_rounds=self.block_rounds, memory=self.memory, points=self.rows,
            paired=self.paired, pair_cost=self.pair_cost)


def evaluate(tables, archs: list[tuple[int, ...]], measured: np.ndarray,
             train_fraction: float = 0.5, seed: int = 0,
             pairs: PairContext | None = None) -> ValidationReport:
    """Split, fit the correction on the training archs, score every prediction on the rest.
    ``tables``: the LUT (one LatencyTable), or one per arch: the block costs timed around it.
    ``pairs``: adjacent pairs measured in context; the correction then starts from their sum,
    and that sum (no network fitted) is scored too, as ``paired``."""
    archs_a = np.asarray(archs)
    each = [tables] * len(archs) if isinstance(tables, LatencyTable) else list(tables)
    plain = latency_each(each, archs_a)
    base = latency_each(each, archs_a, "overhead")
    order = np.random.default_rng(seed).permutation(len(archs))
    n_train = int(round(len(archs) * train_fraction))
    train, test = order[:n_train], order[n_train:]
    if len(test) < 3 or n_train < 3:
        raise LUTError(f"need at least 6 measured archs to validate, got {len(archs)}")
    model = InContextCorrection(pairs=pairs).fit([each[i] for i in train], archs_a[train],
                                                 measured[train])
    corrected = model.predict(each, archs_a)
    paired = None if pairs is None else np.array(
        [pairs.predict(t, archs_a[i:i + 1])[0] for i, t in enumerate(each)])
    split = np.array(["test"] * len(archs), dtype=object)
    split[train] = "train"
    rows = [{"arch": "".join(map(str, a)), "split": s, "measured_ms": float(m),
             "plain_ms": float(p), "overhead_ms": float(b), "corrected_ms": float(c)}
            for a, s, m, p, b, c in zip(archs, split, measured, plain, base, corrected)]
    if paired is not None:
        for row, v in zip(rows, paired):
            row["paired_ms"] = float(v)
    lut = each[0].lut
    report = ValidationReport(
        device=lut.device, runtime=lut.runtime, layout=lut.layout_name, n=len(archs),
        n_train=n_train, plain=latency_metrics(plain[test], measured[test]),
        overhead=latency_metrics(base[test], measured[test]),
        corrected=latency_metrics(corrected[test], measured[test]),
        plain_all=latency_metrics(plain, measured), alpha=model.alpha, rows=rows,
        factors=model.factors(), correction=model.to_dict())
    if paired is not None:
        report.paired = latency_metrics(paired[test], measured[test])
    return report


def fusion_table(pairs, latency_ms: dict[str, float], overhead_ms: float) -> list[dict]:
    """nn-Meter's rule on per-call-corrected times: fused if T1 + T2 − T12 > 0.5·min(T1, T2)."""
    out = []
    for p in pairs:
        t12 = latency_ms.get(p.key)
        if t12 is None:
            continue
        t1, t2 = (latency_ms[p.first.key] - overhead_ms, latency_ms[p.second.key] - overhead_ms)
        saving = t1 + t2 - (t12 - overhead_ms)
        out.append({"first": p.first.key, "second": p.second.key, "t1_ms": t1, "t2_ms": t2,
                    "t12_ms": t12 - overhead_ms, "saving_ms": saving,
                    "fused": bool(saving > 0.5 * min(t1, t2))})
    return out


def plot(report: ValidationReport, path) -> None:
    """Predicted vs measured (held-out archs), the three predictions, ±10 % band."""
    test = [r for r in report.rows if r["split"] == "test"]
    m = np.array([r["measured_ms"] for r in test])
    fig, ax = figure((6, 6))
    lo, hi = m.min() * 0.85, m.max() * 1.2
    xs = np.linspace(lo, hi, 2)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.92", label="±10 %")
    ax.plot(xs, xs, color="0.5", lw=0.8)
    for name, colour in [("plain", "tab:red"), ("overhead", "tab:blue"),
                         ("corrected", "tab:green")]:
        p = np.array([r[f"{name}_ms"] for r in test])
        metrics = getattr(report, name)
        ax.scatter(m, p, s=9, color=colour, alpha=0.7,
                   label=f"{name}: {metrics['within_10pct']:.0%} in ±10 %, "
                         f"ρ={metrics['spearman']:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("predicted from the LUT (ms)")
    ax.set_title(f"{report.device} / {report.runtime} / {report.layout}: "
                 f"{len(test)} held-out archs")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def run_validation(store, lut, devices, runtime, n: int, settings=None, seed: int = 0,
                   fusion: bool = False, train_fraction: float = 0.5,
                   every: int = 1, pairs: int = 0) -> ValidationReport:
    """Measure ``n`` archs end to end, evaluate, store the report. ``every``: networks timed
    together with the blocks they use (0: compare with the LUT as stored, and reuse networks
    the store already has). ``pairs``: first measure that many adjacent block pairs in
    context (``workflows.pair_fidelity``); the correction then starts from their sum."""
    from lutfarm.profiler.scheduling.networks import measure_interleaved, measure_networks
    from lutfarm.workflows.pair_fidelity import measure_pair_context

    table = LatencyTable(lut)
    layout = table.layout
    measured_pairs = measure_pair_context(store, lut, devices, runtime, pairs, settings,
                                          seed=seed) if pairs else None
    archs = sample_archs(table, n, seed)
    pairs = layout.fusion_pairs() if fusion else []
    if every:
        measured = measure_interleaved(store, layout, archs, devices, runtime, settings, every,
                                       extra=pairs, target=lut.device)
    else:
        measured = measure_networks(store, layout, archs, devices, runtime, settings,
                                    extra=pairs, target=lut.device)
    ok = [a for a in archs if a in measured.networks]
    if len(ok) < 4:
        raise LUTError(f"only {len(ok)} of {len(archs)} networks could be measured with "
                       f"{runtime.key} (e.g. {measured.why_failed()}); fix that and run "
                       f"validate again")
    if every:
        around = [LatencyTable(replace(lut, latency_ms={**lut.latency_ms, **r}))
                  for r in measured.rounds]
        tables = [around[measured.group[a]] for a in ok]
    else:
        tables = table
    report = evaluate(tables, ok, np.array([measured.networks[a] for a in ok]),
                      train_fraction, seed, measured_pairs and measured_pairs.context)
    if measured_pairs:
        report.pair_cost = measured_pairs.cost(len(lut.latency_ms))
    if every:
        report.block_rounds = round_speeds(measured.rounds, lut.latency_ms)
        report.interleaved = "samples" if takes_turns(runtime.name, runtime.threads) else "cases"
    if measured.arena_bytes:
        report.memory = arena_check(lut, measured.arena_bytes)
    if fusion:
        blocks = {k: v for r in measured.rounds for k, v in r.items()} if every else {}
        report.fusion = fusion_table(pairs, {**lut.latency_ms, **blocks, **measured.other},
                                     lut.overhead_ms)
    # the per-arch points go with it: the dashboard's validation scatter
    store.add_report(lut.device, runtime.key, "validation", report.stored().to_dict())
    return report


def round_speeds(rounds: list[dict[str, float]], stored: dict[str, float]) -> list[float]:
    """Each group's blocks, median time relative to the LUT as stored (1.3: they ran 30 %
    slower): the drift that timing them next to their networks kept out of the comparison."""
    return [float(np.median([ms / stored[k] for k, ms in r.items() if stored.get(k)]))
            for r in rounds]


def arena_check(lut, arena_bytes: dict[tuple[int, ...], int]) -> dict:
    """The per-layer peak a memory-constrained search uses (the largest block's own arena)
    against the arena TFLite-Micro planned for the whole network."""
    if lut.meta.get("memory_method") not in ARENA_METHODS:
        return {}
    mem, layout = lut.peak_mem_bytes(), lut.layout
    ratios = [np.max([mem.get(c.key, np.nan) for c in layout.arch_cases(a)]) / arena
              for a, arena in arena_bytes.items()]
    return {"block_max_over_arena": ratio_stats([r for r in ratios if not np.isnan(r)])}


def validate(store, lut, s, runtime, campaign) -> tuple[ValidationReport, Path, Path, list]:
    """The chain family's ``validate`` piece (``lutfarm.api.validate_lut``): every block of the
    LUT measured, ``s.archs`` networks validated, the plot and the per-network table written to
    ``s.out_dir``; returns the report, the two files and the skipped cases (none)."""
    missing = lut.missing_cases()
    if missing:
        raise LUTError(f"the LUT of {s.target} lacks {len(missing)} cases (e.g. "
                       f"{missing[0]}); run 'lutfarm profile' first")
    report = run_validation(store, lut, s.devices, runtime, s.archs, campaign, seed=s.seed,
                            fusion=s.fusion, every=s.every, pairs=s.pairs)
    return (report, *report.write(s.out_dir, s.target, lut.layout_name, plot), [])
