import sqlite3

import pytest

from lutfarm.profiler.store import _SCHEMA, SCHEMA_VERSION, Measurement, Store, StoreError


def test_new_store_is_wal_and_versioned(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(store.conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta == {"app": "lutfarm", "schema_version": str(SCHEMA_VERSION)}


def test_measurements_round_trip_and_latest_wins(tmp_path):
    with Store(tmp_path / "s.db") as store:
        for median in (1.0, 2.0):
            store.add(Measurement("d", "rt", "k", "ok", median_ms=median, samples=[median] * 3,
                                  extra={"a": 1}, converged=True, created=median))
        store.add(Measurement("d", "rt", "k", "failed", error="boom"))
        store.add(Measurement("d", "rt", "other", "failed", error="boom"))
    with Store(tmp_path / "s.db") as store:
        latest = store.latest("d", "rt", with_samples=True)
        assert list(latest) == ["k"]
        assert latest["k"].median_ms == 2.0 and latest["k"].samples == [2.0] * 3
        assert latest["k"].extra == {"a": 1} and latest["k"].converged is True
        assert store.measured_keys("d", "rt") == {"k"}
        assert [m.status for m in store.iter_measurements("d")] == ["ok", "ok", "failed", "failed"]
        assert store.configurations() == [("d", "rt", 1)]


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my precious notes\n" * 100)
    with pytest.raises(StoreError, match="is not a lutfarm database"):
        Store(path)
    assert path.read_text() == "my precious notes\n" * 100


def test_an_sqlite_file_of_another_application_is_refused(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="SQLite file but not a lutfarm database"):
        Store(path)


def test_a_newer_schema_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "new.db"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"schema v{SCHEMA_VERSION + 1}, newer .* upgrade lutfarm"):
        Store(path)


def test_a_v1_store_is_migrated_in_place_and_keeps_its_measurements(tmp_path):
    """Stores written before peak memory existed open, gain the columns, lose nothing."""
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    v1_schema = _SCHEMA.replace(", peak_mem_bytes INTEGER, mem_method TEXT", "")
    v1_schema = v1_schema.replace(", owner TEXT, priority INTEGER", "")
    v1_schema = v1_schema[:v1_schema.index("CREATE TABLE case_queue")] + \
        v1_schema[v1_schema.index("CREATE INDEX"):]
    assert v1_schema != _SCHEMA
    con.executescript(v1_schema)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("app", "lutfarm"), ("schema_version", "1")])
    con.execute("INSERT INTO measurements (device, runtime, case_key, status, created, median_ms)"
                " VALUES ('local', 'onnxruntime-fp32-t1', 'Skip_H8_W8_Cin64_Cout64_stride1', 'ok', 1.0, 0.5)")
    con.commit()
    con.close()
    with Store(path) as store:
        old = store.latest("local", "onnxruntime-fp32-t1")
        assert old["Skip_H8_W8_Cin64_Cout64_stride1"].median_ms == 0.5
        assert old["Skip_H8_W8_Cin64_Cout64_stride1"].peak_mem_bytes is None
        store.add(Measurement("local", "onnxruntime-fp32-t1", "k", "ok", created=2.0,
                              median_ms=1.0, peak_mem_bytes=4096, mem_method="rss-growth"))
        assert store.latest("local", "onnxruntime-fp32-t1")["k"].peak_mem_bytes == 4096
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta").fetchall())
    assert meta["schema_version"] == str(SCHEMA_VERSION)


def test_failures_are_the_cases_whose_newest_attempt_failed(tmp_path):
    with Store(tmp_path / "f.db") as store:
        rt = "onnxruntime-fp32-t1"
        store.add(Measurement("local", rt, "a", "failed", error="boom", created=1.0))
        store.add(Measurement("local", rt, "a", "ok", created=2.0, median_ms=1.0))
        store.add(Measurement("local", rt, "b", "ok", created=3.0, median_ms=1.0))
        store.add(Measurement("local", rt, "b", "failed", error="later boom", created=4.0))
        assert store.failures("local", rt) == {"b": "later boom"}
