"""Board clock control: a cpufreq governor or a fixed frequency for the length of a job, and
the board's own settings put back afterwards.

nn-Meter's users lost weeks to frequency scaling; a board timed under ``ondemand`` measures its
governor as much as its blocks. Writing cpufreq needs root, so the agent writes directly when it
may, else through ``sudo -n tee`` (a lab's sudoers can allow exactly that, without a password),
else it applies nothing and says why: the controller records it and warns.
"""

from __future__ import annotations

import glob
import os
import subprocess

from lutfarm_agent.context import SYS, read_text

CPUFREQ = "/devices/system/cpu/cpu[0-9]*/cpufreq"


class ClockError(Exception):
    """The requested clock setting cannot be applied on this board (the reason, one line)."""


def _write_sysfs(path: str, value: str) -> str:
    """Write one cpufreq file; returns how ("sysfs" or "sudo")."""
    try:
        with open(path, "w") as f:
            f.write(value)
        return "sysfs"
    except PermissionError:
        pass
    except OSError as exc:     # the kernel refused the value itself (EINVAL, EBUSY)
        raise ClockError(f"writing {value!r} to {path} failed: {exc.strerror or exc}") from None
    try:
        proc = subprocess.run(["sudo", "-n", "tee", path], input=value, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=30)
    except FileNotFoundError:
        raise ClockError(f"no permission to write {path} and sudo is not installed") from None
    except subprocess.TimeoutExpired:
        raise ClockError(f"sudo -n tee {path} did not answer in 30 s") from None
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ClockError(f"no permission to write {path}, and sudo -n refused: {why} "
                         f"(allow the agent's user 'tee' on cpufreq files in sudoers, NOPASSWD)")
    return "sudo"


class ClockControl:
    """Apply ``governor`` and/or ``frequency_khz`` to every CPU under ``sys_root``; restore."""

    def __init__(self, governor: str | None = None, frequency_khz: int | None = None,
                 sys_root: str = SYS):
        self.governor, self.frequency_khz, self.sys_root = governor, frequency_khz, sys_root
        self.written = []       # (path, previous value), in the order written

    @classmethod
    def from_settings(cls, settings: dict) -> ClockControl | None:
        governor, khz = settings.get("governor"), settings.get("frequency_khz")
        if not governor and not khz:
            return None
        return cls(governor, int(khz) if khz else None, settings.get("sysfs_root") or SYS)

    def requested(self) -> dict:
        out = {}
        if self.governor:
            out["governor"] = self.governor
        if self.frequency_khz:
            out["frequency_khz"] = self.frequency_khz
        return out

    def _plan(self) -> list:
        """(path, value) writes for every CPU, checked against what the board offers."""
        cpus = sorted(glob.glob(self.sys_root + CPUFREQ))
        if not cpus:
            raise ClockError(f"no cpufreq under {self.sys_root}/devices/system/cpu (VMs and "
                             f"emulators expose none): clocks left as they are")
        plan = []
        for d in cpus:
            if self.governor:
                offered = (read_text(d + "/scaling_available_governors") or "").split()
                if offered and self.governor not in offered:
                    raise ClockError(f"governor {self.governor!r} is not offered by "
                                     f"{os.path.basename(os.path.dirname(d))}; it has: "
                                     f"{', '.join(offered)}")
                plan.append((d + "/scaling_governor", self.governor))
            if self.frequency_khz:
                plan += self._frequency_writes(d, self.frequency_khz)
        return plan

    @staticmethod
    def _frequency_writes(d: str, khz: int) -> list:
        cpu = os.path.basename(os.path.dirname(d))
        offered = [int(v) for v in (read_text(d + "/scaling_available_frequencies") or "").split()]
        low, high = read_text(d + "/cpuinfo_min_freq"), read_text(d + "/cpuinfo_max_freq")
        if offered and khz not in offered:
            raise ClockError(f"{cpu} does not offer {khz} kHz; it has: "
                             f"{', '.join(map(str, sorted(offered)))}")
        if low and high and not int(low) <= khz <= int(high):
            raise ClockError(f"{khz} kHz is outside {cpu}'s range {low}-{high} kHz")
        current_min = int(read_text(d + "/scaling_min_freq") or 0)
        # min <= max must hold after every single write: raise the ceiling first when going up
        order = ("scaling_max_freq", "scaling_min_freq") if khz >= current_min else \
            ("scaling_min_freq", "scaling_max_freq")
        return [(d + "/" + name, str(khz)) for name in order]

    def apply(self) -> dict:
        """Apply the request; returns what the context records. Never raises: a board that
        cannot be set keeps its clocks, and the record says why."""
        record = {"requested": self.requested(), "applied": False, "via": None, "error": None}
        try:
            vias = set()
            for path, value in self._plan():
                previous = read_text(path)
                if previous is None:
                    raise ClockError(f"cannot read {path}")
                vias.add(_write_sysfs(path, value))
                self.written.append((path, previous))
            record.update(applied=True, via="+".join(sorted(vias)),
                          cpus=len(glob.glob(self.sys_root + CPUFREQ)))
        except ClockError as exc:
            record["error"] = str(exc)
            self.restore()
        return record

    def restore(self) -> list:
        """Write back every value changed, last first; returns the errors (empty when clean)."""
        errors = []
        while self.written:
            path, previous = self.written.pop()
            try:
                _write_sysfs(path, previous)
            except ClockError as exc:
                errors.append(str(exc))
        return errors
