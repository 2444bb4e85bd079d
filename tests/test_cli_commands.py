"""One subprocess run per command a README shows that no other test file runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO
from lutfarm.lut import load_lut
from lutfarm.profiler.store import Store


def lutfarm(*args, cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_demo_script_on_a_measured_store_measures_nothing_and_writes_the_lut(tmp_path, measured_db,
                                                                     cache_dir):
    db = tmp_path / "demo.db"
    db.write_bytes(measured_db.read_bytes())
    with Store(db) as store:
        rows = store.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    # README's first command as written: scripts/demo.sh (its install step a no-op here)
    p = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--db", str(db), "-o",
                        str(tmp_path / "lut.csv")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-800:]
    lut = load_lut(tmp_path / "lut.csv")
    assert lut.device == "local" and not lut.missing_cases()
    with Store(db) as store:        # everything was stored: nothing measured again
        assert store.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == rows
    assert "ms" in p.stdout


def test_devices_list_shows_the_inventory(tmp_path):
    inv = tmp_path / "farm.toml"
    inv.write_text('[defaults]\nuser = "pi"\nknown_hosts = "/dev/null"\n\n'
                   '[[devices]]\nname = "pi-1"\nhost = "10.0.0.11"\nkind = "rpi4"\n'
                   'tags = ["arm"]\nruntimes = ["tflite"]\n\n'
                   '[[devices]]\nname = "pi-2"\nhost = "10.0.0.12"\nkind = "rpi4"\n')
    p = lutfarm("devices", "list", "--inventory", inv)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if "pi-" in ln]
    assert len(lines) == 2 and "10.0.0.11" in lines[0] and "tflite" in lines[0]
    assert "rpi4" in lines[1]


def test_lut_repeat_measures_again_and_stores_the_report(tmp_path, measured_db, cache_dir):
    db = tmp_path / "r.db"
    db.write_bytes(measured_db.read_bytes())
    p = lutfarm("lut", "repeat", "--db", db, "--only", "Skip_*", "--json")
    assert p.returncode == 0, p.stderr[-800:]
    r = json.loads(p.stdout)
    with Store(db) as store:
        skips = [k for k in store.measured_keys("local", "onnxruntime-fp32-t1")
                 if k.startswith("Skip_")]
        assert r["cases"] == len(skips) >= 3
        assert store.latest_report("local", "onnxruntime-fp32-t1", "repeatability") == r


def test_evolve_methods_and_objectives_from_the_command_line(tmp_path):
    lut = tmp_path / "raspi4.csv"
    assert lutfarm("lut", "import-hwnasbench", "--device", "raspi4", "-o", lut).returncode == 0
    found = {}
    for method in ("constrained", "regularized", "random"):
        for objective in ("mmacs", "mparams"):
            p = lutfarm("search", "evolve", "--lut", lut, "--budget-ms", "25", "--method",
                        method, "--objective", objective, "--generations", "5",
                        "--population", "20", "--json")
            assert p.returncode == 0, p.stderr[-800:]
            r = json.loads(p.stdout)
            assert r["latency_ms"] <= 25 and r["objective"] == objective
            found[method, objective] = r
    assert len({r["method"] for r in found.values()}) == 3      # three different searches ran
    # the objective is what was maximised: a params winner has at least the params of a
    # MACs winner of the same method, and vice versa
    for method in ("constrained", "regularized"):
        assert found[method, "mparams"]["mparams"] >= 0.9 * found[method, "mmacs"]["mparams"]


def test_verbose_logs_the_campaign_and_the_log_file_keeps_everything(tmp_path, cache_dir):
    log = tmp_path / "lutfarm.log"
    p = lutfarm("-v", "--log-file", log, "profile", "--db", tmp_path / "s.db", "--only",
                "Skip_H4_*", "--min-time", "0.01", "--max-time", "0.05")
    assert p.returncode == 0, p.stderr[-800:]
    assert "INFO lutfarm.profiler.scheduling.campaign: campaign 1: onnxruntime-fp32-t1 on local" in p.stderr
    text = log.read_text()
    assert "campaign 1: onnxruntime-fp32-t1 on local" in text and "measured, 0 failed" in text


def test_devices_check_is_one_line_per_runtime_at_80_columns():
    import os
    env = dict(os.environ, COLUMNS="80")
    p = subprocess.run([sys.executable, "-m", "lutfarm", "devices", "check"], cwd=REPO,
                       capture_output=True, text=True, env=env, timeout=300)
    lines = p.stdout.splitlines()
    from lutfarm_agent.runtimes import SPECS
    assert len(lines) == 1 + len(SPECS), p.stdout
    assert all(len(line) <= 80 for line in lines), p.stdout
    for name, line in zip(SPECS, lines[1:]):
        assert line.split()[0] == name and line.split()[1] in ("ok", "missing", "broken")
    full = subprocess.run([sys.executable, "-m", "lutfarm", "devices", "check", "-v"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert len(full.stdout.replace("\n", "")) >= len(p.stdout.replace("\n", ""))
