"""Campaigns on the real local device: resume, agent death, controller kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

from conftest import FAST, REPO
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import (
    CampaignSettings,
    FarmSettings,
    Progress,
    plan_cases,
    run_campaign,
)
from lutfarm.profiler.store import Store

RT = RuntimeConfig()
SLOW = replace(FAST, min_s=0.05)   # each case lasts long enough to be killed in the middle


def test_a_rerun_measures_only_what_is_missing(tmp_path, cache, cifar):
    with Store(tmp_path / "s.db") as store:
        n_first = len(plan_cases(cifar, "ConvBlock_H8_*"))
        first = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only="ConvBlock_H8_*"))
        assert first.measured == n_first > 8 and first.skipped == 0 and not first.failed
        part = "ConvBlock_H8_*,Skip_H8_*,AvgP_*"
        second = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only=part))
        assert second.skipped == n_first
        assert second.measured == len(plan_cases(cifar, part)) - n_first > 0
        third = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only=part))
        assert third.measured == 0 and third.skipped == third.planned
        summaries = store.conn.execute("SELECT COUNT(*) FROM campaigns WHERE summary IS NOT NULL")
        assert summaries.fetchone()[0] == 3


class KillAgentAfter(Progress):
    """Kills the real agent process (SIGKILL) once n results have arrived, each time."""

    def __init__(self, n, times=1):
        self.n, self.times, self.seen, self.transport, self.kills = n, times, 0, None, 0

    def advance(self, key, status, device=""):
        if status == "ok":
            self.seen += 1
            if self.seen % self.n == 0 and self.kills < self.times:
                if self.transport.proc.poll() is None:   # results can outrun the kill
                    os.kill(self.transport.proc.pid, signal.SIGKILL)
                    self.kills += 1


def test_an_agent_killed_once_is_restarted_and_the_campaign_completes(tmp_path, cache, cifar):
    only = "ConvBlock_H16_*"
    planned = {c.key for c in plan_cases(cifar, only)}
    killer = KillAgentAfter(3)
    farm = FarmSettings(backoff_s=0.01)
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=SLOW, cache=cache, only=only, progress=killer, on_transport=lambda t: setattr(killer, "transport", t), farm=farm))
        assert killer.kills == 1
        assert s.measured == len(planned) and not s.failed and not s.device_errors
        assert store.measured_keys("local", RT.key) == planned


def test_an_agent_that_keeps_dying_fails_the_rest_and_a_rerun_picks_up(tmp_path, cache, cifar):
    only = "ConvBlock_H16_*"
    planned = [c.key for c in plan_cases(cifar, only)]
    killer = KillAgentAfter(1, times=99)     # every agent dies after its first result
    farm = FarmSettings(max_device_failures=2, backoff_s=0.01)
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=SLOW, cache=cache, only=only, progress=killer, on_transport=lambda t: setattr(killer, "transport", t), farm=farm))
        # two faults in a row with no chunk finished between them: the device is given up
        # (a result already in the pipe may still land)
        assert killer.kills == 2 and 2 <= s.measured < len(planned)
        assert s.measured + len(s.failed) == len(planned)
        assert "exited with status -9" in s.device_errors["local"]
        assert all("no device of kind local left" in err for _, err in s.failed)
        kept = store.measured_keys("local", RT.key)
        assert len(kept) == s.measured
        failed_rows = store.conn.execute(
            "SELECT COUNT(*) FROM measurements WHERE status = 'failed'").fetchone()[0]
        assert failed_rows == len(s.failed)
        again = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only=only))
        assert again.skipped == s.measured and again.measured == len(s.failed)
        assert store.measured_keys("local", RT.key) == set(planned)


def test_a_hanging_case_times_out_and_the_rest_are_measured(tmp_path, cifar):
    """A model path that is a FIFO nobody writes: the agent blocks reading it, for real."""
    only = "ConvBlock_H4_*_exp1_*"
    cases = plan_cases(cifar, only)
    hang = tmp_path / "hang"
    hang.mkdir()
    hung_cache = ModelCache(hang)
    for c in cases:       # the same cases, fresh files; one of them becomes a FIFO
        hung_cache.get(c)
    victim = hung_cache.lookup(cases[1])
    victim.path.unlink()
    os.mkfifo(victim.path)
    farm = FarmSettings(case_timeout_s=2.0, backoff_s=0.01)
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=hung_cache, only=only, farm=farm))
    assert [k for k, _ in s.failed] == [cases[1].key]
    assert "timed out" in s.failed[0][1]
    assert s.measured == len(cases) - 1


def _ok_rows(db):
    try:
        con = sqlite3.connect(db, timeout=5)
        return con.execute("SELECT COUNT(*) FROM measurements WHERE status = 'ok'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_of_the_controller_loses_nothing(tmp_path, cache_dir):
    db = tmp_path / "k.db"
    cmd = [sys.executable, "-m", "lutfarm", "profile", "--db", str(db), "--cache", str(cache_dir),
           "--only", "ConvBlock_H32_*,ConvBlock_H16_*", "--min-time", "0.05", "--max-time", "0.1",
           "--warmup", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while _ok_rows(db) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)      # controller and its agent, no chance to clean up
    proc.wait()
    before = _ok_rows(db)
    assert before >= 4
    with Store(db) as store:
        kept = store.latest("local", RT.key)
        assert len(kept) == before and all(m.median_ms > 0 for m in kept.values())
    done = subprocess.run(cmd[:-6] + ["--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    import json
    summary = json.loads(done.stdout)
    assert summary["skipped"] == before
    assert summary["measured"] + summary["skipped"] == summary["planned"] > before


class _OneCaseUnconvertible(ModelCache):
    """A converter that fails on one case (converter failures cannot be provoked on demand
    with lutfarm's own blocks, which all convert); everything else is the real cache."""

    bad = ""

    def get(self, case, fmt="onnx", dtype="fp32"):
        from lutfarm.profiler.export.cache import ExportError

        if case.key == self.bad:
            raise ExportError(f"{case.key}: litert-torch cannot convert it: aten.foo not lowered")
        return super().get(case, fmt, dtype)


def test_a_case_that_cannot_be_exported_fails_alone(tmp_path, cache_dir, cifar):
    cache = _OneCaseUnconvertible(cache_dir)
    keys = [c.key for c in cifar.unique_cases()[:3]]
    cache.bad = keys[1]
    with Store(tmp_path / "s.db") as store:
        summary = run_campaign(store, cifar, LOCAL, RuntimeConfig(), CampaignSettings(timing=FAST, cache=cache, only=",".join(keys)))
        assert summary.measured == 2
        assert summary.failed == [(keys[1], f"{keys[1]}: litert-torch cannot convert it: "
                                            f"aten.foo not lowered")]
        assert store.measured_keys("local", "onnxruntime-fp32-t1") == {keys[0], keys[2]}


def test_a_device_with_its_own_threads_measures_under_its_own_key(tmp_path, cache, cifar):
    """An inventory's ``threads = 2`` overrides --threads 1: the measurements, the context and
    the LUT all say t2, and nothing lands in the t1 LUT."""
    from lutfarm.lut import build_lut
    two = replace(LOCAL, threads=2)
    with Store(tmp_path / "t.db") as store:
        s = run_campaign(store, cifar, two, RT, CampaignSettings(timing=FAST, cache=cache,
                                                                 only="Skip_*"))
        assert s.runtime == "onnxruntime-fp32-t2" and s.measured == len(plan_cases(cifar, "Skip_*"))
        assert store.latest("local", RT.key) == {}
        measured = store.latest("local", "onnxruntime-fp32-t2")
        assert len(measured) == s.measured
        context = store.context(next(iter(measured.values())).context_id)
        assert context["runtime"]["threads"] == 2
        assert build_lut(store, "local", "onnxruntime-fp32-t2").runtime == "onnxruntime-fp32-t2"
