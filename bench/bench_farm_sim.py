"""A lab larger than this machine: the farm model (lutfarm.workflows.farm_sim) fitted to the
costs ``bench_farm_scale.py --json`` measured, checked against that run's real 3- and 16-board
campaigns, then run for 16-256 boards and 1-4 controllers on a PostgreSQL store.

Fitted from the measured run (each a ratio or a figure of the same run):
- controller CPU per case and per board: least squares over its 1-controller rows of
  (controller CPU) = a x boards + b x cases, per store kind;
- a job's overhead on the board: least squares of (the agent's job time - cases x case time)
  = c + d x cases over the 1-board run's jobs (d: per-case extra, added to each case);
- a board's start (first span to first job) alone: the 1-board run's; its own CPU for it and per
  case: the boards' CPU at 1 board with the full and a tenth of the cases;
- commit and claim latencies: measured on each store with one client.
Check: the model with those costs, the boards sharing one CPU as this machine's emulated boards
do, against the real rows' wall time and efficiency (goal: within 15 %).

Predictions (a real farm: every board its own CPU): each board gets ``--cases-per-board`` cases
whose durations are a real Raspberry Pi 4's block latencies (HW-NAS-Bench's FBNet LUT, both
layouts, the copy bundled in lut/data) timed under lutfarm's default rule: ``--init-ms`` to load the model, then
(warm-up runs + ``--samples`` samples) x latency, at most warm-up + max_s. The PostgreSQL server
is taken to serve ``--store-cores`` commits at once at the measured latency.

Usage: python bench/bench_farm_scale.py --json > scale.json
       python bench/bench_farm_sim.py --from scale.json [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np

from lutfarm.workflows.farm_sim import FarmCosts, FarmScenario, simulate
from lutfarm_agent.timing import TimingSettings

LUT = Path(__file__).resolve().parents[1] / "lut" / "data" / "hwnasbench_fbnet_lut.csv"


def fit(data: dict, store: str) -> tuple[FarmCosts, float]:
    """The costs of one store kind's run, and the per-case extra to add to each case."""
    rows = [r for r in data["rows"] if r["store"] == store and r["controllers"] == 1]
    case_s = float(data["settings"]["case_s"])
    boards = np.array([r["boards"] for r in rows], float)
    cases = np.array([r["measured"] for r in rows], float)
    cpu = np.array([r["cpu_ms_per_case"] * r["measured"] / 1000 for r in rows])
    (per_board, per_case), *_ = np.linalg.lstsq(np.c_[boards, cases], cpu, rcond=None)
    one = next(r for r in rows if r["boards"] == 1)
    n = np.array([j[0] for j in one["jobs"]], float)
    extra = np.array([j[1] for j in one["jobs"]]) - n * case_s
    if len(set(n)) > 1:
        case_extra, job_overhead = np.polyfit(n, extra, 1)
    else:
        job_overhead, case_extra = float(np.mean(extra)), 0.0
    small = data["small"]
    big_n, small_n = one["measured"], small["measured"]
    board_per_case = (one["board_cpu_s"] - small["board_cpu_s"]) / (big_n - small_n)
    board_start_cpu = max(0.0, small["board_cpu_s"] - small_n * board_per_case)
    costs = data["store_costs"][store]
    return FarmCosts(controller_cpu_per_case_s=max(0.0, per_case),
                     controller_cpu_per_board_s=max(0.0, per_board),
                     commit_s=costs["commit_s"], claim_s=costs.get("claim_s", 0.0),
                     board_start_s=one["startup_s"][1],
                     board_start_cpu_s=min(board_start_cpu, one["startup_s"][1]),
                     board_cpu_per_case_s=max(0.0, board_per_case),
                     job_overhead_s=max(0.0, job_overhead)), max(0.0, case_extra)


def check(data: dict) -> list[dict]:
    """The model against every real row of 3 or more boards."""
    case_s = float(data["settings"]["case_s"])
    out = []
    for store in data["store_costs"]:
        costs, extra = fit(data, store)
        for r in data["rows"]:
            if r["store"] != store or r["boards"] < 3:
                continue
            sim = simulate(costs, FarmScenario(r["boards"], [case_s + extra] * r["measured"],
                                               controllers=r["controllers"],
                                               shared_board_cpu=True))
            out.append({"store": store, "boards": r["boards"], "controllers": r["controllers"],
                        "wall_s": r["wall_s"], "sim_wall_s": sim.wall_s,
                        "efficiency": r["efficiency"], "sim_efficiency": sim.efficiency,
                        "wall_error": sim.wall_s / r["wall_s"] - 1,
                        "efficiency_error": sim.efficiency / r["efficiency"] - 1})
    return out


