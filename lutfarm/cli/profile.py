"""``lutfarm profile``: measure a layout's cases on a device."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from lutfarm.cli import cli
from lutfarm.cli.options import db_option, layout_options, runtime_options
from lutfarm.cli.output import RichProgress, campaign_table, err, failures_table
from lutfarm.profiler.devices.inventory import load_inventory
from lutfarm.profiler.devices.record import Device, get_device, select_devices
from lutfarm.profiler.scheduling.campaign import FarmSettings
from lutfarm_agent.runtimes import SPECS
from lutfarm_agent.timing import TimingSettings


def timing_options(f):
    d = TimingSettings()
    for name, flag, help_ in [
        ("target_rel_ci", "--target-ci", "stop a case once its median's CI half-width is this "
                                         "fraction of the median (0: time for --max-time)"),
        ("min_s", "--min-time", "seconds of timed samples per case, at least"),
        ("max_s", "--max-time", "seconds of timed samples per case, at most"),
        ("warmup_s", "--warmup", "seconds of warm-up per case"),
    ]:
        f = click.option(flag, name, type=float, default=getattr(d, name), show_default=True,
                         help=help_)(f)
    return f


def resolve_devices(spec: str, inventory: Path | None) -> list[Device]:
    """``--devices`` against the inventory (or the embedded ``local`` without one)."""
    if inventory is None:
        return [get_device(term.strip()) for term in spec.split(",") if term.strip()]
    return select_devices(load_inventory(inventory), spec)


def run_profile(settings, quiet: bool = False):
    """``lutfarm.api.profile`` with progress bars; prints the summaries (not when ``quiet``)."""
    from lutfarm.api import profile

    devices = settings.devices or [get_device("local")]
    label = devices[0].name if len(devices) == 1 else f"{len(devices)} devices"
    with RichProgress(label) as progress:
        result = profile(replace(settings, progress=progress))
    if not quiet:
        for summary in result.summaries:
            err.print(campaign_table(summary))
            if summary.failed:
                err.print(failures_table(summary.failed))
        if result.failed:
            err.print("[yellow]run the same command again to retry the failed cases "
                      "(measured cases are kept)")
    return result


def _parse_cpus(_ctx, _param, value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give CPU numbers separated by commas, e.g. 0,1")\
            from None


@cli.command()
@layout_options
@click.option("--device", "--devices", "devices", default="local", show_default=True,
              metavar="NAME|kind:KIND|tag:TAG[,…]", help="devices to measure on")
@click.option("--inventory", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="LUTFARM_INVENTORY", help="farm inventory (TOML); without it: local only")
@runtime_options
@db_option
@click.option("--affinity", default=None, metavar="CPUS", callback=_parse_cpus,
              help="pin the agent to these CPUs, e.g. 0 or 2,3")
@click.option("--only", default=None, metavar="GLOB[,GLOB]",
              help="only cases whose key matches, e.g. 'ConvBlock_*_exp6_*'")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="exported-model cache (default ~/.cache/lutfarm or $LUTFARM_CACHE)")
@timing_options
@click.option("--case-timeout", type=float, default=None,
              help="seconds without a result before a case counts as hung (default: derived "
                   "from --max-time)")
@click.option("--lock-wait", type=float, default=0.0, show_default=True,
              help="seconds to wait for a board another controller is measuring on")
@click.option("--widths", default=None, metavar="0.5,0.75,1.0",
              help="also measure every block at these stage-width multipliers (FBNetV2 search)")
@click.option("--serial", default=None, metavar="PORT",
              help="a microcontroller on this serial port runs the blocks (--runtime tflm; "
                   "firmware speaking the lutfarm_agent.mcu harness protocol)")
@click.option("--sample", type=int, default=None, metavar="N",
              help="measure the fixed layers and N blocks chosen by the block predictor's "
                   "adaptive sampling; the LUT prices the other blocks by prediction, marked so")
@click.option("--export-workers", type=click.IntRange(1), default=None,
              help="processes exporting TFLite models at once (default: one per CPU)")
@click.option("--priority", type=int, default=0, show_default=True,
              help="shared store: cases of higher-priority campaigns are taken first")
@click.option("--owner", default=None, help="who asked for the campaign (default user@host)")
@click.option("--json", "as_json", is_flag=True, help="print the summaries as JSON on stdout")
def profile(layout, devices, inventory, runtime_config, db, affinity, only, cache,
            case_timeout, lock_wait, widths, serial, sample, export_workers, priority, owner,
            as_json, **timing):
    """Measure every missing case of a layout on devices (resumable)."""
    chosen = resolve_devices(devices, inventory)
    if affinity:
        chosen = [replace(d, affinity=affinity) for d in chosen]
    if serial:
        if not runtime_config.spec.serial_board:
            boards = ", ".join(n for n, s in SPECS.items() if s.serial_board)
            raise click.BadParameter(f"--serial needs a runtime that runs on a board: "
                                     f"--runtime {boards}", param_hint="--serial")
        chosen = [replace(d, serial=serial) for d in chosen]
    from lutfarm.api import ProfileSettings

    try:
        mults = tuple(float(w) for w in widths.split(",")) if widths else None
    except ValueError:
        raise click.BadParameter(f"--widths {widths!r}: give multipliers like 0.5,0.75,1.0")\
            from None
    settings = ProfileSettings(
        layout, chosen, runtime_config, db, only=only, widths=mults, sample=sample,
        timing=TimingSettings(**timing), cache=cache, export_workers=export_workers,
        farm=FarmSettings(case_timeout_s=case_timeout, lock_wait_s=lock_wait),
        priority=priority, owner=owner)
    result = run_profile(settings, quiet=as_json or sample is not None)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    elif result.sampled is not None:
        report = result.sampled
        held = report["held_out"]
        err.print(f"measured {report['measured']} blocks (and the fixed layers), predicted "
                  f"{report['predicted']}; the predictor on {held['n']} held-out measured "
                  f"blocks: {held['within_10pct']:.0%} within ±10 %, MAPE {held['mape']:.1%}, "
                  f"Spearman {held['spearman']:.3f}. 'lutfarm lut export' fills the LUT with "
                  f"the predictions, each marked predicted")
    if result.failed:
        sys.exit(1)
