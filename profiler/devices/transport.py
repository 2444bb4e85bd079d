"""Transports carry agent jobs to a device and their events back.

Both keep one ``python -m lutfarm_agent --serve`` session per device (lutfarm_agent.protocol) and exchange
JSON lines with it: ``LocalTransport`` as a child process of this machine, ``SSHTransport`` over
one paramiko connection after deploying the agent and the models. Local and remote share every
line of measuring code and every rule of the campaign (locks, timeouts, retries).

Lifecycle: ``open`` (connect, lock the board, deploy the agent) -> ``prepare(models)`` ->
``run_job`` (repeatable; the agent process is started once and reused) -> ``close`` (release
the lock). ``stop`` kills a running agent; the next job starts a fresh one.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator

from lutfarm.profiler.devices.deploy import (
    UploadStats,
    agent_command,
    agent_dir,
    check_models,
    deploy_agent,
    local_agent_dir,
    remote_model_path,
    send_models,
)
from lutfarm.profiler.devices.lock import SFTPFS, STALE_S, BoardLock, LocalFS
from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.devices.ssh import DeviceError, SSHSession
from lutfarm.profiler.devices.timeline import Timeline
from lutfarm.profiler.export.cache import ExportedModel, default_cache_dir
from lutfarm_agent.protocol import parse_line

START_TIMEOUT_S = 120.0
LOCK_IO_TIMEOUT_S = 10.0   # a lock read or write that takes longer is tried on a new channel
log = logging.getLogger(__name__)


class AgentDied(DeviceError):
    """The agent's stream ended before it answered (crash, kill, lost connection)."""


class CaseTimeout(DeviceError):
    """No event arrived within the per-case timeout: the case being measured hangs."""


class _AgentSession:
    """The request/answer exchange with a ``--serve`` agent; subclasses move the bytes."""

    device: Device
    lock: BoardLock | None

    def __init__(self) -> None:
        self.upload = UploadStats()
        self.agent_pid: int | None = None
        self._running = False
        self._ready = False       # the running agent has said "ready"
        self.output_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._log_thread: threading.Thread | None = None
        self.timeline = Timeline(record=False)   # a campaign's, where it runs one
        self._spawned_at = 0.0

    def _span(self, phase: str, **detail):
        return self.timeline.span(self.device.name, phase, **detail)

    def _log_output(self, lines: Iterable[str]) -> None:
        """What the agent process printed outside the protocol (its stderr, native libraries'
        output): logged, and the last lines kept to explain a death. Runs in a thread."""
        try:
            for line in lines:
                line = line.rstrip()
                if line:
                    self.output_tail.append(line)
                    log.debug("%s agent: %s", self.device.name, line)
        except (OSError, ValueError, EOFError):   # the stream was closed under us: a kill
            pass

    def _watch_output(self, stream) -> None:
        self._log_thread = threading.Thread(target=self._log_output, args=(stream,), daemon=True,
                                            name=f"agent-log-{self.device.name}")
        self._log_thread.start()

    def _last_output(self) -> str:
        """The agent's last line of output, once its stream ended (or after 2 s)."""
        if self._log_thread is not None:
            self._log_thread.join(2.0)
        return self.output_tail[-1] if self.output_tail else ""

    # -- what a subclass provides ------------------------------------------------------------
    def _spawn(self) -> None: ...

    def _send(self, line: str) -> None: ...

    def _readline(self, timeout: float | None) -> str: ...   # "" at end of stream

    def _death(self) -> str: ...

    def _kill(self) -> None: ...

    # -- shared logic --------------------------------------------------------------------------
    def start_agent(self) -> None:
        """Start the agent process without waiting for it: its interpreter and runtime load
        while the controller uploads the first models. The first request waits for ``ready``."""
        if self._running:
            return
        self._spawned_at = time.time()
        self._spawn()
        self._running, self._ready, self.agent_pid = True, False, None

    def _ensure_agent(self) -> None:
        if self._running and self._ready:
            return
        self.start_agent()
        ready = self._next_event(START_TIMEOUT_S)
        if ready["event"] == "fatal":
            raise AgentDied(f"agent on {self.device.name} refused to start: {ready['error']}")
        self.agent_pid, self._ready = ready.get("pid"), True
        self.timeline.add(self.device.name, "agent start", self._spawned_at)

    def _next_event(self, timeout: float | None) -> dict:
        while True:
            try:
                line = self._readline(timeout)
            except (TimeoutError, queue.Empty):
                raise CaseTimeout(f"{self.device.name}: no result within {timeout:.0f} s") from None
            except (OSError, EOFError) as exc:
                self._running = False
                raise AgentDied(f"agent on {self.device.name}: connection lost ({exc})") from None
            if not line:
                self._running = False
                raise AgentDied(f"agent on {self.device.name} {self._death()}")
            if not line.strip():
                continue
            event = parse_line(line)
            if event is not None:
                return event
            self._log_output([line])

    def _request(self, request: dict, ends: tuple[str, ...],
                 timeout: float | None) -> Iterator[dict]:
        self._ensure_agent()
        try:
            self._send(json.dumps(request) + "\n")
        except (OSError, EOFError) as exc:
            self._running = False
            raise AgentDied(f"agent on {self.device.name}: cannot send ({exc})") from None
        while True:
            event = self._next_event(timeout)
            yield event
            if event["event"] == "fatal":
                self.stop()
                return
            if event["event"] in ends:
                return

    def run_job(self, job: dict, line_timeout: float | None = None,
                phase: str = "job") -> Iterator[dict]:
        """Yield the job's events as they arrive (hello, results, done). The job's span on the
        timeline starts once the agent is ready (its start is a span of its own)."""
        self._ensure_agent()
        began, results, board_s = time.time(), [], None
        try:
            for event in self._request(job, ("done",), line_timeout):
                if event["event"] == "result":
                    results.append(time.time() - began)
                elif event["event"] == "done":
                    board_s = event.get("elapsed_s")   # an older agent does not say
                yield event
        finally:
            self.timeline.add(self.device.name, phase, began, cases=len(job.get("cases", ())),
                              results=len(results),
                              first_result_s=results[0] if results else None,
                              last_result_s=results[-1] if results else None, board_s=board_s)

    def verify(self, entries: list[dict]) -> list[str]:
        """Paths the device finds missing or different from their SHA-256."""
        for event in self._request({"verify": entries}, ("verified",), START_TIMEOUT_S):
            if event["event"] == "verified":
                return event["bad"]
        raise AgentDied(f"agent on {self.device.name} did not answer the checksum request")

    def close(self) -> None:
        """Stop the agent, release the board's lock, disconnect (safe to call twice)."""
        with self._span("teardown"):
            self._close()

    def _close(self) -> None: ...

    def stop(self) -> None:
        """Kill the running agent (a hung case, Ctrl-C); the next job starts a new one."""
        if self._running:
            self._running = False
            self._kill()


