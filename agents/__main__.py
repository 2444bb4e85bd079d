"""Entry point: ``python -m agents [--job FILE | --describe]`` (protocol in agents.protocol)."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from agents import AGENT_VERSION
from agents.context import fingerprint, moment
from agents.protocol import emit, read_job
from agents.runtimes import RUNTIMES, RuntimeUnavailable, get_runtime
from agents.timing import TimingSettings, time_callable


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def measure_case(runtime, case: dict, settings: dict, timing: TimingSettings) -> dict:
    """Time one model; returns the result event's fields."""
    path = case["model"]
    if not os.path.exists(path):
        raise FileNotFoundError("model file missing on the device: " + path)
    expected = case.get("sha256")
    if expected and _sha256(path) != expected:
        raise ValueError("model file is corrupted (checksum mismatch): " + path)
    t0 = time.perf_counter()
    loaded = runtime.load(path, settings)
    init_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    loaded.run()
    first_ms = (time.perf_counter() - t0) * 1000
    res = time_callable(loaded.run, timing)
    return {"status": "ok", "init_ms": init_ms, "first_ms": first_ms, "batch": res.batch,
            "attempts": res.attempts, "converged": res.converged,
            "warmup_calls": res.warmup_calls, "sampling_s": res.sampling_s, "stats": res.stats,
            "samples_ms": res.samples_ms, "inputs": loaded.inputs, "moment": moment()}


def run_job(job: dict, out=sys.stdout) -> int:
    settings = job["runtime"]
    try:
        runtime = get_runtime(settings.get("name", ""))
        info = runtime.info(settings)
        timing = TimingSettings.from_dict(job.get("timing"))
        if settings.get("affinity"):
            os.sched_setaffinity(0, set(settings["affinity"]))
    except (RuntimeUnavailable, ValueError, OSError) as exc:
        emit(out, "fatal", error=str(exc))
        return 2
    emit(out, "hello", job_id=job.get("job_id"), agent_version=AGENT_VERSION,
         context=fingerprint(info))
    measured = failed = 0
    for case in job["cases"]:
        try:
            fields = measure_case(runtime, case, settings, timing)
            measured += 1
        except Exception as exc:  # one bad model must not stop the job; report it by name
            message = " ".join(str(exc).split()) or type(exc).__name__
            fields = {"status": "failed", "error": f"{type(exc).__name__}: {message}"}
            failed += 1
        emit(out, "result", key=case["key"], **fields)
    emit(out, "done", measured=measured, failed=failed)
    return 0


def describe() -> dict:
    runtimes = {}
    for name in RUNTIMES:
        try:
            runtimes[name] = get_runtime(name).info({})
        except Exception as exc:
            runtimes[name] = {"error": str(exc)}
    return {"agent_version": AGENT_VERSION, "context": fingerprint(), "runtimes": runtimes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents", description=__doc__)
    parser.add_argument("--job", default="-", help="job JSON file, '-' for stdin")
    parser.add_argument("--describe", action="store_true", help="print capabilities and exit")
    args = parser.parse_args(argv)
    if args.describe:
        import json
        print(json.dumps(describe()))
        return 0
    try:
        job = read_job(args.job)
    except (OSError, ValueError) as exc:
        emit(sys.stdout, "fatal", error=f"cannot read job: {exc}")
        return 2
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
