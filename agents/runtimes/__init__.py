"""Runtimes the agent can time: one spec per runtime, its code imported only when asked for.

A runtime module provides ``info(settings) -> dict`` (name, version, what it will use) and
``load(path, settings) -> Loaded``. Its ``RuntimeSpec`` below is the one home of everything
else lutfarm knows about it: the agent (which module), the controller's RuntimeConfig (model
format, dtypes, providers, defaults), provisioning (packages) and the command line's
choices. Adding a runtime = one module + one entry in SPECS (and tests/test_runtimes.py
then drives it through the same contract as every other).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, NamedTuple


@dataclass(frozen=True)
class RuntimeSpec:
    """What lutfarm knows about a runtime besides its code, by name: what it runs, what it
    needs, and how it behaves where the controller or the agent must treat it differently."""

    module: str                  # the agent module with info() and load()
    model_format: str            # what the controller exports for it: "onnx" or "tflite"
    dtypes: tuple[str, ...]      # precisions it can time
    default_provider: str = ""   # spelled out in LUT keys ("" = the runtime's own CPU default)
    providers: tuple[str, ...] = ()   # named providers it takes; () = any name (ORT's EPs)
    delegates: bool = False      # also takes "delegate:<library.so>"
    packages: tuple[str, ...] = ()    # pip requirements a device's environment needs
    max_threads: int | None = None   # None: any
    checked_by: str = ""         # the export check that speaks for its results ("" = none)
    stand_in: bool = False       # not a real runtime: never build a LUT from it
    # interleaved jobs time it sample by sample in turn up to this many threads (None: any);
    # above it, its cases are timed one after another (see takes_turns)
    turns_up_to_threads: int | None = None
    serial_board: bool = False   # it can run on a microcontroller behind a serial port
    kernels_are_provider: bool = False   # a board's kernel library is its provider (tflm)

    @property
    def install(self) -> str:
        """How to get it, for error messages."""
        if not self.packages:
            return "(built in)"
        return "pip install " + " ".join(
            f"'{p}'" if "<" in p or ">" in p else p for p in self.packages)


SPECS = {
    "onnxruntime": RuntimeSpec(module="lutfarm_agent.runtimes.onnxruntime_rt",
                               model_format="onnx", dtypes=("fp32",),
                               packages=("onnxruntime",)),
    "litert": RuntimeSpec(module="lutfarm_agent.runtimes.litert_rt", model_format="tflite",
                          dtypes=("fp32", "int8"), default_provider="xnnpack",
                          providers=("xnnpack", "none"), delegates=True,
                          packages=("ai-edge-litert",), checked_by="litert"),
    # tflite-runtime's last release (2.14) was built against numpy 1; its XNNPACK pool keeps
    # spinning after a run and has no knob to stop it: at 2 threads here, blocks timed in
    # turn ran a median 7x their LUT times
    "tflite": RuntimeSpec(module="lutfarm_agent.runtimes.tflite_rt", model_format="tflite",
                          dtypes=("fp32", "int8"), default_provider="xnnpack",
                          providers=("xnnpack", "none"), delegates=True,
                          packages=("tflite-runtime", "numpy<2"), checked_by="litert",
                          turns_up_to_threads=1),
    # an MCU behind a serial port also needs pyserial on its host
    "tflm": RuntimeSpec(module="lutfarm_agent.runtimes.tflm_rt", model_format="tflite",
                        dtypes=("fp32", "int8"), default_provider="reference",
                        providers=("reference", "cmsis-nn"),
                        packages=("tflite-micro", "pyserial"), max_threads=1,
                        checked_by="tflite-micro", serial_board=True,
                        kernels_are_provider=True),
    # a labelled stand-in that only sleeps: for benchmarks of the farm machinery, never LUTs
    "bench-sleep": RuntimeSpec(module="lutfarm_agent.runtimes.bench_sleep_rt",
                               model_format="onnx", dtypes=("fp32",), stand_in=True),
}
RUNTIMES = tuple(SPECS)


class RuntimeUnavailable(RuntimeError):
    """The device lacks the runtime or cannot use it."""


class RuntimeMissing(RuntimeUnavailable):
    """The runtime's package is not installed on the device (as opposed to installed but
    unusable there)."""


class UnsupportedOp(ValueError):
    """The runtime (or the board's firmware) lacks an op the model uses; the message names it."""


class Loaded(NamedTuple):
    """A model ready to run: ``run()`` makes one inference on pre-made inputs.

    ``memory`` is the runtime's own peak-memory figure (``{"peak_bytes", "method"}``, e.g. a
    TFLite-Micro arena) where it has one; otherwise the agent measures RSS growth. ``clock``
    replaces the host's clock where the device times itself (an MCU's microsecond timer);
    ``deterministic``: that clock gives the same work the same time (an emulated MCU).
    ``profile(runs)`` (where the runtime has a per-operator profiler) runs the model ``runs``
    times under it: ``{"method", "runs", "nodes": [{"node", "op", "ms"}, …]}``, mean ms per
    run of each node, in execution order."""

    run: Callable[[], object]
    inputs: list          # name, shape, dtype of each input
    details: dict | None = None   # what the runtime really used (delegate, arena, …)
    memory: dict | None = None
    clock: Callable[[], float] | None = None
    deterministic: bool = False   # the clock counts work, not time (an emulator's -icount)
    profile: Callable[[int], dict] | None = None


class DynamicShape(ValueError):
    """A model input with a dimension the file leaves open and the job did not give."""


def input_shape(name: str, declared, given: dict | None) -> list:
    """The shape to feed ``name``: the job's (``settings["shapes"]``, from ``--shape``) or the
    model's own; a dimension left open (None, a symbol, -1) with no shape given is refused."""
    given = (given or {}).get(name)
    if given is not None:
        if len(given) != len(declared):
            raise ValueError("input {!r} has {} dimensions, --shape gave {}".format(
                name, len(declared), "x".join(map(str, given))))
        return [int(d) for d in given]
    shape = [d if isinstance(d, int) and d > 0 else None for d in declared]
    if None in shape:
        spelled = "x".join(str(d) if d else "?" for d in shape)
        raise DynamicShape("input {!r} has a dynamic shape ({}); give it with --shape "
                           "{}:{}".format(name, spelled, name, "x".join(
                               str(d) if d else "1" for d in shape)))
    return shape


def package_version(package: str) -> str:
    """The installed version of a runtime's package, without importing it."""
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return "unknown"


def get_runtime(name: str):
    if name not in SPECS:
        raise RuntimeUnavailable("unknown runtime {!r}; this agent knows: {}".format(
            name, ", ".join(SPECS)))
    spec = SPECS[name]
    try:
        return importlib.import_module(spec.module)
    except ImportError as exc:
        raise RuntimeMissing(f"runtime {name!r} is not installed on this device ({exc}); "
                                 f"install it with: {spec.install}") from None


def takes_turns(runtime: str, threads: int) -> bool:
    """Whether an interleaved job of this runtime is timed sample by sample in turn (its
    spec's ``turns_up_to_threads``)."""
    limit = SPECS[runtime].turns_up_to_threads if runtime in SPECS else None
    return limit is None or threads <= limit
