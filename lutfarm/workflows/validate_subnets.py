"""How well does a LUT predict whole subnets of a space like MCUNet, per resolution, and how far
is the seed's analytical peak memory from what TFLite-Micro really allocates?

Subnets are measured end to end like any case (``lutfarm profile`` machinery, stored, reused).
Two latency predictions are reported per resolution and overall, as ``lut validate`` does for
FBNet: ``plain`` (Σ Tᵢ) and ``overhead`` (Σ (Tᵢ − o_r) + o_r). The in-context correction that
FBNet's validation fits is not fitted here (30 subnets per resolution are the test set).
With TFLite-Micro, each measured subnet also has its arena: compared with the analytical peak
activation (int8 bytes) and with the largest per-block arena of the LUT (what the search's
memory constraint uses).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lutfarm.lut.metrics import latency_metrics, ratio_stats
from lutfarm.lut.subnets import SubnetTable
from lutfarm.lut.table import LUTError
from lutfarm.lut.validation_report import LUTValidation, ValidationRun
from lutfarm.plotting import figure
from lutfarm.profiler.mcu_target import firmware_flash
from lutfarm.profiler.store import ARENA_METHODS


def sample_subnets(layout, resolution: int, n: int, seed: int = 0, accept=None) -> list:
    """The smallest and largest subnet at ``resolution``, then distinct random ones; with
    ``accept(arch) -> bool``, only those it accepts (e.g. the ones a LUT can price)."""
    at = layout.with_resolutions([resolution])
    accept = accept or (lambda arch: True)
    picked = [a for a in (at.smallest_arch(), at.largest_arch()) if accept(a)]
    seen = {a.to_str() for a in picked}
    for arch in at.sample_archs(50 * n, seed):
        if len(picked) >= n:
            break
        arch = arch.canonical()
        if arch.to_str() not in seen and accept(arch):
            seen.add(arch.to_str())
            picked.append(arch)
    return picked[:n]


@dataclass
class SubnetValidation(ValidationRun):
    device: str
    runtime: str
    layout: str
    resolutions: list[int]
    per_resolution: dict[str, dict]          # "96" -> {"plain": metrics, "overhead": metrics}
    plain: dict
    overhead: dict
    memory: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    unpriced_cases: list[str] = field(default_factory=list)   # subnets using them were skipped
    # a sampled LUT: the metrics of the subnets whose blocks are all measured (additivity)
    measured_only: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    space: str = "mcunet"

    def stored(self) -> LUTValidation:
        """The versioned record the store keeps (points: the measured subnets)."""
        return LUTValidation(
            "elastic", self.device, self.runtime, self.layout, n=len(self.rows),
            plain=self.plain, overhead=self.overhead, memory=self.memory, space=self.space,
            resolutions=self.resolutions, per_resolution=self.per_resolution,
            unpriced_cases=self.unpriced_cases, measured_only=self.measured_only,
            predicted_blocks=sum(r.get("predicted_blocks", 0) for r in self.rows),
            points=self.rows)


def fits_board(table: SubnetTable, spare: float = 0.9):
    """arch -> whether the LUT's microcontroller can load it: its model (the LUT's model bytes)
    within the firmware's model buffer and its largest block arena within the firmware's
    arena, with 10 % to spare for predicted sizes; every arch for other LUTs."""
    target = table.lut.target or {}
    if not target.get("max_model"):
        return lambda arch: True

    def fits(arch) -> bool:
        genes = table.layout.to_genes([arch])
        model = table.flash_bytes(genes, missing="nan")[0] - firmware_flash(target)
        arena = table.peak_memory(genes, missing="nan")[0]
        return bool(model <= spare * target["max_model"]
                    and not arena > spare * target.get("max_arena", np.inf))
    return fits


def run_subnet_validation(store, lut, devices, runtime, per_resolution: int = 30,
                          settings=None, seed: int = 0,
                          measure_blocks: bool = False) -> SubnetValidation:
    """Measure ``per_resolution`` subnets at each of the LUT's resolutions, compare, store.

    ``measure_blocks``: first measure the blocks of those subnets that the LUT only predicts
    (a sampled LUT), so the comparison is the LUT's additivity alone, not the predictor's
    error as well (on an emulated MCU, whose timer is deterministic, additivity without
    noise). Each row says how many of its blocks were predicted either way."""
    from lutfarm.lut.build import build_lut
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_farm

    table = SubnetTable(lut)
    layout = table.layout
    known = set(lut.latency_ms)

    fits = fits_board(table)

    def priced(arch) -> bool:       # a case the runtime could not take leaves a hole
        return all(c.key in known for c in layout.arch_cases(arch)) and fits(arch)
    archs = [a for r in layout.resolutions
             for a in sample_subnets(layout, r, per_resolution, seed, priced)]
    cases = [layout.network_case(a) for a in archs]
    predicted = set(lut.predicted_cases())
    if measure_blocks and predicted:
        blocks = {c.key: c for a in archs for c in layout.arch_cases(a) if c.key in predicted}
        run_farm(store, layout, devices, runtime,
                 replace(settings or CampaignSettings(), cases=list(blocks.values())))
        lut = build_lut(store, lut.device, runtime.key, lut.space, lut.layout_name, lut.classes)
        table, predicted = SubnetTable(lut), set(lut.predicted_cases())
    run_farm(store, layout, devices, runtime,
             replace(settings or CampaignSettings(), cases=cases))
    found = store.latest(lut.device, runtime.key)
    ok = [(a, found[c.key]) for a, c in zip(archs, cases) if c.key in found]
    if len(ok) < 4:
        failed = store.failures(lut.device, runtime.key)
        why = next((failed[c.key] for c in cases if c.key in failed), "see the summary")
        raise LUTError(f"only {len(ok)} of {len(archs)} subnets could be measured with "
                       f"{runtime.key} (e.g. {why}); fix that and validate again")
    genes = layout.to_genes([a for a, _ in ok])
    measured = np.array([m.median_ms for _, m in ok])
    plain, overhead = table.latency(genes), table.latency(genes, "overhead")
    analytical = np.array([layout.peak_activation(a) for a, _ in ok], float)
    block_max = table.peak_memory(genes, missing="nan", largest=True) \
        if table.measures_memory else np.full(len(ok), np.nan)
    summed = table.peak_memory(genes, missing="nan") if table.adds_persistent \
        else np.full(len(ok), np.nan)
    arena = np.array([m.peak_mem_bytes if m.mem_method in ARENA_METHODS and m.peak_mem_bytes
                      else np.nan for _, m in ok], float)
    rows = [{"arch": a.to_str(), "resolution": a.resolution, "measured_ms": float(t),
             "plain_ms": float(p), "overhead_ms": float(o),
             "arena_kb": None if np.isnan(ar) else float(ar / 1024),
             "analytical_peak_kb": float(an / 1024),
             "block_arena_max_kb": None if np.isnan(bm) else float(bm / 1024),
             "lut_arena_kb": None if np.isnan(sm) else float(sm / 1024),
             "predicted_blocks": sum(c.key in predicted for c in layout.arch_cases(a))}
            for (a, _), t, p, o, ar, an, bm, sm in zip(ok, measured, plain, overhead, arena,
                                                      analytical, block_max, summed)]
    res = np.array([a.resolution for a, _ in ok])
    per = {str(r): {"plain": latency_metrics(plain[res == r], measured[res == r]),
                    "overhead": latency_metrics(overhead[res == r], measured[res == r])}
           for r in layout.resolutions if (res == r).any()}
    alone = np.array([r["predicted_blocks"] == 0 for r in rows])
    measured_only = {}
    if predicted and alone.any():   # the subnets priced by measured blocks only: additivity
        measured_only = {
            "plain": latency_metrics(plain[alone], measured[alone]),
            "overhead": latency_metrics(overhead[alone], measured[alone])}
    have = ~np.isnan(arena)
    memory = {}
    if have.any():
        memory = {"analytical_over_arena": ratio_stats(analytical[have] / arena[have]),
                  "block_max_over_arena": ratio_stats((block_max / arena)[have
                                                       & ~np.isnan(block_max)])}
        if table.adds_persistent:    # what the search's memory limit uses on such a LUT
            memory["persistent_summed_over_arena"] = ratio_stats(
                (summed / arena)[have & ~np.isnan(summed)])
    block_arenas = lut.peak_mem_bytes() if lut.meta.get("memory_method") in ARENA_METHODS \
        else {}
    cases = {c.key: c for c in layout.case_list()}
    pairs = [(cases[k].activation_peak, v) for k, v in block_arenas.items() if k in cases and v]
    if pairs:       # block by block: the analytical peak against the block's own arena
        a, b = np.array(pairs, float).T
        memory["block_analytical_over_arena"] = ratio_stats(a / b)
    report = SubnetValidation(lut.device, runtime.key, layout.name, list(layout.resolutions),
                              per, latency_metrics(plain, measured),
                              latency_metrics(overhead, measured), memory, rows,
                              unpriced_cases=lut.missing_cases(), measured_only=measured_only,
                              space=layout.space)
    store.add_report(lut.device, runtime.key, "validation", report.stored().to_dict())
    return report


def plot_subnets(report: SubnetValidation, path) -> None:
    """Predicted (overhead-corrected sum) vs measured, one colour per resolution, ±10 %."""
    fig, ax = figure((6, 6))
    m = np.array([r["measured_ms"] for r in report.rows])
    lo, hi = m.min() * 0.85, m.max() * 1.2
    xs = np.linspace(lo, hi, 2)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.92", label="±10 %")
    ax.plot(xs, xs, color="0.5", lw=0.8)
    for r in report.resolutions:
        rows = [row for row in report.rows if row["resolution"] == r]
        if rows:
            metrics = report.per_resolution[str(r)]["overhead"]
            ax.scatter([row["measured_ms"] for row in rows], [row["overhead_ms"] for row in rows],
                       s=10, alpha=0.8, label=f"{r} px: {metrics['within_10pct']:.0%} in ±10 %, "
                                              f"ρ={metrics['spearman']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("LUT sum, overhead-corrected (ms)")
    ax.set_title(f"{report.device} / {report.runtime} / mcunet-{report.layout}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def validate(store, lut, s, runtime, campaign) -> tuple[SubnetValidation, Path, Path, list]:
    """The elastic family's ``validate`` piece (``lutfarm.api.validate_lut``): a LUT may lack
    up to 5 % of its cases (ones the runtime could not take; subnets using them are skipped);
    ``s.archs`` subnets per resolution validated, the plot and table written to ``s.out_dir``."""
    missing = lut.missing_cases()
    if len(missing) > 0.05 * len(lut.layout.unique_cases()):
        raise LUTError(f"the LUT of {s.target} lacks {len(missing)} cases (e.g. "
                       f"{missing[0]}); run 'lutfarm profile' first")
    report = run_subnet_validation(store, lut, s.devices, runtime, s.archs, campaign,
                                   seed=s.seed, measure_blocks=s.measure_blocks)
    name = f"{lut.space}-{lut.layout_name}"
    return (report, *report.write(s.out_dir, s.target, name, plot_subnets), missing)