class LocalTransport(_AgentSession):
    """The agent as a child process; the board lock lives in the lutfarm cache."""

    def __init__(self, device: Device):
        super().__init__()
        self.device = device
        self.proc: subprocess.Popen | None = None
        self.lock: BoardLock | None = None
        self._lines: queue.Queue = queue.Queue()

    def open(self, owner: dict, lock_wait_s: float = 0.0, stale_s: float = STALE_S) -> None:
        directory = default_cache_dir() / "devices" / self.device.name
        directory.mkdir(parents=True, exist_ok=True)
        with self._span("lock"):
            self.lock = BoardLock(LocalFS(), str(directory), self.device.name, owner, stale_s)
            self.lock.acquire(lock_wait_s)

    def prepare(self, models: list[ExportedModel]) -> None:
        """Nothing to upload: the agent reads the cache directly (and checks every hash)."""

    def prefetch(self, models: list[ExportedModel]) -> None:
        """Nothing to upload."""

    def model_path(self, model: ExportedModel) -> str:
        return str(model.path)

    def _spawn(self) -> None:
        root = local_agent_dir()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        self.proc = proc = subprocess.Popen(
            agent_command(self.device.python, "--serve"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(root))
        self._lines = lines = queue.Queue()

        def read() -> None:   # a thread, so that waiting for a line can time out
            for line in proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=read, daemon=True, name=f"agent-{self.device.name}").start()
        self._watch_output(proc.stderr)

    def _send(self, line: str) -> None:
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def _readline(self, timeout: float | None) -> str:
        return self._lines.get(timeout=timeout)

    def _death(self) -> str:
        code = self.proc.wait()
        tail = self._last_output()
        return f"exited with status {code} before finishing its job" + (
            f": {tail}" if tail else "")

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()          # the agent exits when its stdin closes
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        self._running = False
        if self.lock:
            self.lock.release()


