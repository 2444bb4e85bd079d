"""Build lutfarm's TFLite-Micro firmware (``firmware/``) for a board, cached by content hash.

The firmware is C++ built by ``make`` with Debian's ``arm-none-eabi`` toolchain against a
TFLite-Micro tree that is a dependency, not part of lutfarm: ``tflm-tree.tar.gz`` (CMSIS-NN
kernels) or ``tflm-tree-reference.tar.gz`` (reference kernels) from
``lutfarm.environment.third_party_dir()`` or a path the caller gives. A build is named by the
SHA-256 of everything that goes in (firmware sources, tree, board, kernels, extra flags,
compiler version) and kept under ``<cache>/firmware/<hash>/``; TFLite-Micro's objects are kept
per (tree, CPU flags, kernels), so boards with one core share them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lutfarm import environment
from lutfarm.errors import LutfarmError
from lutfarm_agent.protocol import file_sha256

KERNELS = ("cmsis-nn", "reference")
TREES = {"cmsis-nn": "tflm-tree", "reference": "tflm-tree-reference"}
TOOLCHAIN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
                      "libstdc++-arm-none-eabi-newlib")

# a cold build of the TFLite-Micro libraries is 3-6 min on 2 cores; a hang is stopped
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class McuBoard:
    """One board lutfarm builds firmware for: the one home of what the controller knows of it."""

    name: str
    core: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    qemu_machine: str = ""        # "" = no emulator model: built and size-checked only
    note: str = ""


BOARDS = {
    "mps2-an386": McuBoard("mps2-an386", "cortex-m4", 25_000_000, 8 << 20, 4 << 20,
                           "mps2-an386", "Arm MPS2 AN386, Cortex-M4F (QEMU)"),
    "mps3-an547": McuBoard("mps3-an547", "cortex-m55", 32_000_000, 5 << 20, 512 << 10,
                           "mps3-an547", "Arm MPS3 AN547 (Corstone SSE-300), Cortex-M55 with "
                                         "Helium (QEMU)"),
    "stm32f746g-disco": McuBoard("stm32f746g-disco", "cortex-m7", 216_000_000, 320 << 10,
                                 1 << 20, "", "ST STM32F746G-DISCO (MCUNet's board); untested "
                                              "on silicon"),
}


class FirmwareError(LutfarmError, RuntimeError):
    """The firmware cannot be built here (toolchain, tree, board) or its build failed."""


@dataclass(frozen=True)
class FirmwareSizes:
    """What the firmware itself takes: ``text`` (code + constants, in flash), ``data`` (in
    flash and RAM), ``bss`` + ``stack`` + ``heap`` (RAM), and the static model buffer and tensor
    arena it reserves (RAM)."""

    text: int
    data: int
    bss: int
    model_buffer: int
    arena: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        """The firmware's own RAM, without the model buffer and the arena."""
        return self.data + self.bss


@dataclass(frozen=True)
class Firmware:
    board: McuBoard
    kernels: str
    elf: Path
    sha256: str                  # the build's content hash (its cache folder's name)
    sizes: FirmwareSizes
    tflm_version: str
    build_s: float               # 0 when it came from the cache
    cached: bool

    def describe(self) -> dict:
        return {"board": self.board.name, "core": self.board.core, "kernels": self.kernels,
                "firmware_sha256": self.sha256, "tflm": self.tflm_version,
                "sizes": asdict(self.sizes)}


def source_dir() -> Path:
    """``firmware/`` of this checkout ($LUTFARM_FIRMWARE_SRC overrides)."""
    path = environment.firmware_src() or Path(__file__).resolve().parents[2] / "firmware"
    if not (path / "Makefile").exists():
        raise FirmwareError(f"lutfarm's firmware sources are not at {path}; set "
                            "LUTFARM_FIRMWARE_SRC to the firmware/ folder of a lutfarm checkout")
    return path


