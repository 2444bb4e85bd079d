"""LUT fidelity with blocks measured in context: does pricing adjacent pairs make fp32 hold?

From a fresh store (or ``--db`` with a profiled LUT), on this machine: profile the CIFAR
layout, measure ``--pairs`` adjacent block pairs (adaptively chosen, each group timed in turn
with its single blocks and the empty model), then ``--archs`` networks interleaved with their
blocks. Every prediction is scored on held-out networks over ``--splits`` random splits, at
most ``--fit`` networks fitting a correction:

- plain (Σ Tᵢ), overhead (Σ (Tᵢ − o) + o), pairs (overhead + measured/predicted pair deltas):
  no network fits them;
- corrected (the in-context ridge over op shares on the overhead sum) and pairs+corrected
  (the same ridge on the pairs' sum).

The measurements are written to ``--out``/pairs-<runtime key>.json; ``--from`` re-scores one.
Measurement cost is reported in multiples of the plain LUT's case count.

Usage: python bench/bench_pair_fidelity.py [--runtime onnxruntime] [--threads 1] [--pairs 226]
       [--archs 60] [--fit 40] [--splits 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lutfarm.workflows.pair_fidelity import PairFidelityData, collect, score_splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--pairs", type=int, default=226, help="pairs measured (default 2x the LUT)")
    ap.add_argument("--archs", type=int, default=60)
    ap.add_argument("--fit", type=int, default=40, help="networks fitting a correction, at most")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--db", type=Path, help="a store with the LUT (default: a fresh one)")
    ap.add_argument("--from", dest="source", type=Path, help="re-score a saved measurement")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.source:
        data = PairFidelityData.load(args.source)
    else:
        from lutfarm.profiler.runtime_config import RuntimeConfig
        runtime = RuntimeConfig(args.runtime, threads=args.threads, dtype=args.dtype)
        args.out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        data = collect(runtime, args.pairs, args.archs, db=args.db or
                       args.out / f"pairs-{runtime.key}.db", fresh=args.db is None)
        data.wall_s = time.time() - t0
        data.save(args.out / f"pairs-{runtime.key}.json")
    result = score_splits(data, args.fit, args.splits)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{data.runtime}: {len(data.archs)} networks, {result['pairs_measured']} pairs "
          f"measured ({result['cost_vs_lut']:.2f}x the LUT's {result['lut_cases']} cases), "
          f"{result['n_fit']} fit / {result['n_test']} held out, {args.splits} splits")
    for name, m in result["models"].items():
        print(f"  {name:<17} ±10 % {m['within_10pct']:6.1%}  ±5 % {m['within_5pct']:6.1%}  "
              f"ρ {m['spearman']:.4f}  MAPE {m['mape']:5.1%}  pred/meas {m['mean_ratio']:.3f}")
    print(f"  blocks vs stored LUT: median {np.median(data.block_speed):.2f}x")
    c = result["error_correlates"]
    print(f"  corrected error (sd {c['error_sd']:.3f}, {c['n']} networks) vs: " + ", ".join(
        f"{k} ρ {v['rho']:+.2f} (p {v['p']:.2g})" for k, v in c.items() if isinstance(v, dict)))
    if data.export.get("cold"):
        e = data.export
        print(f"  network export: {e['cold']} cold of {e['networks']}, {e['wall_s']:.0f} s, "
              f"{e['s_per_cold_network']:.2f} s per cold network")


if __name__ == "__main__":
    main()
