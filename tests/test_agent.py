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
    # the job on the board: at least its cases' timed samples
    assert events[-1].pop("elapsed_s") >= sum(e.get("sampling_s") or 0 for e in events)
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
                         text=True, cwd=REPO, check=True, timeout=600).stdout
    [info] = events_in(out)
    assert info["runtimes"]["onnxruntime"]["version"]


def test_agent_imports_no_torch_or_controller_code():
    code = ("import sys, lutfarm_agent.__main__, lutfarm_agent.runtimes.onnxruntime_rt, "
            "lutfarm_agent.runtimes.litert_rt, lutfarm_agent.runtimes.tflm_rt, "
            "lutfarm_agent.mcu.harness, lutfarm_agent.mcu.standin, lutfarm_agent.mcu.emulator\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'pandas', 'sklearn', 'onnx', 'spaces', 'profiler', 'lut', 'lutfarm')]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True, timeout=600).stdout.strip()
    assert out == ""


def test_agent_is_python38_syntax_by_ruff_and_vermin():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "agents"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert ruff.returncode == 0, ruff.stdout
    vermin = subprocess.run([str(Path(sys.executable).with_name("vermin")), "-t=3.8-", "--no-tips",
                             "--violations", "agents"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert vermin.returncode == 0, vermin.stdout




@pytest.mark.needs("python3.8")
def test_agent_parses_under_python38_and_its_stdlib_parts_run():
    PY38 = _python38()
    files = [str(p) for p in (REPO / "agents").rglob("*.py")]
    parse = "import ast, sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)"
    proc = subprocess.run([PY38, "-c", parse, *files], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    run = ("import lutfarm_agent.timing as t, lutfarm_agent.protocol\n"
           "r = t.time_callable(lambda: sum(range(50)), t.TimingSettings(min_s=0.005, max_s=0.02))\n"
           "assert r.stats['count'] >= 20 and r.stats['median'] > 0\nprint('ok')")
    proc = subprocess.run([PY38, "-c", run], capture_output=True, text=True, cwd=agent_root(), timeout=600)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_native_output_on_fd1_mid_job_is_the_agents_log_never_an_event(cache):
    """A runtime writing to fd 1 from C (one line a forged, framed ``done``) while the
    controller's LocalTransport reads the job: every event arrives, the noise is logged."""
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.devices.transport import LocalTransport
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
    # the job on the board: at least its cases' timed samples
    assert events[-1].pop("elapsed_s") >= sum(e.get("sampling_s") or 0 for e in events)
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

    # The zone cools 2 s after the agent says hello: the first case (a small model, loaded
    # before its cool-down) then polls it hot at least once. A timer started with the process
    # once cooled the zone before a slow start on a busy machine had reached the first case.
    job = job_for(cases, cache, cooldown_c=50, **settings)    # models exported before
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm_agent"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    lines = [proc.stdout.readline()]
    assert '"event":"hello"' in lines[0], lines[0] + proc.stderr.read()
    time.sleep(2.0)
    temp.write_text("40000\n")
    lines += proc.stdout.readlines()
    err = proc.stderr.read()
    code = proc.wait(timeout=120)
    events = events_in("".join(lines))
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


def _fake_cpufreq(root, cpus=2, governor="ondemand"):
    """A FAKE cpufreq tree (plain files, no kernel behind them), laid out as a board's."""
    files = {"scaling_governor": governor,
             "scaling_available_governors": "ondemand performance powersave userspace",
             "scaling_min_freq": "600000", "scaling_max_freq": "1500000",
             "cpuinfo_min_freq": "600000", "cpuinfo_max_freq": "1500000",
             "scaling_available_frequencies": "600000 1000000 1200000 1500000",
             "scaling_cur_freq": "600000"}
    for n in range(cpus):
        d = root / f"devices/system/cpu/cpu{n}/cpufreq"
        d.mkdir(parents=True)
        for name, value in files.items():
            (d / name).write_text(value + "\n")
    return root


def _cpufreq(root, name, cpu=0):
    return (root / f"devices/system/cpu/cpu{cpu}/cpufreq" / name).read_text().strip()


def test_a_governor_and_a_fixed_frequency_hold_for_the_job_and_are_restored(tmp_path):
    from lutfarm_agent.clocks import ClockControl
    sys_root = _fake_cpufreq(tmp_path / "sys")
    clocks = ClockControl("performance", 1200000, str(sys_root))
    record = clocks.apply()
    assert record["applied"] and record["via"] == "sysfs" and record["cpus"] == 2, record
    for cpu in (0, 1):     # min = max = the fixed clock, on every CPU
        assert _cpufreq(sys_root, "scaling_governor", cpu) == "performance"
        assert _cpufreq(sys_root, "scaling_min_freq", cpu) == "1200000"
        assert _cpufreq(sys_root, "scaling_max_freq", cpu) == "1200000"
    assert clocks.restore() == []
    for cpu in (0, 1):
        assert _cpufreq(sys_root, "scaling_governor", cpu) == "ondemand"
        assert _cpufreq(sys_root, "scaling_min_freq", cpu) == "600000"
        assert _cpufreq(sys_root, "scaling_max_freq", cpu) == "1500000"


def test_clocks_a_board_cannot_take_are_refused_whole_with_what_it_offers(tmp_path):
    from lutfarm_agent.clocks import ClockControl
    sys_root = _fake_cpufreq(tmp_path / "sys")
    before = {p: p.read_text() for p in sys_root.rglob("*") if p.is_file()}
    record = ClockControl("performance", 1100000, str(sys_root)).apply()
    assert not record["applied"]
    assert record["error"] == ("cpu0 does not offer 1100000 kHz; it has: 600000, 1000000, "
                               "1200000, 1500000")
    assert {p: p.read_text() for p in before} == before          # nothing half-applied
    record = ClockControl("turbo", None, str(sys_root)).apply()
    assert "'turbo' is not offered by cpu0; it has: ondemand, performance" in record["error"]
    record = ClockControl("performance", None, str(tmp_path / "empty")).apply()
    assert record["error"].startswith("no cpufreq under") and not record["applied"]


def test_the_agent_sets_clocks_for_its_job_reports_them_and_gives_them_back(tmp_path, cache):
    sys_root = _fake_cpufreq(tmp_path / "sys")
    job = job_for(CIFAR.unique_cases()[:2], cache, name="bench-sleep", sleep_ms=0.2,
                  sysfs_root=str(sys_root), governor="performance", frequency_khz=1000000)
    code, events, err = run_agent(job)
    assert code == 0, err
    hello, done = events[0], events[-1]
    assert hello["context"]["clocks"] == {"requested": {"governor": "performance",
                                                       "frequency_khz": 1000000},
                                          "applied": True, "via": "sysfs", "error": None,
                                          "cpus": 2}
    assert hello["context"]["governor"] == "performance"      # read while it held
    assert done["clock_restore_errors"] == [] and done["measured"] == 2
    assert _cpufreq(sys_root, "scaling_governor") == "ondemand"
    assert _cpufreq(sys_root, "scaling_min_freq") == "600000"


SUDO_PROBE = """
import json, sys
from lutfarm_agent.clocks import ClockControl
clocks = ClockControl("performance", None, sys.argv[1])
record = clocks.apply()
held = open(sys.argv[1] + "/devices/system/cpu/cpu0/cpufreq/scaling_governor").read().strip()
print(json.dumps(dict(record, held=held, restore_errors=clocks.restore())))
"""


@pytest.mark.needs("root", "sudo", "system-python")
def test_clocks_go_through_sudo_when_sudoers_allows_it_and_are_refused_when_not():
    """The agent's user cannot write cpufreq (root-owned files, as on a board); it gets there
    through the real sudo with a NOPASSWD rule for tee, or says sudo refused. sudoers.d is
    replaced only inside a private mount namespace (unshare), the host's stays untouched."""
    import os
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="lutfarm-sudo-"))
    try:
        base.chmod(0o755)
        shutil.copytree(REPO / "agents", base / "lutfarm_agent",
                        ignore=shutil.ignore_patterns("__pycache__"))
        sys_root = _fake_cpufreq(base / "sys", cpus=1)
        for p in [base, *base.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)          # readable by nobody, not writable
        rules = base / "sudoers.d"
        rules.mkdir(mode=0o755)

        def as_nobody() -> dict:
            script = (f"mount --bind {rules} /etc/sudoers.d && exec setpriv --reuid=nobody "
                      f"--regid=nogroup --clear-groups /usr/bin/python3 -c '{SUDO_PROBE}' {sys_root}")
            proc = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                                  text=True, timeout=60, cwd=base,
                                  env=dict(os.environ, PYTHONPATH=str(base)))
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)

        denied = as_nobody()
        assert not denied["applied"] and denied["held"] == "ondemand"
        assert "no permission to write" in denied["error"] and "sudo -n refused" in denied["error"]
        rule = rules / "lutfarm"
        rule.write_text(f"nobody ALL=(root) NOPASSWD: /usr/bin/tee {sys_root}/*\n")
        rule.chmod(0o440)
        allowed = as_nobody()
        assert allowed["applied"] and allowed["via"] == "sudo", allowed
        assert allowed["held"] == "performance" and allowed["restore_errors"] == []
        assert _cpufreq(sys_root, "scaling_governor") == "ondemand"       # given back
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_an_interleaved_job_times_its_cases_in_turn_and_a_bad_one_fails_alone(cache, tmp_path):
    cases = [CIFAR.overhead_case(), CIFAR.layer_slots()[5].case(3), CIFAR.layer_slots()[9].case(7)]
    job = job_for(cases, cache)
    job["interleave"] = True
    job["cases"].append({"key": "missing", "model": str(tmp_path / "nope.onnx")})
    code, events, _ = run_agent(job)
    assert code == 0
    results = [e for e in events if e["event"] == "result"]
    assert [r["key"] for r in results] == [c.key for c in cases] + ["missing"]
    ok = results[:3]
    assert all(r["status"] == "ok" and r["interleaved"] == 3 for r in ok)
    # one sample of each per turn: every case has the same number of samples
    assert len({r["stats"]["count"] for r in ok}) == 1 and ok[0]["stats"]["count"] >= FAST.min_runs
    assert ok[0]["stats"]["median"] < ok[1]["stats"]["median"]
    assert "missing on the device" in results[3]["error"]
    # the job on the board: at least its cases' timed samples
    assert events[-1].pop("elapsed_s") >= sum(e.get("sampling_s") or 0 for e in events)
    assert events[-1] == {"event": "done", "measured": 3, "failed": 1}


def test_an_interleaved_job_with_two_threads_stops_each_sessions_spinning_after_its_run(cache):
    """An ONNX Runtime pool left spinning after its run would take the cores from the next
    model timed; a job of one thread has no pool to stop."""
    cases = [CIFAR.overhead_case(), CIFAR.layer_slots()[5].case(3)]
    for threads, stopped in ((2, True), (1, False)):
        job = job_for(cases, cache, threads=threads)
        job["interleave"] = True
        code, events, _ = run_agent(job)
        results = [e for e in events if e["event"] == "result"]
        assert code == 0 and len(results) == 2
        assert all(r["status"] == "ok" and r["interleaved"] == 2 for r in results)
        assert all((r["details"].get("spinning") == "stopped after each run") == stopped
                   for r in results), results
