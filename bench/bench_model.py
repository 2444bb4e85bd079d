"""``lutfarm bench MODEL`` against a plain timing loop of the same runtime, same run.

What a user of benchmark_model asks of it: does its median agree with timing the model
directly, and what do the farm's rules (agent process, upload, store, context, CI sampling)
cost on top of the samples? Both are ratios against the plain loop measured here, in between
lutfarm's runs (the machine is shared and its speed drifts).

Usage: python bench/bench_model.py [--model FILE.onnx] [--rounds 3] [--json]
(default model: an FBNet CIFAR network of lutfarm's own, exported once into the cache)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def default_model() -> Path:
    from lutfarm.profiler.export.cache import ModelCache
    from lutfarm.spaces import get_layout
    from lutfarm.spaces.fbnet import NetworkCase

    layout = get_layout("fbnet", "cifar")
    arch = tuple([3] * layout.num_layers)
    return ModelCache().get(NetworkCase(layout, arch), "onnx").path


def plain_loop(path: Path, seconds: float) -> tuple[float, int]:
    """Median ms of back-to-back runs for ``seconds`` (after a second of warm-up)."""
    from lutfarm_agent.runtimes.onnxruntime_rt import load
    run = load(str(path), {"threads": 1}).run
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        run()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="an ONNX file (onnxruntime, 1 thread)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from lutfarm.api import BenchSettings, bench

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model()
        ratios, overheads, rows = [], [], []
        for k in range(args.rounds):
            t0 = time.perf_counter()
            (row,) = bench(BenchSettings(model, db=Path(tmp) / "b.db", fresh=True)).rows
            wall = time.perf_counter() - t0
            plain_ms, n = plain_loop(model, 2.0)
            if row.status != "ok":
                raise SystemExit(f"lutfarm bench failed: {row.error}")
            sampling = row.sampling_s
            ratios.append(row.median_ms / plain_ms)
            overheads.append(wall / max(sampling, 1e-9))
            rows.append({"round": k, "lutfarm_median_ms": row.median_ms, "plain_median_ms":
                         plain_ms, "plain_runs": n, "lutfarm_wall_s": wall,
                         "lutfarm_count": row.count})
    out = {"model": str(model), "median_ratio": statistics.median(ratios),
           "wall_per_sampling": statistics.median(overheads), "rounds": rows}
    if args.json:
        print(json.dumps(out))
    else:
        for r in rows:
            print(f"round {r['round']}: lutfarm bench {r['lutfarm_median_ms']:.4f} ms "
                  f"({r['lutfarm_wall_s']:.2f} s wall), plain loop {r['plain_median_ms']:.4f} ms")
        print(f"median ratio lutfarm / plain loop = {out['median_ratio']:.3f}x baseline; "
              f"lutfarm's wall time / its sampling time = {out['wall_per_sampling']:.1f}x")


if __name__ == "__main__":
    main()