def pi_cases(path: Path, device: str, n: int, samples: int, init_ms: float,
             seed: int = 0) -> list[float]:
    """``n`` case durations (s) drawn from a real LUT's block latencies on ``device``."""
    timing = TimingSettings()
    lat = [float(r[f"{device}_latency"]) for r in csv.DictReader(open(path))
           if r.get(f"{device}_latency")]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ms = rng.choice(lat)
        warmup = timing.warmup_runs * ms / 1000
        out.append(init_ms / 1000 + warmup + min(samples * ms / 1000, timing.max_s))
    return out


def predict(data: dict, a) -> list[dict]:
    costs, extra = fit(data, "postgres")
    costs.store_cores = a.store_cores
    out = []
    for controllers in range(1, 5):
        for boards in (16, 32, 64, 128, 256):
            cases = pi_cases(a.lut, a.device, boards * a.cases_per_board, a.samples, a.init_ms)
            sim = simulate(costs, FarmScenario(boards, [c + extra for c in cases],
                                               controllers=controllers))
            out.append({"boards": boards, "controllers": controllers,
                        "efficiency": sim.efficiency, "wall_s": sim.wall_s,
                        "cases_per_s": sim.cases_per_s, "bottleneck": sim.bottleneck,
                        "utilisation": sim.utilisation})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", type=Path, required=True,
                    help="bench_farm_scale.py --json output")
    ap.add_argument("--lut", type=Path, default=LUT, help="a LUT with <device>_latency columns "
                    "(default: HW-NAS-Bench's, bundled)")
    ap.add_argument("--device", default="raspi4")
    ap.add_argument("--cases-per-board", type=int, default=100)
    ap.add_argument("--samples", type=int, default=60,
                    help="samples a case takes under the default CI rule")
    ap.add_argument("--init-ms", type=float, default=50.0, help="loading one model on a board")
    ap.add_argument("--store-cores", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    data = json.loads(a.source.read_text())
    fitted = {s: fit(data, s) for s in data["store_costs"]}
    checked = check(data)
    predicted = predict(data, a) if "postgres" in data["store_costs"] else []
    if a.json:
        print(json.dumps({"costs": {s: [vars(c), e] for s, (c, e) in fitted.items()},
                          "check": checked, "predict": predicted}, indent=1))
        return
    for s, (c, e) in fitted.items():
        print(f"costs fitted on {s}: " + ", ".join(f"{k} {v * 1000:.2f} ms" if k.endswith("_s")
                                                   else f"{k} {v}" for k, v in vars(c).items())
              + f", per-case extra {e * 1000:.2f} ms")
    for r in checked:
        print(f"check {r['store']:<8} {r['boards']:>2} boards {r['controllers']} controller(s): "
              f"wall real {r['wall_s']:.1f} s model {r['sim_wall_s']:.1f} s "
              f"({r['wall_error']:+.1%}); efficiency real {r['efficiency']:.3f} model "
              f"{r['sim_efficiency']:.3f} ({r['efficiency_error']:+.1%})")
    worst = max((abs(r["wall_error"]) for r in checked), default=float("nan"))
    print(f"largest wall-time error {worst:.1%} (goal <= 15 %)")
    for controllers in range(1, 5):
        rows = [r for r in predicted if r["controllers"] == controllers]
        line = ", ".join(f"{r['boards']}: {r['efficiency']:.2f}" for r in rows)
        below = next((r for r in rows if r["efficiency"] < 0.9), None)
        where = (f"below 0.9 from {below['boards']} boards, bottleneck {below['bottleneck']} "
                 f"({', '.join(f'{k} {v:.0%}' for k, v in below['utilisation'].items())})"
                 if below else "0.9 or more up to 256 boards")
        print(f"predicted, {controllers} controller(s) on PostgreSQL, efficiency by boards: "
              f"{line}; {where}")
    if predicted:
        print(f"(cases: {a.device} latencies from {a.lut.name}, median case "
              f"{statistics.median(pi_cases(a.lut, a.device, 1000, a.samples, a.init_ms)):.3f} s;"
              f" {a.cases_per_board} cases per board; store serves {a.store_cores} commits at once)")


if __name__ == "__main__":
    sys.exit(main())
