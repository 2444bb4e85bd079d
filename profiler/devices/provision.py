"""``devices provision``: a virtual environment with the runtimes, for boards without internet.

The controller asks the device for its Python and machine (e.g. cp311 / aarch64), downloads
wheels for exactly that platform with pip (``--platform``, ``--python-version``,
``--only-binary=:all:``), pushes them over SFTP, and installs them offline into
``<workdir>/venv``. Idempotent: a device whose venv already imports every runtime it asks for
is left alone. The agent uses ``<workdir>/venv/bin/python`` whenever it exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lutfarm.profiler.devices.deploy import UploadStats, deploy_agent, describe_remote
from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.devices.ssh import DeviceError, SSHSession
from lutfarm.profiler.export.cache import default_cache_dir
from lutfarm_agent.runtimes import SPECS


@dataclass
class ProvisionReport:
    name: str
    platform: str = ""
    installed: dict[str, str] = field(default_factory=dict)   # package -> version
    already: bool = False
    wheels_uploaded: int = 0
    bytes_uploaded: int = 0
    numpy_source: str = ""        # "wheel", or "system" (the board's own numpy)


def venv_packages(runtimes: list[str], pins: dict[str, str] | None = None) -> list[str]:
    """pip requirements for a device running ``runtimes`` (numpy first), from the runtimes'
    specs, each package pinned where the inventory pins it (``packages = {name = "==x"}``)."""
    pins = pins or {}
    wanted = [p for r in runtimes for p in SPECS[r].packages]
    numpy = [p for p in wanted if p.startswith("numpy")] or ["numpy"]
    rest = [p for p in dict.fromkeys(wanted) if not p.startswith("numpy")]
    out = []
    for req in [numpy[0], *rest]:
        name = re.split(r"[<>=!~]", req, maxsplit=1)[0]
        out.append(name + pins[name] if name in pins else req)
    return out


def platform_tags(machine: str, libc: str | None) -> list[str]:
    """Every wheel platform tag a Linux board can run: manylinux_2_N for each glibc 2.N from
    the board's own down to 2.17 (manylinux2014), then plain ``linux_<machine>``."""
    match = re.match(r"glibc-2\.(\d+)", libc or "")
    newest = int(match.group(1)) if match else 28      # unknown libc: what most boards have
    tags = [f"manylinux_2_{n}_{machine}" for n in range(newest, 16, -1)]
    return tags + [f"manylinux2014_{machine}", f"linux_{machine}"]


