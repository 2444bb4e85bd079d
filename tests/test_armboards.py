"""The farm on emulated ARM boards (tests/armboards.py): Debian 12 arm64 and armhf, each with
its own sshd in its own network namespace. Their software path is real; their timings are
emulated and must say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from armboards import BOARDS, start_board

from conftest import FAST, REPO
from lutfarm.lut import build_lut, load_lut
from lutfarm.profiler.devices.check import check_device
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from sshd import keygen

pytestmark = pytest.mark.needs("arm-boards", "netns")
ARCHS = ("arm64", "armhf")
SLEEP = RuntimeConfig("bench-sleep")     # built into the agent: no runtime to install


def _started(tmp_path_factory, specs: dict[str, int]):
    """Start boards (name -> network index) with one client key; stop them all afterwards."""
    d = tmp_path_factory.mktemp("arm")
    key = d / "id_ed25519"
    pub = keygen(key)
    known = d / "known_hosts"
    known.touch()
    started = {}
    try:
        for name, index in specs.items():
            started[name] = start_board(BOARDS[name], index, pub, key, known)
        yield started
    finally:
        for b in started.values():
            b.stop()


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    yield from _started(tmp_path_factory, {arch: 40 + i for i, arch in enumerate(ARCHS)})


def workdir() -> str:
    return f"lutfarm-test-{os.getpid()}"      # under the login's home on the board


@pytest.mark.parametrize("arch", ARCHS)
def test_devices_check_deploys_the_agent_on_the_board(boards, arch):
    board = boards[arch]
    r = check_device(board.device(workdir=workdir()))
    assert r.reachable and r.auth and not r.error, r
    assert r.machine == BOARDS[arch].machine and r.python_tag == "cp311"
    assert r.numpy and r.numpy.startswith("1.")         # Debian 12's python3-numpy
    assert "onnxruntime" in r.missing and r.runtimes["bench-sleep"] == "0"   # nothing installed
    assert "deployed" in r.agent or len(r.agent) == 16


@pytest.mark.parametrize("arch", ARCHS)
def test_a_campaign_on_the_board_is_stored_as_emulated(boards, arch, tmp_path, cache):
    """The whole SSH path (deploy, upload, serve, results) on the ARM interpreter, with the
    agent's built-in stand-in runtime; the context and the LUT say the timings are emulated."""
    board = boards[arch]
    device = board.device(workdir=workdir())
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, get_layout("fbnet", "cifar"), device, SLEEP,
                         CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*"))
        assert s.measured == 2 and not s.failed and not s.device_errors, s
        m = next(iter(store.latest(device.kind, SLEEP.key).values()))
        context = store.context(m.context_id)
        assert context["machine"] == BOARDS[arch].machine
        assert "qemu-user" in context["emulated"]
        assert "qemu-user" in store.emulated(device.kind, SLEEP.key)
        assert "qemu-user" in build_lut(store, device.kind, SLEEP.key).meta["emulated"]


def test_a_campaign_cut_by_an_sshd_kill_resumes_where_it_stopped(boards, tmp_path, cache):
    """The arm64 board drops off (its sshd, session and agent killed) after its first result;
    the campaign gives it up and keeps what arrived; once the board is back, the same campaign
    measures only the rest. The board asks for the performance governor, which an emulated
    board cannot give (no cpufreq, an unprivileged login): recorded and warned, not fatal."""
    import threading

    from lutfarm.profiler.scheduling.campaign import plan_cases
    from lutfarm.profiler.scheduling.device_worker import FarmSettings

    victim = boards["arm64"]
    device = victim.device(workdir=workdir(), governor="performance")
    layout, only = get_layout("fbnet", "cifar"), "Skip_*"
    planned = {c.key for c in plan_cases(layout, only)}
    killed = threading.Event()

    class KillOnFirstResult:
        def phase(self, name, total): ...
        def device_state(self, device, state): ...

        def advance(self, key, status, device=""):
            if device == victim.name and status == "ok" and not killed.is_set():
                killed.set()
                victim.kill()

    farm = FarmSettings(backoff_s=0.2, max_device_failures=2)
    with Store(tmp_path / "s.db") as store:
        try:
            first = run_campaign(store, layout, device, SLEEP, CampaignSettings(
                timing=FAST, cache=cache, only=only, farm=farm, progress=KillOnFirstResult()))
        finally:
            victim.stop()
            boards["arm64"] = start_board(
                victim.spec, 40, (victim.path("/etc/ssh/lutfarm_authorized_keys")
                                  .read_text().strip()), victim.client_key, victim.known_hosts)
        assert killed.is_set() and device.name in first.device_errors, first
        stored = set(store.latest(device.kind, SLEEP.key))
        assert 1 <= first.measured == len(stored) < len(planned)
        assert any("clocks not set" in w and device.name in w for w in first.clocks), first.clocks
        again = run_campaign(store, layout, device, SLEEP,
                             CampaignSettings(timing=FAST, cache=cache, only=only, farm=farm))
        assert not again.device_errors and not again.failed, again
        assert again.skipped == len(stored) and again.measured == len(planned) - len(stored)
        assert set(store.latest(device.kind, SLEEP.key)) == planned


