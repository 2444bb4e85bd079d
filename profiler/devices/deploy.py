"""Putting the agent and the case models on a device, each upload done once.

The agent is the ``lutfarm_agent`` package (the repository's ``agents/`` folder), versioned by
the hash of its files and unpacked into ``<workdir>/agent-<hash>/lutfarm_agent/``; a local
device runs the same bundle from the lutfarm cache, so local and remote agents are one thing. Models go to
``<workdir>/models/<sha256>.<fmt>`` (content-addressed, so a later campaign, or another space
sharing a block, uploads nothing already there). After
an upload the device itself checks the SHA-256 of what arrived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import lutfarm_agent
from lutfarm.profiler.devices.ssh import DeviceError, SSHSession
from lutfarm.profiler.export.cache import ExportedModel, default_cache_dir
from lutfarm_agent.protocol import last_event

AGENT_DIR = Path(lutfarm_agent.__file__).resolve().parent
AGENT_MODULE = "lutfarm_agent"
COMPLETE = ".complete"


def agent_command(python: str, *args: str) -> list[str]:
    """The command line that runs the agent with ``python`` from its bundle directory."""
    return [python, "-m", AGENT_MODULE, *args]


@dataclass
class UploadStats:
    files: int = 0
    bytes: int = 0


@lru_cache(maxsize=1)
def agent_bundle() -> tuple[str, dict[str, bytes]]:
    """(content hash, {path relative to the bundle directory: bytes}) of the agent."""
    files = {f"{AGENT_MODULE}/{p.relative_to(AGENT_DIR).as_posix()}": p.read_bytes()
             for p in sorted(AGENT_DIR.rglob("*.py"))}
    h = hashlib.sha256()
    for name, data in files.items():
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16], files


def agent_dir(workdir: str) -> str:
    return f"{workdir}/agent-{agent_bundle()[0]}"


def local_agent_dir() -> Path:
    """The agent bundle unpacked in the lutfarm cache (written once per version): what a
    local device runs, with any interpreter, whether or not lutfarm is installed in it."""
    version, files = agent_bundle()
    target = default_cache_dir() / f"agent-{version}"
    if not (target / COMPLETE).exists():
        for rel, data in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        (target / COMPLETE).write_text(version)
    return target


def describe_remote(session: SSHSession, python: str, workdir: str,
                    extra: tuple[str, ...] = ()) -> tuple[dict | None, str]:
    """(the deployed agent's ``--describe`` under ``python``, or None; why not, in one line)."""
    code, out, err = session.run(agent_command(python, "--describe", "--workdir", workdir,
                                               *extra), cwd=agent_dir(workdir))
    described = last_event(out, "described") if code == 0 else None
    if described is None:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
        return None, f"{python} cannot run the agent: {last}"
    return described, ""


def deploy_agent(session: SSHSession, workdir: str, stats: UploadStats) -> str:
    """Upload the agent unless this exact version is already there; returns its directory."""
    version, files = agent_bundle()
    target = agent_dir(workdir)
    if session.size(f"{target}/{COMPLETE}") is not None:
        return target
    for rel, data in files.items():
        session.makedirs(f"{target}/{Path(rel).parent.as_posix()}")
        session.put_bytes(data, f"{target}/{rel}")
        stats.files += 1
        stats.bytes += len(data)
    session.put_bytes(version.encode(), f"{target}/{COMPLETE}")
    return target


def remote_model_path(workdir: str, model: ExportedModel) -> str:
    return f"{workdir}/models/{model.sha256}.{model.fmt}"


def send_models(session: SSHSession, workdir: str, models: list[ExportedModel],
                stats: UploadStats, there: dict[str, int]) -> list[ExportedModel]:
    """Upload the models the device lacks (over SFTP only: safe beside a running agent job);
    the ones sent, which ``check_models`` must verify before they are used. ``there``: the
    models directory's file sizes as this connection last saw them (read when empty, kept up
    to date here), so that a chunk does not list a directory of thousands of models again."""
    if not models:
        return []
    if not there:
        session.makedirs(f"{workdir}/models")
        there.update(session.sizes(f"{workdir}/models"))
    sent = []
    for m in models:
        remote, size = remote_model_path(workdir, m), m.path.stat().st_size
        name = remote.rsplit("/", 1)[1]
        if there.get(name) == size:
            continue
        try:
            session.put(m.path, remote)
        except OSError as exc:
            free = _free_bytes(session, workdir)
            hint = (f"disk full: {free} bytes free in {workdir}" if free is not None
                    and free < size else "is the device's disk full?")
            raise DeviceError(f"{session.device.name}: upload of {m.path.name} failed ({exc}); "
                              f"{hint}") from None
        stats.files += 1
        stats.bytes += size
        there[name] = size
        sent.append(m)
    return sent


def check_models(session: SSHSession, workdir: str, sent: list[ExportedModel],
                 verify: Callable[[list[dict]], list[str]]) -> None:
    """The device's checksums of freshly sent models; corrupt ones are deleted and reported."""
    if not sent:
        return
    bad = verify([{"path": remote_model_path(workdir, m), "sha256": m.sha256} for m in sent])
    for path in bad:   # never leave a corrupt file where a later campaign would trust it
        try:
            session.sftp.remove(path)
        except OSError:
            pass
    if bad:
        raise DeviceError(f"{session.device.name}: {len(bad)} uploaded model(s) arrived "
                          f"corrupted (checksum mismatch), e.g. {bad[0]}")


def _free_bytes(session: SSHSession, directory: str) -> int | None:
    try:
        st = session.sftp.statvfs(directory) if hasattr(session.sftp, "statvfs") else None
    except OSError:
        st = None
    if st is None:
        code, out, _ = session.run(["df", "-Pk", directory], timeout=10)
        try:
            return int(out.splitlines()[1].split()[3]) * 1024 if code == 0 else None
        except (IndexError, ValueError):
            return None
    return st.f_bavail * st.f_frsize
