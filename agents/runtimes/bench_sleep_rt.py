"""NOT A REAL RUNTIME: a stand-in for benchmarks and tests of the farm machinery itself.

Every model "runs" by sleeping ``sleep_ms`` (default 2 ms), so many agents on one small machine
do not compete for its CPU and a scaling benchmark measures the scheduler, not the cores.
With ``native_noise`` it also writes to fd 1 from C while it loads and first runs a model, as
chatty native runtimes do (one line is a forged protocol event): the protocol's test of its
framing. With ``LUTFARM_STANDIN_CRASH=SIGSEGV`` (or another signal name) in its environment,
asking for its info kills the process with that signal, as a runtime built for another core
does on import: the test of probing each runtime in its own process. Never use its LUTs for
anything.
"""

from __future__ import annotations

import os
import signal
import time

from lutfarm_agent.protocol import FRAME
from lutfarm_agent.runtimes import Loaded

NOISE = (b"native noise from C: loading kernels\n",
         FRAME.encode() + b'{"event":"done","measured":99,"failed":0}\n')


def info(settings: dict) -> dict:
    crash = os.environ.get("LUTFARM_STANDIN_CRASH")
    if crash:
        os.kill(os.getpid(), getattr(signal, crash))
    return {"name": "bench-sleep", "version": "0", "note": "benchmark stand-in, not a runtime",
            "sleep_ms": float(settings.get("sleep_ms") or 2.0)}


def _native_noise() -> None:
    import ctypes
    libc = ctypes.CDLL(None)
    for text in NOISE:
        libc.write(1, text, len(text))


def load(path: str, settings: dict) -> Loaded:
    seconds = float(settings.get("sleep_ms") or 2.0) / 1000.0
    noisy = [bool(settings.get("native_noise"))] * 2
    if noisy.pop():
        _native_noise()

    def run():
        if noisy and noisy.pop():
            _native_noise()
        time.sleep(seconds)

    return Loaded(run, [])
