"""Entry point: ``python -m lutfarm_agent [--job FILE | --describe]`` (protocol in lutfarm_agent.protocol)."""

from __future__ import annotations

import argparse
import os
import sys
import time

# numpy's own BLAS threads are never what is timed (the runtime brings its thread pool); one
# spares each agent start a thread pool's worth of CPU, which a board's campaign pays per agent
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from lutfarm_agent import AGENT_VERSION
from lutfarm_agent.clocks import ClockControl
from lutfarm_agent.context import SYS, cool_down, fingerprint, moment
from lutfarm_agent.memory import RSSPeak
from lutfarm_agent.protocol import emit, event_stream, file_sha256, one_line, read_job
from lutfarm_agent.runtimes import (
    RUNTIMES,
    SPECS,
    RuntimeMissing,
    RuntimeUnavailable,
    get_runtime,
    takes_turns,
)
from lutfarm_agent.timing import (
    TimingSettings,
    for_deterministic_clock,
    time_callable,
    time_interleaved,
)


def _load(runtime, case: dict, settings: dict) -> tuple:
    """Check and load one model, run it once: (loaded, init_ms, first_ms, memory)."""
    path = case["model"]
    if not os.path.exists(path):
        raise FileNotFoundError("model file missing on the device: " + path)
    expected = case.get("sha256")
    if expected and file_sha256(path) != expected:
        raise ValueError("model file is corrupted (checksum mismatch): " + path)
    if case.get("shapes"):      # a model file's dynamic dimensions, as the user gave them
        settings = dict(settings, shapes=case["shapes"])
    rss = RSSPeak()
    rss.start()
    t0 = time.perf_counter()
    loaded = runtime.load(path, settings)
    init_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    loaded.run()
    first_ms = (time.perf_counter() - t0) * 1000
    memory = loaded.memory or {"peak_bytes": rss.peak_growth(), "method": rss.method}
    return loaded, init_ms, first_ms, memory


def _fields(loaded, res, init_ms: float, first_ms: float, memory: dict, before: dict,
            after: dict, **extra) -> dict:
    """A result event's fields."""
    return dict({"status": "ok", "init_ms": init_ms, "first_ms": first_ms, "batch": res.batch,
                 "attempts": res.attempts, "converged": res.converged,
                 "warmup_calls": res.warmup_calls, "sampling_s": res.sampling_s,
                 "stats": res.stats, "samples_ms": res.samples_ms, "inputs": loaded.inputs,
                 "moment": after, "moment_start": before, "memory": memory,
                 "details": loaded.details or {}}, **extra)


def measure_case(runtime, case: dict, settings: dict, timing: TimingSettings) -> dict:
    """Time one model; returns the result event's fields."""
    loaded, init_ms, first_ms, memory = _load(runtime, case, settings)
    sys_root = settings.get("sysfs_root") or SYS
    cooled = 0.0
    if settings.get("cooldown_c"):     # a board that heats up: start every case cool
        cooled = cool_down(float(settings["cooldown_c"]),
                           float(settings.get("cooldown_max_s") or 300), sys_root)
    retimed = False
    while True:
        before = moment(sys_root)
        res = time_callable(loaded.run, for_deterministic_clock(timing)
                            if loaded.deterministic else timing,
                            clock=loaded.clock or time.perf_counter)
        after = moment(sys_root)
        throttled = before["freq_khz"] != after["freq_khz"]
        if not throttled or retimed:    # the clock moved while timing: once more, then flag
            break
        retimed = True
    extra = {"ops": profile_ops(loaded, res.stats["median"])} if case.get("ops") else {}
    return _fields(loaded, res, init_ms, first_ms, memory, before, after, cooldown_s=cooled,
                   retimed=retimed, throttled=throttled, **extra)


PROFILE_S = 0.5     # of profiled runs per model, about (a per-operator profile is a mean)


def profile_ops(loaded, median_ms: float) -> dict:
    """The runtime's per-operator profile, after the timing (a profiler slows what it
    watches, so the latency never comes from these runs), or why there is none."""
    if loaded.profile is None:
        return {"unavailable": "this runtime has no per-operator profiler here"}
    runs = 1 if loaded.deterministic else \
        max(3, min(100, int(PROFILE_S * 1000 / max(median_ms, 1e-3))))
    try:
        return loaded.profile(runs)
    except Exception as exc:     # the timing stands without it
        return {"unavailable": "the profile failed: " + one_line(exc, 300)}


