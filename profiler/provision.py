"""``devices provision``: a virtual environment with the runtimes, for boards without internet.

The controller asks the device for its Python and machine (e.g. cp311 / aarch64), downloads
wheels for exactly that platform with pip (``--platform``, ``--python-version``,
``--only-binary=:all:``), pushes them over SFTP, and installs them offline into
``<workdir>/venv``. Idempotent: a device whose venv already imports every runtime it asks for
is left alone. The agent uses ``<workdir>/venv/bin/python`` whenever it exists.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lutfarm.profiler.deploy import UploadStats, agent_command, agent_dir, deploy_agent
from lutfarm.profiler.devices import Device
from lutfarm.profiler.export import default_cache_dir
from lutfarm.profiler.ssh import DeviceError, SSHSession
from lutfarm_agent.protocol import events_in
from lutfarm_agent.runtimes import SPECS

MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")


@dataclass
class ProvisionReport:
    name: str
    platform: str = ""
    installed: dict[str, str] = field(default_factory=dict)   # package -> version
    already: bool = False
    wheels_uploaded: int = 0
    bytes_uploaded: int = 0


def venv_packages(runtimes: list[str]) -> list[str]:
    """pip requirements for a device running ``runtimes`` (numpy first, pinned where one of
    them pins it), from the runtimes' specs."""
    wanted = [p for r in runtimes for p in SPECS[r].packages]
    numpy = [p for p in wanted if p.startswith("numpy")] or ["numpy"]
    rest = [p for p in dict.fromkeys(wanted) if not p.startswith("numpy")]
    return [numpy[0], *rest]


def download_wheels(packages: list[str], python_tag: str, machine: str,
                    cache: Path | None = None) -> Path:
    """Wheels for the device's platform, cached per platform on the controller."""
    version = f"{python_tag[2]}.{python_tag[3:]}"
    target = (cache or default_cache_dir() / "wheels") / f"{python_tag}-{machine}"
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--quiet",
           "--python-version", version, "--implementation", "cp", "-d", str(target)]
    for tag in MANYLINUX:
        cmd += ["--platform", f"{tag}_{machine}"]
    proc = subprocess.run(cmd + packages, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
        raise DeviceError(f"cannot download wheels of {', '.join(packages)} for {python_tag} "
                          f"{machine}: {lines[-1] if lines else proc.stderr.strip()[-300:]}")
    return target


def _describe(session: SSHSession, python: str, workdir: str) -> dict | None:
    code, out, _ = session.run(agent_command(python, "--describe", "--workdir", workdir),
                               cwd=agent_dir(workdir))
    described = [e for e in events_in(out) if e["event"] == "described"] if code == 0 else []
    return described[-1] if described else None


def provision(device: Device, wheel_cache: Path | None = None) -> ProvisionReport:
    if device.transport != "ssh":
        raise DeviceError(f"{device.name} is not an SSH device: install its runtimes by hand")
    report = ProvisionReport(device.name)
    session = SSHSession(device)
    try:
        session.makedirs(device.workdir)
        workdir = session.sftp.normalize(device.workdir)
        deploy_agent(session, workdir, UploadStats())
        base = _describe(session, device.python, workdir)
        if base is None:
            raise DeviceError(f"{device.name}: {device.python} cannot run the agent; is it "
                              f"Python >= 3.8?")
        report.platform = f"{base['python_tag']}-{base['machine']}"
        packages = venv_packages(device.runtimes)
        venv_python = f"{workdir}/venv/bin/python"
        if session.size(venv_python) is not None:
            info = _describe(session, venv_python, workdir)
            if info and info["numpy"] and all(info["runtimes"].get(r, {}).get("version")
                                              for r in device.runtimes):
                report.already = True
                report.installed = {"numpy": info["numpy"], **{
                    r: info["runtimes"][r]["version"] for r in device.runtimes}}
                return report
        wheels = download_wheels(packages, base["python_tag"], base["machine"], wheel_cache)
        remote = f"{workdir}/wheels"
        session.makedirs(remote)
        for whl in sorted(wheels.glob("*.whl")):
            if session.size(f"{remote}/{whl.name}") != whl.stat().st_size:
                session.put(whl, f"{remote}/{whl.name}")
                report.wheels_uploaded += 1
                report.bytes_uploaded += whl.stat().st_size
        for argv in ([device.python, "-m", "venv", f"{workdir}/venv"],
                     [venv_python, "-m", "pip", "install", "--no-index", "--find-links", remote,
                      "--disable-pip-version-check", "--quiet", *packages]):
            code, _, err = session.run(argv, timeout=600)
            if code != 0:
                raise DeviceError(f"{device.name}: {' '.join(argv[:3])} failed: "
                                  f"{err.strip().splitlines()[-1] if err.strip() else code}")
        info = _describe(session, venv_python, workdir)
        if not info:
            raise DeviceError(f"{device.name}: the new venv cannot run the agent")
        report.installed = {"numpy": info["numpy"], **{
            r: info["runtimes"][r].get("version") or info["runtimes"][r].get("error")
            for r in device.runtimes}}
        return report
    finally:
        session.close()
