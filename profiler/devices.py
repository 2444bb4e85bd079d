"""Device records: where measurements happen. ``local`` is the embedded default.

Farm devices (SSH, from an inventory file) are added by the farm layer; every device is
reached through a transport that speaks the same agent job protocol.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


class UnknownDeviceError(ValueError):
    """A device name that is not in the inventory."""


@dataclass(frozen=True)
class Device:
    name: str
    transport: str = "local"
    python: str = sys.executable            # interpreter that runs the agent on the device
    affinity: tuple[int, ...] | None = None  # CPUs the agent pins itself to
    kind: str = "local"                      # devices of one kind are interchangeable


LOCAL = Device("local")


def get_device(name: str) -> Device:
    if name == LOCAL.name:
        return LOCAL
    raise UnknownDeviceError(f"unknown device {name!r}: without an inventory the only device "
                             f"is 'local' (this machine); use --device local")