def toolchain() -> str:
    """The cross compiler's version line, or one line saying what to install."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None or shutil.which("make") is None:
        raise FirmwareError("the firmware needs the arm-none-eabi toolchain and make: "
                            "apt-get install make " + " ".join(TOOLCHAIN_PACKAGES))
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.splitlines()[0] if out else "arm-none-eabi-gcc"


def _sha_tree(root: Path, suffixes: tuple = ()) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and (not suffixes or p.suffix in suffixes):
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def unpacked(name: str, third_party: Path | None = None) -> tuple[Path, str]:
    """``name`` (``tflm-tree``, ``tflm-tree-reference``) as a folder, and its content hash: a
    ``NAME.tar.gz`` is unpacked once into the cache, a ``NAME`` folder is used as it is."""
    base = Path(third_party) if third_party else environment.third_party_dir()
    archive, folder = base / f"{name}.tar.gz", base / name
    if archive.exists():
        sha = file_sha256(archive)
        dest = environment.firmware_cache_dir() / "third_party" / f"{name}-{sha[:16]}"
        if not (dest / ".complete").exists():
            tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            (tmp / ".complete").touch()
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
        return dest, sha
    if folder.is_dir():
        return folder, _sha_tree(folder)
    raise FirmwareError(f"the firmware needs {name}.tar.gz (or a {name}/ folder) in {base}; set "
                        "LUTFARM_THIRD_PARTY or --third-party to the folder that holds it "
                        "(README: 'Microcontrollers' says how to make it)")


def _tree_root(unpacked_dir: Path) -> Path:
    """The tree inside an unpacked archive (``tree/`` in the shipped ones)."""
    for candidate in (unpacked_dir / "tree", unpacked_dir):
        if (candidate / "tensorflow" / "lite" / "micro").is_dir():
            return candidate
    raise FirmwareError(f"{unpacked_dir} holds no TFLite-Micro tree (tensorflow/lite/micro)")


def tflm_version(tree: Path) -> str:
    """The tflite-micro commit a tree was made from (its PROVENANCE), shortened."""
    prov = tree / "PROVENANCE"
    if prov.exists():
        m = re.search(r"tflite-micro\s+([0-9a-f]{7,40})", prov.read_text())
        if m:
            return m.group(1)[:12]
    return "unknown"


def _cpu_flags(src: Path, board: str) -> str:
    text = (src / "boards" / board / "board.mk").read_text()
    m = re.search(r"^CPU_FLAGS\s*:?=\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else board


def _sizes(elf: Path) -> FirmwareSizes:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    sec = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    text = sum(sec.get(s, 0) for s in (".text", ".ARM.extab", ".ARM.exidx"))
    return FirmwareSizes(text=text, data=sec.get(".data", 0),
                         bss=sec.get(".bss", 0) + sec.get(".heap", 0) + sec.get(".stack", 0),
                         model_buffer=sec.get(".model", 0), arena=sec.get(".arena", 0))


def build(board: str, kernels: str = "cmsis-nn", *, third_party: Path | None = None,
          defines: dict | None = None, jobs: int | None = None, log=None) -> Firmware:
    """The firmware ELF for ``board`` with ``kernels``, from the cache or built now.

    ``defines`` adds preprocessor definitions (the fault-injection tests use
    ``LUTFARM_HANG_ON_CRC``); they are part of the content hash."""
    if board not in BOARDS:
        raise FirmwareError(f"no firmware board {board!r}; lutfarm builds for: {', '.join(BOARDS)}")
    if kernels not in KERNELS:
        raise FirmwareError(f"kernels {kernels!r}: choose {' or '.join(KERNELS)}")
    compiler = toolchain()
    src = source_dir()
    tree_dir, tree_sha = unpacked(TREES[kernels], third_party)
    tree = _tree_root(tree_dir)
    defs = " ".join(f"-D{k}={v}" for k, v in sorted((defines or {}).items()))
    version = tflm_version(tree)
    key = json.dumps({"src": _sha_tree(src, (".c", ".cc", ".h", ".ld", ".mk", "")),
                      "tree": tree_sha, "board": board, "kernels": kernels,
                      "defs": defs, "compiler": compiler}, sort_keys=True)
    sha = hashlib.sha256(key.encode()).hexdigest()
    root = environment.firmware_cache_dir()
    out = root / "builds" / f"{board}-{kernels}-{sha[:16]}"
    elf = out / "firmware.elf"
    if elf.exists() and (out / "build.json").exists():
        return Firmware(BOARDS[board], kernels, elf, sha, _sizes(elf), version, 0.0, True)
    cpu = hashlib.sha256(f"{_cpu_flags(src, board)}|{compiler}".encode()).hexdigest()[:12]
    libdir = root / "lib" / f"{kernels}-{tree_sha[:12]}-{cpu}"
    cmd = ["make", "-C", str(src), f"-j{jobs or os.cpu_count() or 1}", "all",
           f"BOARD={board}", f"KERNELS={kernels}", f"TREE={tree}", f"OUT={out}",
           f"LIBDIR={libdir}", f"BOARD_DEFS_EXTRA={defs} -DLUTFARM_TFLM_VERSION=\\\"{version}\\\""]
    if log:
        log(f"building the {board} firmware ({kernels} kernels); a cold build takes minutes")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"the {board} firmware build took over {BUILD_TIMEOUT_S} s and was "
                            f"stopped; a cold build takes minutes on 2 cores: is the machine "
                            f"swapping? Run the command again to resume the build") from None
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        (root / "last-build.log").parent.mkdir(parents=True, exist_ok=True)
        (root / "last-build.log").write_text(proc.stdout + proc.stderr)
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        raise FirmwareError(f"the {board} firmware did not build: {why.strip()[:300]} "
                            f"(full log: {root / 'last-build.log'})")
    sizes = _sizes(elf)
    (out / "build.json").write_text(json.dumps({"board": board, "kernels": kernels,
                                                "build_s": took, "sizes": asdict(sizes)}))
    return Firmware(BOARDS[board], kernels, elf, sha, sizes, version, took, False)


def check_fits(fw: Firmware) -> list[str]:
    """What does not fit the board's flash and SRAM (empty when all of it does)."""
    problems = []
    b, s = fw.board, fw.sizes
    if s.flash > b.flash_bytes:
        problems.append(f"flash: {s.flash} bytes of code and data exceed the board's "
                        f"{b.flash_bytes}")
    ram = s.ram + s.model_buffer + s.arena
    if ram > b.ram_bytes:
        problems.append(f"SRAM: {ram} bytes (firmware {s.ram}, model buffer {s.model_buffer}, "
                        f"arena {s.arena}) exceed the board's {b.ram_bytes}")
    return problems


def with_firmware(device, third_party: Path | None = None, log=None):
    """An emulated MCU device with its firmware built (or found in the cache); other devices
    as they are (a real board runs the firmware flashed on it)."""
    from dataclasses import replace

    if not device.emulator or device.firmware:
        return device
    kernels = device.kernels or "cmsis-nn"
    fw = build(device.mcu, kernels, third_party=third_party, log=log)
    return replace(device, firmware=str(fw.elf), kernels=kernels)


# What a board's HELLO says of itself that a LUT keeps: the target its numbers belong to.
