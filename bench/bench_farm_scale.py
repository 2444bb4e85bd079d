"""Farm scale: what lutfarm's controller does with 1-16 boards, not what this machine's cores do.

Every board is an sshd on 127.0.0.1 whose processes (sshd, SFTP, the agent) are pinned to the
last CPU; the controller (one process, or two sharing a PostgreSQL store's queue) is pinned to
CPU 0, with the PostgreSQL server (a lab's store is not on its boards). The boards' work costs no CPU: the agent runs the
``bench-sleep`` stand-in (NOT a real runtime: every call sleeps), each case sampled for
``--case-s`` seconds. Each board gets the same work (weak scaling: ``--cases-per-board`` cases,
each its own model file of ``--model-kb`` KB to upload, as a LUT's cases are), and every run
starts from fresh work directories (agent deployed, models uploaded: a first campaign).

Reported per configuration (boards x store x controllers):
- scheduling efficiency = sum of the boards' busy (job) time / (boards x wall), from the
  campaign's timeline; the baseline is 1 board in the same run: its efficiency and its cases/s;
- the throughput ratio against 1 board (3 boards: the lab-farm goal is >= 2.7x);
- controller CPU per case (ms; every controller process together);
- where the rest of the boards' time went (timeline phases).

Needs Debian's openssh-server and postgresql. Usage:
  python bench/bench_farm_scale.py [--boards 1,3,8,16] [--stores sqlite,postgres]
                                    [--controllers 1,2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CONTROLLER_CPU = 0


def _models(root: Path, n: int, kb: int) -> list[dict]:
    """``n`` distinct model files (random bytes: the stand-in never reads them)."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for _ in range(n):
        data = os.urandom(kb * 1024)
        sha = hashlib.sha256(data).hexdigest()
        path = root / f"{sha}.onnx"
        path.write_bytes(data)
        out.append({"path": str(path), "sha256": sha})
    return out


def controller(spec: dict) -> dict:
    """One controller process's campaign (run in a subprocess pinned to CPU 0)."""
    os.sched_setaffinity(0, {CONTROLLER_CPU})
    from lutfarm.profiler.devices.record import Device
    from lutfarm.profiler.export.cache import ExportedModel
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_farm
    from lutfarm.profiler.store import Store
    from lutfarm.spaces.cases import ModelFileCase
    from lutfarm_agent.timing import TimingSettings

    case_s = spec["case_s"]
    timing = TimingSettings(warmup_runs=1, warmup_s=0.0, min_runs=5, min_s=case_s,
                            max_s=case_s, target_rel_ci=0.0, retries=0)
    cases, models = [], {}
    for m in spec["models"]:
        case = ModelFileCase(m["sha256"])
        cases.append(case)
        models[case.key] = ExportedModel(case.key, Path(m["path"]), m["sha256"], "onnx")
    devices = [Device(**d) for d in spec["devices"]]
    with Store(spec["store"]) as store:
        c0, began = time.process_time(), time.time()
        (s,) = run_farm(store, None, devices, RuntimeConfig(name="bench-sleep"),
                        CampaignSettings(timing=timing, cases=cases, models=models,
                                         owner=spec["owner"]))
        ended, cpu = time.time(), time.process_time() - c0
        spans = store.timeline(s.campaign_id)
    return {"began": began, "ended": ended, "cpu_s": cpu, "measured": s.measured,
            "failed": len(s.failed), "spans": [asdict(sp) for sp in spans],
            "leases_lost": len(s.leases_lost)}


