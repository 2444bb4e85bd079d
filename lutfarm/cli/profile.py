"""``lutfarm profile``: measure a layout's cases on a device."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from agents.timing import TimingSettings
from lutfarm.cli import cli
from lutfarm.cli.options import db_option, layout_options, runtime_options
from lutfarm.cli.output import RichProgress, campaign_table, err, failures_table
from profiler.campaign import CampaignSummary, run_campaign
from profiler.devices import get_device
from profiler.export import ModelCache
from profiler.store import Store


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


def run_profile(db: Path, layout, runtime_config, device: str, only: str | None,
                cache: Path | None, timing: TimingSettings, quiet: bool = False,
                affinity: tuple[int, ...] | None = None) -> CampaignSummary:
    """Run one campaign with a progress bar and print its summary (shared with ``demo``)."""
    dev = get_device(device)
    if affinity:
        dev = replace(dev, affinity=affinity)
    with Store(db) as store:
        progress = RichProgress(dev.name)
        with progress:
            summary = run_campaign(store, layout, dev, runtime_config, timing,
                                   ModelCache(cache) if cache else ModelCache(), only, progress)
    if not quiet:
        err.print(campaign_table(summary))
        if summary.failed:
            err.print(failures_table(summary.failed))
            err.print("[yellow]run the same command again to retry the failed cases")
    return summary


def _parse_cpus(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give CPU numbers separated by commas, e.g. 0,1")\
            from None


@cli.command()
@layout_options
@click.option("--device", default="local", show_default=True, help="device to measure on")
@runtime_options
@db_option
@click.option("--affinity", default=None, metavar="CPUS", callback=_parse_cpus,
              help="pin the agent to these CPUs, e.g. 0 or 2,3")
@click.option("--only", default=None, metavar="GLOB[,GLOB]",
              help="only cases whose key matches, e.g. 'ConvBlock_*_exp6_*'")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="exported-model cache (default ~/.cache/lutfarm or $LUTFARM_CACHE)")
@timing_options
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON on stdout")
def profile(layout, device, runtime_config, db, affinity, only, cache, as_json, **timing):
    """Measure every missing case of a layout on a device (resumable)."""
    summary = run_profile(db, layout, runtime_config, device, only, cache,
                          TimingSettings(**timing), quiet=as_json, affinity=affinity)
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    if summary.failed:
        sys.exit(1)
