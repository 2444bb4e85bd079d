"""An EMULATED microcontroller: lutfarm's firmware under ``qemu-system-arm``, its UART on a
pseudo-terminal that the harness opens with pyserial like a real board's port.

QEMU runs with ``-icount shift=N,align=off,sleep=off``: virtual time advances 2^N ns per
guest instruction and never waits for the host, so the firmware's timer (SysTick) counts
instructions and the same model gives the same ticks on every run. These are emulated
timings, not a Cortex-M's cycles: caches, wait states, pipeline stalls and bus contention do
not exist in them. The arena, model and firmware sizes are the real 32-bit build's.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

QEMU = "qemu-system-arm"
_PTY = re.compile(r"char device redirected to (/dev/\S+)")


class EmulatorError(RuntimeError):
    """The emulator is missing or did not come up."""


def _die_with_parent() -> None:
    """In the child: SIGKILL when the agent dies (Linux), so no emulator outlives its agent."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


class Emulated:
    """One running QEMU with the firmware; ``port`` is its UART's pty."""

    def __init__(self, machine: str, firmware: str, icount_shift: int = 0,
                 start_timeout: float = 20.0):
        if shutil.which(QEMU) is None:
            raise EmulatorError("an emulated MCU needs QEMU: apt-get install qemu-system-arm")
        if not os.path.exists(firmware):
            raise EmulatorError("the firmware to emulate is missing: " + firmware)
        self.machine, self.firmware, self.icount_shift = machine, firmware, icount_shift
        self.cmd = [QEMU, "-M", machine, "-kernel", firmware, "-nographic", "-monitor", "none",
                    "-serial", "pty", "-icount", f"shift={icount_shift},align=off,sleep=off",
                    # the firmware's LOADF reads model files from here (ARM semihosting)
                    "-semihosting-config", "enable=on,target=native"]
        self.files = tempfile.mkdtemp(prefix="lfmcu")    # short: a LOADF line holds the path
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=_die_with_parent)
        self.output: collections.deque = collections.deque(maxlen=40)   # QEMU's last words
        self.port = self._wait_for_pty(start_timeout)
        # QEMU keeps writing to stdout (warnings); drain it so it never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_pty(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            m = _PTY.search(line)
            if m:
                return m.group(1)
        self.stop()
        raise EmulatorError(f"{QEMU} -M {self.machine} did not start: "
                            f"{' / '.join(seen[-3:]) or 'no output'}")

    def _drain(self) -> None:
        try:
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
        except (OSError, ValueError):
            pass

    def why_dead(self) -> str:
        """How QEMU ended (its exit status and last output), or "" while it runs."""
        code = self.proc.poll()
        if code is None:
            return ""
        time.sleep(0.1)             # let the drain thread take its last lines
        said = " / ".join(self.output) or "no output"
        return f"QEMU exited with status {code}: {said}"

    def model_file(self, data: bytes) -> str:
        """A host file the firmware's LOADF reads ``data`` from."""
        path = os.path.join(self.files, "m")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(self.files, ignore_errors=True)
