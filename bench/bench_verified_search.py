"""Do verified winners hold their budget without wasting it? 20 budgets, several latency models.

For each runtime (default: onnxruntime and litert, fp32, 1 thread, this machine): takes the
store's LUT, spreads 20 budgets across the feasible range (the 5th to 95th percentile of
random archs' latency), and searches each budget through the CLI, every winner measured end to
end. With a stored validation (``lutfarm lut validate`` first, or ``--validate N`` to measure N
networks now):

- baseline: ``--latency plain --verify --rounds 1`` (FBNet's plain LUT sum, one round);
- the corrected model alone: ``--latency corrected --verify --rounds 1``;
- the default: ``--verify`` (auto: the corrected model, refitted on each measured winner,
  until one holds, at most 5 rounds).

From a store without one (``--fresh``, or when the store has none): the plain sum for one
round, and the default ``--verify`` (the plain sum scaled by what its winners measured).

Prints, per runtime and model: share of verified winners within budget (goal ≥ 95 %), median
measured / budget (goal ≥ 0.95), rounds used (mean, max) and the measurements each needed;
judged at the LUT's speed (each winner timed with its blocks, divided by how much slower they
ran than in the LUT: this machine's speed wanders 2x), and raw.

Usage: python bench/bench_verified_search.py --db lutfarm.db [--runtimes onnxruntime,litert]
       [--budgets 20] [--threads 1] [--validate 0] [--fresh] [--generations 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from lutfarm.lut import LatencyTable, build_lut, save_lut
from lutfarm.predictors.in_context import InContextCorrection
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store
from lutfarm.search.objectives.space import fbnet_space


def budgets(lut, n: int, corrected: bool) -> list[float]:
    """n budgets from the 5th to the 95th percentile of random archs' latency (the corrected
    model's when the LUT carries one)."""
    table = LatencyTable(lut)
    archs = fbnet_space(table.layout).random(2000, np.random.default_rng(0))
    if corrected:
        ms = InContextCorrection.from_dict(lut.validation.correction, table).predict(table, archs)
    else:
        ms = table.latency(archs)
    return [float(b) for b in np.quantile(ms, np.linspace(0.05, 0.95, n))]


def search(lut_path: Path, db: Path, budget: float, generations: int, extra: list[str]) -> dict:
    p = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut",
                        str(lut_path), "--budget-ms", f"{budget:.5f}", "--generations",
                        str(generations), "--db", str(db), "--verify", "--json", *extra],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode not in (0, 1) or not p.stdout.strip():   # 1: no winner held (JSON kept)
        raise SystemExit(f"search failed: {p.stderr.strip().splitlines()[-1]}")
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("lutfarm.db"))
    ap.add_argument("--runtimes", default="onnxruntime,litert")
    ap.add_argument("--budgets", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="the LUTs' thread count")
    ap.add_argument("--validate", type=int, default=0, help="validate with N networks first")
    ap.add_argument("--fresh", action="store_true",
                    help="ignore any stored validation: the LUT as a fresh store gives it")
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="a JSON summary as the last line")
    args = ap.parse_args()
    summary = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-verified-"))
    for name in args.runtimes.split(","):
        runtime = RuntimeConfig(name, threads=args.threads)
        if args.validate:
            subprocess.run([sys.executable, "-m", "lutfarm", "lut", "validate", "--db",
                            str(args.db), "--runtime", name, "--threads", str(args.threads),
                            "--archs", str(args.validate),
                            "--out", str(tmp), "--json"], check=True, stdout=subprocess.DEVNULL, timeout=600)
        with Store(args.db) as store:
            lut = build_lut(store, "local", runtime.key)
        if args.fresh:
            lut = replace(lut, meta={**lut.meta, "validation": None})
        corrected = bool(lut.validation and lut.validation.correction)
        path = save_lut(lut, tmp / f"{runtime.key}.csv")
        models = [("plain, 1 round", ["--latency", "plain", "--rounds", "1"])]
        if corrected:
            models.append(("corrected, 1 round", ["--latency", "corrected", "--rounds", "1"]))
        models.append(("default --verify" + ("" if corrected else " (scaled)"), []))
        rows = {label: [] for label, _ in models}
        for i, b in enumerate(budgets(lut, args.budgets, corrected)):
            for label, extra in models:
                v = search(path, args.db, b, args.generations, extra)["verified"]
                rows[label].append((v["at_lut_speed_ms"] / b, v["measured_ms"] / b,
                                    len(v["rounds"])))
                print(f"  {runtime.key} budget {i + 1:2d} {b:.4f} ms, {label}: measured "
                      f"{v['measured_ms']:.4f} ms = {v['measured_ms'] / b:.3f} of the budget; "
                      f"blocks at {v['speed']:.2f}x their LUT time, so "
                      f"{v['at_lut_speed_ms'] / b:.3f} at the LUT's speed", flush=True)
        print(f"{runtime.key}: {args.budgets} budgets (5th-95th percentile of random archs), "
              f"{'with' if corrected else 'without'} a stored validation")
        summary[runtime.key] = {}
        for label, r in rows.items():
            held, raw = np.array([x for x, _, _ in r]), np.array([y for _, y, _ in r])
            used = np.array([n for _, _, n in r])
            print(f"  {label:<30} at the LUT's speed: within budget {np.mean(held <= 1):5.0%}, "
                  f"median measured/budget {np.median(held):.3f} (min {held.min():.3f}, max "
                  f"{held.max():.3f});  raw: within {np.mean(raw <= 1):5.0%}, median "
                  f"{np.median(raw):.3f};  rounds mean {used.mean():.2f} max {used.max()}, "
                  f"measurements {used.sum()}")
            summary[runtime.key][label] = {
                "held_share": float(np.mean(held <= 1)), "median_over_budget": float(
                    np.median(held)), "raw_within_share": float(np.mean(raw <= 1)),
                "rounds_mean": float(used.mean()), "rounds_max": int(used.max()),
                "baseline_held_share": float(np.mean(np.array(
                    [x for x, _, _ in rows["plain, 1 round"]]) <= 1))}
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
