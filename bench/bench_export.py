"""TFLite export throughput for the MCUNet space: cases per minute exported by one process
against ``get_many``'s worker processes, in the same run, each into a fresh cache.
``--networks N``: whole FBNet CIFAR networks instead (what ``lut validate --runtime litert``
converts): seconds per network cold (fresh cache, one process, then the workers) and cached
(the same cache read again), the cached read being the baseline.

Usage: python bench/bench_export.py [--cases 16] [--dtype int8] [--workers N] [--networks N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from lutfarm.profiler.export.cache import ModelCache
from lutfarm.spaces import get_layout


def rate(cases: dict, dtype: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        cache = ModelCache(Path(d))
        t0 = time.perf_counter()
        out = cache.get_many(cases, "tflite", dtype, workers=workers)
        wall = time.perf_counter() - t0
    bad = [k for k, v in out.items() if not hasattr(v, "path")]
    if bad:
        raise SystemExit(f"export failed: {bad[:2]}")
    return len(cases) / wall * 60


def networks(n: int, dtype: str, workers: int) -> None:
    from lutfarm.lut import import_hwnasbench
    from lutfarm.lut.hwnasbench import BUNDLED
    from lutfarm.lut.query import LatencyTable
    from lutfarm.spaces.fbnet import NetworkCase
    from lutfarm.workflows.validate_networks import sample_archs

    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))   # only for its extremes
    archs = sample_archs(table, 2 * n, seed=7)
    layout = get_layout("fbnet", "cifar")
    sets = [{c.key: c for c in (NetworkCase(layout, a) for a in part)}
            for part in (archs[:n], archs[n:])]
    with tempfile.TemporaryDirectory() as d:
        cache = ModelCache(Path(d))
        t0 = time.perf_counter()
        out = cache.get_many(sets[0], "tflite", dtype, workers=1)
        one = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        out.update(cache.get_many(sets[1], "tflite", dtype, workers=workers))
        many = (time.perf_counter() - t0) / n
        bad = [k for k, v in out.items() if not hasattr(v, "path")]
        if bad:
            raise SystemExit(f"export failed: {bad[:2]}")
        t0 = time.perf_counter()
        for s in sets:
            ModelCache(Path(d)).get_many(s, "tflite", dtype)
        cached = (time.perf_counter() - t0) / (2 * n)
    print(f"FBNet CIFAR networks, TFLite {dtype}: cached {cached * 1000:.1f} ms/network "
          f"(baseline); cold {one:.2f} s/network in 1 process = {one / cached:.0f}x, "
          f"{many:.2f} s/network wall with {workers} workers = {many / cached:.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=16)
    ap.add_argument("--dtype", default="int8", choices=["fp32", "int8"])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--networks", type=int, default=0,
                    help="time N whole FBNet networks (cold and cached) instead of blocks")
    args = ap.parse_args()
    if args.networks:
        networks(args.networks, args.dtype, args.workers)
        return
    layout = get_layout("mcunet").with_resolutions([96])
    blocks = [c for c in layout.unique_cases() if c.kind == "MBConv"]
    step = max(1, len(blocks) // args.cases)
    cases = {c.key: c for c in blocks[::step][:args.cases]}
    one = rate(cases, args.dtype, 1)
    many = rate(cases, args.dtype, args.workers)
    print(f"MCUNet 96 px, {len(cases)} blocks, TFLite {args.dtype}: 1 process {one:.1f} "
          f"cases/min (baseline), {args.workers} worker processes {many:.1f} cases/min = "
          f"{many / one:.2f}x")


if __name__ == "__main__":
    main()