def download_wheels(packages: list[str], python_tag: str, machine: str,
                    cache: Path | None = None, libc: str | None = None,
                    wheelhouse: Path | None = None, deps: bool = True) -> Path:
    """Wheels for the device's platform, cached per platform on the controller (from the
    registry, and from ``wheelhouse`` first where given)."""
    version = f"{python_tag[2]}.{python_tag[3:]}"
    target = (cache or default_cache_dir() / "wheels") / f"{python_tag}-{machine}"
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--quiet",
           "--python-version", version, "--implementation", "cp", "-d", str(target)]
    for tag in platform_tags(machine, libc):
        cmd += ["--platform", tag]
    if wheelhouse is not None:
        cmd += ["--find-links", str(wheelhouse)]
    if not deps:
        cmd.append("--no-deps")
    try:
        proc = subprocess.run(cmd + packages, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise NoWheel(f"downloading wheels of {', '.join(packages)} took over 30 min and was "
                      f"stopped; check the registry connection or give --wheelhouse") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
        raise NoWheel(f"no wheels of {', '.join(packages)} for {python_tag} {machine} "
                      f"({libc or 'unknown libc'}): "
                      f"{lines[0] if lines else proc.stderr.strip()[-300:]}")
    return target


class NoWheel(DeviceError):
    """The registry (and the wheelhouse) has no wheel of a package for the board."""


def _describe(session: SSHSession, python: str, workdir: str) -> dict | None:
    return describe_remote(session, python, workdir)[0]


def provision(device: Device, wheel_cache: Path | None = None,
              wheelhouse: Path | None = None) -> ProvisionReport:
    """``<workdir>/venv`` on the device with its runtimes, installed offline from wheels this
    controller downloads for the board's platform (its glibc and machine) and pushes over SFTP.
    Where no numpy wheel exists for the board (armv7l), the venv uses the board's own numpy
    (Debian's python3-numpy) through its system site packages."""
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
        packages = venv_packages(list(device.runtimes), dict(device.packages))
        venv_python = f"{workdir}/venv/bin/python"
        if session.size(venv_python) is not None:
            info = _describe(session, venv_python, workdir)
            if info and info["numpy"] and all(info["runtimes"].get(r, {}).get("version")
                                              for r in device.runtimes):
                report.already = True
                report.installed = {"numpy": info["numpy"], **{
                    r: info["runtimes"][r]["version"] for r in device.runtimes}}
                return report
        wheels, system_numpy = _wheels_for(device, base, packages, wheel_cache, wheelhouse)
        report.numpy_source = "system" if system_numpy else "wheel"
        remote = f"{workdir}/wheels"
        session.makedirs(remote)
        for whl in sorted(wheels.glob("*.whl")):
            if session.size(f"{remote}/{whl.name}") != whl.stat().st_size:
                session.put(whl, f"{remote}/{whl.name}")
                report.wheels_uploaded += 1
                report.bytes_uploaded += whl.stat().st_size
        install = [p for p in packages if not (system_numpy and p.startswith("numpy"))]
        venv = [device.python, "-m", "venv", f"{workdir}/venv"]
        pip = [venv_python, "-m", "pip", "install", "--no-index", "--find-links", remote,
               "--disable-pip-version-check", "--quiet", *install]
        if system_numpy:
            venv.append("--system-site-packages")
        for argv in (venv, pip):
            code, _, err = session.run(argv, timeout=1800)
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


def _wheels_for(device: Device, base: dict, packages: list[str], cache: Path | None,
                wheelhouse: Path | None) -> tuple[Path, bool]:
    """(the folder of wheels to push, whether the venv must use the board's own numpy)."""
    tag, machine, libc = base["python_tag"], base["machine"], base.get("libc")
    try:
        return download_wheels(packages, tag, machine, cache, libc, wheelhouse), False
    except NoWheel:
        if not base.get("numpy"):
            raise _no_wheel(device, base, packages, cache, wheelhouse) from None
    # no numpy wheel for this board (armv7l): the board's numpy, and the runtimes without
    # their numpy dependency
    rest = [p for p in packages if not p.startswith("numpy")]
    try:
        return download_wheels(rest, tag, machine, cache, libc, wheelhouse, deps=False), True
    except NoWheel:
        raise _no_wheel(device, base, packages, cache, wheelhouse) from None


def _no_wheel(device: Device, base: dict, packages: list[str], cache: Path | None,
              wheelhouse: Path | None) -> NoWheel:
    """One line: which runtime has no wheel for the board, and which would work instead."""
    tag, machine, libc = base["python_tag"], base["machine"], base.get("libc")
    missing, usable = [], []
    for name, spec in SPECS.items():
        if spec.stand_in or not spec.packages:
            continue
        reqs = [p for p in venv_packages([name], dict(device.packages))
                if not p.startswith("numpy")]
        try:
            download_wheels(reqs, tag, machine, cache, libc, wheelhouse, deps=False)
            usable.append(name)
        except NoWheel:
            if name in device.runtimes:
                missing.append(f"{name} ({', '.join(reqs)})")
    instead = (f"this board can run: {', '.join(usable)}" if usable
               else "no runtime lutfarm knows has a wheel for it")
    return NoWheel(f"{device.name}: no wheel for {tag} {machine} ({libc or 'unknown libc'}) of "
                   f"{'; '.join(missing) or ', '.join(packages)}; {instead}; or give "
                   f"--wheelhouse DIR with wheels built for the board")
