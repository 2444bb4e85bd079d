"""Accuracy-predictor Kendall τ on held-out NB201 archs vs training archs (50/100/424/1000), for
OFA's MLP with MSE, ReNAS's pairwise loss, and FBNetV3's pretrain-then-Huber recipe; the MSE
MLP is the baseline of the same run.

Usage: python bench/bench_accuracy.py [--nb201 PATH]
"""

from __future__ import annotations

import argparse

from lutfarm import environment
from lutfarm.predictors.nb201_accuracy import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", default=str(environment.nb201_path()))
    r = evaluate(ap.parse_args().nb201)
    for method, by_n in r.items():
        cells = "  ".join(f"n={n}: τ {v['kendall']:.3f} ({v['train_s']:.1f} s)"
                          for n, v in by_n.items())
        print(f"{method:<9} {cells}")


if __name__ == "__main__":
    main()
