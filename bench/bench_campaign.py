"""Campaign figures on this machine, each a ratio against a baseline measured in the same run.

1. overhead: full CIFAR-layout campaign wall time / sum of timed-sample durations
   (the physical floor), with a cold export cache and a warm one (goal <= 1.3x warm);
2. time to a precise LUT: adaptive campaign (stop at +-1 % CI of the median, 95 %) vs a fixed
   0.3 s-per-case campaign: wall-time ratio, and how many cases each leaves above +-1 %;
3. repeatability: two adaptive campaigns one after the other, median over cases of
   |delta median| / median.

Usage: python bench/bench_campaign.py [--threads N] [--layout cifar]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from lutfarm.profiler.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.devices import LOCAL
from lutfarm.profiler.export import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm_agent.timing import TimingSettings


def campaign(tmp: Path, name: str, layout, runtime, timing, cache_dir: Path):
    cache = ModelCache(cache_dir)
    with Store(tmp / f"{name}.db") as store:
        s = run_campaign(store, layout, LOCAL, runtime, CampaignSettings(timing=timing, cache=cache))
        medians = {k: m.median_ms for k, m in store.latest(LOCAL.name, runtime.key).items()}
        above = sum(m.rel_ci > 0.01 for m in store.latest(LOCAL.name, runtime.key).values())
    assert not s.failed, s.failed
    print(f"  {name:<14} wall {s.wall_s:6.1f} s  samples {s.sampling_s:6.1f} s  "
          f"ratio {s.wall_s / s.sampling_s:5.2f}x  exported {s.exported:3d}  "
          f"cases above +-1 %: {above}/{s.measured}")
    return s, medians, above


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layout", default="cifar")
    args = ap.parse_args()
    layout = get_layout("fbnet", args.layout)
    runtime = RuntimeConfig(threads=args.threads)
    adaptive = TimingSettings()
    fixed = TimingSettings(min_s=0.3, max_s=0.3, target_rel_ci=0.0, retries=0)
    with tempfile.TemporaryDirectory() as d:
        tmp, cache = Path(d), Path(d) / "cache"
        print(f"fbnet/{args.layout}, {runtime.key}, {len(layout.unique_cases()) + 1} cases")
        cold, _, _ = campaign(tmp, "cold-cache", layout, runtime, adaptive, cache)
        warm, run1, _ = campaign(tmp, "warm-cache", layout, runtime, adaptive, cache)
        fix, _, fix_above = campaign(tmp, "fixed-0.3s", layout, runtime, fixed, cache)
        _, run2, _ = campaign(tmp, "repeat", layout, runtime, adaptive, cache)
    rel = [abs(run1[k] - run2[k]) / run1[k] for k in run1]
    print()
    print(f"overhead, cold cache:      {cold.wall_s / cold.sampling_s:.2f}x the timed samples")
    print(f"overhead, warm cache:      {warm.wall_s / warm.sampling_s:.2f}x the timed samples "
          f"(goal <= 1.3x)")
    print(f"time to a precise LUT:     adaptive {warm.wall_s:.1f} s vs fixed 0.3 s/case "
          f"{fix.wall_s:.1f} s = {fix.wall_s / warm.wall_s:.2f}x faster "
          f"(fixed leaves {fix_above} cases above +-1 %)")
    print(f"repeatability:             median |d median|/median = {statistics.median(rel):.2%}, "
          f"p90 {statistics.quantiles(rel, n=10)[-1]:.2%}")


if __name__ == "__main__":
    main()
