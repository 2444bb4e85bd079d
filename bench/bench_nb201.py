"""NB201 search down to its noise floor: the 12-row table (edgegpu, raspi4, pixel3, eyeriss,
fpga and edgetpu at their 30th and 60th latency percentiles), each method's mean regret after
``--queries`` queries over ``--seeds`` seeds, against the raw oracle and against the best class
mean, beside the single-sample floor (every feasible class queried once: what no query budget
beats). Random search is the baseline of the same run: the figure is each method's class regret
as a ratio of random's.

Usage: python bench/bench_nb201.py [--seeds 20] [--queries 150] [--methods random,evolution]
       [--starts macs|uniform] [--no-canonical] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lutfarm import environment
from lutfarm.search.methods.nb201 import bench, load_nb201

DEVICES = ("edgegpu", "raspi4", "pixel3", "eyeriss", "fpga", "edgetpu")
PERCENTILES = (30, 60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", default=str(environment.nb201_path()))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--methods", default="random,evolution,local,bananas")
    ap.add_argument("--devices", default=",".join(DEVICES))
    ap.add_argument("--starts", choices=("macs", "uniform"), default="macs")
    ap.add_argument("--no-canonical", action="store_true",
                    help="allow two queries in one isomorphism class (the old behaviour)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    methods = tuple(args.methods.split(","))
    if "random" not in methods:
        ap.error("--methods must include random: it is the baseline")
    table = load_nb201(args.nb201)
    rows, t0 = [], time.perf_counter()
    for device in args.devices.split(","):
        for pct in PERCENTILES:
            budget = float(np.nanpercentile(table.latency[device], pct))
            s = bench(table, device, budget, args.queries, args.seeds, methods,
                      canonical=not args.no_canonical, starts=args.starts).summary()
            rows.append({"percentile": pct, **s})
            if not args.json:
                print(_line(rows[-1], methods), flush=True)
    wall = time.perf_counter() - t0
    verdict = _verdict(rows, methods)
    if args.json:
        print(json.dumps({"rows": rows, "verdict": verdict, "wall_s": wall,
                          "starts": args.starts, "canonical": not args.no_canonical}))
        return
    for m in methods:
        v = verdict[m]
        print(f"{m:<10} class regret {v['mean_class_regret']:.3f} (ratio {v['ratio']:.2f}x "
              f"random's = baseline), ≤ 0.1 on {v['rows_within_0.1']}/{len(rows)} rows, within "
              f"0.05 of the floor on {v['rows_near_floor']}/{len(rows)}, worse than random "
              f"beyond 2 standard errors on {v['rows_below_random']} rows")
    print(f"{len(rows)} rows, {args.seeds} seeds, {args.queries} queries, starts {args.starts}, "
          f"{'canonical' if not args.no_canonical else 'raw'} queries, {wall:.0f} s")


def _line(r: dict, methods) -> str:
    cells = "  ".join(f"{m} {r['mean_class_regret'][m]:.3f}/{r['mean_regret'][m]:.3f}"
                      for m in methods)
    return (f"{r['device']:<8} p{r['percentile']} ≤{r['budget_ms']:7.3f} ms "
            f"{r['feasible_classes']:5d} classes  oracle {r['oracle_accuracy']:.2f} class "
            f"{r['class_oracle_accuracy']:.2f} floor {r['floor_class_regret']:.3f} | regret "
            f"class/raw: {cells}")


def _verdict(rows: list[dict], methods) -> dict:
    out = {}
    base = np.array([r["mean_class_regret"]["random"] for r in rows])
    base_se = np.array([r["class_regret_stderr"]["random"] for r in rows])
    for m in methods:
        reg = np.array([r["mean_class_regret"][m] for r in rows])
        se = np.array([r["class_regret_stderr"][m] for r in rows])
        floor = np.array([r["floor_class_regret"] for r in rows])
        out[m] = {"mean_class_regret": float(reg.mean()),
                  "ratio": float(reg.mean() / base.mean()) if base.mean() > 0 else float("nan"),
                  "rows_within_0.1": int((reg <= 0.1).sum()),
                  "rows_near_floor": int((reg <= floor + 0.05).sum()),
                  "rows_below_random": int((reg - base > 2 * np.hypot(se, base_se)).sum())}
    return out


if __name__ == "__main__":
    main()