def measure_group(runtime, cases: list, settings: dict, timing: TimingSettings) -> list:
    """Time the job's models sample by sample in turn (``time_interleaved``): (key, fields)
    per case, in order; a model that cannot load fails alone."""
    out, ready = {}, []
    for case in cases:
        try:
            ready.append((case["key"], _load(runtime, case, settings)))
        except Exception as exc:
            out[case["key"]] = _failed(exc)
    sys_root = settings.get("sysfs_root") or SYS
    before = moment(sys_root)
    if ready and all(r[0].deterministic for _, r in ready):
        timing = for_deterministic_clock(timing)
    results = time_interleaved([r[0].run for _, r in ready], timing,
                               [r[0].clock or time.perf_counter for _, r in ready])
    after = moment(sys_root)
    throttled = before["freq_khz"] != after["freq_khz"]
    for (key, (loaded, init_ms, first_ms, memory)), res in zip(ready, results):
        out[key] = _fields(loaded, res, init_ms, first_ms, memory, before, after,
                           throttled=throttled, interleaved=len(ready))
    return [(c["key"], out[c["key"]]) for c in cases]


def _turn_taking(settings: dict) -> dict:
    """Settings for models timed in turn. With several threads, an ONNX Runtime session's
    pool keeps spinning after its run and takes the cores from the next model timed (2
    threads here: networks 4-9x slower than their blocks); stopping the spin at the end of
    each run keeps it within the run, as a network has it. Other runtimes ignore the key."""
    if int(settings.get("threads") or 1) > 1:
        return dict(settings, stop_spinning=True)
    return settings


def _measure_or_fail(runtime, case: dict, settings: dict, timing: TimingSettings) -> dict:
    """One bad model must not stop the job: its failure is reported by name."""
    try:
        return measure_case(runtime, case, settings, timing)
    except Exception as exc:
        return _failed(exc)


def _failed(exc: BaseException) -> dict:
    return {"status": "failed", "error": f"{type(exc).__name__}: {one_line(exc)}"}


def run_job(job: dict, out) -> int:
    began = time.monotonic()        # the board's own time on the job ("done" says it)
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
    clocks = ClockControl.from_settings(settings)
    context = {}
    if clocks:
        context["clocks"] = clocks.apply()
        _restore_on_signals()
    measured = failed = 0
    try:
        context = dict(fingerprint(info, settings.get("sysfs_root") or SYS), **context)
        emit(out, "hello", job_id=job.get("job_id"), agent_version=AGENT_VERSION,
             pid=os.getpid(), context=context)
        if job.get("interleave") and takes_turns(settings.get("name", ""),
                                                 int(settings.get("threads") or 1)):
            results = measure_group(runtime, job["cases"], _turn_taking(settings), timing)
        else:
            results = ((case["key"], _measure_or_fail(runtime, case, settings, timing))
                       for case in job["cases"])
        for key, fields in results:
            ok = fields["status"] == "ok"
            measured, failed = measured + ok, failed + (not ok)
            emit(out, "result", key=key, **fields)
    finally:
        restored = {"clock_restore_errors": clocks.restore()} if clocks else {}
    emit(out, "done", measured=measured, failed=failed,
         elapsed_s=time.monotonic() - began, **restored)
    return 0


def _restore_on_signals() -> None:
    """SIGTERM / SIGHUP (a controller stopping the job, an SSH channel closing) end the job
    through its ``finally``, so the board gets its own clocks back. SIGKILL cannot."""
    import signal

    def leave(signum, frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, leave)
        except (ValueError, OSError):      # not the main thread, or no such signal here
            pass


def serve(out, inp=sys.stdin) -> int:
    """Session mode: one request per stdin line (a job, or ``{"verify": [...]}``), answered in
    order, until stdin closes. One agent process serves a whole campaign on a device."""
    import json

    emit(out, "ready", agent_version=AGENT_VERSION, pid=os.getpid())
    for line in inp:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            emit(out, "fatal", error=f"unreadable request: {exc}")
            return 2
        if "verify" in request:
            emit(out, "verified", bad=verify(request["verify"]))
            continue
        code = run_job(request, out)
        if code:
            return code
    return 0


