"""``lutfarm devices …``: inspect and prepare the farm."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from lutfarm.cli import cli
from lutfarm.cli.output import err, out
from lutfarm.cli.profile import resolve_devices
from lutfarm.profiler.devices.check import check_device
from lutfarm.profiler.devices.inventory import load_inventory
from lutfarm.profiler.devices.provision import provision

inventory_option = click.option(
    "--inventory", type=click.Path(dir_okay=False, path_type=Path), default=None,
    envvar="LUTFARM_INVENTORY", help="farm inventory (TOML); without it: the local device")
devices_option = click.option("--devices", default=None, metavar="NAME|kind:KIND|tag:TAG[,…]",
                              help="which devices (default: all)")


def _chosen(inventory, devices):
    if inventory is None:
        return resolve_devices(devices or "local", None)
    return resolve_devices(devices, inventory) if devices else load_inventory(inventory)


@cli.group()
def devices() -> None:
    """Check and provision the devices of an inventory.

    \b
    The inventory is TOML: an optional [defaults] table and one [[devices]] table per board:
      [[devices]]
      name = "pi-1"            host = "10.0.0.11"      port = 22
      user = "pi"              key_file = "~/.ssh/id"  known_hosts = "~/.ssh/known_hosts"
      kind = "rpi4"            tags = ["arm"]          python = "python3"
      runtimes = ["onnxruntime"]   threads = 4   affinity = [0, 1]   workdir = "lutfarm"
    """


@devices.command("list")
@inventory_option
def list_cmd(inventory):
    """The devices of the inventory, validated."""
    t = Table("name", "kind", "address", "tags", "python", "runtimes")
    for d in _chosen(inventory, None):
        t.add_row(d.name, d.kind, d.address, ",".join(d.tags), d.python, ",".join(d.runtimes))
    out.print(t)


@devices.command("check")
@inventory_option
@devices_option
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", is_flag=True, help="the full text of every runtime's error")
def check_cmd(inventory, devices, as_json, verbose):
    """Reachable? auth? Python, numpy, runtimes, free disk, agent version — per device."""
    reports = [check_device(d) for d in _chosen(inventory, devices)]
    if as_json:
        click.echo(json.dumps([asdict(r) | {"ok": r.ok} for r in reports]))
    else:
        for r in reports:
            print_report(r, verbose)
    if not all(r.ok for r in reports):
        sys.exit(1)


def print_report(r, verbose: bool) -> None:
    """One line for the board, one per runtime (status, version or a short reason): readable
    at 80 columns; ``verbose`` prints each error whole under its runtime."""
    state = "[red]" + r.error if r.error else "[green]ok" if r.ok else "[red]no usable runtime"
    disk = f", {r.disk_free_bytes / 1e9:.1f} GB free" if r.disk_free_bytes else ""
    where = f"Python {r.python} {r.machine}, numpy {r.numpy or '[red]missing[/]'}" \
        if r.python else r.address
    out.print(f"[bold]{r.name}[/] {where}{disk}: {state}")
    width = max(20, out.width - 30)
    for name, value in r.runtimes.items():
        broken = value.startswith("error: ")
        text = value.removeprefix("error: ")
        short = text if verbose or len(text) <= width else text[:width - 1] + "…"
        status = "[red]missing" if name in r.missing else \
            "[red]broken " if broken else "[green]ok     "
        line = f"  {name:<12} {status}[/] {short}"
        if verbose:
            out.print(line)
        else:
            out.print(line, no_wrap=True, overflow="ellipsis")


@devices.command("provision")
@inventory_option
@devices_option
@click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="a folder of wheels built for the boards (piwheels-style), "
                                 "searched before the package registry")
def provision_cmd(inventory, devices, wheelhouse):
    """Create <workdir>/venv on each device with its runtimes, from wheels pushed over SFTP."""
    if inventory is None:
        raise click.UsageError("devices provision needs --inventory (SSH devices); this "
                               "machine's runtimes come with pip install")
    failed = False
    for d in _chosen(inventory, devices):
        try:
            r = provision(d, wheelhouse=wheelhouse)
        except Exception as exc:   # report every device, then fail
            err.print(f"[red]{d.name}: {exc}")
            failed = True
            continue
        versions = ", ".join(f"{k} {v}" for k, v in r.installed.items())
        if r.already:
            err.print(f"{d.name}: already provisioned ({r.platform}): {versions}")
        else:
            numpy = " (the board's own numpy)" if r.numpy_source == "system" else ""
            err.print(f"{d.name}: installed for {r.platform}: {versions}{numpy} "
                      f"({r.wheels_uploaded} wheels, {r.bytes_uploaded / 1e6:.1f} MB pushed)")
    if failed:
        sys.exit(1)
