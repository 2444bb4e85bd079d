"""``lutfarm bench MODEL``: how fast is this model file on each device (benchmark_model's figures)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lutfarm.cli import cli
from lutfarm.cli.options import db_option
from lutfarm.cli.output import RichProgress, err, out
from lutfarm.cli.profile import resolve_devices, timing_options
from lutfarm.profiler.export.model_file import parse_shapes
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import FarmSettings
from lutfarm.workflows.bench_model import drift_warnings, op_table, slowest_nodes
from lutfarm_agent.runtimes import SPECS
from lutfarm_agent.timing import TimingSettings


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _memory(row) -> str:
    if row.memory_bytes is None:
        return "-"
    label = {"rss-growth": "RSS +", "tflm-arena": "arena ", "mcu-arena": "arena "}
    kib = row.memory_bytes / 1024
    size = f"{kib:.0f} KiB" if kib < 10240 else f"{kib / 1024:.0f} MiB"
    return label.get(row.memory_method, "") + size


def _runtime(row) -> str:
    """The runtime and its provider (delegate, kernels); threads and dtype have columns."""
    provider = RuntimeConfig.from_key(row.runtime).provider
    return row.runtime_name + (f"/{provider}" if provider else "")


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...]) -> Table:
    t = Table(title=title)
    for name in columns:
        t.add_column(name, justify="left" if name in left else "right")
    return t


def devices_tables(result) -> list[Table]:
    """One row per device: the answer (median, its CI half-width in per cent, memory), then
    benchmark_model's figures (milliseconds)."""
    m = result.model
    answer = _table(f"{m.name} ({m.fmt}, {m.dtype}, {m.size / 1024:.0f} KiB, {len(m.ops)} ops)",
                    ("device", "runtime", "thr", "dtype", "median ms", "± CI", "memory", "note"),
                    ("device", "runtime", "memory", "note"))
    stats = _table("benchmark_model figures (ms)", ("device", "count", "min", "median", "mean",
                                                    "p90", "p99", "init", "first"), ("device",))
    for r in result.rows:
        if r.status != "ok":
            answer.add_row(r.device, _runtime(r), str(r.threads), r.dtype, "-", "-", "-",
                           "[red]failed (below)")
            continue
        notes = (["[yellow]emulated"] if r.emulated else []) + (["stored"] if r.stored else [])
        ci = "-" if r.ci_half_ms is None else f"{r.ci_half_ms / r.median_ms:.1%}"
        answer.add_row(r.device, _runtime(r), str(r.threads), r.dtype, _ms(r.median_ms), ci,
                       _memory(r), ", ".join(notes))
        stats.add_row(r.device, str(r.count), *(_ms(getattr(r, f"{n}_ms")) for n in (
            "min", "median", "mean", "p90", "p99", "init", "first")))
    return [answer, stats] if stats.row_count else [answer]


def ops_tables(row, top: int) -> list[Table]:
    """The per-operator profile: time by op type, then the slowest nodes."""
    profile = row.ops or {}
    if not profile.get("nodes"):
        why = profile.get("unavailable", "no profile was taken")
        return [Table(title=f"{row.device}: no per-operator profile ({why})")]
    by_op = Table(title=f"{row.device}, {row.runtime}: time per op type "
                        f"({profile.get('method')}, mean of {profile.get('runs')} runs)")
    for name in ("op", "count", "ms", "share"):
        by_op.add_column(name, justify="left" if name == "op" else "right")
    for e in op_table(profile):
        by_op.add_row(e["op"], str(e["count"]), f"{e['ms']:.4g}", f"{e['share']:.1%}")
    nodes = Table(title=f"{row.device}: the {top} slowest nodes")
    for name in ("node", "op", "ms", "share"):
        nodes.add_column(name, justify="left" if name in ("node", "op") else "right")
    for n in slowest_nodes(profile, top):
        nodes.add_row(n["node"][-60:], n["op"], f"{n['ms']:.4g}", f"{n['share']:.1%}")
    return [by_op, nodes]


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--device", "--devices", "devices", default="local", show_default=True,
              metavar="NAME|kind:KIND|tag:TAG[,…]", help="devices to time it on (each one)")
@click.option("--inventory", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="LUTFARM_INVENTORY", help="farm inventory (TOML); without it: local only")
@click.option("--runtime", type=click.Choice(list(SPECS)), default=None,
              help="default: the file's format's (onnx: onnxruntime; tflite: litert, tflm on "
                   "a microcontroller)")
@click.option("--threads", type=int, default=1, show_default=True, help="runtime threads")
@click.option("--provider", default="", help="execution provider / delegate (see profile)")
@click.option("--shape", "shapes", multiple=True, metavar="NAME:1x3x224x224",
              help="an input's shape, for dimensions the file leaves dynamic (repeatable)")
@click.option("--ops", is_flag=True, help="also a per-operator profile (ONNX Runtime's "
                                          "profiler, TFLite-Micro firmware's)")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True,
              help="--ops: how many of the slowest nodes to list")
@click.option("--fresh", is_flag=True, help="time it again where the store has it")
@db_option
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="model cache (default ~/.cache/lutfarm or $LUTFARM_CACHE)")
@timing_options
@click.option("--case-timeout", type=float, default=None,
              help="seconds without a result before the model counts as hung")
@click.option("--lock-wait", type=float, default=0.0, show_default=True,
              help="seconds to wait for a board another controller is measuring on")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout")
def bench(model, devices, inventory, runtime, threads, provider, shapes, ops, top, fresh, db,
          cache, case_timeout, lock_wait, as_json, **timing):
    """Time one model file (.onnx or .tflite) on devices of the farm.

    Inputs are random data of the model's own shapes and dtypes; the result is stored and
    shown as count, min, median, mean, p90, p99 and the load (init) and first-run times.
    """
    from lutfarm.api import BenchSettings

    chosen = resolve_devices(devices, inventory)
    # the precision is the model's own (bench_model.runtime_for)
    config = RuntimeConfig(runtime, threads, "fp32", provider) if runtime else None
    settings = BenchSettings(model, chosen, config, threads, parse_shapes(shapes), ops, fresh,
                             db, TimingSettings(**timing),
                             FarmSettings(case_timeout_s=case_timeout, lock_wait_s=lock_wait),
                             cache)
    label = chosen[0].name if len(chosen) == 1 else f"{len(chosen)} devices"
    with RichProgress(label) as progress:
        from lutfarm.api import bench as run_bench
        result = run_bench(replace(settings, progress=progress))
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        # piped, rich assumes 80 columns; the devices table needs about 100 to stay one line
        wide = out if out.is_terminal else Console(width=max(out.width, 110))
        for table in devices_tables(result):
            wide.print(table)
        for warning in [w for s in result.summaries for w in s.drift] + \
                drift_warnings(result.rows):
            err.print(f"[yellow]drift guard: {warning}", soft_wrap=True)
        emulated = {r.emulated for r in result.rows if r.emulated}
        for why in sorted(emulated):
            err.print(f"[yellow]emulated: {why}; these are not hardware timings", soft_wrap=True)
        if ops:
            for r in result.rows:
                if r.status == "ok":
                    for table in ops_tables(r, top):
                        out.print(table)
    for r in result.failed:
        err.print(f"[red]{r.device}: {r.error}", soft_wrap=True)   # one line each
    if result.failed:
        sys.exit(1)
