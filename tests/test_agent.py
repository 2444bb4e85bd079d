"""The agent as a real subprocess speaking the job protocol, and its portability rules."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST, REPO, _python38, agent_root
from lutfarm.spaces import get_layout
from lutfarm_agent.protocol import events_in

CIFAR = get_layout("fbnet", "cifar")


def run_agent(job, *args):
    proc = subprocess.run([sys.executable, "-m", "lutfarm_agent", *args], input=json.dumps(job),
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    return proc.returncode, events_in(proc.stdout), proc.stderr


def job_for(cases, cache, **runtime):
    models = [cache.get(c) for c in cases]
    return {"job_id": "t", "runtime": {"name": "onnxruntime", "threads": 1, **runtime},
            "timing": FAST.to_dict(),
            "cases": [{"key": m.case_key, "model": str(m.path), "sha256": m.sha256}
                      for m in models]}


def test_job_emits_hello_one_result_per_case_and_done(cache):
    cases = [CIFAR.overhead_case(), CIFAR.layer_slots()[5].case(3)]
    code, events, _ = run_agent(job_for(cases, cache, affinity=[0]))
    assert code == 0
    assert [e["event"] for e in events] == ["hello", "result", "result", "done"]
    ctx = events[0]["context"]
    for field in ("cpu_model", "cores", "os", "python", "agent_version", "governor", "freq_khz"):
        assert field in ctx
    assert ctx["affinity"] == [0]
    assert ctx["runtime"]["name"] == "onnxruntime" and ctx["runtime"]["version"]
    empty, block = events[1], events[2]
    assert empty["key"] == cases[0].key and block["key"] == cases[1].key
    for r in (empty, block):
        assert r["status"] == "ok" and r["init_ms"] > 0 and r["first_ms"] > 0
        st = r["stats"]
        assert st["count"] == len(r["samples_ms"]) >= FAST.min_runs
        assert st["min"] <= st["ci_lo"] <= st["median"] <= st["ci_hi"] <= st["max"]
        assert st["median"] <= st["p90"] <= st["p95"] <= st["p99"] <= st["max"]
    assert block["stats"]["median"] > empty["stats"]["median"]
    assert events[-1] == {"event": "done", "measured": 2, "failed": 0}


def test_a_bad_model_fails_alone_and_the_job_goes_on(cache, tmp_path):
    good = CIFAR.overhead_case()
    job = job_for([good, good], cache)
    job["cases"][0] = {"key": "missing", "model": str(tmp_path / "nope.onnx")}
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    job["cases"].append({"key": "corrupt", "model": str(corrupt), "sha256": "0" * 64})
    code, events, _ = run_agent(job)
    results = {e["key"]: e for e in events if e["event"] == "result"}
    assert code == 0
    assert "missing on the device" in results["missing"]["error"]
    assert "checksum" in results["corrupt"]["error"]
    assert results[good.key]["status"] == "ok"
    assert events[-1]["failed"] == 2


def test_unknown_runtime_is_a_fatal_event_with_a_fix(cache):
    code, events, _ = run_agent(job_for([CIFAR.overhead_case()], cache, name="tensorrt"))
    assert code == 2 and events == [{"event": "fatal", "error": events[0]["error"]}]
    assert "unknown runtime 'tensorrt'" in events[0]["error"]


def test_describe_lists_runtimes():
    out = subprocess.run([sys.executable, "-m", "lutfarm_agent", "--describe"], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout
    [info] = events_in(out)
    assert info["runtimes"]["onnxruntime"]["version"]


def test_agent_imports_no_torch_or_controller_code():
    code = ("import sys, lutfarm_agent.__main__, lutfarm_agent.runtimes.onnxruntime_rt, "
            "lutfarm_agent.runtimes.litert_rt, lutfarm_agent.runtimes.tflm_rt, "
            "lutfarm_agent.mcu.harness, lutfarm_agent.mcu.standin\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'pandas', 'sklearn', 'onnx', 'spaces', 'profiler', 'lut', 'lutfarm')]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.strip()
    assert out == ""


def test_agent_is_python38_syntax_by_ruff_and_vermin():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "agents"], cwd=REPO,
                          capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    vermin = subprocess.run([str(Path(sys.executable).with_name("vermin")), "-t=3.8-", "--no-tips",
                             "--violations", "agents"], cwd=REPO, capture_output=True, text=True)
    assert vermin.returncode == 0, vermin.stdout




@pytest.mark.needs("python3.8")
def test_agent_parses_under_python38_and_its_stdlib_parts_run():
    PY38 = _python38()
    files = [str(p) for p in (REPO / "agents").rglob("*.py")]
    parse = "import ast, sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)"
    proc = subprocess.run([PY38, "-c", parse, *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = ("import lutfarm_agent.timing as t, lutfarm_agent.protocol\n"
           "r = t.time_callable(lambda: sum(range(50)), t.TimingSettings(min_s=0.005, max_s=0.02))\n"
           "assert r.stats['count'] >= 20 and r.stats['median'] > 0\nprint('ok')")
    proc = subprocess.run([PY38, "-c", run], capture_output=True, text=True, cwd=agent_root())
    assert proc.stdout.strip() == "ok", proc.stderr


def test_native_output_on_fd1_mid_job_is_the_agents_log_never_an_event(cache):
    """A runtime writing to fd 1 from C (one line a forged, framed ``done``) while the
    controller's LocalTransport reads the job: every event arrives, the noise is logged."""
    from lutfarm.profiler.devices import LOCAL
    from lutfarm.profiler.transport import LocalTransport
    from lutfarm_agent.runtimes.bench_sleep_rt import NOISE

    job = job_for(CIFAR.unique_cases()[:2], cache, name="bench-sleep", native_noise=True,
                  sleep_ms=0.2)
    transport = LocalTransport(LOCAL)
    try:
        events = list(transport.run_job(job, line_timeout=60))
    finally:
        transport.close()
    assert [e["event"] for e in events] == ["hello", "result", "result", "done"]
    assert all(e["status"] == "ok" for e in events[1:3]), events
    assert events[-1] == {"event": "done", "measured": 2, "failed": 0}
    transport._last_output()          # the log thread has read everything
    logged = list(transport.output_tail)
    for noise in NOISE:
        assert noise.decode().strip() in logged


