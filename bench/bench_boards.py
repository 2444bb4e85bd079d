"""Emulated ARM board figures (tests/armboards.py boards: qemu-user, NOT hardware timings).

1. provisioning per board, first run (fresh work directory) and second run (already there):
   wall seconds, wheels and bytes pushed over SFTP;
2. measuring rate per board: cases per second of a tflite-runtime fp32 campaign on the
   CIFAR layout's `*_H4_*` cases, against this machine timing the same models with LiteRT in
   the same run (the ratio is the price of emulation plus SSH, not an ARM-vs-x86 figure).

Needs root (network namespaces, mounts), debootstrap-built boards (built on first use, minutes)
and the tflite extra. Usage: sudo .venv/bin/python bench/bench_boards.py [--boards arm64,armhf]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from armboards import BOARDS, start_board, unavailable  # noqa: E402

from lutfarm.profiler.devices.provision import provision  # noqa: E402
from lutfarm.profiler.devices.record import LOCAL  # noqa: E402
from lutfarm.profiler.export.cache import ModelCache  # noqa: E402
from lutfarm.profiler.runtime_config import RuntimeConfig  # noqa: E402
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign  # noqa: E402
from lutfarm.profiler.store import Store  # noqa: E402
from lutfarm.spaces import get_layout  # noqa: E402
from lutfarm_agent.timing import TimingSettings  # noqa: E402
from sshd import keygen  # noqa: E402

LAYOUT = get_layout("fbnet", "cifar")
ONLY = "*_H4_*"
TIMING = TimingSettings(warmup_runs=2, warmup_s=0.0, min_runs=10, min_s=0.02, max_s=0.2,
                        target_rel_ci=0.05, retries=0)
# What each board runs: (runtimes, version pins). onnxruntime 1.22 is the newest that imports
# under qemu-user 7.2; Debian 11's glibc 2.31 is too old for tflite-runtime 2.14's wheels.
PLAN = {"arm64": (("onnxruntime", "tflite"), {"onnxruntime": "==1.22.0"}),
        "armhf": (("tflite",), {}),
        "arm64-py39": (("onnxruntime",), {"onnxruntime": "==1.19.2"})}


def rate(store_path: Path, device, runtime: RuntimeConfig, cache) -> tuple[int, float]:
    with Store(store_path) as store:
        t0 = time.perf_counter()
        s = run_campaign(store, LAYOUT, device, runtime,
                         CampaignSettings(timing=TIMING, cache=cache, only=ONLY))
        wall = time.perf_counter() - t0
    if s.failed or s.device_errors:
        raise SystemExit(f"{device.name}: {s.failed[:2]} {s.device_errors}")
    return s.measured, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="arm64,armhf,arm64-py39")
    args = ap.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"no emulated boards here: {why}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = tmp / "id"
        pub = keygen(key)
        known = tmp / "known_hosts"
        known.touch()
        cache = ModelCache(tmp / "cache")
        n, wall = rate(tmp / "local.db", LOCAL, RuntimeConfig("litert"), cache)   # exports too
        n, wall = rate(tmp / "local2.db", replace(LOCAL, kind="local-again"),
                       RuntimeConfig("litert"), cache)
        local_rate = n / wall
        print(f"this machine, LiteRT fp32 t1: {n} cases in {wall:.1f} s = {local_rate:.2f} "
              f"cases/s (baseline)")
        for i, name in enumerate(a.strip() for a in args.boards.split(",")):
            board = start_board(BOARDS[name], 70 + i, pub, key, known)
            try:
                runtimes, pins = PLAN[name]
                device = board.device(workdir=f"lutfarm-bench-{int(time.time())}",
                                      runtimes=runtimes, packages=tuple(pins.items()))
                for attempt in ("first", "second"):
                    t0 = time.perf_counter()
                    r = provision(device)
                    print(f"{name} (EMULATED) provision, {attempt} run: "
                          f"{time.perf_counter() - t0:.1f} s, {r.wheels_uploaded} wheels, "
                          f"{r.bytes_uploaded / 1e6:.1f} MB pushed, numpy {r.numpy_source or 'as before'}, "
                          f"{r.installed}")
                for runtime in runtimes:       # the campaign finds the provisioned venv
                    rt = RuntimeConfig(runtime)
                    n, wall = rate(tmp / f"{name}-{runtime}.db", device, rt, cache)
                    print(f"{name} (EMULATED) {rt.key}: {n} cases in {wall:.1f} s = "
                          f"{n / wall:.2f} cases/s = {n / wall / local_rate:.3f}x this machine")
            finally:
                board.stop()


if __name__ == "__main__":
    main()