def lutfarm(*args, timeout=1800):
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.needs("tflite-toolchain")
def test_provision_profile_and_export_on_arm64_and_armhf(boards, tmp_path):
    """devices check -> provision (offline wheels; armhf gets no numpy wheel and uses the
    board's own) -> profile with tflite-runtime fp32/int8 on both and onnxruntime on arm64 ->
    a LUT per kind, each marked emulated. onnxruntime is pinned to 1.22: 1.32 dies with SIGSEGV
    on import under qemu-user 7.2 (design notes)."""
    arm64, armhf = boards["arm64"], boards["armhf"]
    inventory = tmp_path / "farm.toml"
    inventory.write_text(
        arm64.toml(runtimes=("onnxruntime", "tflite")).replace(
            "\n\n", '\nruntimes = ["onnxruntime", "tflite"]\n'
                    'packages = { onnxruntime = "==1.22.0" }\n\n', 1)
        + armhf.toml().replace("\n\n", '\nruntimes = ["tflite"]\n\n', 1))
    provision = lutfarm("devices", "provision", "--inventory", inventory)
    assert provision.returncode == 0, provision.stderr[-1500:]
    assert "emu-armhf-41" in provision.stderr and "board's own numpy" in provision.stderr \
        or "emu-armhf-41: already provisioned" in provision.stderr, provision.stderr
    check = lutfarm("devices", "check", "--inventory", inventory, "--json")
    assert check.returncode == 0, check.stdout + check.stderr[-800:]
    reports = {r["name"]: r for r in json.loads(check.stdout)}
    assert reports["emu-arm64-40"]["runtimes"]["onnxruntime"].startswith("1.22")
    assert reports["emu-armhf-41"]["runtimes"]["tflite"].startswith("2.14")
    db = tmp_path / "arm.db"
    runs = [(arm64, "tflite", "fp32"), (arm64, "tflite", "int8"), (arm64, "onnxruntime", "fp32"),
            (armhf, "tflite", "fp32"), (armhf, "tflite", "int8")]
    for board, runtime, dtype in runs:
        kind = board.device().kind
        p = lutfarm("profile", "--inventory", inventory, "--devices", f"kind:{kind}",
                    "--runtime", runtime, "--dtype", dtype, "--only", "Skip_H4_*",
                    "--min-time", "0.01", "--max-time", "0.05", "--db", db, "--json")
        assert p.returncode == 0, (kind, runtime, dtype, p.stderr[-1500:])
        summary = json.loads(p.stdout)
        assert summary["measured"] == 2 and not summary["failed"], summary
        key = RuntimeConfig(runtime, 1, dtype).key
        out = tmp_path / f"{kind}-{key}.csv"
        e = lutfarm("lut", "export", "--db", db, "--device", kind, "--runtime", runtime,
                    "--dtype", dtype, "-o", out)
        assert e.returncode == 0, e.stderr[-800:]
        lut = load_lut(out)
        assert "qemu-user" in lut.meta["emulated"] and len(lut.latency_ms) == 2
        assert lut.meta["context"]["machine"] == board.spec.machine


@pytest.fixture(scope="module")
def old_board(tmp_path_factory):
    for started in _started(tmp_path_factory, {"arm64-py39": 42}):
        yield started["arm64-py39"]


def test_the_agent_runs_on_an_older_board_with_python_39(old_board, tmp_path, cache):
    """Debian 11: Python 3.9 and numpy 1.19, as on boards that stay on an old image."""
    device = old_board.device(workdir=workdir())
    r = check_device(device)
    assert r.ok and r.python_tag == "cp39" and r.numpy.startswith("1.19"), r
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, get_layout("fbnet", "cifar"), device, SLEEP,
                         CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*"))
        assert s.measured == 2 and not s.failed, s
        context = store.context(next(iter(store.latest(device.kind, SLEEP.key).values()))
                                .context_id)
        assert context["python"].startswith("3.9") and "qemu-user" in context["emulated"]


def test_bench_a_model_file_on_the_arm64_board_and_this_machine_in_one_table(boards, tmp_path):
    """``lutfarm bench`` with a MobileNetV2 lutfarm did not make: the arm64 board (onnxruntime
    provisioned offline, pinned as above) and the local device, one table, the board's row
    marked emulated; the file is uploaded content-addressed into the board's model folder."""
    from model_files import export_onnx
    arm64 = boards["arm64"]
    inventory = tmp_path / "farm.toml"
    inventory.write_text(
        '[[devices]]\nname = "local"\ntransport = "local"\nkind = "local"\n\n'
        + arm64.toml().replace("\n\n", '\nruntimes = ["onnxruntime"]\n'
                                       'packages = { onnxruntime = "==1.22.0" }\n\n', 1))
    name = arm64.device().name
    provision = lutfarm("devices", "provision", "--inventory", inventory, "--devices", name)
    assert provision.returncode == 0, provision.stderr[-1500:]
    model = export_onnx(tmp_path / "mobilenet_v2.onnx", resolution=64, width=0.35)
    p = lutfarm("bench", model, "--inventory", inventory, "--devices", f"local,{name}",
                "--db", tmp_path / "b.db", "--min-time", "0.05", "--max-time", "0.5", "--json")
    assert p.returncode == 0, p.stderr[-1500:]
    rows = {r["device"]: r for r in json.loads(p.stdout)["devices"]}
    assert set(rows) == {"local", name}
    assert all(r["status"] == "ok" and r["runtime"] == "onnxruntime-fp32-t1"
               for r in rows.values()), rows
    assert "qemu-user" in rows[name]["emulated"] and rows["local"]["emulated"] is None
    assert rows[name]["median_ms"] > rows["local"]["median_ms"]   # an interpreter's cost
    sha = json.loads(p.stdout)["model"]["sha256"]
    assert arm64.path(f"/home/lab/lutfarm/models/{sha}.onnx").exists()
    table = lutfarm("bench", model, "--inventory", inventory, "--devices", f"local,{name}",
                    "--db", tmp_path / "b.db")
    assert table.returncode == 0 and "emulated" in table.stdout and name in table.stdout
    assert "not hardware timings" in table.stderr
