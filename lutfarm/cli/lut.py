"""``lutfarm lut …``: export, import, query and inspect LUTs."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from lutfarm.cli import cli
from lutfarm.cli.options import db_option, runtime_options
from lutfarm.cli.output import err, lut_table, out
from lutfarm.lut import LatencyTable, import_hwnasbench, load_lut, save_lut
from lutfarm.lut.build import STATISTICS
from lutfarm.lut.hwnasbench import BUNDLED, DEVICES
from lutfarm.profiler.mcu_target import describe_target
from lutfarm.profiler.store import Store
from lutfarm.spaces import ArchError
from lutfarm.spaces.fbnet import parse_arch
from lutfarm.spaces.registry import family_of


@cli.group()
def lut() -> None:
    """Build, import, query and inspect latency LUTs."""


@lut.command("export")
@click.option("--device", default="local", show_default=True)
@runtime_options
@db_option
@click.option("--layout", default=None, help="layout to export (default: the one profiled last)")
@click.option("--classes", type=int, default=None)
@click.option("--statistic", type=click.Choice(STATISTICS), default="median", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="LUT file to write: .csv or .json")
def export_cmd(device, runtime_config, db, layout, classes, statistic, output):
    """Write a device's LUT from the store to CSV or JSON."""
    from lutfarm.api import LUTSettings
    from lutfarm.api import build_lut as export_lut

    table = export_lut(LUTSettings(device, runtime_config, db, layout=layout, classes=classes,
                                   statistic=statistic, output=output)).lut
    missing = table.missing_cases()
    err.print(f"wrote {output}: {len(table)} cases for {table.device} / {table.runtime} / "
              f"{table.space}-{table.layout_name}")
    if missing:
        err.print(f"[yellow]{len(missing)} cases of the layout are not measured yet (e.g. "
                  f"{missing[0]}); 'lutfarm profile' measures them")


