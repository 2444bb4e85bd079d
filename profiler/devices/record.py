"""Device records: where measurements happen. ``local`` is the embedded default.

Farm devices come from an inventory file (``profiler.inventory``); every device is reached
through a transport that speaks the same agent job protocol. Devices of one ``kind`` are
interchangeable (same hardware and image): a campaign spreads a kind's cases over all of them
and their measurements build one LUT.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from lutfarm.errors import LutfarmError
from lutfarm.profiler.runtime_config import RuntimeConfig


class UnknownDeviceError(LutfarmError, ValueError):
    """A device name (or kind/tag selection) that matches nothing in the inventory."""


@dataclass(frozen=True)
class Device:
    name: str
    transport: str = "local"                 # "local" | "ssh"
    kind: str = "local"                      # devices of one kind are interchangeable
    host: str = ""
    port: int = 22
    user: str = ""
    key_file: str = ""                       # "" = use the SSH agent
    known_hosts: str = "~/.ssh/known_hosts"
    tags: tuple[str, ...] = ()
    python: str = sys.executable             # interpreter that runs the agent on the device
    runtimes: tuple[str, ...] = ("onnxruntime",)
    threads: int | None = None               # overrides --threads for this device
    affinity: tuple[int, ...] | None = None  # CPUs the agent pins itself to
    workdir: str = "lutfarm"                 # on the device; relative = under the login's home
    serial: str = ""                         # an MCU's port on this host (lutfarm_agent.mcu protocol)
    baud: int = 115200
    arena_limit: int | None = None           # largest TFLite-Micro arena to try, bytes
    mcu: str = ""                            # a board lutfarm builds firmware for (firmware.BOARDS)
    emulator: str = ""                       # "qemu": the board is emulated on this machine
    firmware: str = ""                       # its firmware ELF ("" = built by lutfarm, cached)
    kernels: str = ""                        # the firmware's kernels: cmsis-nn | reference ("" = as it says)
    icount_shift: int = 0                    # QEMU -icount shift: 2^N ns of virtual time per instruction
    packages: tuple[tuple[str, str], ...] = ()   # version pins for provisioning (name, spec)
    cooldown_c: float | None = None          # wait before each case until every zone is cooler
    governor: str | None = None              # cpufreq governor for the length of each job
    frequency_khz: int | None = None         # or a fixed clock (scaling_min = max = this)
    line: int = 0                            # where the inventory defines it

    def resolve(self, runtime: RuntimeConfig) -> RuntimeConfig:
        """The configuration this device really runs ``runtime`` with (its own ``threads``
        wins): what its measurements are stored under, so a LUT's key never lies."""
        if self.threads and self.threads != runtime.threads:
            runtime = replace(runtime, threads=self.threads)
        if self.kernels and runtime.spec.kernels_are_provider and runtime.provider != self.kernels:
            runtime = replace(runtime, provider=self.kernels)   # the firmware's kernels
        return runtime

    def runtime_settings(self) -> dict:
        """Settings this device adds to every agent job's ``runtime`` object."""
        out: dict = {}
        if self.serial:
            out.update(serial=self.serial, baud=self.baud)
        if self.emulator:
            out.update(emulator=self.emulator, qemu_machine=self.mcu, firmware=self.firmware,
                       icount_shift=self.icount_shift)
        if self.arena_limit:
            out["arena_limit"] = self.arena_limit
        if self.cooldown_c:
            out["cooldown_c"] = self.cooldown_c
        if self.governor:
            out["governor"] = self.governor
        if self.frequency_khz:
            out["frequency_khz"] = self.frequency_khz
        return out

    @property
    def is_mcu(self) -> bool:
        return bool(self.serial or self.emulator)

    @property
    def address(self) -> str:
        if self.emulator:
            return f"emulated {self.mcu} ({self.emulator}) on this machine"
        return f"{self.user}@{self.host}:{self.port}" if self.transport == "ssh" else "this machine"


LOCAL = Device("local")


def get_device(name: str, devices: list[Device] | None = None) -> Device:
    """The device called ``name``; ``local`` is this machine unless the inventory names one."""
    for d in devices or [LOCAL]:
        if d.name == name:
            return d
    if name == LOCAL.name:
        return LOCAL
    if devices is None:
        raise UnknownDeviceError(f"unknown device {name!r}: without --inventory the only device "
                                 f"is 'local' (this machine); use --device local or give an "
                                 f"inventory file")
    raise UnknownDeviceError(f"unknown device {name!r}; the inventory has: "
                             f"{', '.join(d.name for d in devices)}")


def select_devices(devices: list[Device], spec: str) -> list[Device]:
    """``NAME``, ``kind:KIND`` or ``tag:TAG``, comma-separated -> devices, inventory order."""
    chosen: dict[str, Device] = {}
    for term in (t.strip() for t in spec.split(",")):
        if not term:
            continue
        if term.startswith("kind:"):
            found = [d for d in devices if d.kind == term[5:]]
        elif term.startswith("tag:"):
            found = [d for d in devices if term[4:] in d.tags]
        else:
            found = [get_device(term, devices)]
        if not found:
            kinds = sorted({d.kind for d in devices})
            tags = sorted({t for d in devices for t in d.tags})
            raise UnknownDeviceError(f"--devices {term!r} matches no device; kinds: "
                                     f"{', '.join(kinds) or '-'}; tags: {', '.join(tags) or '-'}")
        for d in found:
            chosen[d.name] = d
    if not chosen:
        raise UnknownDeviceError("--devices selects nothing; give NAME, kind:KIND or tag:TAG")
    listed = [d for d in devices if d.name in chosen]
    return listed + [d for d in chosen.values() if d not in listed]   # this machine, unlisted
