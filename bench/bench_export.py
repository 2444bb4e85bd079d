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
import shutil
import tempfile
import time
from pathlib import Path

from lutfarm.profiler.export.cache import ModelCache
from lutfarm.spaces import get_layout


def _cold(cases: dict, dtype: str, workers: int) -> tuple[float, ModelCache]:
    """Seconds per case exported into a fresh cache (kept for a cached read; the caller
    removes it)."""
    d = tempfile.mkdtemp(prefix="bench-export-")
    cache = ModelCache(Path(d))
    t0 = time.perf_counter()
    out = cache.get_many(cases, "tflite", dtype, workers=workers)
    wall = time.perf_counter() - t0
    bad = [k for k, v in out.items() if not hasattr(v, "path")]
    if bad:
        raise SystemExit(f"export failed: {bad[:2]}")
    return wall / len(cases), cache


def rate(cases: dict, dtype: str, workers: int) -> float:
    """Cases exported per minute into a fresh cache."""
    per_case, cache = _cold(cases, dtype, workers)
    shutil.rmtree(cache.root, ignore_errors=True)
    return 60 / per_case


def networks(n: int, dtype: str, workers: int) -> None:
    """Whole networks: BatchNorm left to the converter (the exporter before revision 3, the
    baseline) against folded first, one process each, then folded with the workers."""
    from lutfarm.lut import import_hwnasbench
    from lutfarm.lut.hwnasbench import BUNDLED
    from lutfarm.lut.query import LatencyTable
    from lutfarm.profiler.export import tflite
    from lutfarm.spaces.fbnet import NetworkCase
    from lutfarm.workflows.validate_networks import sample_archs

    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))   # only for its extremes
    archs = sample_archs(table, 3 * n, seed=7)
    layout = get_layout("fbnet", "cifar")
    sets = [{c.key: c for c in (NetworkCase(layout, a) for a in archs[k * n:(k + 1) * n])}
            for k in range(3)]
    fold = tflite.fold_batchnorm
    tflite.fold_batchnorm = lambda module: module       # in this process only: 1 worker
    try:
        unfolded, c0 = _cold(sets[0], dtype, 1)
    finally:
        tflite.fold_batchnorm = fold
    folded, c1 = _cold(sets[1], dtype, 1)
    parallel, c2 = _cold(sets[2], dtype, workers)
    t0 = time.perf_counter()
    for s, c in zip(sets, (c0, c1, c2)):
        ModelCache(c.root).get_many(s, "tflite", dtype)
    cached = (time.perf_counter() - t0) / (3 * n)
    for c in (c0, c1, c2):
        shutil.rmtree(c.root, ignore_errors=True)
    print(f"FBNet CIFAR networks, TFLite {dtype}, {n} per row, seconds per network:\n"
          f"  cold, BatchNorm left to the converter, 1 process: {unfolded:.2f} (baseline)\n"
          f"  cold, BatchNorm folded first, 1 process:          {folded:.2f} = "
          f"{unfolded / folded:.2f}x faster\n"
          f"  cold, folded, {workers} worker processes (wall):       {parallel:.2f} = "
          f"{unfolded / parallel:.2f}x faster\n"
          f"  cached:                                           {cached:.4f}")


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
