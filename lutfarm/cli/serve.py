"""``lutfarm serve``: the farm's web dashboard."""

from __future__ import annotations

import ipaddress

import click

from lutfarm.cli import cli
from lutfarm.cli.options import db_option
from lutfarm.cli.output import err


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; anything but loopback needs --token")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--token", envvar="LUTFARM_TOKEN", default=None,
              help="a secret every request must carry (?token=…, then a cookie); "
                   "default $LUTFARM_TOKEN")
def serve(db, host, port, token):
    """A read-only web dashboard of the store: boards, campaigns (live), LUTs (heatmap,
    distribution, validation, compare, CSV/JSON) and reports."""
    import uvicorn

    from lutfarm.dashboard.app import create_app
    from lutfarm.errors import LutfarmError
    from lutfarm.profiler.store import Store
    from lutfarm.profiler.store.drivers import is_postgres

    if not _loopback(host) and not token:
        raise LutfarmError(f"--host {host} opens the dashboard to the network: give a --token "
                           f"(or $LUTFARM_TOKEN) that every request must carry")
    if not is_postgres(db) and not db.exists():
        raise LutfarmError(f"no store at {db}; give --db an existing store (a file or "
                           f"postgresql://…)")
    with Store(db) as store:      # fail now, in one line, if it cannot be opened
        where = store.location
    err.print(f"lutfarm dashboard of {where} on http://{host}:{port}/"
              + ("?token=…" if token else "") + " (Ctrl-C stops it)")
    uvicorn.run(create_app(db, token), host=host, port=port, log_level="warning")