class SSHTransport(_AgentSession):
    """An SSH device: one connection, the lock on the board, agent and models deployed."""

    def __init__(self, device: Device):
        super().__init__()
        self.device = device
        self.session: SSHSession | None = None
        self.lock_sftp = None
        self.lock: BoardLock | None = None
        self.workdir = device.workdir
        self.python = device.python
        self._chan = None
        self._stream = None
        self._unverified: list[ExportedModel] = []
        self._there: dict[str, int] = {}     # the board's models directory, as last seen

    def open(self, owner: dict, lock_wait_s: float = 0.0, stale_s: float = STALE_S) -> None:
        self._there = {}                      # a new connection lists the board's models again
        with self._span("connect"):
            self.session = SSHSession(self.device)
            self.session.makedirs(self.device.workdir)
            self.workdir = self.session.sftp.normalize(self.device.workdir)
        with self._span("lock"):
            # The lock's heartbeat gets its own SFTP channel: SFTP clients are not shared by
            # threads.
            self.lock_sftp = self._lock_channel()
            self.lock = BoardLock(SFTPFS(self.lock_sftp, reopen=self._lock_channel),
                                  self.workdir, self.device.name, owner, stale_s)
            self.lock.acquire(lock_wait_s)
        with self._span("deploy") as detail:
            before = self.upload.files
            deploy_agent(self.session, self.workdir, self.upload)
            venv_python = f"{self.workdir}/venv/bin/python"
            self.python = venv_python if self.session.size(venv_python) is not None \
                else self.device.python
            detail["files"] = self.upload.files - before
        self.start_agent()

    def _lock_channel(self):
        """An SFTP channel of the lock's own, whose calls time out rather than hang."""
        sftp = self.session.client.open_sftp()
        sftp.get_channel().settimeout(LOCK_IO_TIMEOUT_S)
        self.lock_sftp = sftp
        return sftp

    def prepare(self, models: list[ExportedModel]) -> None:
        """Upload what the device lacks and verify it, with what ``prefetch`` sent before."""
        with self._span("upload", models=len(models)) as detail:
            sent = self._unverified + send_models(self.session, self.workdir, models,
                                                  self.upload, self._there)
            self._unverified = []
            detail["sent"] = len(sent)
            check_models(self.session, self.workdir, sent, self.verify)

    def prefetch(self, models: list[ExportedModel]) -> None:
        """Upload the next chunk's models while a job runs (SFTP only: the agent is busy, so
        their checksums wait for ``prepare``)."""
        with self._span("prefetch", models=len(models)):
            self._unverified += send_models(self.session, self.workdir, models, self.upload,
                                            self._there)

    def model_path(self, model: ExportedModel) -> str:
        return remote_model_path(self.workdir, model)

    def _spawn(self) -> None:
        self._chan = self.session.open_channel(agent_command(self.python, "--serve"),
                                               agent_dir(self.workdir), START_TIMEOUT_S)
        self._stream = self._chan.makefile("r")
        self._watch_output(self._chan.makefile_stderr("r"))

    def _send(self, line: str) -> None:
        self._chan.sendall(line.encode())

    def _readline(self, timeout: float | None) -> str:
        self._chan.settimeout(timeout)
        return self._stream.readline()

    def _death(self) -> str:
        chan = self._chan
        if chan is not None and chan.exit_status_ready():
            tail = self._last_output()
            return (f"exited with status {chan.recv_exit_status()} before finishing its job"
                    + (f": {tail}" if tail else ""))
        return "lost its connection before finishing its job"

    def _kill(self) -> None:
        """Kill the agent on the device (closing the channel alone may not)."""
        if self.agent_pid and self.session:
            try:
                self.session.run(["kill", "-9", str(self.agent_pid)], timeout=10)
            except DeviceError:
                pass
        if self._chan is not None:
            self._chan.close()
        self._chan = self._stream = None

    def _close(self) -> None:
        try:
            if self._running and self._chan is not None:
                try:
                    self._chan.shutdown_write()   # the agent exits when its stdin closes
                    self._chan.status_event.wait(10)
                except Exception:
                    pass
                self._chan.close()
                self._running = False
            self.stop()
        finally:
            if self.lock:
                self.lock.release()
            if self.lock_sftp is not None:
                self.lock_sftp.close()
            if self.session:
                self.session.close()


def transport_for(device: Device) -> LocalTransport | SSHTransport:
    if device.transport == "local":
        return LocalTransport(device)
    if device.transport == "ssh":
        return SSHTransport(device)
    raise DeviceError(f"device {device.name!r} needs transport {device.transport!r}, which this "
                      f"lutfarm does not have (ssh, local)")
