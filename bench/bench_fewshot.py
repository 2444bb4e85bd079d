"""Few-shot latency transfer on HELP's protocol (10 samples on an unseen device), beside
HELP's published Spearman per meta-test device.

Usage: python bench/bench_fewshot.py [--data ../shared/data] [--seeds 10]
"""

from __future__ import annotations

import argparse
import time

from lutfarm import environment
from lutfarm.predictors.help_protocol import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(environment.data_dir()))
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    for space in ("fbnet", "nb201"):
        t0 = time.perf_counter()
        r = evaluate(space, args.data, args.seeds)
        rows = ", ".join(f"{d} {v:.3f} (HELP {r['help'][d]:.3f})" for d, v in r["spearman"].items())
        print(f"{space}: mean Spearman {r['mean']:.3f} vs HELP {r['help_mean']:.3f} "
              f"[{rows}] — {time.perf_counter() - t0:.1f} s incl. loading")


if __name__ == "__main__":
    main()
