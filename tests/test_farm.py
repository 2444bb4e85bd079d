"""The device farm against real OpenSSH servers: keys, deployment, locks, faults, scheduling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from conftest import FAST, IN_CI, REPO, missing, need
from lutfarm.profiler.devices.check import check_device
from lutfarm.profiler.devices.lock import SFTPFS, BoardLock, owner_info
from lutfarm.profiler.devices.ssh import AuthError, HostKeyError, SSHSession
from lutfarm.profiler.devices.timeline import busy_seconds
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import (
    CampaignSettings,
    FarmSettings,
    plan_cases,
    run_campaign,
    run_farm,
)
from lutfarm.profiler.store import Store
from sshd import keygen, start_host

pytestmark = pytest.mark.needs("sshd")
RT = RuntimeConfig()
ONLY = "ConvBlock_H4_*,Skip_H4_*"          # 20 small cases: quick, but several per device


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    key = root / "id_ed25519"
    return key, keygen(key)


@pytest.fixture(scope="module")
def host(tmp_path_factory, client):
    h = start_host(tmp_path_factory.mktemp("host"), "box-1", client[1], client[0])
    yield h
    h.stop()


def test_campaign_over_ssh_deploys_once_and_builds_a_lut(tmp_path, host, cache):
    device = host.device(workdir=str(tmp_path / "work"))
    report = check_device(device)
    assert report.ok and report.auth and report.runtimes["onnxruntime"][0].isdigit(), report
    assert "deployed now" in report.agent
    with Store(tmp_path / "s.db") as store:
        first = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only=ONLY))
        assert first.measured == len(plan_cases(host_layout(), ONLY)) and not first.failed
        assert first.uploaded_bytes > 0
        kept = store.latest("testbox", RT.key)
        assert {m.device for m in kept.values()} == {"box-1"}
        more = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only=ONLY + ",AvgP_*"))
        assert more.measured == 1 and more.skipped == first.measured
        # the agent and every model already there: only the one new model travels
        model = next(p for p in cache.root.joinpath("models").iterdir())
        assert more.uploaded_bytes < 2 * model.stat().st_size + 200_000
    assert check_device(device).agent == report.agent.split()[0]     # no redeploy


def test_a_boards_models_directory_is_listed_once_per_connection(tmp_path, host, cache,
                                                                 monkeypatch):
    """Every chunk's upload used to list the board's models directory (thousands of files on a
    board that measured several LUTs); the connection now remembers what it saw and sent."""
    listed = []
    sizes = SSHSession.sizes
    monkeypatch.setattr(SSHSession, "sizes", lambda self, d: listed.append(d) or sizes(self, d))
    device = host.device(kind="listed", workdir=str(tmp_path / "work"))
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, host_layout(), device, RT,
                         CampaignSettings(timing=FAST, cache=cache, only=ONLY))
        jobs = [sp for sp in store.timeline(s.campaign_id) if sp.phase == "job"]
    assert s.measured == len(plan_cases(host_layout(), ONLY)) and not s.failed
    assert len(jobs) >= 3 and listed == [f"{tmp_path}/work/models"]
    # the models are on the board: the next campaign (another LUT) lists once, sends nothing
    listed.clear()
    with Store(tmp_path / "s.db") as store:
        again = run_campaign(store, host_layout(), replace(device, kind="listed-again"), RT,
                             CampaignSettings(timing=FAST, cache=cache, only=ONLY))
    assert again.measured == s.measured and len(listed) == 1
    assert again.uploaded_bytes == 0


def host_layout():
    from lutfarm.spaces import get_layout
    return get_layout("fbnet", "cifar")


def test_unknown_host_key_is_rejected(tmp_path, host):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match="is not in .*ssh-keyscan"):
        SSHSession(host.device(known_hosts=str(empty)))


def test_changed_host_key_is_rejected(tmp_path, host):
    other = keygen(tmp_path / "other_host")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{host.address}]:{host.port} {' '.join(other.split()[:2])}\n")
    with pytest.raises(HostKeyError, match="CHANGED"):
        SSHSession(host.device(known_hosts=str(known)))


def test_wrong_client_key_is_rejected(tmp_path, host):
    stranger = tmp_path / "stranger"
    keygen(stranger)
    with pytest.raises(AuthError, match="authentication failed"):
        SSHSession(host.device(key_file=str(stranger)))


def test_names_and_paths_with_spaces_and_quotes_stay_data(tmp_path, host, cache):
    evil = "b'ox \"2\" $(touch PWNED); `touch PWNED2`"
    workdir = tmp_path / "work dir 'q' \"dq\" $(touch PWNED3)"
    device = host.device(name=evil, kind=evil, workdir=str(workdir))
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*"))
        assert s.measured == 2 and not s.failed
        assert {m.device for m in store.latest(evil, RT.key).values()} == {evil}
    assert workdir.is_dir()
    assert not list(tmp_path.rglob("PWNED*")) and not list(REPO.glob("PWNED*"))
    assert not list(__import__("pathlib").Path.home().glob("PWNED*"))


def _holder_lock(device, owner, stale_s=600.0):
    session = SSHSession(device)
    session.makedirs(device.workdir)
    lock = BoardLock(SFTPFS(session.sftp), session.sftp.normalize(device.workdir), device.name,
                     owner, stale_s)
    return session, lock


def test_a_held_board_is_reported_with_its_holder(tmp_path, host, cache):
    device = host.device(workdir=str(tmp_path / "work"))
    session, lock = _holder_lock(device, owner_info("other-campaign"))
    lock.acquire()
    try:
        with Store(tmp_path / "s.db") as store:
            s = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*"))
        assert s.measured == 0 and "being measured by" in s.device_errors["box-1"]
        assert "other-campaign" in s.device_errors["box-1"]
    finally:
        lock.release()
        session.close()


def test_a_lock_this_process_left_on_a_lost_board_is_taken_over_a_live_one_is_not(tmp_path):
    """A campaign whose board dropped off could not remove its lock; the same process resuming
    (a notebook, a retrying script) must not wait 600 s for its own dead lock."""
    from lutfarm.profiler.devices.lock import LOCK_NAME, LocalFS, LockHeld
    (tmp_path / LOCK_NAME).write_text(json.dumps(owner_info("lost")))   # our host and pid
    resumed = BoardLock(LocalFS(), str(tmp_path), "b", owner_info("resumed"))
    resumed.acquire()
    try:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["campaign"] == "resumed"
        with pytest.raises(LockHeld, match="campaign resumed"):
            BoardLock(LocalFS(), str(tmp_path), "b", owner_info("third")).acquire()
    finally:
        resumed.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_controllers_on_one_board_take_turns(tmp_path, host, cache_dir):
    device = host.device(workdir=str(tmp_path / "work"))
    inventory = tmp_path / "farm.toml"
    inventory.write_text(host.toml(workdir=device.workdir))
    cmd = [sys.executable, "-m", "lutfarm", "profile", "--inventory", str(inventory),
           "--devices", "box-1", "--only", "ConvBlock_H4_*_exp1_*", "--min-time", "0.05",
           "--max-time", "0.06", "--warmup", "0", "--lock-wait", "120", "--json"]
    procs = [subprocess.Popen(cmd + ["--db", str(tmp_path / f"c{i}.db")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    spans = []
    for i in range(2):
        with Store(tmp_path / f"c{i}.db") as store:
            times = [m.created for m in store.iter_measurements("box-1")]
            assert len(times) == 8
            spans.append((min(times), max(times)))
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 < b0, f"measurements overlapped: {spans}"


def test_a_stale_lock_is_taken_over(tmp_path, host, cache):
    device = host.device(workdir=str(tmp_path / "work"))
    ghost = owner_info("crashed")
    ghost.update(host="another-controller", pid=424242)
    session, lock = _holder_lock(device, ghost)
    lock.acquire()
    lock._stop.set()                      # the ghost stops its heartbeat
    old = time.time() - 30
    session.sftp.utime(lock.path, (old, old))
    farm = FarmSettings(stale_lock_s=10)
    try:
        with Store(tmp_path / "s.db") as store:
            s = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*", farm=farm))
        assert s.measured == 2 and not s.device_errors
        with pytest.raises(FileNotFoundError):   # released after the campaign
            session.sftp.stat(lock.path)
    finally:
        session.close()


@pytest.fixture(scope="module")
def farm_hosts(tmp_path_factory, client):
    """Three hosts of one kind, each in its own network namespace (or loopback ports)."""
    why = missing("netns")
    if why and IN_CI:
        need("netns")
    if why:
        print(f"network namespaces unavailable ({why}); using three sshd on 127.0.0.1")
    hosts = [start_host(tmp_path_factory.mktemp(f"farm{i}"), f"node-{i}", client[1], client[0],
                        index=i + 1, netns=why is None) for i in range(3)]
    yield hosts
    for h in hosts:
        h.stop()


def test_three_hosts_of_one_kind_split_the_work(tmp_path, farm_hosts, cache):
    devices = [h.device(workdir=str(tmp_path / h.name)) for h in farm_hosts]
    with Store(tmp_path / "s.db") as store:
        (s,) = run_farm(store, host_layout(), devices, RT, CampaignSettings(timing=FAST, cache=cache, only=ONLY))
        planned = {c.key for c in plan_cases(host_layout(), ONLY)}
        assert s.measured == len(planned) and not s.failed
        assert sorted(s.per_device) == ["node-0", "node-1", "node-2"]
        assert all(n > 0 for n in s.per_device.values()), s.per_device
        assert set(store.latest("testbox", RT.key)) == planned


def test_every_board_of_a_campaign_leaves_its_timeline_in_the_store(tmp_path, farm_hosts,
                                                                     cache):
    """Where the boards' time went: each board connects, locks, deploys, starts its agent,
    uploads, runs jobs and tears down, in that order; the jobs' results are the cases measured;
    the CLI's summary reads the stored spans."""
    devices = [h.device(kind="timed", workdir=str(tmp_path / h.name)) for h in farm_hosts]
    with Store(tmp_path / "s.db") as store:
        (s,) = run_farm(store, host_layout(), devices, RT,
                        CampaignSettings(timing=FAST, cache=cache, only=ONLY))
        spans = store.timeline(s.campaign_id)
    assert s.measured and not s.failed
    for h in farm_hosts:
        mine = [sp for sp in spans if sp.device == h.name]
        first = {}
        for sp in mine:
            first.setdefault(sp.phase, sp.began)
            assert sp.ended >= sp.began
        assert [p for p in ("connect", "lock", "deploy") if p in first] == [
            "connect", "lock", "deploy"]
        assert first["connect"] <= first["lock"] <= first["deploy"] <= first["upload"] \
            <= first["job"], first
        assert max(sp.ended for sp in mine) == mine[-1].ended or mine[-1].phase == "teardown"
        assert max(mine, key=lambda sp: sp.ended).phase == "teardown"
        jobs = [sp for sp in mine if sp.phase == "job"]
        assert sum(sp.detail["results"] for sp in jobs) == s.per_device[h.name]
        assert all(0 <= sp.detail["first_result_s"] <= sp.detail["last_result_s"] <= sp.seconds
                   for sp in jobs if sp.detail["results"])
        # the agent says how long each job took on the board: within the controller's span
        assert all(0 < sp.detail["board_s"] <= sp.seconds for sp in jobs)
    export = [sp for sp in spans if sp.device == "controller"]
    assert [sp.phase for sp in export] == ["export"]
    assert export[0].ended <= min(sp.began for sp in spans if sp.device != "controller")
    # the summary: a share per phase, busy time over boards x wall, shown by the CLI too
    busy = sum(busy_seconds(sp) for sp in spans if sp.phase == "job")
    board_spans = [sp for sp in spans if sp.device != "controller"]
    wall = max(sp.ended for sp in board_spans) - min(sp.began for sp in board_spans)
    assert s.efficiency == pytest.approx(busy / (3 * wall))
    out = subprocess.run([sys.executable, "-m", "lutfarm", "db", "timeline", "--db",
                          str(tmp_path / "s.db"), "--json"], capture_output=True, text=True,
                         timeout=120, check=True)
    shown = json.loads(out.stdout)
    assert shown["campaign"] == s.campaign_id and shown["efficiency"] == pytest.approx(
        s.efficiency)
    assert set(shown["per_board"]) == {h.name for h in farm_hosts}
    text = subprocess.run([sys.executable, "-m", "lutfarm", "db", "timeline", str(s.campaign_id),
                           "--db", str(tmp_path / "s.db")], capture_output=True, text=True,
                          timeout=120, check=True).stdout
    assert f"scheduling efficiency (busy board time / boards x wall) {s.efficiency:.3f}" in text
    assert all(f"  {h.name}: " in text for h in farm_hosts)


