"""TFLite export throughput for the MCUNet space: cases per minute exported by one process
against ``get_many``'s worker processes, in the same run, each into a fresh cache.

Usage: python bench/bench_export.py [--cases 16] [--dtype int8] [--workers N]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=16)
    ap.add_argument("--dtype", default="int8", choices=["fp32", "int8"])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
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
