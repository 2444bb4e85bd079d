"""Every environment variable lutfarm reads, and the defaults they override, in one place.

Library code takes paths as arguments; these functions give the defaults that the command
line (and a notebook) fall back on. Nothing here writes to ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Exported models and the local agent bundle: $LUTFARM_CACHE, else ~/.cache/lutfarm."""
    base = os.environ.get("LUTFARM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lutfarm")
    return Path(base)


def db_path() -> str | Path:
    """The measurement store: $LUTFARM_DB (a file, or a ``postgresql://`` URL of a lab's shared
    store, kept a string), else lutfarm.db in the working directory."""
    value = os.environ.get("LUTFARM_DB", "lutfarm.db")
    return value if value.startswith(("postgresql://", "postgres://")) else Path(value)


def data_dir() -> Path:
    """Public measured data (nb201_master.csv, help_fbnet_latency.csv, device_splits.json):
    $LUTFARM_DATA, else ../shared/data from the working directory (a lab's checkout layout)."""
    return Path(os.environ.get("LUTFARM_DATA") or Path("..") / "shared" / "data")


def nb201_path() -> Path:
    """NAS-Bench-201's table: $LUTFARM_NB201, else nb201_master.csv in ``data_dir()``."""
    return Path(os.environ.get("LUTFARM_NB201") or data_dir() / "nb201_master.csv")


def third_party_dir() -> Path:
    """The firmware's third-party sources (tflm-tree.tar.gz, tflm-tree-reference.tar.gz,
    or folders of the same names without .tar.gz):
    $LUTFARM_THIRD_PARTY, else ../shared/third_party from the working directory."""
    return Path(os.environ.get("LUTFARM_THIRD_PARTY") or Path("..") / "shared" / "third_party")


def firmware_cache_dir() -> Path:
    """Firmware builds and unpacked trees: $LUTFARM_FIRMWARE_CACHE, else ``cache_dir()/firmware``
    (kept apart so that a suite with a throw-away model cache keeps its minutes-long builds)."""
    return Path(os.environ.get("LUTFARM_FIRMWARE_CACHE") or cache_dir() / "firmware")


def firmware_src() -> Path | None:
    """Another checkout's firmware/ folder to build from: $LUTFARM_FIRMWARE_SRC, else None."""
    value = os.environ.get("LUTFARM_FIRMWARE_SRC")
    return Path(value) if value else None


def torchrun_rank() -> tuple[int, int]:
    """(world size, this process's rank) as torchrun sets them: $WORLD_SIZE and $RANK, else
    (1, 0) for a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
