"""LUT query throughput: vectorised LatencyTable vs a plain Python loop over dicts, same run.

Usage: python bench/bench_query.py [--n 100000] [--lut FILE]  (default: HW-NAS-Bench raspi4)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lutfarm.lut import LatencyTable, import_hwnasbench, load_lut
from lutfarm.lut.hwnasbench import BUNDLED


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--lut", default=None)
    args = ap.parse_args()
    lut = load_lut(args.lut) if args.lut else import_hwnasbench(BUNDLED, "raspi4", "cifar")
    archs = np.random.default_rng(0).integers(0, 9, size=(args.n, 22))
    table = LatencyTable(lut)

    keys = [[c.key for c in row] for row in lut.layout.choice_cases()]
    fixed = sum(lut.latency_ms[c.key] for c in lut.layout.fixed_cases())
    as_lists = archs.tolist()

    def loop():
        return [fixed + sum(lut.latency_ms[keys[i][op]] for i, op in enumerate(a))
                for a in as_lists]

    fast = table.latency(archs)
    assert np.allclose(fast, loop())
    t_vec = best_of(lambda: table.latency(archs), 7)
    t_loop = best_of(loop, 2)
    print(f"{args.n} archs: vectorised {args.n / t_vec:,.0f} archs/s, python loop "
          f"{args.n / t_loop:,.0f} archs/s, ratio {t_loop / t_vec:.1f}x (goal >= 1,000,000 archs/s)")


if __name__ == "__main__":
    main()
