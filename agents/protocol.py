"""The job protocol between controller and agent (the same for ``local`` and SSH devices).

Invocation: ``python -m lutfarm_agent [--job FILE]`` reads one JSON job (from FILE or stdin) and
writes one event per line to stdout, flushed as soon as it is known.

Framing: the agent keeps the process's stdout for events alone. At start it moves the real
stdout to a private descriptor and points fd 1 (and ``sys.stdout``) at stderr, so whatever a
native library or a stray ``print`` writes becomes the agent's log on stderr. Each event line
is ``FRAME`` (the protocol tag, ``@lutfarm1``) followed by one JSON object; the
controller parses framed lines only and logs anything else, so nothing a runtime prints can
be mistaken for an event.

Job::

    {"job_id": "c12-local",
     "runtime": {"name": "onnxruntime", "threads": 1, "provider": "CPUExecutionProvider",
                 "affinity": [0]},                       # affinity optional (Linux)
     "timing": {...TimingSettings fields...},            # optional, defaults otherwise
     "cases": [{"key": "ConvBlock_H32_…", "model": "/path/m.onnx", "sha256": "…"}, …]}

Events, in order::

    {"event": "hello", "job_id": …, "agent_version": …, "pid": …, "context": {fingerprint}}
    {"event": "result", "key": …, "status": "ok", "init_ms": …, "first_ms": …, "batch": …,
     "attempts": …, "converged": …, "warmup_calls": …, "sampling_s": …,
     "stats": {count, min, max, mean, std, median, p90, p95, p99, ci_lo, ci_hi, rel_ci, cv},
     "samples_ms": [...], "moment": {freq_khz, temp_c},
     "memory": {"peak_bytes": …, "method": "rss-growth" | "tflm-arena" | "mcu-arena"},
     "details": {what the runtime really used: delegate, arena_bytes, …}}
    {"event": "result", "key": …, "status": "failed", "error": "one line"}
    (runtime settings: see lutfarm_agent.runtimes; an MCU board's serial protocol: lutfarm_agent.mcu)
    {"event": "done", "measured": n, "failed": m, "elapsed_s": s}  (s: the job on the board)

A job-level problem (unknown or missing runtime, unreadable job) is one
``{"event": "fatal", "error": …}`` line and exit status 2. Times are milliseconds. A controller
that sees the stream end without ``done`` knows the agent died: every case without a result
line was not measured.

Session mode, ``python -m lutfarm_agent --serve``: the agent first prints
``{"event": "ready", "agent_version": …, "pid": …}``, then reads one request per stdin line and
answers each in order: a job (as above) with its hello/result/done events, or
``{"verify": [{"path", "sha256"}, …]}`` with ``{"event": "verified", "bad": [paths]}``. It exits
when stdin closes. The controller keeps one such agent per device for a whole campaign, so
the interpreter and the runtime are loaded once, and uploads happen between jobs while the
agent is idle.

``python -m lutfarm_agent --describe [--workdir DIR]`` emits one ``described`` event: agent
version, Python version and tag, machine, numpy version, free disk, context and, per known
runtime, its version or why it cannot be used. ``python -m lutfarm_agent --verify`` reads
``[{"path", "sha256"}, …]`` from stdin and emits ``{"event": "verified", "bad": [paths that are
missing or differ]}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import IO

FRAME = "@lutfarm1 "


def event_stream() -> IO[str]:
    """Claim the process's stdout for events (see Framing above); returns the event stream."""
    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return open(private, "w", buffering=1, encoding="utf-8")


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception as one protocol-safe line (newlines folded, long texts cut)."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def emit(stream: IO[str], event: str, **fields) -> None:
    fields["event"] = event
    stream.write(FRAME + json.dumps(fields, separators=(",", ":")) + "\n")
    stream.flush()


class ProtocolError(ValueError):
    """A framed line that is not a valid event: a bug on one side, never a runtime's output."""


def parse_line(line: str) -> dict | None:
    """One line of the agent's stdout -> its event, or None for anything unframed (the
    controller logs such lines as the agent's output)."""
    if not line.startswith(FRAME):
        return None
    try:
        obj = json.loads(line[len(FRAME):])
    except ValueError as exc:
        raise ProtocolError(f"unreadable agent event ({exc}): {line[:80]}") from None
    if not isinstance(obj, dict) or "event" not in obj:
        raise ProtocolError("not an agent event: " + line[:80])
    return obj


def events_in(text: str) -> list:
    """Every framed event in a finished agent's stdout (``--describe``, ``--verify``)."""
    return [e for e in map(parse_line, text.splitlines()) if e is not None]


def last_event(text: str, name: str) -> dict | None:
    """The last ``name`` event in a finished agent's stdout, without its ``event`` field."""
    found = [e for e in events_in(text) if e["event"] == name]
    if not found:
        return None
    event = dict(found[-1])
    event.pop("event")
    return event


def read_job(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else open(path).read()
    job = json.loads(text)
    if not isinstance(job, dict) or "cases" not in job or "runtime" not in job:
        raise ValueError("a job needs 'runtime' and 'cases'")
    return job


def file_sha256(path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks: how a device checks every model it is sent."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
