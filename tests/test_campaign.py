"""Campaigns on the real local device: resume, agent death, controller kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import FAST, REPO
from profiler.campaign import Progress, plan_cases, run_campaign
from profiler.devices import LOCAL
from profiler.runtime_config import RuntimeConfig
from profiler.store import Store

RT = RuntimeConfig()


def test_a_rerun_measures_only_what_is_missing(tmp_path, cache, cifar):
    with Store(tmp_path / "s.db") as store:
        n_first = len(plan_cases(cifar, "ConvBlock_H8_*"))
        first = run_campaign(store, cifar, LOCAL, RT, FAST, cache, only="ConvBlock_H8_*")
        assert first.measured == n_first > 8 and first.skipped == 0 and not first.failed
        part = "ConvBlock_H8_*,Skip_H8_*,AvgP_*"
        second = run_campaign(store, cifar, LOCAL, RT, FAST, cache, only=part)
        assert second.skipped == n_first
        assert second.measured == len(plan_cases(cifar, part)) - n_first > 0
        third = run_campaign(store, cifar, LOCAL, RT, FAST, cache, only=part)
        assert third.measured == 0 and third.skipped == third.planned
        summaries = store.conn.execute("SELECT COUNT(*) FROM campaigns WHERE summary IS NOT NULL")
        assert summaries.fetchone()[0] == 3


class KillAgentAfter(Progress):
    """Kills the real agent process (SIGKILL) once n results have arrived."""

    def __init__(self, n):
        self.n, self.seen, self.transport = n, 0, None

    def advance(self, key, status):
        if status == "ok":
            self.seen += 1
            if self.seen == self.n:
                os.kill(self.transport.proc.pid, signal.SIGKILL)


def test_an_agent_killed_mid_job_keeps_finished_cases_and_a_rerun_picks_up(tmp_path, cache, cifar):
    only = "ConvBlock_H16_*"
    planned = [c.key for c in plan_cases(cifar, only)]
    killer = KillAgentAfter(3)
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, cifar, LOCAL, RT, FAST, cache, only, killer,
                         on_transport=lambda t: setattr(killer, "transport", t))
        assert s.measured >= 3 and s.measured + len(s.failed) == len(planned)
        assert s.failed and all("exited with status -9" in err for _, err in s.failed)
        kept = store.measured_keys("local", RT.key)
        assert len(kept) == s.measured
        failed_rows = store.conn.execute(
            "SELECT COUNT(*) FROM measurements WHERE status = 'failed'").fetchone()[0]
        assert failed_rows == len(s.failed)
        again = run_campaign(store, cifar, LOCAL, RT, FAST, cache, only)
        assert again.skipped == s.measured and again.measured == len(s.failed)
        assert store.measured_keys("local", RT.key) == set(planned)


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
    done = subprocess.run(cmd[:-6] + ["--json"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import json
    summary = json.loads(done.stdout)
    assert summary["skipped"] == before
    assert summary["measured"] + summary["skipped"] == summary["planned"] > before
