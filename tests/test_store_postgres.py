"""The store on a real PostgreSQL server (started by the suite): the same records as SQLite,
global device names, concurrent creation, refusals, and lossless copies both ways."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

import psycopg
import pytest

from lutfarm.lut import load_lut
from lutfarm.profiler.store import SCHEMA_VERSION, Measurement, Span, Store, StoreError
from lutfarm.profiler.store.copy import copy_store, dump
from lutfarm.profiler.store.drivers import local_device_name

pytestmark = pytest.mark.needs("postgres")
RT = "onnxruntime-fp32-t1"


def _fill(store: Store) -> None:
    """A little of everything a campaign writes, links included."""
    ctx = store.add_context("local", {"cpu": "x", "emulated": None})
    camp = store.start_campaign("local", RT, "fbnet", "cifar", 10, {"repeats": 3})
    for i, median in enumerate((1.25, 2.5, 0.1 + 0.2)):
        store.add(Measurement("local", RT, f"k{i}", "ok", campaign_id=camp, context_id=ctx,
                              created=100.0 + i, median_ms=median, samples=[median, 1e-300, 3.0],
                              extra={"inputs": [[1, 3, 8, 8]], "details": {}}, converged=i != 1,
                              peak_mem_bytes=5 * 2**31, mem_method="rss-growth"))
    store.add(Measurement("pi-1", RT, "k0", "failed", error="boom\nline 2", kind="pi",
                          created=200.0, campaign_id=camp))
    store.add_spans(camp, [Span("local", "job", 100.0, 102.5, {"cases": 3, "board_s": 0.1 + 0.2}),
                           Span("pi-1", "connect", 99.0, 99.25)])
    store.finish_campaign(camp, {"ok": 3, "failed": 1})
    store.add_report("local", RT, "validation", {"plain": {"spearman": 0.97}})


def test_postgres_store_keeps_what_sqlite_keeps(pg_url, tmp_path):
    with Store(pg_url) as pg, Store(tmp_path / "s.db") as lite:
        for store in (pg, lite):
            _fill(store)
        assert pg.shared and not lite.shared
        for store in (pg, lite):   # both answer "local" with this machine's measurements
            latest = store.latest("local", RT, with_samples=True)
            assert sorted(latest) == ["k0", "k1", "k2"]
            assert latest["k2"].median_ms == 0.1 + 0.2 and latest["k2"].samples[1] == 1e-300
            assert latest["k1"].converged is False and latest["k0"].converged is True
            assert latest["k0"].peak_mem_bytes == 5 * 2**31
            assert store.measured_keys("pi", RT) == set() and store.failures("pi", RT) == {
                "k0": "boom\nline 2"}
            assert store.latest_report("local", RT, "validation") == {"plain": {"spearman": 0.97}}
            assert store.last_campaign_layout("local", RT) == ("fbnet", "cifar", 10)
        frame_pg, frame_lite = pg.measurements(), lite.measurements()
        assert list(frame_pg.columns) == list(frame_lite.columns) and len(frame_pg) == 4
        # in the shared store this machine's local device has a global name
        assert {m.device for m in pg.iter_measurements()} == {local_device_name(), "pi-1"}
        assert {m.device for m in lite.iter_measurements()} == {"local", "pi-1"}
        assert pg.configurations() == [(local_device_name(), RT, 3)]


def _open(url: str, queue) -> None:
    try:
        with Store(url) as store:
            store.add(Measurement("d", RT, "k", "ok", created=1.0, median_ms=1.0))
        queue.put("ok")
    except Exception as exc:   # pragma: no cover - reported to the parent
        queue.put(repr(exc))


def test_controllers_opening_a_new_postgres_store_at_once_create_it_once(pg_url):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(pg_url, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == ["ok"] * 4
    with Store(pg_url) as store:
        assert len(list(store.iter_measurements())) == 4
        meta = dict(store.db.execute("SELECT key, value FROM meta").fetchall())
    assert meta == {"app": "lutfarm", "schema_version": str(SCHEMA_VERSION)}


def test_a_postgres_database_of_another_application_is_refused_and_left_alone(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (n int)")
        conn.execute("INSERT INTO invoices VALUES (1)")
    with pytest.raises(StoreError, match="PostgreSQL database but not a lutfarm database"):
        Store(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT n FROM invoices").fetchall() == [(1,)]
        assert conn.execute("SELECT to_regclass('measurements')").fetchone()[0] is None


def test_an_unreachable_server_is_one_line_naming_the_url_without_its_password(postgres_server):
    from sshd import free_port
    url = f"postgresql://lab:s3cret@127.0.0.1:{free_port()}/farm"
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert "cannot reach the store postgresql://lab:***@127.0.0.1" in message
    assert "s3cret" not in message and "\n" not in message


def test_copy_to_postgres_and_back_is_lossless_and_resumable(pg_url, tmp_path):
    with Store(tmp_path / "a.db") as a:
        _fill(a)
        original = dump(a)
    with Store(tmp_path / "a.db") as a, Store(pg_url) as pg:
        first = copy_store(a, pg)
        again = copy_store(a, pg)                 # nothing twice
        on_pg = dump(pg)
    assert first.copied == {"contexts": 1, "campaigns": 1, "reports": 1, "measurements": 4,
                            "timeline": 2}
    assert sum(again.copied.values()) == 0 and again.skipped["measurements"] == 4
    # on the server "local" is this machine's global name; nothing else changed
    renamed = json.loads(json.dumps(original).replace('"local"', json.dumps(local_device_name())))
    assert on_pg == renamed
    with Store(pg_url) as pg, Store(tmp_path / "b.db") as b:
        copy_store(pg, b)
        assert dump(b) == original


def test_db_copy_and_info_on_the_command_line(pg_url, tmp_path):
    with Store(tmp_path / "a.db") as a:
        _fill(a)
    run = [sys.executable, "-m", "lutfarm"]
    r = subprocess.run([*run, "db", "copy", "--from", str(tmp_path / "a.db"), "--to", pg_url,
                        "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["copied"]["measurements"] == 4
    r = subprocess.run([*run, "db", "info", "--db", pg_url, "--json"], capture_output=True,
                       text=True, env={**__import__("os").environ, "LUTFARM_DB": "unused.db"}, timeout=600)
    info = json.loads(r.stdout)
    assert info["kind"] == "postgresql" and info["rows"]["measurements"] == 4
    assert info["configurations"] == [{"target": local_device_name(), "runtime": RT, "cases": 3}]
    # $LUTFARM_DB takes a URL too
    r = subprocess.run([*run, "db", "info", "--json"], capture_output=True, text=True,
                       env={**__import__("os").environ, "LUTFARM_DB": pg_url}, timeout=600)
    assert json.loads(r.stdout)["rows"]["campaigns"] == 1
    r = subprocess.run([*run, "db", "copy", "--from", pg_url, "--to", pg_url],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "same store" in r.stderr


def test_a_campaign_measures_into_postgres_and_a_lut_is_built_from_it(pg_url, tmp_path,
                                                                      cache_dir):
    """The real path: the local agent times blocks, the controller writes them to the server,
    ``lut build`` reads them back as this machine's local device."""
    run = [sys.executable, "-m", "lutfarm"]
    args = ["--db", pg_url, "--only", "Skip_*", "--min-time", "0.005", "--max-time", "0.02"]
    r = subprocess.run([*run, "profile", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-800:]
    with Store(pg_url) as store:
        keys = store.measured_keys("local", RT)
        assert keys and all(k.startswith("Skip_") for k in keys)
        assert {m.device for m in store.iter_measurements()} == {local_device_name()}
        contexts = store.db.execute("SELECT device FROM contexts").fetchall()
        assert {c[0] for c in contexts} == {local_device_name()}
    r = subprocess.run([*run, "profile", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-800:]      # resumed: nothing measured twice
    with Store(pg_url) as store:
        assert len(list(store.iter_measurements())) == len(keys)
    r = subprocess.run([*run, "lut", "export", "--db", pg_url, "-o", str(tmp_path / "lut.csv")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-800:]
    lut = load_lut(tmp_path / "lut.csv")
    assert {k for k in lut.latency_ms if k.startswith("Skip_")} == keys
    assert lut.device == "local"     # as asked for: this machine


def test_a_journal_left_behind_is_replayed_without_duplicates(pg_url, tmp_path):
    from lutfarm.profiler.scheduling.journal import Journal
    journal = Journal(tmp_path / "campaign-1.jsonl")
    first = Measurement("local", RT, "k0", "ok", created=1.5, median_ms=1.0)
    with Store(pg_url) as store:
        store.add(first)               # its commit reached the server, its answer did not
    journal.append(Measurement("local", RT, "k0", "ok", created=1.5, median_ms=1.0), None)
    journal.append(Measurement("local", RT, "k1", "ok", created=2.5, median_ms=2.0,
                               samples=[2.0, 2.1], extra={"a": [1]}), None)
    r = subprocess.run([sys.executable, "-m", "lutfarm", "db", "replay", str(journal.path),
                        "--db", pg_url], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "2 of 2 results are in" in r.stdout and not journal.path.exists()
    with Store(pg_url) as store:
        rows = list(store.iter_measurements())
    assert [(m.case_key, m.created) for m in rows] == [("k0", 1.5), ("k1", 2.5)]
    assert rows[1].samples == [2.0, 2.1] and rows[1].extra == {"a": [1]}