def test_a_runtime_that_crashes_the_interpreter_is_reported_and_the_others_still_work():
    """Each runtime is probed in its own process: the stand-in killed by SIGSEGV while loading
    (as onnxruntime 1.32 is under qemu-user, or a build for a newer core on an old board)."""
    import os
    root = agent_root()
    out = subprocess.run([sys.executable, "-m", "lutfarm_agent", "--describe"], cwd=root,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(root),
                                  LUTFARM_STANDIN_CRASH="SIGSEGV"))
    assert out.returncode == 0, out.stderr[-800:]
    [info] = events_in(out.stdout)
    crashed = info["runtimes"]["bench-sleep"]
    assert crashed["crashed"] == "SIGSEGV" and "crashed the interpreter" in crashed["error"]
    assert info["runtimes"]["onnxruntime"]["version"]


def test_emulation_is_detected_from_cpuinfo_and_machine():
    from lutfarm_agent.context import emulation
    intel = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel Xeon\n"
    arm = "processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n"
    assert "qemu-user" in emulation(intel, "aarch64")          # qemu-user on an x86 host
    assert emulation(intel, "x86_64") is None                 # a real x86 machine
    assert emulation(arm, "aarch64") is None                  # a real Cortex-A72 board
    assert "QEMU" in emulation("model name\t: QEMU Virtual CPU version 2.5+\n", "x86_64")


def _fake_sysfs(root):
    """A FAKE sysfs (plain files, no kernel behind them) for the agent's hygiene tests."""
    freq = root / "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"
    freq.parent.mkdir(parents=True)
    freq.write_text("1500000\n")
    zone = root / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("80000\n")
    return freq, zone / "temp"


def test_cooldown_waits_for_the_zones_and_a_moving_clock_is_retimed_then_flagged(tmp_path,
                                                                                 cache):
    import os
    import threading
    import time
    freq, temp = _fake_sysfs(tmp_path / "sys")
    cases = CIFAR.unique_cases()[:2]
    settings = dict(name="bench-sleep", sleep_ms=0.2, sysfs_root=str(tmp_path / "sys"))

    def cool_later():           # the zone cools 3 s from now: after the agent has started
        time.sleep(3.0)
        temp.write_text("40000\n")
    threading.Thread(target=cool_later, daemon=True).start()
    code, events, err = run_agent(job_for(cases, cache, cooldown_c=50, **settings))
    assert code == 0, err
    first, second = [e for e in events if e["event"] == "result"]
    assert first["cooldown_s"] >= 0.5 and second["cooldown_s"] < 0.5   # waited once, then cool
    assert first["moment_start"]["temp_c"] == {"cpu-thermal": 40.0}
    assert not first["throttled"] and not first["retimed"]

    stop = threading.Event()

    def throttle():             # the clock never holds still: every timing sees it move
        khz = 1500000
        while not stop.is_set():
            khz -= 1000
            tmp = freq.with_suffix(".tmp")        # whole values only, as the kernel gives
            tmp.write_text(f"{khz}\n")
            os.replace(tmp, freq)
            time.sleep(0.0002)
    threading.Thread(target=throttle, daemon=True).start()
    job = job_for(cases[:1], cache, **settings)
    job["timing"].update(min_s=0.2, max_s=0.3)      # windows the writer surely moves in
    try:
        code, events, err = run_agent(job)
    finally:
        stop.set()
    [result] = [e for e in events if e["event"] == "result"]
    assert result["retimed"] and result["throttled"], result
    assert result["moment"]["freq_khz"]["cpu0"] < result["moment_start"]["freq_khz"]["cpu0"]
