"""TFLite-Micro: the ``tflite-micro`` package's host interpreter, or a real MCU over serial.

A microcontroller has no allocator, so a model runs in one tensor arena whose size the
firmware fixes at build time. The smallest arena that lets the model run is found by
bisection (TFLite-Micro fails cleanly when the arena is short) and reported as the block's
peak memory: that is the number MCUNet's 256 KB / 512 KB budgets constrain. Settings:
``arena_limit`` (bytes, default 64 MiB on the host) and, for a board, ``serial`` (the port)
and ``baud`` (see lutfarm_agent.mcu).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from lutfarm_agent.protocol import one_line
from lutfarm_agent.quiet import QuietStderr
from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable, UnsupportedOp, package_version
from lutfarm_agent.runtimes.tflite_common import random_input

ARENA_ALIGN = 16
HOST_ARENA_LIMIT = 64 << 20


class ArenaFailure(NamedTuple):
    """Why a model did not run in an arena: an op TFLite-Micro lacks, or anything else."""

    unsupported_op: bool
    message: str


def explain(log: str, exc: Exception) -> ArenaFailure:
    """TFLite-Micro's log + exception -> one line, naming an unsupported op where it is one."""
    for line in log.splitlines():
        if "Didn't find op for builtin opcode" in line or "unsupported" in line.lower():
            return ArenaFailure(True, "unsupported op in TFLite-Micro: " + line.strip()[:200])
    return ArenaFailure(False, one_line(exc, 300))


def smallest_arena(works, limit: int, start: int = 4096, floor: int = 0) -> int:
    """Smallest ARENA_ALIGN multiple in (floor, limit] for which ``works(size)`` holds
    (monotone; ``floor`` is known not to work, e.g. below the bytes the interpreter said it used).

    Doubles from ``start`` to find a working size, then bisects; raises ValueError when even
    ``limit`` does not work."""
    lo, hi = floor, min(start, limit)
    while not works(hi):
        if hi >= limit:
            raise ValueError(f"no tensor arena up to {limit} bytes lets TFLite-Micro run this model"
                             )
        lo, hi = hi, min(hi * 2, limit)
    while hi - lo > ARENA_ALIGN:
        mid = (lo + hi) // 2 // ARENA_ALIGN * ARENA_ALIGN
        if mid <= lo:
            break
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi


def on_board(settings: dict) -> bool:
    """A microcontroller (real behind ``serial``, or emulated) rather than the host interpreter."""
    return bool(settings.get("serial") or settings.get("emulator"))


def info(settings: dict) -> dict:
    if on_board(settings):
        from lutfarm_agent.mcu.harness import board_info
        return board_info(settings)
    if settings.get("provider") not in (None, "", "reference"):
        raise RuntimeUnavailable("the TFLite-Micro host interpreter has reference kernels only; "
                                 f"{settings['provider']} kernels run on a board's firmware")
    from tflite_micro import runtime  # noqa: F401 - fails here when it is not installed
    return {"name": "tflm", "version": package_version("tflite-micro"), "target": "host interpreter",
            "kernels": "reference", "threads": 1}


def _host_interpreter(data: bytes, arena: int):
    from tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    rng = np.random.default_rng(0)
    d = it.get_input_details(0)     # lutfarm's cases have one input
    shape = [int(s) for s in d["shape"]]
    it.set_input(random_input(shape, d["dtype"], rng), 0)
    it.invoke()
    return it, [{"name": "input0", "shape": shape, "dtype": np.dtype(d["dtype"]).name}]


def probe_arena(data: bytes, size: int) -> ArenaFailure | None:
    """None if the model runs in an arena of ``size`` bytes, else TFLite-Micro's reason.

    Each try runs in a forked child: after one failed allocation the host interpreter can
    crash on the next one in the same process (seen with tflite-micro 0.dev2026), and a
    child's crash only means "no"."""
    if not hasattr(os, "fork"):
        return _try_arena(data, size)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:                           # child: try, report, leave without cleanup
        os.close(read_fd)
        try:
            failure = _try_arena(data, size)
            if failure is not None:
                tag = b"O" if failure.unsupported_op else b"A"
                os.write(write_fd, tag + failure.message.encode()[:4000])
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ArenaFailure(False, f"TFLite-Micro crashed (signal {os.WTERMSIG(status)}) with "
                                   f"an arena of {size} bytes")
    if not answer:
        return None
    return ArenaFailure(answer[:1] == b"O", answer[1:].decode(errors="replace"))


def _try_arena(data: bytes, size: int) -> ArenaFailure | None:
    with QuietStderr() as quiet:
        try:
            _host_interpreter(data, size)
            return None
        except Exception as exc:
            failure = exc
    return explain(quiet.text, failure)


def find_arena(data: bytes, limit: int) -> int:
    """The smallest working arena (bytes); UnsupportedOp, or ValueError naming the limit."""
    errors = []

    def works(size: int) -> bool:
        failure = probe_arena(data, size)
        if failure is None:
            return True
        if failure.unsupported_op:
            raise UnsupportedOp(failure.message)
        errors.append(failure.message)
        return False

    try:
        return smallest_arena(works, limit)
    except UnsupportedOp:
        raise
    except ValueError as exc:
        raise ValueError("{} (last error: {}); raise the device's arena_limit if it has the "
                         "memory".format(exc, errors[-1] if errors else "none")) from None


def load(path: str, settings: dict) -> Loaded:
    if on_board(settings):
        from lutfarm_agent.mcu.harness import load_on_board
        return load_on_board(path, settings)
    with open(path, "rb") as f:
        data = f.read()
    arena = find_arena(data, int(settings.get("arena_limit") or HOST_ARENA_LIMIT))
    with QuietStderr():
        it, described = _host_interpreter(data, arena)
    return Loaded(it.invoke, described, details={"arena_bytes": arena, "kernels": "reference",
                                             "model_bytes": len(data)},
                  memory={"peak_bytes": arena, "method": "tflm-arena"})