def test_a_host_down_from_the_start_is_named_and_the_others_do_the_work(tmp_path, farm_hosts,
                                                                        cache):
    """A board that is off when the campaign starts (nothing listens on its port): the
    campaign says which and why, and the rest of the kind measures every case."""
    import socket
    with socket.socket() as probe:            # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    up = [h.device(workdir=str(tmp_path / h.name)) for h in farm_hosts[1:]]
    down = replace(farm_hosts[0].device(workdir=str(tmp_path / "down")), host="127.0.0.1",
                   port=closed)
    farm = FarmSettings(backoff_s=0.2, max_device_failures=2)
    with Store(tmp_path / "s.db") as store:
        (s,) = run_farm(store, host_layout(), [down, *up], RT,
                        CampaignSettings(timing=FAST, cache=cache, only=ONLY, farm=farm))
        planned = {c.key for c in plan_cases(host_layout(), ONLY)}
        assert s.measured == len(planned) and not s.failed, s.failed
        assert set(store.latest("testbox", RT.key)) == planned
    assert down.name in s.device_errors and s.per_device.get(down.name, 0) == 0
    why = s.device_errors[down.name]
    assert f"127.0.0.1:{closed}" in why and "refused" in why.lower(), why


def test_a_host_dropping_mid_campaign_leaves_its_cases_to_the_others(tmp_path, farm_hosts,
                                                                       cache):
    devices = [h.device(workdir=str(tmp_path / h.name)) for h in farm_hosts]
    slow = replace(FAST, min_s=0.05, max_s=0.06)
    victim = farm_hosts[0]
    farm = FarmSettings(backoff_s=0.2, max_device_failures=2)
    done = threading.Event()

    class KillOnFirstResult:
        def phase(self, name, total): ...
        def device_state(self, device, state): ...

        def advance(self, key, status, device=""):
            if device == victim.name and not done.is_set():
                done.set()
                threading.Thread(target=victim.kill).start()

    try:
        with Store(tmp_path / "s.db") as store:
            (s,) = run_farm(store, host_layout(), devices, RT, CampaignSettings(timing=slow, cache=cache, only=ONLY, progress=KillOnFirstResult(), farm=farm))
            planned = {c.key for c in plan_cases(host_layout(), ONLY)}
            assert done.is_set()
            assert victim.name in s.device_errors
            assert s.measured == len(planned) and not s.failed, s.failed
            assert set(store.latest("testbox", RT.key)) == planned
            assert s.per_device.get(victim.name, 0) >= 1
    finally:   # the other tests of this module still want three hosts
        victim.stop()
        farm_hosts[0] = start_host(victim.root.parent / f"{victim.root.name}-again",
                                   victim.name,
                                   (victim.root / "authorized_keys").read_text().strip(),
                                   victim.client_key, index=1, netns=victim.netns is not None)


