"""Several controllers, one farm: a campaign's cases claimed in a real PostgreSQL store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout

pytestmark = pytest.mark.needs("postgres")
CONTROLLER = Path(__file__).parent / "controller.py"
RT = "bench-sleep-fp32-t1"
CASES = 1 + len(get_layout("fbnet", "cifar").unique_cases())     # the empty model too


def controller(url: str, boards: str, root: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CONTROLLER), url, boards, str(root),
                             *map(str, extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(p: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-1500:]
    return json.loads(out)


def stored(url: str) -> Counter:
    with Store(url) as store:
        return Counter(m.case_key for m in store.iter_measurements(runtime=RT)
                       if m.status == "ok")


def waiting(url: str) -> int:
    """Controllers waiting for a board another campaign holds (the shared queue's hand-over)."""
    with Store(url) as store:
        return store.db.execute("SELECT COUNT(*) FROM board_waits").fetchone()[0]


def test_two_controllers_on_one_campaign_split_it_and_measure_nothing_twice(pg_url, tmp_path,
                                                                           cache_dir):
    a = controller(pg_url, "box-a", tmp_path)
    b = controller(pg_url, "box-b", tmp_path)
    sa, sb = finish(a), finish(b)
    counts = stored(pg_url)
    assert len(counts) == CASES and set(counts.values()) == {1}
    assert sa["measured"] + sb["measured"] == CASES and sa["measured"] > 0 and sb["measured"] > 0
    assert not sa["failed"] and not sb["failed"] and not sa["leases_lost"]
    with Store(pg_url) as store:
        states = store.db.execute("SELECT state, COUNT(*) FROM case_queue GROUP BY state")
        assert dict(states.fetchall()) == {"done": CASES}
        owners = store.db.execute("SELECT owner, priority FROM campaigns").fetchall()
        assert len(owners) == 2 and all(o[0] and o[1] == 0 for o in owners)
        # both said how many boards they brought, and withdrew it when they finished
        assert store.db.execute("SELECT COUNT(*) FROM queue_controllers").fetchone()[0] == 0


def test_chunks_are_sized_over_every_controllers_boards(pg_url):
    """A controller with 3 boards beside one with 5 sizes its chunks over 8 boards; once the
    other has gone, over its own 3 again (a controller that dies stops renewing: its count
    expires with its leases)."""
    from lutfarm.profiler.store.queue import StoreQueue
    with Store(pg_url) as store:
        cid = store.start_campaign("rpi4", RT)
        keys = [f"case{i}" for i in range(40)]
        one = StoreQueue(store, "rpi4", RT, keys, cid, "ctl-1", boards=3)
        two = StoreQueue(store, "rpi4", RT, keys, cid, "ctl-2", boards=5)
        other = StoreQueue(store, "rpi4", "another-runtime", keys, cid, "ctl-3", boards=7)
        try:
            assert one.boards(3) == 3 + 5 and two.boards(5) == 5 + 3
            assert one.boards(2) == 2 + 5           # its own live boards: one was given up
            two.close()
            one._others_at = float("-inf")          # past the cache's time to live
            assert one.boards(3) == 3
            store.db.execute("UPDATE queue_controllers SET until = ? WHERE holder = 'ctl-1'",
                             (time.time() - 1,))
            assert StoreQueue(store, "rpi4", RT, keys, cid, "ctl-4", boards=2).boards(2) == 2
        finally:
            one.close()
            other.close()


def test_a_killed_controllers_leased_cases_return_when_its_lease_expires(pg_url, tmp_path,
                                                                         cache_dir):
    a = controller(pg_url, "box-a", tmp_path, 2.0)
    deadline = time.monotonic() + 300
    while sum(stored(pg_url).values()) < 5:          # it has measured some, holds the rest
        assert a.poll() is None and time.monotonic() < deadline, a.stderr.read()[-1500:]
        time.sleep(0.2)
    os.killpg(a.pid, signal.SIGKILL)
    a.wait(10)
    with Store(pg_url) as store:
        leased = store.db.execute("SELECT COUNT(*) FROM case_queue WHERE state = 'leased'"
                                  ).fetchone()[0]
    assert leased > 0                                # the dead controller's claims
    before = sum(stored(pg_url).values())
    sb = finish(controller(pg_url, "box-b", tmp_path, 2.0))
    counts = stored(pg_url)
    assert len(counts) == CASES and set(counts.values()) == {1}      # nothing lost, none twice
    assert sb["measured"] == CASES - before and sb["skipped"] == before


def test_a_server_restart_mid_campaign_loses_nothing_and_duplicates_nothing(
        postgres_server, pg_url, tmp_path, cache_dir):
    """The server goes down (immediate shutdown: every connection cut) while the boards
    measure, and comes back 4 s later: results taken meanwhile wait in the controller's
    journal and are written once it is back."""
    a = controller(pg_url, "box-a", tmp_path)
    deadline = time.monotonic() + 300
    while sum(stored(pg_url).values()) < 5:
        assert a.poll() is None and time.monotonic() < deadline, a.stderr.read()[-1500:]
        time.sleep(0.2)
    postgres_server.crash()
    time.sleep(4)
    postgres_server.start()
    summary = finish(a)
    counts = stored(pg_url)
    assert len(counts) == CASES and set(counts.values()) == {1}
    assert summary["measured"] == CASES and not summary["failed"], summary
    assert summary["journaled"] > 0          # the outage was met, and bridged by the journal
    with Store(pg_url) as store:
        row = store.db.execute("SELECT summary FROM campaigns").fetchone()
        assert json.loads(row[0])["measured"] == CASES
    assert not list((cache_dir / "journal").glob("*.jsonl"))     # written out, removed


def test_a_board_serves_the_higher_priority_campaign_first(pg_url, tmp_path, cache_dir):
    """Two people, one board: a priority-0 campaign measures on it; a priority-5 campaign (another
    runtime configuration) arrives and waits; the board is handed over after the running chunk,
    the urgent campaign runs to its end, then the first one resumes. Nothing fails."""
    low = controller(pg_url, "box", tmp_path, 60, 0, 1)
    deadline = time.monotonic() + 300
    while sum(stored(pg_url).values()) < 5:
        assert low.poll() is None and time.monotonic() < deadline, low.stderr.read()[-1500:]
        time.sleep(0.2)
    # The low campaign is paused (its whole process group) until the urgent one has said it
    # waits for the board: a slow start on a busy machine once let it finish first.
    os.killpg(low.pid, signal.SIGSTOP)
    try:
        high = controller(pg_url, "box", tmp_path, 60, 5, 2)
        while not waiting(pg_url):
            assert high.poll() is None and time.monotonic() < deadline, \
                high.stderr.read()[-1500:]
            time.sleep(0.2)
    finally:
        os.killpg(low.pid, signal.SIGCONT)
    s_low, s_high = finish(low), finish(high)
    assert s_low["measured"] == CASES and s_high["measured"] == CASES
    with Store(pg_url) as store:
        times = {rt: [m.created for m in store.iter_measurements(runtime=rt)]
                 for rt in (RT, "bench-sleep-fp32-t2")}
    urgent = times["bench-sleep-fp32-t2"]
    first, last = min(urgent), max(urgent)
    low_times = times[RT]
    assert any(t < first for t in low_times) and any(t > last for t in low_times)
    assert not any(first < t < last for t in low_times)      # the board was the urgent one's
