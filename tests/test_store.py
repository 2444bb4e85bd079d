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
    v1_schema = v1_schema.replace("CREATE INDEX timeline_campaign ON timeline (campaign_id);", "")
    assert v1_schema != _SCHEMA and "timeline" not in v1_schema
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
        assert store.timeline(1) == [] and store.last_timeline_campaign() is None   # v4's table
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


def _filled(path, n: int = 400):
    with Store(path) as store:
        for i in range(n):
            store.add(Measurement("d", "rt", f"case{i:04d}", "ok", median_ms=1.0 + i,
                                  samples=[1.0 + i] * 50, extra={"pad": "x" * 200}))
    con = sqlite3.connect(path)        # fold the WAL into the file, as a closed store leaves it
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _lutfarm(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_a_store_with_damaged_pages_is_one_line_and_db_check_finds_it(tmp_path):
    """A store whose first pages read but later ones are garbage: every command that reads it
    says which file is damaged and what to do, instead of sqlite3's traceback."""
    path = tmp_path / "c.db"
    _filled(path)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    for p in range(8, len(data) // page - 2, 3):           # every third page past the schema
        data[p * page:(p + 1) * page] = b"\x5a" * page
    path.write_bytes(bytes(data))
    out = _lutfarm("lut", "export", "--db", path, "--device", "d", "--runtime", "onnxruntime",
                   "-o", tmp_path / "l.csv")
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-1500:]
    line = out.stderr.strip().splitlines()[-1]
    assert "damaged" in line and "lutfarm db check" in line and str(path) in line, line
    check = _lutfarm("db", "check", "--db", path)
    assert check.returncode != 0 and "Traceback" not in check.stderr, check.stderr[-1500:]
    assert "damaged" in check.stdout + check.stderr


def test_db_check_passes_a_sound_store_and_backup_copies_it_online(tmp_path):
    path, copy = tmp_path / "s.db", tmp_path / "backup.db"
    _filled(path, 50)
    check = _lutfarm("db", "check", "--db", path)
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr[-800:]
    with Store(path):                                    # a writer holds it open meanwhile
        back = _lutfarm("db", "backup", "--db", path, "-o", copy)
    assert back.returncode == 0, back.stderr[-800:]
    with Store(copy) as store:
        assert len(store.latest("d", "rt")) == 50
    again = _lutfarm("db", "backup", "--db", path, "-o", copy)
    assert again.returncode != 0 and "exists" in again.stderr.strip().splitlines()[-1]


def test_a_read_only_store_is_one_line_naming_the_file(tmp_path):
    """As root file modes do not stop a write, so the file is made immutable instead."""
    import os
    import subprocess
    path = tmp_path / "ro.db"
    _filled(path, 5)
    root = os.geteuid() == 0
    if root:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, timeout=30)
        if made.returncode:
            pytest.skip(f"chattr +i is refused here: {made.stderr.decode().strip()}")
    else:
        os.chmod(path, 0o444)
    try:
        with pytest.raises(StoreError, match=f"{path} is read-only .*make it and its folder"):
            with Store(path) as store:
                store.add(Measurement("d", "rt", "new", "ok", median_ms=1.0))
        with Store(path) as store:                      # reading it still works
            assert len(store.latest("d", "rt")) == 5
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], timeout=30)
        os.chmod(path, 0o644)


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")           # another program holds the write lock
print("holding", flush=True)
time.sleep(120)
"""


def test_a_store_locked_by_another_program_is_one_line_and_loses_nothing(tmp_path):
    """Another program holds the store's write lock past the 30 s busy wait: the write is one
    line naming the file and what to do; what was stored stays, and writes resume after."""
    import subprocess
    import sys
    path = tmp_path / "locked.db"
    _filled(path, 5)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match=f"{path} is locked by another process for over "
                                             f"30 s .*stop the other lutfarm command"):
            with Store(path) as store:
                store.add(Measurement("d", "rt", "new", "ok", median_ms=1.0))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with Store(path) as store:
        assert len(store.latest("d", "rt")) == 5
        store.add(Measurement("d", "rt", "new", "ok", median_ms=1.0))
        assert len(store.latest("d", "rt")) == 6


def test_db_copy_writes_every_column_the_schema_has(tmp_path):
    """``db copy`` kept its own column lists, so a new column was silently not copied; it
    reads them from the schema now, and a Measurement stores each of them."""
    from lutfarm.profiler.store import MEASUREMENT_COLUMNS, table_columns
    from lutfarm.profiler.store.copy import copy_store, dump
    assert set(table_columns("measurements")) == set(MEASUREMENT_COLUMNS)
    assert "owner" in table_columns("campaigns") and "id" not in table_columns("contexts")
    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    with Store(src) as store:
        cid = store.start_campaign("d", "rt", space="fbnet")
        store.add(Measurement("d", "rt", "k", "ok", median_ms=1.5, samples=[1.5], campaign_id=cid,
                              peak_mem_bytes=7, mem_method="rss", extra={"x": 1}))
        store.add_report("d", "rt", "validation", {"n": 1})
    with Store(src) as a, Store(dst) as b:
        copy_store(a, b)
        assert dump(a) == dump(b)


FILL = """
import sys
from lutfarm.profiler.store import Measurement, Store, StoreError
path = sys.argv[1]
n = 0
try:
    with Store(path) as store:
        while n < 100000:
            store.add(Measurement("d", "rt", f"k{n}", "ok", median_ms=1.0, samples=[1.5] * 2000))
            n += 1
except StoreError as exc:
    print("ERROR", exc)
with Store(path) as store:
    print("KEPT", len(store.latest("d", "rt")), n)
"""


def test_a_full_disk_under_the_store_is_one_line_and_keeps_what_was_stored(tmp_path):
    """The controller's disk fills during a campaign (a 1 MiB tmpfs in a private mount
    namespace): the store says which file could not be written and what to do, and every
    measurement committed before is still there."""
    import os
    import shutil
    import subprocess
    import sys
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(FILL)
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {disk} && "
         f"{sys.executable} {script} {disk / 's.db'}"], capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stderr[-1500:]
    error = next(ln for ln in run.stdout.splitlines() if ln.startswith("ERROR"))
    assert f"{disk / 's.db'} could not be written" in error and "free space" in error, error
    kept, added = map(int, next(ln for ln in run.stdout.splitlines()
                                if ln.startswith("KEPT")).split()[1:])
    assert 10 < added == kept, run.stdout
