"""``devices check``: what each device can do, before a campaign depends on it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

from lutfarm.profiler.devices.deploy import (
    UploadStats,
    agent_bundle,
    agent_command,
    deploy_agent,
    describe_remote,
    local_agent_dir,
)
from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.devices.ssh import AuthError, DeviceError, HostKeyError, SSHSession
from lutfarm_agent.protocol import last_event


@dataclass
class DeviceReport:
    name: str
    address: str
    reachable: bool = False
    auth: bool = False
    python: str = ""
    python_tag: str = ""
    machine: str = ""
    numpy: str | None = None
    runtimes: dict[str, str] = field(default_factory=dict)   # name -> version or "error: …"
    missing: list[str] = field(default_factory=list)         # runtimes not installed at all
    disk_free_bytes: int | None = None
    agent: str = ""          # "current", "current (deployed now)", …
    provisioned: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.auth and not self.error and self.numpy is not None and any(
            not v.startswith("error") for v in self.runtimes.values())


def _fill(report: DeviceReport, info: dict) -> None:
    report.python, report.python_tag = info["python"], info["python_tag"]
    report.machine, report.numpy = info["machine"], info["numpy"]
    report.disk_free_bytes = info["disk_free_bytes"]
    report.runtimes = {name: r.get("version") or f"error: {r.get('error')}"
                       for name, r in info["runtimes"].items()}
    report.missing = [name for name, r in info["runtimes"].items() if r.get("missing")]


def _board(device: Device) -> list[str]:
    """A microcontroller behind the device: describe asks its firmware too."""
    if device.emulator:
        import json
        return ["--board", json.dumps(device.runtime_settings())]
    return ["--serial", device.serial, "--baud", str(device.baud)] if device.serial else []


def check_device(device: Device) -> DeviceReport:
    report = DeviceReport(device.name, device.address)
    if device.emulator:
        from lutfarm.profiler.devices.firmware import FirmwareError, with_firmware
        try:
            device = with_firmware(device)
        except FirmwareError as exc:
            report.error = str(exc)
            return report
    if device.transport == "local":
        root = local_agent_dir()
        out = subprocess.run(agent_command(device.python, "--describe", *_board(device)),
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                             capture_output=True, text=True, timeout=120)
        report.reachable = report.auth = True
        report.agent = "local source"
        described = last_event(out.stdout, "described") if out.returncode == 0 else None
        if described is None:
            report.error = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "?"
            return report
        _fill(report, described)
        return report
    try:
        session = SSHSession(device)
    except (HostKeyError, AuthError) as exc:
        report.reachable, report.error = True, str(exc)
        return report
    except DeviceError as exc:
        report.error = str(exc)
        return report
    report.reachable = report.auth = True
    try:
        session.makedirs(device.workdir)
        workdir = session.sftp.normalize(device.workdir)
        stats = UploadStats()
        deploy_agent(session, workdir, stats)
        report.agent = f"{agent_bundle()[0]}" + (" (deployed now)" if stats.files else "")
        venv_python = f"{workdir}/venv/bin/python"
        report.provisioned = session.size(venv_python) is not None
        python = venv_python if report.provisioned else device.python
        described, report.error = describe_remote(session, python, workdir,
                                                  tuple(_board(device)))
        if described is not None:
            _fill(report, described)
    except DeviceError as exc:
        report.error = str(exc)
    finally:
        session.close()
    return report
