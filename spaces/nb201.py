"""NAS-Bench-201's cell space and its public table, parsed once for every user.

An NB201 cell has 6 edges, each one of 5 ops, so 5^6 = 15 625 architectures. The table
(``nb201_master.csv``, one row per NB201 index; see shared/data/README.md) gives each one's
test accuracy on three datasets, its FLOPs and parameters, and its latency on many devices.
Search (benchmark mode), few-shot latency transfer and the accuracy predictors all read it
through ``read_nb201``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lutfarm import environment
from lutfarm.errors import LutfarmError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
DATASETS = {"cifar10": "c10_test_acc", "cifar100": "c100_test_acc",
            "imagenet16": "in16_test_acc"}


class NB201Error(LutfarmError, ValueError):
    """The NB201 table is missing or lacks what was asked for."""


def parse_arch_str(arch: str) -> list[int]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> 6 op indices, edge order as written."""
    ops = re.findall(r"\|([a-z_0-9]+)~\d", arch)
    if len(ops) != NUM_EDGES or any(o not in OPS for o in ops):
        raise NB201Error(f"not an NB201 arch string: {arch!r}")
    return [OPS.index(o) for o in ops]


def device_name(column: str) -> str:
    """``help_pixel2_ms`` / ``hwnb_c10_raspi4_latency`` -> ``pixel2`` / ``raspi4``."""
    return (column.removeprefix("help_").removeprefix("hwnb_c10_").removesuffix("_latency")
            .removesuffix("_ms"))


@dataclass(frozen=True)
class NB201Data:
    """The table in file order (row i = NB201 index i); blanks are NaN."""

    path: Path
    archs: np.ndarray                  # (N, 6) op indices
    accuracy: dict[str, np.ndarray]    # dataset -> test accuracy (%)
    latency: dict[str, np.ndarray]     # device -> ms
    mflops: np.ndarray
    mparams: np.ndarray


def _floats(rows: list[dict], column: str) -> np.ndarray:
    return np.array([float(r[column]) if r[column] not in ("", None) else np.nan for r in rows])


def read_nb201(path: str | os.PathLike | None = None) -> NB201Data:
    """Read ``nb201_master.csv`` (default: ``lutfarm.environment.nb201_path()``)."""
    path = Path(path) if path else environment.nb201_path()
    if not path.is_file():
        raise NB201Error(f"NB201 table {path} not found; pass --nb201 PATH to nb201_master.csv "
                         f"(shared/data) or set LUTFARM_NB201")
    return _read(path.resolve())


@lru_cache(maxsize=2)
def _read(path: Path) -> NB201Data:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    missing = [c for c in ("arch_str", *DATASETS.values()) if c not in columns]
    if missing or not rows:
        raise NB201Error(f"{path} is not NAS-Bench-201's table (missing "
                         f"{', '.join(missing) or 'rows'}); use shared/data's nb201_master.csv")
    archs = np.array([parse_arch_str(r["arch_str"]) for r in rows])
    lat_cols = [c for c in columns if c.endswith(("_ms", "_latency"))]
    return NB201Data(path, archs,
                     {name: _floats(rows, col) for name, col in DATASETS.items()},
                     {device_name(c): _floats(rows, c) for c in lat_cols},
                     _floats(rows, "c10_mflops"), _floats(rows, "c10_mparams"))
