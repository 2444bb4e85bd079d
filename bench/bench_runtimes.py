"""The same CIFAR FBNet LUT on four runtime configurations of this machine, and export cost.

onnxruntime fp32, LiteRT fp32 (XNNPACK), LiteRT int8 (XNNPACK), TFLite-Micro int8 (host
interpreter, reference kernels). Prints each LUT's total for the all-k3_e1 ([0]*22) and the
all-k5_e6 ([7]*22) networks, the Spearman rho between every pair of LUTs' per-case latencies,
how many layers change their fastest op, and export seconds per case, cold (empty cache) and
cached. Usage: python bench/bench_runtimes.py [--out bench-out] [--only GLOB] [--max-time S]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import time
from pathlib import Path

from lutfarm.lut import LatencyTable, build_lut, save_lut
from lutfarm.lut.compare import compare_luts
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, plan_cases, run_farm
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm_agent.timing import TimingSettings

CONFIGS = [RuntimeConfig("onnxruntime", 1, "fp32"), RuntimeConfig("litert", 1, "fp32"),
           RuntimeConfig("litert", 1, "int8"), RuntimeConfig("tflm", 1, "int8")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--max-time", type=float, default=1.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    layout = get_layout("fbnet", "cifar")
    cases = plan_cases(layout, args.only)
    cache_dir = args.out / "runtimes-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)

    print(f"export cost per case ({len(cases)} cases):")
    for fmt, dtype in (("onnx", "fp32"), ("tflite", "fp32"), ("tflite", "int8")):
        cold = ModelCache(cache_dir)
        t0 = time.perf_counter()
        for c in cases:
            cold.get(c, fmt, dtype)
        cold_s = (time.perf_counter() - t0) / len(cases)
        warm = ModelCache(cache_dir)
        t0 = time.perf_counter()
        for c in cases:
            warm.get(c, fmt, dtype)
        warm_s = (time.perf_counter() - t0) / len(cases)
        note = " (int8 reuses the cached fp32 conversion)" if dtype == "int8" else ""
        print(f"  {fmt:6s} {dtype}: cold {cold_s:.3f} s/case, cached {warm_s * 1e3:.2f} ms/case"
              f"{note}")

    db = args.out / "runtimes.db"
    timing = TimingSettings(max_s=args.max_time)
    luts = {}
    with Store(db) as store:
        for rc in CONFIGS:
            t0 = time.perf_counter()
            [summary] = run_farm(store, layout, [LOCAL], rc, CampaignSettings(timing=timing, cache=ModelCache(cache_dir), only=args.only))
            lut = build_lut(store, "local", rc.key, "fbnet", "cifar")
            save_lut(lut, args.out / f"lut-{rc.key}.csv")
            luts[rc.key] = lut
            print(f"{rc.key}: measured {summary.measured}, failed {len(summary.failed)} "
                  f"(refused ones compute unlike torch), {time.perf_counter() - t0:.0f} s")
    print("\ntotal latency (ms) and block peak memory:")
    for key, lut in luts.items():
        table = LatencyTable(lut)
        totals = []
        for arch in ([0] * 22, [7] * 22):
            try:
                totals.append(f"{float(table.latency(arch)[0]):9.3f}")
            except ValueError:
                totals.append("  missing")
        mem = lut.peak_mem_bytes()
        mem.pop(layout.overhead_case().key, None)   # the first model: runtime set-up too
        kib = sorted(v / 1024 for v in mem.values())
        peak = (f"median {kib[len(kib) // 2]:.0f} / max {kib[-1]:.0f} KiB "
                f"({lut.meta.get('memory_method')})") if kib else "-"
        print(f"  {key:26s} [0]*22 {totals[0]}  [7]*22 {totals[1]}  peak {peak}")
    print("\nper-case agreement between LUTs:")
    for ka, kb in itertools.combinations(luts, 2):
        cmp = compare_luts(luts[ka], luts[kb])
        d = cmp.as_dict()
        print(f"  {ka:24s} vs {kb:24s} Spearman {cmp.spearman:.3f}  B/A median "
              f"{d['ratio_median']:6.2f}  op order differs in "
              f"{len(d['layers_order_differs'])}/{len(cmp.layers)} layers (mean tau "
              f"{d['mean_layer_kendall']:.2f}), fastest op in "
              f"{len(d['layers_fastest_differs'])}")


if __name__ == "__main__":
    main()
