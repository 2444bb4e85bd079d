"""``lutfarm`` command line: subcommands live in sibling modules, all logic in the packages."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from lutfarm.errors import LutfarmError


class Lutfarm(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LutfarmError as exc:   # the user can fix it: one line, exit 2
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: every measurement taken so far is stored; run the same "
                       "command again to resume", err=True)
            sys.exit(130)


@click.group(cls=Lutfarm, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lutfarm")
@click.option("-v", "--verbose", count=True,
              help="log to stderr: -v what lutfarm does, -vv also what agents print")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the full debug log (agents' output included) to this file")
def cli(verbose: int, log_file: Path | None) -> None:
    """Measure blocks on your devices, build latency LUTs, query them."""
    setup_logging(verbose, log_file)


def setup_logging(verbose: int, log_file: Path | None) -> None:
    """lutfarm's loggers (``lutfarm.*``) to stderr at -v/-vv, and everything to ``log_file``."""
    root = logging.getLogger("lutfarm")
    root.setLevel(logging.DEBUG)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = logging.StreamHandler()
    console.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    console.setFormatter(fmt)
    root.addHandler(console)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(fmt)
        root.addHandler(handler)


def main() -> None:
    try:
        code = cli.main(prog_name="lutfarm", standalone_mode=False)
    except click.UsageError as exc:  # one line, like every other input error
        cmd = exc.ctx.command_path if exc.ctx else "lutfarm"
        click.echo(f"error: {exc.format_message()} (see '{cmd} --help')", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


from lutfarm.cli import bench, db, demo, devices, lut, predict, profile, search, serve, supernet  # noqa: E402,F401 - registers the subcommands
