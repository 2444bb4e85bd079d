"""The benchmarks under bench/ still run: refactors moved the modules they import, and nothing
ran them. Each one's imports and options are checked; the ones that take seconds run at a
small size and must print their figure as a ratio against their in-run baseline."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

BENCHES = sorted((REPO / "bench").glob("bench_*.py"))


def _run(script, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.stem)
def test_every_benchmark_parses_its_options_and_imports_what_it_uses(script):
    p = _run(script, "--help")
    assert p.returncode == 0, p.stderr[-1500:]
    assert "usage:" in p.stdout
    source = script.read_text()
    for module in sorted(set(re.findall(r"^\s*(?:from|import) (lutfarm[\w.]*)", source, re.M))):
        __import__(module)     # a lazy import inside main() names a module that exists


@pytest.mark.parametrize("script, args, figure", [
    ("bench_query.py", ["--n", "2000"], r"ratio ([\d.]+)x"),
    ("bench_latency_metric.py", ["--population", "20", "--rounds", "2"],
     r"= ([\d.]+)x baseline"),
    ("bench_model.py", ["--rounds", "1"], r"plain loop = ([\d.]+)x baseline"),
])
def test_quick_benchmarks_print_a_ratio_against_their_baseline(script, args, figure):
    p = _run(REPO / "bench" / script, *args)
    assert p.returncode == 0, p.stderr[-1500:]
    found = re.search(figure, p.stdout)
    assert found, p.stdout
    assert float(found.group(1)) > 0


def test_the_ranking_benchmark_runs_small_and_reports_every_tau(tmp_path):
    import json
    p = _run(REPO / "bench" / "bench_ranking.py", "--space", "mcunet", "--data", "digits", "--n",
             "3", "--steps", "2", "--supernet-epochs", "1", "--max-batches", "2",
             "--predictor-samples", "10", "--json")
    assert p.returncode == 0, p.stderr[-1500:]
    out = json.loads(p.stdout)
    assert out["n"] == 3 and set(out["taus"]) >= {"ceiling", "supernet", "predictor", "params",
                                                   "macs", "naswot"}
    assert out["budget"]["kind"].startswith("MACs") and out["torch_device"] == "cpu"
    # a second supernet (another lever) compared on the same subnets, without training them again
    earlier = tmp_path / "first.json"
    earlier.write_text(p.stdout)
    q = _run(REPO / "bench" / "bench_ranking.py", "--space", "mcunet", "--data", "digits",
             "--standalone-from", str(earlier), "--fair", "--supernet-epochs", "1",
             "--max-batches", "1", "--predictor-samples", "0", "--json")
    assert q.returncode == 0, q.stderr[-1500:]
    again = json.loads(q.stdout)
    assert again["archs"] == out["archs"] and again["standalone"] == out["standalone"]
    assert again["taus"]["ceiling"] == out["taus"]["ceiling"]
    assert again["seconds"]["standalone_reused"] and again["supernet"]["settings"]["fair"]


@pytest.mark.needs("nb201-data")
def test_the_nb201_benchmark_prints_each_methods_regret_as_a_ratio_of_randoms():
    p = _run(REPO / "bench" / "bench_nb201.py", "--seeds", "3", "--methods", "random,evolution",
             "--devices", "raspi4")
    assert p.returncode == 0, p.stderr[-1500:]
    assert len(re.findall(r"^raspi4 +p(30|60) .* floor [\d.]+ \| regret", p.stdout, re.M)) == 2
    found = re.search(r"^evolution +class regret [\d.]+ \(ratio ([\d.]+)x", p.stdout, re.M)
    assert found and float(found.group(1)) > 0, p.stdout


def test_the_verified_search_benchmark_reports_rounds_and_held_share_from_a_fresh_store(
        tmp_path, measured_db):
    import json
    db = tmp_path / "fresh.db"
    db.write_bytes(measured_db.read_bytes())      # measured blocks, no validation report
    p = _run(REPO / "bench" / "bench_verified_search.py", "--db", str(db), "--runtimes",
             "onnxruntime", "--budgets", "2", "--generations", "20", "--fresh", "--json",
             timeout=1500)
    assert p.returncode == 0, p.stderr[-1500:]
    assert "without a stored validation" in p.stdout
    summary = json.loads(p.stdout.strip().splitlines()[-1])["onnxruntime-fp32-t1"]
    assert set(summary) == {"plain, 1 round", "default --verify (scaled)"}
    plain, default = summary["plain, 1 round"], summary["default --verify (scaled)"]
    assert plain["rounds_max"] == 1 and 1 <= default["rounds_mean"] <= default["rounds_max"] <= 5
    assert 0 <= default["held_share"] <= 1 and default["median_over_budget"] > 0


@pytest.mark.needs("sshd")
def test_the_farm_scale_benchmark_and_the_model_fitted_to_it(tmp_path):
    """A small real run (1 and 3 sshd boards, SQLite), then the farm model fitted to it and
    checked against its 3-board row."""
    import json
    p = _run(REPO / "bench" / "bench_farm_scale.py", "--boards", "1,3", "--stores", "sqlite",
             "--cases-per-board", "20", "--case-s", "0.05", "--json", "--keep",
             str(tmp_path / "keep"))
    assert p.returncode == 0, p.stderr[-1500:]
    scale = json.loads(p.stdout)
    rows = {r["boards"]: r for r in scale["rows"]}
    assert set(rows) == {1, 3} and all(r["measured"] == 20 * b for b, r in rows.items())
    assert all(0 < r["efficiency"] <= r["steady"] <= 1 for r in rows.values())
    assert rows[3]["cases_per_s"] > rows[1]["cases_per_s"]
    assert (tmp_path / "keep" / "sqlite-3-boards-1-controllers.db").exists()
    (tmp_path / "scale.json").write_text(p.stdout)
    p = _run(REPO / "bench" / "bench_farm_sim.py", "--from", str(tmp_path / "scale.json"),
             "--json")
    assert p.returncode == 0, p.stderr[-1500:]
    sim = json.loads(p.stdout)
    (check,) = sim["check"]
    assert check["boards"] == 3 and 0 < check["sim_efficiency"] <= 1
    assert abs(check["wall_error"]) < 0.5           # the model is near the run it was fitted to
    costs, extra = sim["costs"]["sqlite"]
    assert costs["controller_cpu_per_case_s"] > 0 and costs["board_start_s"] > 0
