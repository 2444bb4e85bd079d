"""Emulated microcontrollers for the tests: lutfarm's firmware built with Debian's
arm-none-eabi toolchain and run under qemu-system-arm (EMULATED boards: their timers count
instructions, not a Cortex-M's cycles; their memory figures are the real 32-bit build's)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THIRD_PARTY = REPO.parent / "shared" / "third_party"


def unavailable() -> str | None:
    """Why the firmware cannot be built and run here, or None."""
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("make")):
        return ("the arm-none-eabi toolchain is missing (apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib make)")
    if not shutil.which("qemu-system-arm"):
        return "qemu-system-arm is missing (apt-get install qemu-system-arm)"
    absent = [n for n in ("tflm-tree.tar.gz", "tflm-tree-reference.tar.gz",
                          ) if not (THIRD_PARTY / n).exists()]
    if absent:
        return f"the firmware's third-party sources {', '.join(absent)} are not in {THIRD_PARTY}"
    return None


def firmware(board: str, kernels: str = "cmsis-nn", **defines):
    from lutfarm.profiler.devices.firmware import build
    return build(board, kernels, third_party=THIRD_PARTY, defines=defines or None)


def emulated_device(name: str, board: str, kernels: str = "cmsis-nn", fw=None):
    from lutfarm.profiler.devices.record import Device
    return Device(name, kind=name, runtimes=("tflm",), mcu=board, emulator="qemu",
                  kernels=kernels, firmware=str(fw.elf) if fw else "")
