"""What pricing archs through LatencyTable (the only arch-latency sum: arch validation and
missing-entry checks included) costs a search, against a bare gather-and-sum over the same
matrix measured in the same run (what search/objectives/space.py did before, without the checks).

Usage: python bench/bench_latency_metric.py [--population 100] [--rounds 5000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lutfarm.lut import LatencyTable, import_hwnasbench
from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.search.objectives.space import fbnet_space, lut_latency


def best_of(fn, rounds: int, repeats: int = 5) -> float:
    """Seconds per call: best of ``repeats`` runs of ``rounds`` calls (noise only adds)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - t0) / rounds)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5000)
    args = ap.parse_args()
    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))
    pop = fbnet_space(table.layout).random(args.population, np.random.default_rng(0))
    metric = lut_latency(table)
    rows = np.arange(table.matrix.shape[0])

    def bare():
        return table.matrix[rows, pop].sum(axis=1) + table.fixed_ms

    assert np.allclose(bare(), metric(pop))
    base = best_of(bare, args.rounds)
    plain = best_of(lambda: metric(pop), args.rounds)
    overhead = lut_latency(table, "overhead") if table.lut.overhead_ms is not None else None
    print(f"population {args.population}: bare gather-sum {base * 1e6:.1f} µs/call (baseline), "
          f"LatencyTable plain {plain * 1e6:.1f} µs/call = {plain / base:.2f}x baseline"
          + (f", overhead {best_of(lambda: overhead(pop), args.rounds) / base:.2f}x"
             if overhead else ""))


if __name__ == "__main__":
    main()