def store_costs(location: str, n: int = 200) -> dict:
    """A result's commit (64 raw samples, as a campaign writes them) and, on a shared store, a
    queue claim of 4 cases: median seconds, one client, measured here."""
    import statistics

    from lutfarm.profiler.store import Measurement, Store
    from lutfarm.profiler.store.queue import StoreQueue

    samples = [0.25 / 64] * 64
    with Store(location) as store:
        commits = []
        for i in range(n):
            m = Measurement("b", "bench-sleep-fp32-t1", f"case{i}", "ok", created=time.time(),
                            median_ms=1.0, samples=samples, extra={"moment": {}},
                            converged=True)
            t0 = time.perf_counter()
            store.add(m)
            commits.append(time.perf_counter() - t0)
        out = {"commit_s": statistics.median(commits)}
        if store.shared:
            cid = store.start_campaign("claims", "bench-sleep-fp32-t1")
            queue = StoreQueue(store, "claims", "bench-sleep-fp32-t1",
                               [f"c{i}" for i in range(4 * n)], cid, "bench")
            claims = []
            for _ in range(n):
                t0 = time.perf_counter()
                queue.take(4, wait=False)
                claims.append(time.perf_counter() - t0)
            queue.close()
            out["claim_s"] = statistics.median(claims)
    return out


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out += [int(child), *_children(int(child))]
    return out


def _board_cpu(hosts) -> float:
    """CPU seconds the emulated boards' processes (sshd sessions, SFTP, agents) have used, as
    their sshd's reaped children: a connection's processes are counted once it closes."""
    total = 0.0
    for h in hosts:
        fields = Path(f"/proc/{h.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")
    return total


