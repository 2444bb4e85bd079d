"""Options shared by several subcommands, declared once."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from lutfarm.profiler.runtime_config import DTYPES, RuntimeConfig
from lutfarm.profiler.store import default_db_path
from lutfarm.profiler.store.drivers import is_postgres
from lutfarm_agent.runtimes import SPECS


class StoreLocation(click.ParamType):
    """An SQLite file path, or a ``postgresql://user@host:port/dbname`` URL kept as a string."""

    name = "FILE|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or is_postgres(value):
            return value
        return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)


STORE = StoreLocation()


# --data of the supernet and DNAS commands (lutfarm.search.supernets.data.load_images reads it)
DATA_HELP = ("'digits' (bundled, no download), 'fashion-mnist' (Debian's dataset-fashion-mnist; "
             "fashion-mnist:N its first N images), a folder holding Fashion-MNIST's IDX files, "
             "or an image folder root/<class>/<image>")


def db_option(f):
    return click.option("--db", "db", type=STORE,
                        default=default_db_path, show_default="lutfarm.db or $LUTFARM_DB",
                        help="measurement store: an SQLite file, or postgresql://user@host:port/db "
                             "(a lab's shared store)")(f)


def runtime_options(f):
    @click.option("--runtime", type=click.Choice(list(SPECS)), default="onnxruntime",
                  show_default=True, help="runtime that runs the blocks")
    @click.option("--threads", type=int, default=1, show_default=True, help="runtime threads")
    @click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
                  help="model precision: fp32, or full-integer int8 (TFLite runtimes)")
    @click.option("--provider", default="",
                  help="execution provider / delegate: an ORT provider name (default CPU); for "
                       "litert/tflite xnnpack (default), none, delegate:<library.so>")
    @functools.wraps(f)
    def wrapper(*args, runtime, threads, dtype, provider, **kwargs):
        return f(*args, runtime_config=RuntimeConfig(runtime, threads, dtype, provider), **kwargs)
    return wrapper


def layout_options(f):
    from lutfarm.spaces import list_spaces

    @click.option("--space", default="fbnet", show_default=True,
                  type=click.Choice(list_spaces()), help="search space")
    @click.option("--layout", default=None,
                  help="macro layout (default: the space's): fbnet cifar|imagenet, mcunet vww|c10, "
                       "nb201 cifar10|cifar100|imagenet16")
    @click.option("--classes", type=int, default=None,
                  help="classifier width (default: the layout's, 100 for cifar, 2 for vww)")
    @click.option("--resolutions", default=None, metavar="96,128",
                  help="mcunet: only these input resolutions (default: 96,112,128,144,160)")
    @functools.wraps(f)
    def wrapper(*args, space, layout, classes, resolutions, **kwargs):
        from lutfarm.spaces import get_layout

        chosen = get_layout(space, layout, classes)
        if resolutions:
            if not hasattr(chosen, "with_resolutions"):
                raise click.BadParameter(f"the {space} space has fixed resolutions; "
                                         f"--resolutions is for mcunet",
                                         param_hint="--resolutions")
            try:
                values = [int(r) for r in resolutions.split(",") if r.strip()]
            except ValueError:
                raise click.BadParameter(f"{resolutions!r}: give pixels like 96,128",
                                         param_hint="--resolutions") from None
            chosen = chosen.with_resolutions(values)
        return f(*args, layout=chosen, **kwargs)
    return wrapper
