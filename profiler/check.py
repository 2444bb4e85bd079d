"""``devices check``: what each device can do, before a campaign depends on it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

from lutfarm.profiler.deploy import (
    UploadStats,
    agent_bundle,
    agent_command,
    agent_dir,
    deploy_agent,
    local_agent_dir,
)
from lutfarm.profiler.devices import Device
from lutfarm.profiler.ssh import AuthError, DeviceError, HostKeyError, SSHSession
from lutfarm_agent.protocol import events_in


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


def _described(stdout: str) -> dict:
    """The agent's ``described`` event (anything else it printed is not protocol)."""
    found = [e for e in events_in(stdout) if e["event"] == "described"]
    if not found:
        raise DeviceError("the agent answered --describe without a description")
    return found[-1]


def _board(device: Device) -> list[str]:
    """A microcontroller behind the device: describe asks its firmware too."""
    return ["--serial", device.serial, "--baud", str(device.baud)] if device.serial else []


def check_device(device: Device) -> DeviceReport:
    report = DeviceReport(device.name, device.address)
    if device.transport == "local":
        root = local_agent_dir()
        out = subprocess.run(agent_command(device.python, "--describe", *_board(device)),
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                             capture_output=True, text=True, timeout=120)
        report.reachable = report.auth = True
        report.agent = "local source"
        if out.returncode != 0:
            report.error = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "?"
            return report
        _fill(report, _described(out.stdout))
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
        code, out, err = session.run(agent_command(python, "--describe", "--workdir", workdir,
                                                   *_board(device)),
                                     cwd=agent_dir(workdir))
        if code != 0:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
            report.error = f"{python} cannot run the agent: {last}"
        else:
            _fill(report, _described(out))
    except DeviceError as exc:
        report.error = str(exc)
    finally:
        session.close()
    return report