def _run(store: str, devices: list[dict], models: list[dict], controllers: int, case_s: float,
         root: Path) -> dict:
    """One configuration: its controllers started together, their figures combined."""
    procs = []
    for i in range(controllers):
        spec = {"store": store, "devices": devices[i::controllers], "models": models,
                "case_s": case_s, "owner": f"bench-{i}"}
        path = root / f"spec-{i}.json"
        path.write_text(json.dumps(spec))
        procs.append(subprocess.Popen([sys.executable, __file__, "--controller", str(path)],
                                      stdout=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        output, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a controller failed (exit {p.returncode})")
        results.append(json.loads(output.strip().splitlines()[-1]))
    from lutfarm.profiler.devices.timeline import busy_seconds, summarise
    from lutfarm.profiler.store import Span

    began, ended = min(r["began"] for r in results), max(r["ended"] for r in results)
    spans = [Span(**sp) for r in results for sp in r["spans"]]
    board_time = summarise(spans, began, ended)      # the wall: every controller's campaign
    measured = sum(r["measured"] for r in results)
    starts = sorted(board_time.startup_s.values())
    jobs = [(sp.detail["cases"], busy_seconds(sp)) for sp in spans if sp.phase == "job"]
    return {"boards": len(devices), "controllers": controllers, "wall_s": ended - began,
            "measured": measured, "failed": sum(r["failed"] for r in results),
            "efficiency": board_time.efficiency, "steady": board_time.steady,
            "startup_s": [starts[0], starts[len(starts) // 2], starts[-1]],
            "cases_per_s": measured / (ended - began),
            "cpu_ms_per_case": 1000 * sum(r["cpu_s"] for r in results) / max(1, measured),
            "share": board_time.share, "idle": board_time.idle(), "jobs": jobs,
            "spans": [asdict(sp) for sp in spans]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="1,3,8,16")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--controllers", default="1,2")
    ap.add_argument("--case-s", type=float, default=0.25, help="seconds of sampling per case")
    ap.add_argument("--cases-per-board", type=int, default=100)
    ap.add_argument("--model-kb", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="copy each run's SQLite store here (its timeline "
                    "for lutfarm db timeline / the dashboard)")
    ap.add_argument("--controller", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.controller:
        print(json.dumps(controller(json.loads(Path(a.controller).read_text()))))
        return
    from postgres import remove, start_postgres

    from sshd import keygen, start_host

    board_cpu = {max(os.sched_getaffinity(0))}
    boards = [int(b) for b in a.boards.split(",")]
    stores = a.stores.split(",")
    counts = [int(c) for c in a.controllers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = tmp / "id"
        pub = keygen(key)
        hosts = [start_host(tmp / f"h{i}", f"h{i}", pub, key, plain_shell=True)
                 for i in range(max(boards))]
        server = start_postgres() if "postgres" in stores else None
        try:
            for h in hosts:
                os.sched_setaffinity(h.proc.pid, board_cpu)   # its sessions and agents too
            if server is not None:   # the lab's store beside the controller, not the boards
                for pid in [server.proc.pid, *_children(server.proc.pid)]:
                    os.sched_setaffinity(pid, {CONTROLLER_CPU})
            models = _models(tmp / "models", max(boards) * a.cases_per_board, a.model_kb)
            costs = {k: store_costs(str(tmp / "costs.db") if k == "sqlite"
                                    else server.create_database("costs")) for k in stores}
            run = 0
            # a board's own CPU to start vs per case: one board with a tenth of the cases too
            small = None
            if 1 in boards:
                devices = [asdict(hosts[0].device(kind="small", workdir=str(tmp / "small")))]
                cpu0 = _board_cpu(hosts)
                small = _run(str(tmp / "small.db"), devices, models[:a.cases_per_board // 10], 1,
                             a.case_s, tmp)
                time.sleep(0.5)
                small["board_cpu_s"] = _board_cpu(hosts) - cpu0
                del small["spans"]
            for store_kind in stores:
                for n in boards:
                    for c in counts:
                        if c > n or (c > 1 and store_kind != "postgres"):
                            continue       # an SQLite store is one controller's
                        run += 1
                        devices = [asdict(h.device(kind=f"r{run}", workdir=str(tmp / f"w{run}" / h.name)))
                                   for h in hosts[:n]]
                        store = (str(tmp / f"r{run}.db") if store_kind == "sqlite"
                                 else server.create_database(f"r{run}"))
                        cpu0 = _board_cpu(hosts)
                        row = _run(store, devices, models[:n * a.cases_per_board], c, a.case_s,
                                   tmp)
                        time.sleep(0.5)            # the sessions' processes are reaped
                        row["board_cpu_s"] = (_board_cpu(hosts) - cpu0) / n
                        row["store"] = store_kind
                        spans = row.pop("spans")
                        if a.keep:
                            a.keep.mkdir(parents=True, exist_ok=True)
                            name = f"{store_kind}-{n}-boards-{c}-controllers"
                            (a.keep / f"{name}.json").write_text(json.dumps(spans))
                            if store_kind == "sqlite":
                                shutil.copy(store, a.keep / f"{name}.db")
                        rows.append(row)
                        if not a.json:
                            _print(row, rows)
        finally:
            for h in hosts:
                h.stop()
            if server is not None:
                remove(server)
    if a.json:
        print(json.dumps({"settings": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                          "store_costs": costs, "small": small}, indent=1))


def _print(row: dict, rows: list[dict]) -> None:
    base = next((r for r in rows if r["boards"] == 1 and r["store"] == row["store"]), row)
    top = sorted(((v, p) for p, v in row["share"].items() if p != "job"), reverse=True)[:4]
    print(f"{row['store']:<8} {row['boards']:>2} boards {row['controllers']} controller(s): "
          f"efficiency {row['efficiency']:.3f} (1 board {base['efficiency']:.3f}), "
          f"{row['cases_per_s']:.1f} cases/s = {row['cases_per_s'] / base['cases_per_s']:.2f}x "
          f"1 board, controller CPU {row['cpu_ms_per_case']:.2f} ms/case, wall "
          f"{row['wall_s']:.1f} s, {row['measured']} measured, {row['failed']} failed; boards "
          f"started in {row['startup_s'][1]:.2f} s (median; max {row['startup_s'][2]:.2f}), "
          f"{row['board_cpu_s']:.2f} CPU s each on the boards' shared CPU; efficiency once "
          f"started {row['steady']:.3f}; "
          + ", ".join(f"{p} {v:.1%}" for v, p in top) + f", idle {row['idle']:.1%}", flush=True)


if __name__ == "__main__":
    main()
