"""What the terminal shows: progress bars on stderr, summary tables, LUT overviews."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lutfarm.lut import LUT, LatencyTable
from lutfarm.profiler.mcu_target import describe_target
from lutfarm.profiler.scheduling import campaign
from lutfarm.spaces.registry import family_of

err = Console(stderr=True)
out = Console()


class RichProgress(campaign.Progress):
    """A bar per phase (export, measure) and, on a farm, a line per device with its state."""

    def __init__(self, label: str):
        self.label = label
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), TextColumn("{task.fields[case]}"),
                            console=err, transient=False)
        self.task = None
        self.devices: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def phase(self, name: str, total: int) -> None:
        self.task = self.bar.add_task(f"{name} {self.label}", total=total, case="")

    def advance(self, key: str, status: str, device: str = "") -> None:
        self.bar.update(self.task, advance=1, case=key if status != "failed" else f"[red]{key}")
        if device in self.devices:
            self.counts[device] = self.counts.get(device, 0) + (status == "ok")
            self.bar.update(self.devices[device], completed=self.counts[device])

    def device_state(self, device: str, state: str) -> None:
        if device not in self.devices:
            self.devices[device] = self.bar.add_task(f"  {device}", total=None, case=state)
        colour = "red" if state.startswith(("given up", "retry")) else "dim"
        self.bar.update(self.devices[device], case=f"[{colour}]{state[:100]}")


def campaign_table(s: campaign.CampaignSummary) -> Table:
    t = Table(title=f"campaign {s.campaign_id}: {s.device}, {s.runtime}", show_header=False)
    t.add_row("cases planned", str(s.planned))
    t.add_row("measured now", str(s.measured))
    t.add_row("skipped (already stored)", str(s.skipped))
    t.add_row("failed", f"[red]{len(s.failed)}" if s.failed else "0")
    t.add_row("exported / export time", f"{s.exported} / {s.export_s:.1f} s")
    t.add_row("wall time", f"{s.wall_s:.1f} s")
    if s.efficiency is not None:
        top = sorted(((v, p) for p, v in s.phase_shares.items() if p != "job"), reverse=True)[:3]
        t.add_row("boards busy (jobs)", f"{s.efficiency:.0%} of boards x wall; then "
                  + ", ".join(f"{p} {v:.0%}" for v, p in top)
                  + f" (lutfarm db timeline {s.campaign_id})")
    if len(s.per_device) > 1 or s.device_errors:
        t.add_row("measured per device", ", ".join(f"{d}: {n}" for d, n in s.per_device.items()))
    for device, why in s.device_errors.items():
        t.add_row(f"[red]device {device} given up", why)
    for warning in s.drift:
        t.add_row("[yellow]drift guard", f"[yellow]{warning}")
    for warning in s.clocks:
        t.add_row("[yellow]clocks", f"[yellow]{warning}")
    if s.throttled:
        t.add_row("[yellow]throttled (clock moved, timed twice)",
                  f"[yellow]{len(s.throttled)}: {', '.join(s.throttled[:3])}"
                  + (" …" if len(s.throttled) > 3 else ""))
    if s.journaled:
        t.add_row("[yellow]kept in the journal (store away)",
                  f"[yellow]{s.journaled}, written once the store was back")
    if s.leases_lost:
        t.add_row("[yellow]taken over by another controller", f"[yellow]{len(s.leases_lost)}")
    if s.uploaded_bytes:
        t.add_row("uploaded to devices", f"{s.uploaded_bytes / 1e6:.2f} MB")
    if s.sampling_s:
        t.add_row("time in timed samples", f"{s.sampling_s:.1f} s "
                  f"(wall / samples = {s.wall_s / s.sampling_s:.2f}x)")
    d = s.as_dict()
    if d["cv_quartiles"]:
        t.add_row("CV of samples (min/q1/med/q3/max)", _fmt_q(d["cv_quartiles"], pct=True))
        t.add_row("median CI half-width (min/q1/med/q3/max)", _fmt_q(d["rel_ci_quartiles"], pct=True))
        t.add_row("cases short of the CI target", str(s.not_converged))
    return t


def _fmt_q(values, pct: bool = False) -> str:
    return " / ".join(f"{v * 100:.1f}%" if pct else f"{v:.3g}" for v in values)


def failures_table(failed: list[tuple[str, str]], limit: int = 10) -> Table:
    t = Table(title="failed cases", title_style="red")
    t.add_column("case")
    t.add_column("error")
    for key, error in failed[:limit]:
        t.add_row(key, error)
    if len(failed) > limit:
        t.add_row(f"… {len(failed) - limit} more", "")
    return t


def lut_table(lut: LUT, examples: dict[str, list[int]] | None = None) -> Table:
    """A LUT at a glance: size, overhead, fixed layers, the extremes and example archs."""
    t = Table(title=f"LUT {lut.device} / {lut.runtime} / {lut.space}-{lut.layout_name}"
                    f" ({lut.statistic})", show_header=False)
    if lut.meta.get("emulated"):
        t.add_row("[red]EMULATED", f"[red]not hardware timings: {lut.meta['emulated']}")
    if lut.target:
        t.add_row("microcontroller", describe_target(lut.target))
    t.add_row("cases", f"{len(lut)}" + (f" ([red]{len(lut.missing_cases())} missing[/])"
                                         if lut.missing_cases() else ""))
    if lut.overhead_ms is not None:
        t.add_row("empty-model call (overhead)", f"{lut.overhead_ms:.4f} ms")
    family = family_of(lut.space)
    if family == "chain":
        _fbnet_rows(t, lut, examples)
    elif family == "elastic":
        _subnet_rows(t, lut)
    values = np.array(list(lut.latency_ms.values()))
    t.add_row("block latency min / median / max",
              f"{values.min():.4f} / {np.median(values):.4f} / {values.max():.4f} ms")
    mem = np.array(list(lut.peak_mem_bytes().values()), float) / 1024
    if len(mem):
        t.add_row(f"block peak memory ({lut.meta.get('memory_method', '?')}) min / median / max",
                  f"{mem.min():.0f} / {np.median(mem):.0f} / {mem.max():.0f} KiB")
    size = np.array(list(lut.model_bytes().values()), float) / 1024
    if len(size):
        t.add_row("block model size (flash on an MCU) min / median / max",
                  f"{size.min():.1f} / {np.median(size):.1f} / {size.max():.1f} KiB")
    if lut.meta.get("delegated_cases"):
        d = lut.meta["delegated_cases"]
        t.add_row("cases the delegate ran / did not", f"{d['yes']} / {d['no']}")
    if lut.meta.get("check_failed"):
        t.add_row("[yellow]timed, but computed unlike torch",
                  f"[yellow]{len(lut.meta['check_failed'])} cases (header: check_failed)")
    return t


def _fbnet_rows(t: Table, lut: LUT, examples: dict[str, list[int]] | None) -> None:
    table = LatencyTable(lut)
    if not np.isnan(table.fixed_ms):
        t.add_row("fixed layers (stem, head, pool, fc)", f"{table.fixed_ms:.4f} ms")
    archs = dict(table.extremes())
    archs.update(examples or {})
    for name, arch in archs.items():
        try:
            ms = float(table.latency(arch)[0])
            t.add_row(f"arch {name}", f"{ms:.4f} ms  [dim]{''.join(map(str, arch))}[/]")
        except ValueError as exc:
            t.add_row(f"arch {name}", f"[red]{exc}")


def _subnet_rows(t: Table, lut: LUT) -> None:
    """Spaces of subnets (MCUNet): resolutions covered, the smallest and largest subnet."""
    from lutfarm.lut.subnets import SubnetTable

    layout = lut.layout
    t.add_row("resolutions", ", ".join(map(str, layout.resolutions)))
    if lut.missing_cases():
        return                 # a subnet sum needs every case; the missing count says so
    table = SubnetTable(lut)
    for name, arch in (("smallest", layout.smallest_arch()), ("largest", layout.largest_arch())):
        try:
            ms = float(table.latency(layout.to_genes([arch]))[0])
            t.add_row(f"subnet {name}", f"{ms:.4f} ms  [dim]{arch.to_str()}[/]")
        except ValueError as exc:
            t.add_row(f"subnet {name}", f"[red]{exc}")


def validation_table(report) -> Table:
    """The three predictions side by side, on held-out archs."""
    t = Table(title=f"LUT vs measured networks: {report.device} / {report.runtime} / "
                    f"{report.layout} ({report.n - report.n_train} held-out of {report.n})")
    t.add_column("prediction")
    for col in ("±5 %", "±10 %", "MAPE", "RMSE ms", "Spearman", "Kendall", "pred/meas"):
        t.add_column(col, justify="right")
    names = ("plain", "overhead", *(("paired",) if report.paired else ()), "corrected")
    for name in names:
        m = getattr(report, name)
        t.add_row(name, f"{m['within_5pct']:.1%}", f"{m['within_10pct']:.1%}",
                  f"{m['mape']:.1%}", f"{m['rmse_ms']:.4f}", f"{m['spearman']:.4f}",
                  f"{m['kendall']:.4f}", f"{m['mean_ratio']:.3f}")
    notes = []
    if report.block_rounds:
        speeds = report.block_rounds
        how = "sample by sample in turn" if report.interleaved == "samples" else \
            "one after another (this runtime's idle pools spin)"
        notes.append(f"each network compared with its blocks timed with it, {how} "
                     f"({len(speeds)} groups); their time vs the stored LUT "
                     f"{min(speeds):.2f}–{max(speeds):.2f}× (drift kept out of the comparison)")
    else:
        notes.append("networks compared with the LUT as stored (not interleaved)")
    if report.pair_cost:
        c = report.pair_cost
        notes.append(f"paired: the overhead sum plus in-context deltas of {c['pairs']} adjacent "
                     f"pairs measured ({c['cases_timed']} cases timed, {c['times_lut']:.1f}x the "
                     f"LUT's {c['lut_cases']}) and predicted for the rest; corrected starts "
                     f"from it")
    if report.memory.get("block_max_over_arena"):
        r = report.memory["block_max_over_arena"]
        notes.append(f"memory: largest block arena / network arena median {r['median']:.2f} "
                     f"({r['min']:.2f}–{r['max']:.2f}, {r['n']} networks)")
    if report.fusion:
        fused = [f for f in report.fusion if f["fused"]]
        notes.append(f"fusion test: {len(fused)} of {len(report.fusion)} adjacent pairs fused "
                     f"(T1+T2−T12 > 0.5·min(T1,T2), per-call overhead removed)")
    t.caption = "\n".join(notes)
    return t


def comparison_tables(cmp, top: int = 10) -> list[Table]:
    """``lut compare``: the overall agreement, the extreme ratios, the layers that re-rank."""
    d = cmp.as_dict()
    head = Table(title=f"A = {cmp.a}   B = {cmp.b}", show_header=False)
    head.add_row("cases in both", str(d["cases"]))
    head.add_row("B / A per case: min / median / max",
                 f"{d['ratio_min']:.3g} / {d['ratio_median']:.3g} / {d['ratio_max']:.3g}")
    head.add_row("rank agreement of cases", f"Spearman {cmp.spearman:.3f}, "
                                            f"Kendall {cmp.kendall:.3f}")
    changed = d["layers_fastest_differs"]
    head.add_row("layers whose fastest op differs",
                 f"{len(changed)} of {len(cmp.layers)}" + (f": {changed}" if changed else ""))
    head.add_row("layers whose op order differs / mean Kendall of op orders",
                 f"{len(d['layers_order_differs'])} of {len(cmp.layers)} / "
                 f"{d['mean_layer_kendall']:.3f}")
    if cmp.memory_ratios:
        m = np.array(list(cmp.memory_ratios.values()))
        head.add_row("peak memory B / A: min / median / max",
                     f"{m.min():.3g} / {np.median(m):.3g} / {m.max():.3g}")
    if cmp.only_a or cmp.only_b:
        head.add_row("only in A / only in B", f"{len(cmp.only_a)} / {len(cmp.only_b)}")
    ratios = sorted(cmp.ratios.items(), key=lambda kv: kv[1])
    ends = Table(title=f"cases at each end of B / A (top {top})")
    ends.add_column("B / A", justify="right")
    ends.add_column("case")
    shown = ratios[:top] + ([("…", None)] if len(ratios) > 2 * top else []) + \
        ratios[max(top, len(ratios) - top):]
    for key, ratio in shown:
        ends.add_row("" if ratio is None else f"{ratio:.3g}", key)
    layers = Table(title="per layer: ops fastest first (A | B)")
    layers.add_column("layer", justify="right")
    layers.add_column("Kendall", justify="right")
    layers.add_column("A")
    layers.add_column("B")
    for lr in cmp.layers:
        mark = "[yellow]" if lr.fastest_differs else ""
        layers.add_row(str(lr.layer), f"{lr.kendall:.2f}", mark + " ".join(lr.order_a[:4]),
                       mark + " ".join(lr.order_b[:4]))
    return [head, ends, layers]


class TrainingProgress:
    """A bar per epoch over its batches, with the running figures beside it (stderr)."""

    def __init__(self, label: str):
        self.label = label
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                            console=err, transient=False)
        self.tasks: dict[int, int] = {}

    def __enter__(self):
        self.started = False         # the bar appears with the first batch: an error before
        return self                  # it (a checkpoint of another space) stays one line

    def __exit__(self, *exc):
        if self.started:
            self.bar.stop()

    def batch(self, epoch: int, epochs: int, step: int, steps: int, status: str) -> None:
        if not self.started:
            self.bar.start()
            self.started = True
        if epoch not in self.tasks:
            self.tasks[epoch] = self.bar.add_task(f"{self.label} epoch {epoch + 1}/{epochs}",
                                                  total=steps, status="")
        self.bar.update(self.tasks[epoch], completed=step, status=status)

    def line(self, text: str) -> None:
        self.bar.console.print(text)
