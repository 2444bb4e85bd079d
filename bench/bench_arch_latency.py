"""Architecture-level latency predictors on this machine's measured networks (a store that
`bench_fidelity.py` or `lutfarm lut validate` filled), beside the plain LUT sum of the same run.

Usage: python bench/bench_arch_latency.py --db bench-out/fidelity-t1.db [--device local]
"""

from __future__ import annotations

import argparse

from lutfarm.lut import LatencyTable, build_lut
from lutfarm.predictors.arch_latency import evaluate, measured_networks
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--device", default="local")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    runtime = RuntimeConfig(threads=args.threads).key
    with Store(args.db) as store:
        table = LatencyTable(build_lut(store, args.device, runtime))
        archs, ms = measured_networks(store, args.device, runtime, table.layout)
    r = evaluate(table, archs, ms)
    print(f"{len(archs)} measured networks, {r['n_train']} train / {r['n_test']} held out")
    for name in ("plain_lut", "lut+residual", "mlp", "gbm"):
        m = r[name]
        extra = f", train {m['train_s']:.2f} s" if "train_s" in m else ""
        print(f"  {name:<13} ±10 % {m['within_10pct']:6.1%}  ±5 % {m['within_5pct']:6.1%}  "
              f"MAPE {m['mape']:5.1%}  Spearman {m['spearman']:.3f}{extra}")


if __name__ == "__main__":
    main()
