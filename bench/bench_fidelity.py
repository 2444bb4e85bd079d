"""LUT fidelity on this machine: how well LUT sums predict measured whole networks.

Profiles the CIFAR layout (fresh store), measures N random + extreme archs end to end, and
prints the held-out metrics of the plain sum (the baseline, FBNet's assumption), the
overhead-corrected sum and the in-context-corrected sum; then measures the LUT a second time
for repeatability. Writes the predicted-vs-measured plot next to the store.

Usage: python bench/bench_fidelity.py [--archs 200] [--threads 1] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lutfarm.lut import build_lut
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import run_campaign
from lutfarm.profiler.scheduling.repeatability import run_repeatability
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm.workflows.validate_networks import plot, run_validation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / f"fidelity-t{args.threads}.db"
    db.unlink(missing_ok=True)
    layout, runtime = get_layout("fbnet", "cifar"), RuntimeConfig(threads=args.threads)
    with Store(db) as store:
        run_campaign(store, layout, LOCAL, runtime)
        lut = build_lut(store, "local", runtime.key)
        report = run_validation(store, lut, [LOCAL], runtime, args.archs)
        rep = run_repeatability(store, layout, [LOCAL], runtime)
    plot(report, args.out / f"fidelity-{runtime.key}.png")
    s = report.summary()
    print(f"{runtime.key}, CIFAR layout, {s['n_measured']} archs measured, {s['n']} held out")
    for name in ("plain", "overhead", "corrected"):
        m = s[name]
        print(f"  {name:<10} within ±5 % {m['within_5pct']:6.1%}  ±10 % {m['within_10pct']:6.1%}"
              f"  MAPE {m['mape']:5.1%}  Spearman {m['spearman']:.4f}  Kendall {m['kendall']:.4f}"
              f"  pred/meas {m['mean_ratio']:.3f}")
    print(f"  corrected vs plain (baseline): ±10 % share {s['corrected']['within_10pct']:.2f} vs "
          f"{s['plain']['within_10pct']:.2f}, MAPE {s['corrected']['mape']:.3f} vs "
          f"{s['plain']['mape']:.3f} ({s['plain']['mape'] / s['corrected']['mape']:.1f}x lower)")
    top = sorted(s["in_context_factors"].items(), key=lambda kv: -abs(kv[1] - 1))[:5]
    print("  strongest in-context factors:", json.dumps({k: round(v, 2) for k, v in top}))
    print(f"repeatability: median |Δ|/median {rep.median_rel_diff:.2%}, p90 {rep.p90_rel_diff:.2%},"
          f" Spearman {rep.spearman:.4f}; {len(rep.flagged)} unreliable cases re-measured")


if __name__ == "__main__":
    main()
