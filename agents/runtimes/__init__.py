"""Runtimes the agent can time, registered by name and imported only when asked for.

A runtime module provides ``info(settings) -> dict`` (name, version, what it will use) and
``load(path, settings) -> Loaded``. Adding a runtime = one module + one line in RUNTIMES.
"""

from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

# name -> (module, pip package that provides it)
RUNTIMES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("lutfarm_agent.runtimes.onnxruntime_rt", "onnxruntime"),
    "litert": ("lutfarm_agent.runtimes.litert_rt", "ai-edge-litert"),
    "tflite": ("lutfarm_agent.runtimes.tflite_rt", "tflite-runtime 'numpy<2'"),
    "tflm": ("lutfarm_agent.runtimes.tflm_rt", "tflite-micro (an MCU behind serial also needs pyserial)"),
    # a labelled stand-in that only sleeps: for benchmarks of the farm machinery, never LUTs
    "bench-sleep": ("lutfarm_agent.runtimes.bench_sleep_rt", "(built in)"),
}


class RuntimeUnavailable(RuntimeError):
    """The device lacks the runtime or cannot use it."""


class UnsupportedOp(ValueError):
    """The runtime (or the board's firmware) lacks an op the model uses; the message names it."""


class Loaded(NamedTuple):
    """A model ready to run: ``run()`` makes one inference on pre-made inputs.

    ``memory`` is the runtime's own peak-memory figure (``{"peak_bytes", "method"}``, e.g. a
    TFLite-Micro arena) where it has one; otherwise the agent measures RSS growth. ``clock``
    replaces the host's clock where the device times itself (an MCU's microsecond timer)."""

    run: Callable[[], object]
    inputs: list          # name, shape, dtype of each input
    details: dict | None = None   # what the runtime really used (delegate, arena, …)
    memory: dict | None = None
    clock: Callable[[], float] | None = None


def package_version(package: str) -> str:
    """The installed version of a runtime's package, without importing it."""
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return "unknown"


def get_runtime(name: str):
    if name not in RUNTIMES:
        raise RuntimeUnavailable("unknown runtime {!r}; this agent knows: {}".format(
            name, ", ".join(RUNTIMES)))
    module, package = RUNTIMES[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeUnavailable(f"runtime {name!r} is not installed on this device ({exc}); "
                                 f"install it with: pip install {package}") from None
