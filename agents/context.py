"""The device's context at measuring time: what makes two measurements comparable.

nn-Meter's most-cited user issue was a 1.5x gap caused by an unrecorded binary, affinity and
frequency; every result carries this fingerprint so such gaps can be explained afterwards.
"""

from __future__ import annotations

import glob
import os
import platform
import socket
import sys
import time

from lutfarm_agent import AGENT_VERSION


def read_text(path: str) -> str | None:
    """A small text file's stripped content, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "Model", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine()


X86_MARKERS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine")


def emulation(cpuinfo: str | None = None, machine: str | None = None) -> str | None:
    """Why this looks like an emulated CPU (timings that are not the hardware's), or None.

    qemu-user runs ARM binaries on an x86 host whose /proc/cpuinfo it passes through: the
    interpreter says aarch64/armv7l while the CPU described is an Intel or AMD one. A CPU
    that names QEMU itself (qemu-system's default models) is emulated too."""
    text = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    machine = machine or platform.machine()
    text = text or ""
    if "QEMU" in text:
        return "the CPU describes itself as QEMU"
    if not machine.lower().startswith(("x86", "i386", "i686", "amd64")) and any(
            m in text for m in X86_MARKERS):
        return f"{machine} interpreter on an x86 CPU (qemu-user)"
    return None


def cpu_affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


SYS = "/sys"   # sysfs; a job's ``sysfs_root`` replaces it (a FAKE one, in the tests only)


def frequencies_khz(sys_root: str = SYS) -> dict[str, int]:
    """Current frequency per CPU where cpufreq exposes it (VMs often do not)."""
    out = {}
    pattern = sys_root + "/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"
    for path in sorted(glob.glob(pattern)):
        value = read_text(path)
        if value and value.isdigit():
            out[path[len(sys_root):].split("/")[4]] = int(value)
    return out


def temperatures_c(sys_root: str = SYS) -> dict[str, float]:
    out = {}
    for zone in sorted(glob.glob(sys_root + "/class/thermal/thermal_zone*")):
        value = read_text(zone + "/temp")
        if value and value.lstrip("-").isdigit():
            out[read_text(zone + "/type") or os.path.basename(zone)] = int(value) / 1000.0
    return out


def fingerprint(runtime_info: dict | None = None, sys_root: str = SYS) -> dict:
    """Static facts plus the moment's governor, frequencies and temperatures."""
    import numpy

    board = runtime_info or {}
    emulated = emulation()
    if board.get("emulated"):     # an emulated microcontroller behind this host
        emulated = (f"{board.get('board')} ({board.get('core')}) under {board.get('emulator')} "
                    f"-icount: timers count instructions, not the core's cycles")
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "emulated": emulated,         # None on real hardware: timings are the hardware's
        "cores": os.cpu_count(),
        "affinity": cpu_affinity(),
        "governor": read_text(sys_root + "/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "freq_khz": frequencies_khz(sys_root),
        "temp_c": temperatures_c(sys_root),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": numpy.__version__,
        "agent_version": AGENT_VERSION,
        "runtime": runtime_info or {},
    }


def moment(sys_root: str = SYS) -> dict:
    """What may change between cases: frequencies and temperatures."""
    return {"freq_khz": frequencies_khz(sys_root), "temp_c": temperatures_c(sys_root)}


def cool_down(below_c: float, max_s: float, sys_root: str = SYS, poll_s: float = 0.5) -> float:
    """Wait until every thermal zone reads below ``below_c`` (at most ``max_s``); returns the
    seconds waited, so a result can say how long its board cooled first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_s:
        temps = temperatures_c(sys_root)
        if all(t < below_c for t in temps.values()):
            break
        time.sleep(poll_s)
    return time.monotonic() - t0
