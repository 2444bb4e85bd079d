"""The farm inventory: one TOML file listing the devices, validated whole before anything runs.

Example::

    [defaults]                      # optional; every device key may be given here
    user = "pi"
    key_file = "~/.ssh/lab_ed25519"
    known_hosts = "~/.ssh/known_hosts"

    [[devices]]
    name = "pi-1"
    host = "10.0.0.11"
    kind = "rpi4"                   # devices of one kind are interchangeable
    tags = ["arm", "lab2"]
    python = "python3"
    runtimes = ["onnxruntime"]
    threads = 4
    affinity = [0, 1, 2, 3]
    workdir = "lutfarm"             # relative paths are under the login's home

    [[devices]]                     # a microcontroller behind a host's USB serial port
    name = "f746-1"
    host = "10.0.0.20"              # the host the board is plugged into
    kind = "stm32f746"
    runtimes = ["tflm"]
    serial = "/dev/ttyACM0"         # the firmware speaks lutfarm_agent.mcu's harness protocol
    baud = 921600

    [[devices]]                     # an EMULATED microcontroller on this machine
    name = "m4-emu"
    kind = "m4-emu"
    transport = "local"
    runtimes = ["tflm"]
    mcu = "mps2-an386"              # or "mps3-an547" (Cortex-M55, Helium)
    emulator = "qemu"               # lutfarm builds the firmware (cached) and starts QEMU
    kernels = "cmsis-nn"            # or "reference"

Every problem is reported with its line, all at once, so a farm file is fixed in one pass.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from lutfarm.errors import LutfarmError
from lutfarm.profiler.devices.firmware import BOARDS as MCU_BOARDS
from lutfarm.profiler.devices.record import Device
from lutfarm_agent.runtimes import RUNTIMES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

KEYS = {
    "name": str, "host": str, "port": int, "user": str, "key_file": str, "known_hosts": str,
    "kind": str, "tags": list, "python": str, "runtimes": list, "threads": int,
    "affinity": list, "workdir": str, "transport": str, "serial": str, "baud": int,
    "arena_limit": int, "packages": dict, "cooldown_c": (int, float),
    "governor": str, "frequency_khz": int, "mcu": str, "emulator": str, "firmware": str,
    "kernels": str, "icount_shift": int,
}
DEFAULTS = {"port": 22, "python": "python3", "runtimes": ["onnxruntime"], "workdir": "lutfarm",
            "known_hosts": "~/.ssh/known_hosts", "transport": "ssh", "key_file": "", "tags": []}
NAME_RE = re.compile(r"^[^\x00-\x1f/]{1,100}$")


class InventoryError(LutfarmError, ValueError):
    """An inventory that cannot be used; the message lists every problem with its line."""


def _lines(text: str) -> tuple[list[int], int]:
    """Line numbers of each ``[[devices]]`` header and of ``[defaults]``."""
    heads, defaults = [], 0
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s.startswith("[[devices]]"):
            heads.append(n)
        elif s.startswith("[defaults]"):
            defaults = n
    return heads, defaults


def _key_line(text_lines: list[str], start: int, key: str) -> int:
    for n in range(start, len(text_lines) + 1):
        s = text_lines[n - 1].strip()
        if n > start and s.startswith("["):
            break
        if re.match(rf"^{re.escape(key)}\s*=", s):
            return n
    return start


def load_inventory(path: str | os.PathLike) -> list[Device]:
    path = Path(path)
    if not path.exists():
        raise InventoryError(f"inventory {path} does not exist; see 'lutfarm devices --help' for "
                             f"the format")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: not valid TOML: {exc}") from None
    heads, defaults_line = _lines(text)
    lines = text.splitlines()
    problems: list[str] = []
    unknown_top = set(data) - {"defaults", "devices"}
    for key in sorted(unknown_top):
        problems.append(f"line {_key_line(lines, 1, key)}: unknown section or key {key!r} "
                        f"(expected [defaults] and [[devices]])")
    defaults = data.get("defaults", {})
    problems += _check_fields(defaults, lines, defaults_line, "defaults", require=False)
    raw = data.get("devices", [])
    if not isinstance(raw, list) or not raw:
        problems.append("no [[devices]] entries: add at least one device")
        raw = []
    devices, seen = [], {}
    for i, entry in enumerate(raw):
        start = heads[i] if i < len(heads) else 1
        merged = {**DEFAULTS, **defaults, **entry}
        if merged.get("transport") == "local" and "python" not in {**defaults, **entry}:
            merged["python"] = sys.executable   # this machine: the controller's interpreter
        if isinstance(defaults.get("packages"), dict) and isinstance(entry.get("packages"), dict):
            merged["packages"] = {**defaults["packages"], **entry["packages"]}   # pin by pin
        found = _check_fields(entry, lines, start, f"device #{i + 1}", require=False)
        found += _check_fields(merged, lines, start, f"device #{i + 1}", require=True,
                               report_types=False)
        name = merged.get("name")
        if isinstance(name, str) and name in seen:
            found.append(f"line {start}: device name {name!r} is already used at line "
                         f"{seen[name]}")
        if isinstance(name, str):
            seen.setdefault(name, start)
        problems += found
        if not found:
            devices.append(_device(merged, start))
    if problems:
        raise InventoryError(f"{path} has {len(problems)} problem(s): " + "; ".join(problems))
    return devices


def _check_fields(entry: dict, lines: list[str], start: int, where: str, require: bool,
                  report_types: bool = True) -> list[str]:
    out = []
    if report_types:
        for key, value in entry.items():
            n = _key_line(lines, start, key)
            if key not in KEYS:
                out.append(f"line {n}: unknown key {key!r} in {where} (known: "
                           f"{', '.join(sorted(KEYS))})")
            elif not isinstance(value, KEYS[key]) or isinstance(value, bool):
                kind = KEYS[key]
                name = "number" if isinstance(kind, tuple) else kind.__name__
                out.append(f"line {n}: {key} must be a {name}, "
                           f"got {value!r}")
            else:
                out += [f"line {n}: {msg}" for msg in _check_value(key, value)]
    if require:   # a local device (another interpreter on this machine) has no login
        needed = ("name", "kind") if entry.get("transport") == "local" else \
            ("name", "host", "user", "kind")
        for key in needed:
            if not entry.get(key):
                out.append(f"line {start}: {where} lacks {key!r}")
        if entry.get("emulator"):
            if not entry.get("mcu"):
                out.append(f"line {start}: {where} has an emulator but no mcu board")
            elif entry["mcu"] in MCU_BOARDS and not MCU_BOARDS[entry["mcu"]].qemu_machine:
                out.append(f"line {start}: {where}: {entry['mcu']} has no emulator model; "
                           f"emulate mps2-an386 or mps3-an547")
            if entry.get("transport") != "local":
                out.append(f"line {start}: {where} is emulated on this machine: set "
                           f"transport = \"local\"")
            if entry.get("serial"):
                out.append(f"line {start}: {where} is emulated: drop serial")
        python = entry.get("python")
        if entry.get("transport") == "local" and isinstance(python, str) and "/" in python \
                and not python.startswith("/"):   # the agent starts in its own directory
            out.append(f"line {start}: {where}'s python {python!r} must be an absolute path "
                       f"(or a name on PATH)")
    return out


def _check_value(key: str, value) -> list[str]:
    if key == "port" and not 0 < value < 65536:
        return [f"port {value} is outside 1-65535"]
    if key in ("baud", "arena_limit", "cooldown_c", "frequency_khz") and value <= 0:
        return [f"{key} must be positive, got {value}"]
    if key == "threads" and value < 1:
        return [f"threads must be at least 1, got {value}"]
    if key == "name" and not NAME_RE.match(value):
        return [f"name {value!r} must be 1-100 characters without '/' or control characters"]
    if key == "runtimes":
        bad = [r for r in value if r not in RUNTIMES]
        if bad:
            return [f"unknown runtime(s) {', '.join(map(repr, bad))}; known: "
                    f"{', '.join(RUNTIMES)}"]
    if key == "affinity" and not all(isinstance(c, int) and c >= 0 for c in value):
        return [f"affinity must list CPU numbers, got {value!r}"]
    if key == "tags" and not all(isinstance(t, str) for t in value):
        return [f"tags must be strings, got {value!r}"]
    if key == "packages" and not all(isinstance(k, str) and isinstance(v, str)
                                     for k, v in value.items()):
        return [f"packages maps package names to version specifiers, e.g. "
                f"{{ onnxruntime = \"==1.22.0\" }}, got {value!r}"]
    if key == "mcu" and value not in MCU_BOARDS:
        return [f"mcu {value!r} is not a board lutfarm builds firmware for; known: "
                f"{', '.join(MCU_BOARDS)}"]
    if key == "emulator" and value != "qemu":
        return [f"emulator must be 'qemu', got {value!r}"]
    if key == "kernels" and value not in ("cmsis-nn", "reference"):
        return [f"kernels must be 'cmsis-nn' or 'reference', got {value!r}"]
    if key == "icount_shift" and not 0 <= value <= 10:
        return [f"icount_shift must be 0-10, got {value}"]
    if key == "transport" and value not in ("ssh", "local"):
        return [f"transport must be 'ssh' or 'local', got {value!r}"]
    return []


def _device(d: dict, line: int) -> Device:
    return Device(name=d["name"], transport=d["transport"], kind=d["kind"], host=d.get("host", ""),
                  port=d["port"], user=d.get("user", ""), key_file=os.path.expanduser(d["key_file"]),
                  known_hosts=os.path.expanduser(d["known_hosts"]), tags=tuple(d["tags"]),
                  python=d["python"], runtimes=tuple(d["runtimes"]), threads=d.get("threads"),
                  affinity=tuple(d["affinity"]) if d.get("affinity") else None,
                  workdir=d["workdir"], serial=d.get("serial", ""), baud=d.get("baud", 115200),
                  arena_limit=d.get("arena_limit"), mcu=d.get("mcu", ""),
                  emulator=d.get("emulator", ""),
                  firmware=os.path.expanduser(d["firmware"]) if d.get("firmware") else "",
                  kernels=d.get("kernels") or ("cmsis-nn" if d.get("emulator") else ""), icount_shift=d.get("icount_shift", 0),
                  packages=tuple(sorted((d.get("packages") or {}).items())),
                  cooldown_c=d.get("cooldown_c"), governor=d.get("governor") or None,
                  frequency_khz=d.get("frequency_khz"), line=line)
