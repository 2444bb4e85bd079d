"""lutfarm's TFLite-Micro firmware on EMULATED Cortex-M boards (qemu-system-arm -icount: times
count instructions, 1 ns each, not a core's cycles): the figures of the firmware issue.

  kernels  per op kind, virtual ms per invoke on M4 / M55 x CMSIS-NN / reference, as ratios
           against the M4 reference build of the same run
  arena    MCUNet subnets at 96 px: the analytical peak activation vs the x86-64 host
           interpreter's arena vs the 32-bit Cortex-M firmware's arena
  load     model upload: UART LOAD (CRC-32) vs the emulator-only LOADF, and what LOAD would
           take at 115 200 and 921 600 baud on a real board

Usage: python bench/bench_mcu.py [kernels|arena|load|all] [--subnets N]
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np

from lutfarm.profiler.devices.firmware import build
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.spaces import get_layout
from lutfarm.spaces.cases import BlockCase
from lutfarm_agent.mcu.harness import Board, drop_board, load_on_board

BOARDS = ("mps2-an386", "mps3-an547")
KERNELS = ("reference", "cmsis-nn")
# one block per op kind the int8 exports use, at MCUNet's 96 px sizes
OP_KINDS = {
    "conv 3x3 s2 (stem)": "ConvNormR6_H96_W96_Cin3_Cout16_kernel3_stride2",
    "pointwise conv": "PointLinear_H48_W48_Cin16_Cout8",
    "depthwise 7x7 (MBConv e6)": "MBConv_H24_W24_Cin16_Cout16_exp6_kernel7_stride1_se0",
    "depthwise 3x3 (MBConv e3)": "MBConv_H12_W12_Cin24_Cout40_exp3_kernel3_stride2_se1",
    "squeeze-excite (MBConv se)": "MBConv_H6_W6_Cin96_Cout96_exp6_kernel7_stride1_se1",
    "1x1 head conv": "ConvNormR6_H3_W3_Cin160_Cout384_kernel1_stride1",
    "average pool": "AvgP_H3_W3_Cin384_Cout384_kernel3_stride1",
    "fully connected": "FC_Cin384_Cout2",
}


def _settings(board: str, kernels: str) -> dict:
    fw = build(board, kernels)
    return {"emulator": "qemu", "qemu_machine": board, "firmware": str(fw.elf),
            "serial_timeout": 120}


def _virtual_ms(path: str, settings: dict, n: int = 3) -> float:
    loaded = load_on_board(path, settings)
    loaded.run.many(n)
    return loaded.clock() * 1000 / n


def kernels(cache: ModelCache) -> None:
    models = cache.get_many({k: BlockCase.from_key(k) for k in OP_KINDS.values()},
                            "tflite", "int8")
    configs = [(b, k) for b in BOARDS for k in KERNELS]
    ms = {c: {} for c in configs}
    for c in configs:
        settings = _settings(*c)
        for name, key in OP_KINDS.items():
            ms[c][name] = _virtual_ms(str(models[key].path), settings)
        drop_board(settings)
    base = ("mps2-an386", "reference")
    print("virtual ms per invoke (EMULATED: instructions, 1 ns each); x = speed-up over the "
          "M4 reference build")
    print(f"{'op kind':<28}" + "".join(f"{b[5:]}/{k:<10}" for b, k in configs))
    for name in OP_KINDS:
        cells = [f"{ms[c][name]:8.3f} ({ms[base][name] / ms[c][name]:4.1f}x)" for c in configs]
        print(f"{name:<28}" + " ".join(cells))
    total = {c: sum(ms[c].values()) for c in configs}
    print(f"{'all eight':<28}" + " ".join(f"{total[c]:8.3f} ({total[base] / total[c]:4.1f}x)"
                                          for c in configs))


def arena(cache: ModelCache, n: int) -> None:
    from lutfarm_agent.runtimes.tflm_rt import HOST_ARENA_LIMIT, find_arena
    layout = get_layout("mcunet").with_resolutions([96])
    archs = [a.canonical() for a in layout.sample_archs(4 * n, seed=3)]
    archs = [layout.smallest_arch()] + archs
    cases = {layout.network_case(a).key: layout.network_case(a) for a in archs}
    models = cache.get_many(cases, "tflite", "int8")
    boards = {b: _settings(b, "cmsis-nn") for b in BOARDS}
    rows = []
    for a in archs:
        m = models[layout.network_case(a).key]
        if not hasattr(m, "path") or m.path.stat().st_size > 1_400_000:
            continue        # beyond the firmware's 1.5 MB model buffer
        data = m.path.read_bytes()
        host = find_arena(data, HOST_ARENA_LIMIT)
        mcu = {b: load_on_board(str(m.path), s).details["arena_bytes"] for b, s in boards.items()}
        rows.append((a.to_str(), layout.peak_activation(a), host, mcu, len(data)))
        if len(rows) >= n:
            break
    for s in boards.values():
        drop_board(s)
    print("MCUNet subnets at 96 px, int8: KiB (ratio to the Cortex-M4 arena)")
    print(f"{'subnet':<60} {'model':>7} {'analytical':>14} {'x86-64 host':>14} "
          f"{'Cortex-M4':>10} {'Cortex-M55':>10}")
    ratios = []
    for name, peak, host, mcu, size in rows:
        m4 = mcu["mps2-an386"]
        ratios.append((peak / m4, host / m4, mcu["mps3-an547"] / m4))
        print(f"{name[:60]:<60} {size / 1024:7.0f} {peak / 1024:7.0f} ({peak / m4:4.2f}) "
              f"{host / 1024:7.0f} ({host / m4:4.2f}) {m4 / 1024:10.0f} "
              f"{mcu['mps3-an547'] / 1024:10.0f}")
    r = np.array(ratios)
    print(f"median ratio to the M4 arena: analytical {np.median(r[:, 0]):.2f}, host "
          f"{np.median(r[:, 1]):.2f}, M55 {np.median(r[:, 2]):.2f} ({len(rows)} subnets)")


def load(cache: ModelCache) -> None:
    model = cache.get(BlockCase.from_key(OP_KINDS["squeeze-excite (MBConv se)"]), "tflite", "int8")
    data = model.path.read_bytes()
    settings = _settings("mps2-an386", "cmsis-nn")
    board = Board(settings)
    board.hello()
    try:
        t0 = time.perf_counter()
        board.command(f"LOAD {len(data)} {zlib.crc32(data):08x}", data)
        uart = time.perf_counter() - t0
        t0 = time.perf_counter()
        board.load(data)                       # LOADF: hostfs=1 on the emulated boards
        hostfs = time.perf_counter() - t0
    finally:
        board.close()
    kib = len(data) / 1024
    print(f"{kib:.0f} KiB model: UART LOAD {kib / uart:.1f} KiB/s (baseline), LOADF "
          f"{kib / hostfs:,.0f} KiB/s ({uart / hostfs:,.0f}x); a real board's UART at 115 200 "
          f"baud moves {115200 / 10 / 1024:.1f} KiB/s ({uart / (len(data) / 11520):.2f}x the "
          f"emulated UART's rate), at 921 600 {921600 / 10 / 1024:.1f} KiB/s (arithmetic: "
          f"10 bits per byte)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="all", choices=["kernels", "arena", "load", "all"])
    ap.add_argument("--subnets", type=int, default=8)
    args = ap.parse_args()
    cache = ModelCache()
    if args.what in ("load", "all"):
        load(cache)
    if args.what in ("kernels", "all"):
        kernels(cache)
    if args.what in ("arena", "all"):
        arena(cache, args.subnets)


if __name__ == "__main__":
    main()
