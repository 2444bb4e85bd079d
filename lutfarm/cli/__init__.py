"""``lutfarm`` command line: subcommands live in sibling modules, all logic in the packages."""

from __future__ import annotations

import sys

import click

from lut import LUTError, LUTFileError
from profiler.campaign import CampaignError
from profiler.devices import UnknownDeviceError
from profiler.runtime_config import RuntimeConfigError
from profiler.store import StoreError
from spaces import ArchError, CaseKeyError, UnknownSpaceError

# Errors that mean "the user's input is wrong": one line, exit status 2, no traceback.
USER_ERRORS = (LUTError, LUTFileError, CampaignError, UnknownDeviceError, RuntimeConfigError,
               StoreError, ArchError, CaseKeyError, UnknownSpaceError)


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
    cli(prog_name="lutfarm")


from lutfarm.cli import demo, lut, profile  # noqa: E402,F401 - registers the subcommands
