"""Transports carry an agent job to a device and its events back.

``LocalTransport`` runs ``python -m agents`` in a subprocess of this machine, through exactly
the protocol an SSH device uses, so local and remote share every line of measuring code.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import agents
from agents.protocol import parse_line
from profiler.devices import Device

AGENT_ROOT = Path(agents.__file__).resolve().parent.parent


class AgentDied(RuntimeError):
    """The agent's stream ended without its ``done`` event."""


class LocalTransport:
    """Run the agent as a child process; ``proc`` is exposed so callers can stop it."""

    def __init__(self, device: Device):
        self.device = device
        self.proc: subprocess.Popen | None = None

    def model_path(self, local_path: Path) -> str:
        return str(local_path)

    def run_job(self, job: dict) -> Iterator[dict]:
        """Yield the agent's events as they arrive; raise AgentDied if it ends early."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(AGENT_ROOT),
                                                          env.get("PYTHONPATH")]))
        cmd = [self.device.python, "-m", "agents", "--job", "-"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=str(AGENT_ROOT))
        try:
            self.proc.stdin.write(json.dumps(job))
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        done = False
        for line in self.proc.stdout:
            if not line.strip():
                continue
            event = parse_line(line)
            done = done or event["event"] in ("done", "fatal")
            yield event
        stderr = self.proc.stderr.read()
        code = self.proc.wait()
        if not done:
            tail = " ".join(stderr.strip().splitlines()[-1:])
            raise AgentDied(f"agent on {self.device.name} exited with status {code} before "
                            f"finishing its job" + (f": {tail}" if tail else ""))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def transport_for(device: Device) -> LocalTransport:
    if device.transport == "local":
        return LocalTransport(device)
    raise ValueError(f"device {device.name!r} needs transport {device.transport!r}, "
                     f"which this lutfarm does not have")
