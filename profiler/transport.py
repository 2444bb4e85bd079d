"""Transports carry an agent job to a device and its events back.

Both run ``python -m agents`` with the job on stdin and read its JSON lines (agents.protocol):
``LocalTransport`` as a child process of this machine, ``SSHTransport`` over one paramiko
connection after deploying the agent and the models. Local and remote share every line of
measuring code and every rule of the campaign (locks, timeouts, retries).

Lifecycle: ``open`` (connect, lock the board, deploy the agent) -> ``prepare(models)`` ->
``run_job`` (repeatable) -> ``close`` (release the lock). ``stop`` kills a running agent.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import agents
from agents.protocol import parse_line
from profiler.deploy import UploadStats, agent_dir, deploy_agent, remote_model_path, upload_models
from profiler.devices import Device
from profiler.export import ExportedModel, default_cache_dir
from profiler.lock import SFTPFS, STALE_S, BoardLock, LocalFS
from profiler.ssh import DeviceError, SSHSession

AGENT_ROOT = Path(agents.__file__).resolve().parent.parent


class AgentDied(DeviceError):
    """The agent's stream ended without its ``done`` event (crash, kill, lost connection)."""


class CaseTimeout(DeviceError):
    """No event arrived within the per-case timeout: the case being measured hangs."""


def _events(lines: Iterator[str], device: str, what: str) -> Iterator[dict]:
    """Parse protocol lines; AgentDied if the stream ends before ``done``/``fatal``."""
    finished = False
    for line in lines:
        if not line.strip():
            continue
        event = parse_line(line)
        finished = finished or event["event"] in ("done", "fatal")
        yield event
    if not finished:
        raise AgentDied(f"agent on {device} {what()}")


class LocalTransport:
    """Run the agent as a child process; the board lock lives in the lutfarm cache."""

    def __init__(self, device: Device):
        self.device = device
        self.proc: subprocess.Popen | None = None
        self.upload = UploadStats()
        self.lock: BoardLock | None = None

    def open(self, owner: dict, lock_wait_s: float = 0.0, stale_s: float = STALE_S) -> None:
        directory = default_cache_dir() / "devices" / self.device.name
        directory.mkdir(parents=True, exist_ok=True)
        self.lock = BoardLock(LocalFS(), str(directory), self.device.name, owner, stale_s)
        self.lock.acquire(lock_wait_s)

    def prepare(self, models: list[ExportedModel]) -> None:
        """Nothing to upload: the agent reads the cache directly."""

    def model_path(self, model: ExportedModel) -> str:
        return str(model.path)

    def run_job(self, job: dict, line_timeout: float | None = None) -> Iterator[dict]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(AGENT_ROOT),
                                                          env.get("PYTHONPATH")]))
        self.proc = proc = subprocess.Popen(
            [self.device.python, "-m", "agents", "--job", "-"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=str(AGENT_ROOT))
        try:
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        lines: queue.Queue = queue.Queue()

        def read() -> None:   # a thread, so that waiting for a line can time out
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()

        def timed_lines():
            while True:
                try:
                    line = lines.get(timeout=line_timeout)
                except queue.Empty:
                    raise CaseTimeout(f"{self.device.name}: no result within "
                                      f"{line_timeout:.0f} s") from None
                if line is None:
                    return
                yield line

        def why() -> str:
            code = proc.wait()
            tail = " ".join(proc.stderr.read().strip().splitlines()[-1:])
            return f"exited with status {code} before finishing its job" + (
                f": {tail}" if tail else "")

        yield from _events(timed_lines(), self.device.name, why)
        proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.stop()
        if self.lock:
            self.lock.release()


class SSHTransport:
    """An SSH device: one connection, the lock on the board, agent and models deployed."""

    def __init__(self, device: Device):
        self.device = device
        self.session: SSHSession | None = None
        self.lock_session: SSHSession | None = None
        self.lock: BoardLock | None = None
        self.upload = UploadStats()
        self.workdir = device.workdir
        self.python = device.python
        self._chan = None
        self._pid: int | None = None

    def open(self, owner: dict, lock_wait_s: float = 0.0, stale_s: float = STALE_S) -> None:
        self.session = SSHSession(self.device)
        self.session.makedirs(self.device.workdir)
        self.workdir = self.session.sftp.normalize(self.device.workdir)
        # The lock's heartbeat gets its own connection: SFTP clients are not shared by threads.
        self.lock_session = SSHSession(self.device)
        self.lock = BoardLock(SFTPFS(self.lock_session.sftp), self.workdir, self.device.name,
                              owner, stale_s)
        self.lock.acquire(lock_wait_s)
        deploy_agent(self.session, self.workdir, self.upload)
        venv_python = f"{self.workdir}/venv/bin/python"
        self.python = venv_python if self.session.size(venv_python) is not None \
            else self.device.python

    def prepare(self, models: list[ExportedModel]) -> None:
        upload_models(self.session, self.workdir, self.python, models, self.upload)

    def model_path(self, model: ExportedModel) -> str:
        return remote_model_path(self.workdir, model)

    def run_job(self, job: dict, line_timeout: float | None = None) -> Iterator[dict]:
        self._pid = None
        chan = self._chan = self.session.open_channel(
            [self.python, "-m", "agents", "--job", "-"], agent_dir(self.workdir),
            line_timeout or 3600)
        try:
            chan.sendall(json.dumps(job).encode())
            chan.shutdown_write()
        except (OSError, EOFError) as exc:
            raise AgentDied(f"agent on {self.device.name}: connection lost ({exc})") from None
        stream = chan.makefile("r")

        def lines():
            while True:
                try:
                    line = stream.readline()
                except TimeoutError:
                    raise CaseTimeout(f"{self.device.name}: no result within "
                                      f"{line_timeout:.0f} s") from None
                except (OSError, EOFError) as exc:
                    raise AgentDied(f"agent on {self.device.name}: connection lost "
                                    f"({exc})") from None
                if not line:
                    return
                yield line

        def why() -> str:
            if chan.exit_status_ready():
                err = chan.recv_stderr(65536).decode(errors="replace").strip().splitlines()
                return (f"exited with status {chan.recv_exit_status()} before finishing its job"
                        + (f": {err[-1]}" if err else ""))
            return "lost its connection before finishing its job"

        for event in _events(lines(), self.device.name, why):
            if event["event"] == "hello":
                self._pid = event.get("pid")
            yield event

    def stop(self) -> None:
        """Kill the running agent on the device (closing the channel alone may not)."""
        if self._chan is not None:
            if self._pid and self.session:
                try:
                    self.session.run(["kill", "-9", str(self._pid)], timeout=10)
                except DeviceError:
                    pass
            self._chan.close()
            self._chan, self._pid = None, None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.lock:
                self.lock.release()
            for s in (self.session, self.lock_session):
                if s:
                    s.close()


def transport_for(device: Device) -> LocalTransport | SSHTransport:
    if device.transport == "local":
        return LocalTransport(device)
    if device.transport == "ssh":
        return SSHTransport(device)
    raise DeviceError(f"device {device.name!r} needs transport {device.transport!r}, which this "
                      f"lutfarm does not have (ssh, local)")
