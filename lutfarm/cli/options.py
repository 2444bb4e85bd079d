"""Options shared by several subcommands, declared once."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from lutfarm.profiler.runtime_config import DTYPES, RuntimeConfig
from lutfarm.profiler.store import default_db_path
from lutfarm_agent.runtimes import SPECS


def db_option(f):
    return click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path),
                        default=default_db_path, show_default="lutfarm.db or $LUTFARM_DB",
                        help="measurement store (SQLite file)")(f)


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
    @click.option("--space", default="fbnet", show_default=True, help="search space")
    @click.option("--layout", default="cifar", show_default=True, help="macro layout: cifar|imagenet")
    @click.option("--classes", type=int, default=None,
                  help="classifier width (default: the layout's, 100 for cifar)")
    @functools.wraps(f)
    def wrapper(*args, space, layout, classes, **kwargs):
        from lutfarm.spaces import get_layout
        return f(*args, layout=get_layout(space, layout, classes), **kwargs)
    return wrapper