def runtime_info(name: str, board: dict = None) -> dict:
    """``info()`` of one runtime in this process, or why it cannot be used."""
    try:
        return get_runtime(name).info(board or {})
    except RuntimeMissing as exc:
        return {"error": one_line(exc), "missing": True}
    except Exception as exc:
        return {"error": one_line(exc)}


def probe_runtime(name: str, board: dict = None, timeout: float = 120.0) -> dict:
    """``runtime_info`` in a child process: a runtime whose import or set-up crashes the
    interpreter (SIGSEGV, SIGILL: a build for a newer core, an emulator it trips) is reported
    broken with its signal, and the other runtimes stay usable."""
    import signal
    import subprocess

    from lutfarm_agent.protocol import last_event

    cmd = [sys.executable, "-m", "lutfarm_agent", "--probe-runtime", name]
    if board:
        import json
        cmd += ["--board", json.dumps(board)]
    env = dict(os.environ)
    package = os.path.dirname(os.path.abspath(__file__))
    if os.path.basename(package) == "lutfarm_agent":    # a deployed bundle: the child finds it
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(package),
                                                          env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(cmd, capture_output=True, env=env,
                              timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        return {"error": f"probing {name} took over {timeout:.0f} s"}
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        return {"error": f"{name} crashed the interpreter ({sig}) while loading; this build does not "
                         "run on this device", "crashed": sig}
    info = last_event(proc.stdout, "runtime")
    if info is None:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"error": f"probing {name} failed: {tail[0][:300]}"}
    return info


def describe(workdir: str = ".", board: dict = None) -> dict:
    """What the device can do: Python, platform, numpy, runtimes, free disk (and, with
    ``board`` = {"serial", "baud"}, what the microcontroller's firmware says about itself)."""
    import platform
    import shutil

    runtimes = {name: probe_runtime(name, board if SPECS[name].serial_board else None)
                for name in RUNTIMES}
    try:
        import numpy
        numpy_version = numpy.__version__
        context = fingerprint()
    except ImportError:
        numpy_version, context = None, {}
    return {"agent_version": AGENT_VERSION, "python": platform.python_version(),
            "python_tag": "cp{}{}".format(*sys.version_info[:2]), "machine": platform.machine(),
            "libc": "-".join(platform.libc_ver()),
            "system": platform.system(), "numpy": numpy_version,
            "disk_free_bytes": shutil.disk_usage(workdir).free, "context": context,
            "runtimes": runtimes}


def verify(entries: list) -> list:
    """Paths among ``[{"path", "sha256"}]`` that are missing or whose content differs."""
    bad = []
    for e in entries:
        try:
            if file_sha256(e["path"]) != e["sha256"]:
                bad.append(e["path"])
        except OSError:
            bad.append(e["path"])
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lutfarm_agent", description=__doc__)
    parser.add_argument("--job", default="-", help="job JSON file, '-' for stdin")
    parser.add_argument("--serve", action="store_true",
                        help="session mode: read requests line by line from stdin")
    parser.add_argument("--describe", action="store_true", help="print capabilities and exit")
    parser.add_argument("--workdir", default=".", help="where --describe measures free disk")
    parser.add_argument("--serial", default=None, help="--describe: an MCU board on this port")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--board", default=None, metavar="JSON",
                        help="--describe: an MCU board's settings (an emulated one: emulator, "
                             "qemu_machine, firmware)")
    parser.add_argument("--probe-runtime", default=None, metavar="NAME",
                        help="print one runtime's info (or why it cannot be used) and exit")
    parser.add_argument("--verify", action="store_true",
                        help="read [{path, sha256}] from stdin, print the bad paths")
    args = parser.parse_args(argv)
    out = event_stream()
    board = {"serial": args.serial, "baud": args.baud} if args.serial else None
    if args.board:
        import json
        board = json.loads(args.board)
    if args.probe_runtime:
        emit(out, "runtime", **runtime_info(args.probe_runtime, board))
        return 0
    if args.describe:
        emit(out, "described", **describe(args.workdir, board))
        return 0
    if args.verify:
        import json
        emit(out, "verified", bad=verify(json.loads(sys.stdin.read())))
        return 0
    if args.serve:
        return serve(out)
    try:
        job = read_job(args.job)
    except (OSError, ValueError) as exc:
        emit(out, "fatal", error=f"cannot read job: {exc}")
        return 2
    return run_job(job, out)


if __name__ == "__main__":
    sys.exit(main())