def test_inventory_cli_check_and_profile(tmp_path, farm_hosts):
    inventory = tmp_path / "farm.toml"
    inventory.write_text("".join(h.toml(workdir=str(tmp_path / h.name), kind="testbox")
                                 for h in farm_hosts))
    check = subprocess.run([sys.executable, "-m", "lutfarm", "devices", "check", "--inventory",
                            str(inventory), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stderr
    reports = json.loads(check.stdout)
    assert [r["name"] for r in reports] == ["node-0", "node-1", "node-2"]
    assert all(r["ok"] and r["numpy"] for r in reports)
    p = subprocess.run([sys.executable, "-m", "lutfarm", "profile", "--inventory",
                        str(inventory), "--devices", "kind:testbox", "--db", str(tmp_path / "s.db"),
                        "--only", "Skip_H4_*", "--min-time", "0.01", "--max-time", "0.02",
                        "--json"], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ}, timeout=600)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["measured"] == 2


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.needs("system-python")
def test_provision_builds_a_venv_offline_and_is_idempotent(tmp_path, host, cache):
    """A bare interpreter (no numpy, no runtime) gets a venv from wheels pushed over SFTP."""
    from lutfarm.profiler.devices.provision import provision
    device = host.device(python=SYSTEM_PYTHON, workdir=str(tmp_path / "work"))
    before = check_device(device)
    assert not before.ok and before.numpy is None and not before.provisioned
    wheels = tmp_path / "wheels"
    first = provision(device, wheels)
    assert not first.already and first.wheels_uploaded >= 2
    assert first.platform == "cp311-x86_64" and first.installed["onnxruntime"][0].isdigit()
    again = provision(device, wheels)
    assert again.already and again.wheels_uploaded == 0
    inventory = tmp_path / "farm.toml"      # the command does the same, and says so
    inventory.write_text(host.toml(python=SYSTEM_PYTHON, workdir=str(tmp_path / "work")))
    cli = subprocess.run([sys.executable, "-m", "lutfarm", "devices", "provision", "--inventory",
                          str(inventory)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-800:]
    assert "box-1: already provisioned (cp311-x86_64)" in cli.stderr
    after = check_device(device)
    assert after.ok and after.provisioned
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*"))
    assert s.measured == 2
    ctx = store_context(tmp_path / "s.db")
    assert ctx["python_executable"].endswith("/work/venv/bin/python")


def store_context(db):
    with Store(db) as store:
        row = store.conn.execute("SELECT MAX(id) FROM contexts").fetchone()
        return store.context(row[0])


def test_wheels_for_an_aarch64_board_are_chosen_by_its_platform(tmp_path):
    from lutfarm.profiler.devices.provision import download_wheels
    target = download_wheels(["numpy"], "cp311", "aarch64", tmp_path)
    names = [p.name for p in target.glob("*.whl")]
    assert names and all("aarch64" in n and "cp311" in n for n in names), names


def test_a_full_disk_gives_the_board_up_with_the_reason_and_keeps_what_was_measured(
        tmp_path, host, cache):
    """The work directory on a 600 KB tmpfs: the agent fits, the bigger models do not."""
    workdir = tmp_path / "small"
    workdir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(workdir)],
                      capture_output=True, timeout=600).returncode != 0:
        need("root", "cannot mount a tmpfs here (needs root)")
    try:
        device = host.device(workdir=str(workdir))
        farm = FarmSettings(backoff_s=0.01, max_device_failures=2)
        with Store(tmp_path / "s.db") as store:
            s = run_campaign(store, host_layout(), device, RT, CampaignSettings(timing=FAST, cache=cache, only="Skip_H4_*,ConvNorm_*", farm=farm))
            assert "disk full" in s.device_errors["box-1"]
            assert s.measured + len(s.failed) == len(plan_cases(host_layout(),
                                                                 "Skip_H4_*,ConvNorm_*"))
            assert len(store.latest("testbox", RT.key)) == s.measured
    finally:
        subprocess.run(["umount", "-l", str(workdir)], capture_output=True, timeout=600)


