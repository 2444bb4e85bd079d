"""Block-level latency predictor on blocks of a wider FBNet space (widths 0.5-1.5x, 4-56 px),
measured on this machine: held-out accuracy before and after nn-Meter-style adaptive sampling.

Usage: python bench/bench_block_latency.py [--db bench-out/blocks.db]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lutfarm.lut.metrics import latency_metrics
from lutfarm.predictors.block_latency import adaptive_sample
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.spaces import BlockCase, get_layout
from lutfarm_agent.timing import TimingSettings

STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)


def random_blocks(n: int, rng) -> list[BlockCase]:
    out: dict[str, BlockCase] = {}
    while len(out) < n:
        h = int(rng.choice([4, 8, 16, 32, 56]))
        w = rng.choice([0.5, 0.75, 1.0, 1.25, 1.5])
        cin = max(8, int(round(int(rng.choice(STAGE_CHANNELS)) * w / 8)) * 8)
        cout = max(8, int(round(int(rng.choice(STAGE_CHANNELS)) * w / 8)) * 8)
        c = BlockCase("ConvBlock", cin, cout, h=h, w=h, exp=int(rng.choice([1, 3, 6])),
                      kernel=int(rng.choice([3, 5])), stride=int(rng.choice([1, 2])),
                      group=int(rng.choice([1, 2])))
        if (c.cin * c.exp) % c.group == 0 and c.cout % c.group == 0:
            out[c.key] = c
    return list(out.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="bench-out/blocks.db")
    args = ap.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train, val, test = random_blocks(150, rng), random_blocks(100, rng), random_blocks(100, rng)
    timing = TimingSettings(warmup_s=0.005, min_runs=10, min_s=0.03, max_s=0.3,
                            target_rel_ci=0.02)
    runtime = RuntimeConfig()
    with Store(args.db) as store:
        def measure(cases):
            run_campaign(store, get_layout("fbnet", "cifar"), LOCAL, runtime, CampaignSettings(timing=timing, cases=cases))
            got = store.latest("local", runtime.key)
            return {c.key: got[c.key].median_ms for c in cases if c.key in got}

        predictor, history = adaptive_sample(measure, train, val, rounds=2, device="local",
                                             runtime=runtime.key)
        truth = measure(test)
    for h in history:
        print(f"round {h['round']}: {h['train']} training cases, validation ±10 % "
              f"{h['within_10pct']:.1%}, MAPE {h['mape']:.1%}, Spearman {h['spearman']:.3f}")
    y = np.array([truth[c.key] for c in test])
    m = latency_metrics(predictor.predict(test), y)
    print(f"held-out test ({len(test)} unseen blocks): ±10 % {m['within_10pct']:.1%}, ±5 % "
          f"{m['within_5pct']:.1%}, MAPE {m['mape']:.1%}, Spearman {m['spearman']:.3f}")


if __name__ == "__main__":
    main()
