"""How good are predicted LUT entries? On a store holding a fully measured MCUNet LUT, replay
``profile --sample N`` (the adaptive choice of which blocks to measure, answered from the
store instead of the device) and score the predictor on every block it did not pick, against
its real measurement; baseline in the same run: the same number of blocks chosen at random.

Usage: python bench/bench_sampling.py --db STORE --runtime-key tflm-int8-t1-reference
       [--device local] [--resolutions 96,128] [--sample 60,120]
"""

from __future__ import annotations

import argparse

import numpy as np

from lutfarm.lut.metrics import latency_metrics
from lutfarm.predictors.block_latency import BlockLatencyPredictor
from lutfarm.profiler.scheduling.campaign import plan_cases
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm.workflows.sample_lut import adaptive_choice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--runtime-key", required=True)
    ap.add_argument("--device", default="local")
    ap.add_argument("--resolutions", default="96,128")
    ap.add_argument("--sample", default="60,120")
    args = ap.parse_args()
    layout = get_layout("mcunet").with_resolutions(int(r) for r in args.resolutions.split(","))
    with Store(args.db) as store:
        truth = {k: m.median_ms for k, m in store.latest(args.device, args.runtime_key).items()
                 if m.median_ms}
    cases = plan_cases(layout)
    blocks = [c for c in cases if c.kind == "MBConv" and c.key in truth]
    fixed = [c for c in cases if c.kind != "MBConv"]
    print(f"{len(blocks)} measured MBConv blocks at {args.resolutions} px ({args.runtime_key})")
    for n in (int(v) for v in args.sample.split(",")):
        model, known, _ = adaptive_choice(
            blocks, fixed, lambda todo: {c.key: truth[c.key] for c in todo if c.key in truth}, n)
        rest = [c for c in blocks if c.key not in known]
        adaptive = latency_metrics(model.predict(rest), [truth[c.key] for c in rest])
        pick = np.random.default_rng(1).choice(len(blocks), n, replace=False)
        chosen = [blocks[i] for i in pick]
        other = [c for i, c in enumerate(blocks) if i not in set(pick)]
        rand = BlockLatencyPredictor("", "").fit(chosen, [truth[c.key] for c in chosen])
        random_m = latency_metrics(rand.predict(other), [truth[c.key] for c in other])
        print(f"--sample {n}: predicted {len(rest)} blocks: adaptive {adaptive['within_10pct']:.0%}"
              f" within ±10 %, MAPE {adaptive['mape']:.1%}, Spearman {adaptive['spearman']:.3f};"
              f" random choice (baseline) {random_m['within_10pct']:.0%}, MAPE "
              f"{random_m['mape']:.1%}, Spearman {random_m['spearman']:.3f}")


if __name__ == "__main__":
    main()