def test_ctrl_c_stops_a_farm_campaign_cleanly(tmp_path, host):
    import signal
    device = host.device(workdir=str(tmp_path / "work"))
    inventory = tmp_path / "farm.toml"
    inventory.write_text(host.toml(workdir=device.workdir))
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm", "profile", "--inventory",
                             str(inventory), "--devices", "box-1", "--db", str(db), "--only",
                             "ConvBlock_H4_*", "--min-time", "0.2", "--max-time", "0.3"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a suite started in the background inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            with Store(db) as store:
                if store.measured_keys("testbox", RT.key):
                    break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-800:]
    assert "interrupted: every measurement taken so far is stored" in err
    with Store(db) as store:
        kept = store.measured_keys("testbox", RT.key)
    assert 1 <= len(kept) < 16
    assert not (tmp_path / "work" / "lutfarm.lock").exists(), err[-1500:]   # lock released
    assert _agents_running_in(tmp_path / "work") == [], "an agent survived Ctrl-C"


def _agents_running_in(workdir) -> list[int]:
    """PIDs of serving agents whose working directory is under ``workdir`` (this test's own:
    other suites on the machine may run agents too)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"lutfarm_agent" in cmd and b"--serve" in cmd and cwd.startswith(str(workdir)):
            found.append(int(entry))
    return found


def test_a_boards_first_job_is_small_and_later_ones_at_most_16():
    """The first job starts once FIRST_CHUNK models are up (the next chunk uploads beside it);
    after that ~4 jobs per device, never more than 16 cases, one device included."""
    from lutfarm.profiler.scheduling.device_worker import FIRST_CHUNK, FarmSettings, KindWork
    from lutfarm.profiler.scheduling.work_queue import WorkQueue

    class Alive:
        def devices_given_up(self):
            return 0

    for devices, pending, first, later in [(1, 113, FIRST_CHUNK, 16), (3, 113, FIRST_CHUNK, 10),
                                           (3, 5, 1, 1), (1, 1, 1, 1)]:
        work = KindWork("k", devices, None, None, FarmSettings(), WorkQueue(list(map(str, range(pending)))),
                        Alive(), {})
        assert (work.chunk_size(first=True), work.chunk_size()) == (first, later)
