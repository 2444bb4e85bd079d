"""NOT A REAL RUNTIME: a stand-in for benchmarks of the farm machinery itself.

Every model "runs" by sleeping ``sleep_ms`` (default 2 ms), so many agents on one small machine
do not compete for its CPU and a scaling benchmark measures the scheduler, not the cores.
Never use its LUTs for anything.
"""

from __future__ import annotations

import time

from agents.runtimes import Loaded


def info(settings: dict) -> dict:
    return {"name": "bench-sleep", "version": "0", "note": "benchmark stand-in, not a runtime",
            "sleep_ms": float(settings.get("sleep_ms") or 2.0)}


def load(path: str, settings: dict) -> Loaded:
    seconds = float(settings.get("sleep_ms") or 2.0) / 1000.0

    def run():
        time.sleep(seconds)

    return Loaded(run, [])
