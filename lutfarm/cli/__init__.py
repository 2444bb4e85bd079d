"""``lutfarm`` command line: subcommands live in sibling modules, all logic in the packages."""

from __future__ import annotations

import sys

import click

from lut import LUTError, LUTFileError
from predictors.persistence import PredictorError
from profiler.campaign import CampaignError
from profiler.devices import UnknownDeviceError
from profiler.export import ExporterMissing
from profiler.inventory import InventoryError
from profiler.runtime_config import RuntimeConfigError
from profiler.ssh import DeviceError
from profiler.store import StoreError
from search.evolution import SearchError
from search.nb201 import NB201Error
from spaces import ArchError, CaseKeyError, UnknownSpaceError

# Errors that mean "the user's input is wrong": one line, exit status 2, no traceback.
USER_ERRORS = (LUTError, LUTFileError, CampaignError, UnknownDeviceError, RuntimeConfigError,
               StoreError, ArchError, CaseKeyError, UnknownSpaceError, InventoryError,
               DeviceError, SearchError, NB201Error, PredictorError, ExporterMissing)


class Lutfarm(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: every measurement taken so far is stored; run the same "
                       "command again to resume", err=True)
            sys.exit(130)


@click.group(cls=Lutfarm, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lutfarm")
def cli() -> None:
    """Measure blocks on your devices, build latency LUTs, query them."""


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


from lutfarm.cli import demo, devices, lut, predict, profile, search  # noqa: E402,F401 - registers the subcommands