@lut.command("import-hwnasbench")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=BUNDLED)
@click.option("--device", type=click.Choice(DEVICES), required=True)
@click.option("--layout", default="cifar", show_default=True, help="cifar|imagenet")
@click.option("--classes", type=int, default=None, help="classifier width (cifar: 100)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def import_cmd(path, device, layout, classes, output):
    """Convert HW-NAS-Bench's FBNet LUT (PATH, default: the bundled copy) for one device."""
    table = import_hwnasbench(path, device, layout, classes)
    save_lut(table, output)
    err.print(f"wrote {output}: {len(table)} cases of HW-NAS-Bench {device} "
              f"({table.layout_name}, {table.classes} classes)")


def _read_archs(archs: tuple[str, ...], archs_file: Path | None, num_layers: int) -> list:
    rows = [parse_arch(a, num_layers) for a in archs]
    if archs_file:
        for n, line in enumerate(archs_file.read_text().splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    rows.append(parse_arch(line, num_layers))
                except ArchError as exc:
                    raise ArchError(f"{archs_file} line {n}: {exc}") from None
    if not rows:
        raise ArchError("give at least one --arch (22 comma-separated op indices) or --archs-file")
    return rows


@lut.command("query")
@click.option("--lut", "lut_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--arch", "archs", multiple=True, metavar="OPS",
              help="22 op indices 0-8, comma-separated (repeatable)")
@click.option("--archs-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="one arch per line")
@click.option("--arch-json", "arch_json", default=None, metavar="JSON|FILE",
              help="mcunet: an arch as JSON (or a file holding one, or a list of them)")
@click.option("--breakdown", is_flag=True, help="per-layer latencies of each arch")
@click.option("--latency", "model", type=click.Choice(["plain", "overhead", "corrected"]),
              default="plain", show_default=True,
              help="chain LUTs: plain Σ T; overhead (the per-call cost paid once); corrected "
                   "(the correction its validation stored, adjacent pairs included)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def query_cmd(lut_path, archs, archs_file, arch_json, breakdown, model, as_json):
    """Latency of architectures (ms) under a LUT; the layout is read from the LUT."""
    lut = load_lut(lut_path)
    if family_of(lut.space) == "elastic":
        _query_subnets(lut, lut_path, archs, archs_file, arch_json, breakdown, as_json)
        return
    if arch_json:
        raise click.UsageError("--arch-json is for mcunet LUTs; give FBNet archs with --arch")
    from lutfarm.search.objectives.space import lut_latency

    table = LatencyTable(lut)
    rows = _read_archs(archs, archs_file, table.layout.num_layers)
    ms = table.latency(np.array(rows)) if model == "plain" else \
        lut_latency(table, model)(np.array(rows))
    if as_json:
        items = [{"arch": r, "latency_ms": float(v), "model": model} for r, v in zip(rows, ms)]
        if breakdown:
            for item in items:
                item["layers"] = [{"case": k, "ms": v} for k, v in table.breakdown(item["arch"])]
        click.echo(json.dumps({"lut": str(lut_path), "device": table.lut.device,
                               "runtime": table.lut.runtime, "archs": items}))
        return
    for r, v in zip(rows, ms):
        click.echo(f"{v:.4f} ms  {','.join(map(str, r))}")
        if breakdown:
            for key, value in table.breakdown(r):
                click.echo(f"    {value:9.4f}  {key}")


def _query_subnets(lut, lut_path, archs, archs_file, arch_json, breakdown, as_json) -> None:
    """``lut query`` for subnet spaces: compact strings (--arch, --archs-file) and JSON."""
    from lutfarm.lut.subnets import SubnetTable

    layout = lut.layout
    texts = list(archs)
    if archs_file:
        texts += [ln for ln in archs_file.read_text().splitlines() if ln.strip()]
    if arch_json:
        source = Path(arch_json)
        text = source.read_text() if not arch_json.lstrip().startswith(("{", "[")) \
            and source.is_file() else arch_json
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--arch-json") from None
        texts += [json.dumps(o) for o in (obj if isinstance(obj, list) else [obj])]
    if not texts:
        raise click.UsageError(f"give an arch: --arch {layout.smallest_arch().to_str()} or "
                               f"--arch-json '{{\"ks\": [...], …}}'")
    rows = [layout.parse_arch(t) for t in texts]
    table = SubnetTable(lut)
    genes = layout.to_genes(rows)
    ms = table.latency(genes)
    items = [{"arch": a.to_json(), "arch_str": a.to_str(), "latency_ms": float(v),
              "mmacs": layout.macs(a) / 1e6,
              "peak_activation_kb": layout.peak_activation(a) / 1024} for a, v in zip(rows, ms)]
    if breakdown:
        for item, a in zip(items, rows):
            item["layers"] = [{"case": c.key, "ms": lut.latency_ms[c.key]}
                              for c in layout.arch_cases(a)]
    if as_json:
        click.echo(json.dumps({"lut": str(lut_path), "device": lut.device,
                               "runtime": lut.runtime, "archs": items}))
        return
    for item in items:
        click.echo(f"{item['latency_ms']:.4f} ms  {item['mmacs']:.1f} MMACs  "
                   f"{item['peak_activation_kb']:.0f} KiB  {item['arch_str']}")
        for layer in item.get("layers", []):
            click.echo(f"    {layer['ms']:9.4f}  {layer['case']}")


@lut.command("show")
@click.option("--lut", "lut_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def show_cmd(lut_path):
    """Summary of a LUT file: size, overhead, fixed part, fastest and slowest archs."""
    out.print(lut_table(load_lut(lut_path)))


@lut.command("list")
@db_option
def list_cmd(db):
    """Device / runtime configurations in the store, with their number of measured cases."""
    with Store(db) as store:
        configs = [(d, r, n, store.emulated(d, r), store.mcu_target(d, r))
                   for d, r, n in store.configurations()]
    if not configs:
        click.echo(f"{db}: no measurements yet; run 'lutfarm profile'")
    for device, runtime, n, emulated, mcu in configs:
        note = f"\tEMULATED, not hardware timings ({emulated})" if emulated else ""
        board = f"\t{describe_target(mcu)}" if mcu else ""
        click.echo(f"{device}\t{runtime}\t{n} cases{board}{note}")


@lut.command("validate")
@click.option("--device", default="local", show_default=True,
              help="device or device kind whose LUT to check")
@click.option("--inventory", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="LUTFARM_INVENTORY", help="farm inventory (TOML); without it: local only")
@runtime_options
@db_option
@click.option("--archs", "n_archs", type=int, default=200, show_default=True,
              help="networks to measure end to end (extremes and mixes included)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fusion", is_flag=True, help="also measure adjacent block pairs (nn-Meter's test)")
@click.option("--interleave", "every", type=click.IntRange(min=0), default=1, show_default=True,
              help="networks timed in one campaign with the blocks they use, and compared with "
                   "those times (0: with the LUT as stored)")
@click.option("--pairs", type=click.IntRange(min=0), default=0, show_default=True,
              help="first measure this many adjacent block pairs in context (chosen "
                   "adaptively, each timed with its blocks): the correction starts from "
                   "their sum; 113 is the CIFAR LUT's own case count")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="where the plot (PNG) and the table (CSV) go")
@click.option("--measure-blocks", is_flag=True,
              help="mcunet: first measure the blocks of the chosen subnets that a sampled LUT "
                   "only predicts, so the comparison is the LUT's additivity alone")
@click.option("--json", "as_json", is_flag=True, help="print the held-out metrics as JSON")
def validate_cmd(device, inventory, runtime_config, db, n_archs, seed, fusion, every, pairs,
                 out_dir, measure_blocks, as_json):
    """Measure whole networks and report how well the LUT predicts them."""
    from lutfarm.api import ValidateSettings, validate_lut
    from lutfarm.cli.output import RichProgress, validation_table
    from lutfarm.cli.profile import resolve_devices

    if n_archs < 6:
        raise click.BadParameter("give --archs 6 or more (half of them train the correction)")
    spec = device if inventory is None else (device if "," in device else _kind_or_name(
        device, inventory))
    devices = resolve_devices(spec, inventory)
    with RichProgress(device) as progress:
        done = validate_lut(ValidateSettings(
            devices, runtime_config, db, target=device, archs=n_archs, seed=seed,
            fusion=fusion, every=every, pairs=pairs, measure_blocks=measure_blocks,
            out_dir=out_dir,
            progress=progress))
    missing = done.skipped_cases
    if missing:
        err.print(f"[yellow]{len(missing)} case(s) unmeasured (e.g. {missing[0]}: see "
                  f"'lutfarm lut list' failures); only subnets without them were validated")
    if as_json:
        click.echo(json.dumps(done.to_dict()))
    elif done.family == "elastic":
        _print_subnet_validation(done.report, device, devices[0].resolve(runtime_config).key)
    else:
        out.print(validation_table(done.report))
    err.print(f"plot {done.plot}, table {done.table}"
              + ("; the report is stored with the LUT (lutfarm lut export includes it)"
                 if done.family == "chain" else ""))


def _print_subnet_validation(report, device: str, runtime_key: str) -> None:
    from rich.table import Table
    t = Table(title=f"LUT vs measured subnets: {device} / {runtime_key}")
    for col in ("resolution", "sum", "n", "±5 %", "±10 %", "MAPE", "Spearman", "pred/meas"):
        t.add_column(col, justify="right")
    rows = [*report.per_resolution.items(),
            ("all", {"plain": report.plain, "overhead": report.overhead})]
    if report.measured_only:
        rows.append(("measured blocks only", report.measured_only))
    for r, metrics in rows:
        for name in ("plain", "overhead"):
            m = metrics[name]
            t.add_row(r, name, str(m["n"]), f"{m['within_5pct']:.0%}",
                      f"{m['within_10pct']:.0%}", f"{m['mape']:.1%}",
                      f"{m['spearman']:.3f}", f"{m['mean_ratio']:.3f}")
    out.print(t)
    for name, stats in report.memory.items():
        if stats:
            out.print(f"memory {name.replace('_', ' ')}: median {stats['median']:.2f} "
                      f"(min {stats['min']:.2f}, max {stats['max']:.2f}, n {stats['n']})")


def _kind_or_name(device: str, inventory: Path) -> str:
    from lutfarm.profiler.devices.inventory import load_inventory
    kinds = {d.kind for d in load_inventory(inventory)}
    return f"kind:{device}" if device in kinds else device


@lut.command("repeat")
@click.option("--device", default="local", show_default=True, help="device or device kind")
@click.option("--inventory", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="LUTFARM_INVENTORY", help="farm inventory (TOML); without it: local only")
@runtime_options
@db_option
@click.option("--layout", default="cifar", show_default=True)
@click.option("--only", default=None, metavar="GLOB[,GLOB]", help="only these cases")
@click.option("--json", "as_json", is_flag=True)
def repeat_cmd(device, inventory, runtime_config, db, layout, only, as_json):
    """Measure the LUT again and report how well the two runs agree."""
    from lutfarm.cli.output import RichProgress
    from lutfarm.cli.profile import resolve_devices
    from lutfarm.profiler.scheduling.campaign import CampaignSettings
    from lutfarm.profiler.scheduling.repeatability import run_repeatability
    from lutfarm.spaces import get_layout

    spec = device if inventory is None else _kind_or_name(device, inventory)
    devices = resolve_devices(spec, inventory)
    with Store(db) as store, RichProgress(device) as progress:
        r = run_repeatability(store, get_layout("fbnet", layout), devices, runtime_config,
                              CampaignSettings(progress=progress, only=only))
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"{r.cases} cases measured twice: median |Δ|/median {r.median_rel_diff:.2%}, "
               f"p90 {r.p90_rel_diff:.2%}, Spearman {r.spearman:.4f}, Kendall {r.kendall:.4f}; "
               f"{len(r.flagged)} unreliable cases measured a third time")


@lut.command("compare")
@click.argument("a_path", metavar="A", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b_path", metavar="B", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top", type=int, default=10, show_default=True,
              help="cases to list at each end of the B/A ratio")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="write a log-log scatter of the per-case latencies (PNG)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def compare_cmd(a_path, b_path, top, plot_path, as_json):
    """Two LUTs of one layout (e.g. two runtimes): per-case ratios B/A and the layers whose
    op ranking differs, which is what makes a searched architecture hardware-specific."""
    from lutfarm.cli.output import comparison_tables
    from lutfarm.lut.compare import compare_luts, plot_comparison

    a, b = load_lut(a_path), load_lut(b_path)
    cmp = compare_luts(a, b)
    if plot_path:
        plot_comparison(cmp, a, b, plot_path)
    if as_json:
        click.echo(json.dumps(cmp.as_dict()))
        return
    for table in comparison_tables(cmp, top):
        out.print(table)
    if plot_path:
        err.print(f"plot: {plot_path}")
