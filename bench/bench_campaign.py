"""Campaign figures on this machine, each a ratio against a baseline measured in the same run.

1. overhead: full CIFAR-layout campaign wall time / sum of timed-sample durations, with a cold
   export cache and a warm one (goal <= 1.3x warm);
2. time to a precise LUT (every median within +-1 %, 95 % CI) against its statistical floor:
   per case, the samples its measured spread requires for +-1 % (n * (rel_ci / 1 %)^2, at
   least ``min_runs``) times its sample duration, summed. Goal: warm wall time <= 1.5x the
   floor. The same ratio for the 0.1 s-minimum defaults lutfarm had before, and a fixed
   0.3 s-per-case campaign (with how many cases each leaves above +-1 %);
3. repeatability: two campaigns of each setting one after the other, median and p90 over
   cases of |delta median| / median (the machine's drift between them counts too); and
   back to back: each case timed twice in a row with each setting (in this process, the
   agent's own timing code), which leaves out drift over the seconds between campaigns.

Usage: python bench/bench_campaign.py [--threads N] [--layout cifar]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm_agent.runtimes import get_runtime
from lutfarm_agent.timing import TimingSettings, time_callable


def floor_s(measurements, target: float, min_runs: int) -> float:
    """Seconds of sampling the measured spreads require for +-target at the median."""
    total = 0.0
    for m in measurements:
        needed = max(min_runs, m.count * (m.rel_ci / target) ** 2)
        total += needed * m.mean_ms * m.batch / 1000.0
    return total


def campaign(tmp: Path, name: str, layout, runtime, timing, cache_dir: Path):
    cache = ModelCache(cache_dir)
    with Store(tmp / f"{name}.db") as store:
        s = run_campaign(store, layout, LOCAL, runtime, CampaignSettings(timing=timing, cache=cache))
        latest = store.latest(LOCAL.name, runtime.key)
    assert not s.failed, s.failed
    medians = {k: m.median_ms for k, m in latest.items()}
    above = sum(m.rel_ci > 0.01 for m in latest.values())
    floor = floor_s(latest.values(), 0.01, TimingSettings().min_runs)
    print(f"  {name:<14} wall {s.wall_s:6.1f} s  samples {s.sampling_s:6.1f} s  "
          f"floor {floor:5.1f} s  wall/floor {s.wall_s / floor:5.2f}x  exported {s.exported:3d}  "
          f"cases above +-1 %: {above}/{s.measured}", flush=True)
    return s, medians, above, floor


def repeat(a: dict, b: dict) -> str:
    return spread([abs(a[k] - b[k]) / a[k] for k in a])


def back_to_back(layout, runtime, settings: dict, cache_dir: Path) -> dict:
    """``{name: [|delta median| / median per case]}``: each case timed twice in a row with each
    setting, settings taking turns case by case."""
    agent_rt = get_runtime(runtime.name)
    cache = ModelCache(cache_dir)
    rel: dict = {name: [] for name in settings}
    for case in layout.unique_cases():
        loaded = agent_rt.load(str(cache.get(case).path), runtime.agent_settings())
        loaded.run()
        for name, timing in settings.items():
            a, b = (time_callable(loaded.run, timing).stats["median"] for _ in range(2))
            rel[name].append(abs(a - b) / a)
    return rel


def spread(rel: list[float]) -> str:
    return f"median {statistics.median(rel):.2%}, p90 {statistics.quantiles(rel, n=10)[-1]:.2%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layout", default="cifar")
    args = ap.parse_args()
    layout = get_layout("fbnet", args.layout)
    runtime = RuntimeConfig(threads=args.threads)
    adaptive = TimingSettings()
    before = replace(adaptive, min_s=0.1, warmup_s=0.01)   # the defaults until issue 16
    fixed = TimingSettings(min_s=0.3, max_s=0.3, target_rel_ci=0.0, retries=0)
    with tempfile.TemporaryDirectory() as d:
        tmp, cache = Path(d), Path(d) / "cache"
        print(f"fbnet/{args.layout}, {runtime.key}, {len(layout.unique_cases()) + 1} cases")
        cold, _, _, _ = campaign(tmp, "cold-cache", layout, runtime, adaptive, cache)
        warm, run1, _, floor = campaign(tmp, "warm-cache", layout, runtime, adaptive, cache)
        old, old1, _, old_floor = campaign(tmp, "0.1s-minimum", layout, runtime, before, cache)
        fix, _, fix_above, _ = campaign(tmp, "fixed-0.3s", layout, runtime, fixed, cache)
        _, run2, _, _ = campaign(tmp, "repeat", layout, runtime, adaptive, cache)
        _, old2, _, _ = campaign(tmp, "0.1s-repeat", layout, runtime, before, cache)
        pairs = back_to_back(layout, runtime, {"adaptive": adaptive, "0.1 s minimum": before},
                             cache)
    print()
    print(f"overhead, cold cache:      {cold.wall_s / cold.sampling_s:.2f}x the timed samples")
    print(f"overhead, warm cache:      {warm.wall_s / warm.sampling_s:.2f}x the timed samples "
          f"(goal <= 1.3x)")
    print(f"time to a +-1 % LUT:       {warm.wall_s:.1f} s = {warm.wall_s / floor:.2f}x its "
          f"statistical floor {floor:.1f} s (goal <= 1.5x); 0.1 s minimum: {old.wall_s:.1f} s = "
          f"{old.wall_s / old_floor:.2f}x its floor {old_floor:.1f} s")
    print(f"vs fixed 0.3 s/case:       {fix.wall_s:.1f} s = {fix.wall_s / warm.wall_s:.2f}x the "
          f"adaptive time (fixed leaves {fix_above} cases above +-1 %)")
    print(f"repeatability |d median|/median: adaptive {repeat(run1, run2)}; "
          f"0.1 s minimum {repeat(old1, old2)}")
    print(f"back to back, same case:   adaptive {spread(pairs['adaptive'])}; "
          f"0.1 s minimum {spread(pairs['0.1 s minimum'])}")


if __name__ == "__main__":
    main()
