"""A lab's shared store, each figure a ratio against a baseline of the same run:

1. commits: measurements committed one transaction each (as a campaign writes them, 64 raw
   samples apiece), per second and controller CPU per measurement, PostgreSQL vs SQLite;
2. controllers: one campaign (113 CIFAR cases, the ``bench-sleep`` stand-in: NOT a real
   runtime, every call sleeps 2 ms, 0.1 s of samples per case) by one controller with one board
   vs two controllers with one board each on a PostgreSQL store: wall time, and duplicates;
3. dashboard: page time of every page on a store of 100 000 measurements vs the same page on
   the session's 113-measurement store, SQLite and PostgreSQL.

Needs Debian's postgresql (the bench starts its own server on a free loopback port).
Usage: python bench/bench_shared_store.py [--commits N] [--rows N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from postgres import remove, start_postgres  # noqa: E402

from lutfarm.profiler.store import Measurement, Store  # noqa: E402
from lutfarm.profiler.store.copy import copy_store  # noqa: E402
from sshd import free_port  # noqa: E402

RT = "bench-sleep-fp32-t1"


def commits(location, n: int) -> tuple[float, float]:
    """(measurements per second, controller CPU ms per measurement)."""
    samples = [random.random() for _ in range(64)]
    with Store(location) as store:
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            store.add(Measurement("b", RT, f"case{i}", "ok", created=time.time(), median_ms=1.0,
                                  samples=samples, extra={"moment": {}}, converged=True))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, 1000 * cpu / n


def controllers(server, root: Path) -> None:
    script = HERE.parent / "tests" / "controller.py"

    def run(boards_per_controller: list[str]) -> tuple[float, Counter]:
        url = server.create_database(f"c_{boards_per_controller[0].replace('-', '_')}")
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, str(script), url, b, str(root)],
                                  stdout=subprocess.DEVNULL) for b in boards_per_controller]
        for p in procs:
            assert p.wait() == 0
        wall = time.perf_counter() - t0
        with Store(url) as store:
            counts = Counter(m.case_key for m in store.iter_measurements() if m.status == "ok")
        return wall, counts

    run(["warm-up"])          # exports and the agent bundle, outside the comparison
    one, c1 = run(["solo"])
    two, c2 = run(["left", "right"])
    dup = sum(v - 1 for v in c2.values())
    print(f"controllers: one controller {one:.1f} s, two {two:.1f} s: {one / two:.2f}x faster; "
          f"{len(c2)} cases, duplicates {dup} (one: {sum(v - 1 for v in c1.values())})")


def big_store(path: Path, rows: int) -> None:
    """``rows`` synthetic measurements (NOT real timings) of the CIFAR layout's 113 cases: 40
    boards of 4 kinds, one campaign per board and round, 32 samples each, temperatures."""
    from lutfarm.spaces import get_layout
    layout = get_layout("fbnet", "cifar")
    keys = [layout.overhead_case().key] + [c.key for c in layout.unique_cases()]
    with Store(path) as store:
        rnd = random.Random(0)
        n = 0
        while n < rows:
            for b in range(40):
                kind = f"kind{b % 4}"
                ctx = store.add_context(f"board{b}", {"cpu_model": "synthetic", "temp_c":
                                                      {"cpu": 40 + b % 9}, "freq_khz": {}})
                cid = store.start_campaign(kind, RT, "fbnet", "cifar", 100,
                                           {"planned": 113, "to_measure": 113}, owner="bench")
                with store.db.transaction():
                    for k in keys:
                        m = Measurement(f"board{b}", RT, k, "ok", kind=kind, campaign_id=cid,
                                        context_id=ctx, created=time.time(),
                                        median_ms=rnd.uniform(0.1, 5),
                                        samples=[rnd.random() for _ in range(32)])
                        store.db.insert(
                            f"INSERT INTO measurements ({', '.join(store_columns())}) VALUES "
                            f"({', '.join('?' * len(store_columns()))})", store._row(m))
                n += len(keys)
                store.finish_campaign(cid, {"planned": 113, "skipped": 0})
                if n >= rows:
                    break


def store_columns():
    from lutfarm.profiler.store import MEASUREMENT_COLUMNS
    return MEASUREMENT_COLUMNS


def page_times(db, pages: list[str]) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm", "serve", "--db", str(db),
                             "--port", str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/reports", timeout=5)
                break
            except OSError:
                time.sleep(0.2)
        out = {}
        for page in pages:
            urllib.request.urlopen(base + page, timeout=120).read()     # warm (imports, plots)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                urllib.request.urlopen(base + page, timeout=120).read()
                times.append(time.perf_counter() - t0)
            out[page] = statistics.median(times)
        return out
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    server = start_postgres()
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            lite_rate, lite_cpu = commits(tmp / "c.db", args.commits)
            pg_rate, pg_cpu = commits(server.create_database("commits"), args.commits)
            print(f"commits: SQLite {lite_rate:.0f}/s ({lite_cpu:.2f} ms CPU each), PostgreSQL "
                  f"{pg_rate:.0f}/s ({pg_cpu:.2f} ms CPU each): PostgreSQL / SQLite rate "
                  f"{pg_rate / lite_rate:.2f}x, CPU {pg_cpu / lite_cpu:.2f}x")
            os.environ.setdefault("LUTFARM_CACHE", str(tmp / "cache"))
            controllers(server, tmp)
            small = tmp / "small.db"
            big_store(small, 113)
            big = tmp / "big.db"
            t0 = time.perf_counter()
            big_store(big, args.rows)
            print(f"(built a {args.rows}-measurement store in {time.perf_counter() - t0:.0f} s)")
            big_pg = server.create_database("big")
            with Store(big) as src, Store(big_pg) as dst:
                copy_store(src, dst)
            lut = f"/lut?target=kind0&runtime={quote(RT)}"
            pages = ["/", "/boards", "/campaigns", "/luts", lut, "/reports"]
            base = page_times(small, pages)
            for name, db in (("SQLite", big), ("PostgreSQL", big_pg)):
                t = page_times(db, pages)
                print(f"dashboard, {args.rows} measurements, {name}: " + ", ".join(
                    f"{p.split('?')[0]} {1000 * t[p]:.0f} ms ({t[p] / base[p]:.1f}x the "
                    f"113-row store)" for p in pages))
    finally:
        remove(server)


if __name__ == "__main__":
    main()
