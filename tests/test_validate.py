"""LUT fidelity: metrics, corrections and the validation loop on real measured networks."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from conftest import FAST, REPO
from lutfarm.lut import LatencyTable, build_lut, load_lut, save_lut
from lutfarm.lut.metrics import latency_metrics
from lutfarm.lut.validation_report import VALIDATION_VERSION
from lutfarm.predictors.in_context import InContextCorrection, block_costs
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings
from lutfarm.profiler.store import Store
from lutfarm.spaces import PairCase, get_layout, parse_case_key
from lutfarm.spaces.fbnet import NetworkCase
from lutfarm.workflows.validate_networks import evaluate, fusion_table, run_validation, sample_archs

RT = RuntimeConfig()


def test_metrics_on_known_values():
    m = latency_metrics([1.04, 2.19, 2.9, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert m["within_5pct"] == 0.75 and m["within_10pct"] == 1.0
    assert m["mape"] == pytest.approx((0.04 + 0.095 + 1 / 30 + 0) / 4)
    assert m["rmse_ms"] == pytest.approx(np.sqrt((0.04**2 + 0.19**2 + 0.1**2) / 4))
    assert m["spearman"] == pytest.approx(1.0) and m["kendall"] == pytest.approx(1.0)
    y = np.random.default_rng(0).random(50) + 1
    x = y + np.random.default_rng(1).normal(0, 0.2, 50)
    m = latency_metrics(x, y)
    assert m["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic)
    with pytest.raises(ValueError, match="positive"):
        latency_metrics([1.0], [0.0])


def test_network_and_pair_keys_round_trip(cifar):
    net = NetworkCase(cifar, tuple(range(9)) * 2 + (0, 1, 2, 3))
    assert parse_case_key(net.key) == net and net.input_shape == (1, 3, 32, 32)
    pair = cifar.fusion_pairs()[0]
    assert isinstance(pair, PairCase) and parse_case_key(pair.key) == pair


def test_overhead_model_and_correction_recover_a_known_truth(measured_db, cifar):
    """Synthetic 'measurements' built from the real LUT with known in-context factors."""
    with Store(measured_db) as store:
        table = LatencyTable(build_lut(store, "local", RT.key))
    archs = np.array(sample_archs(table, 160, seed=3))
    x = block_costs(table, archs)
    factors = np.ones(x.shape[1])
    factors[[1, 10, 19]] = 1.3                  # grouped k3 blocks cost 30 % more in stages 0-2
    measured = table.latency(archs, "overhead") + x @ (factors - 1)
    report = evaluate(table, [tuple(a) for a in archs], measured)
    assert report.corrected["within_5pct"] == 1.0 and report.corrected["mape"] < 0.01
    assert report.factors["stage1/k3_e1_g2"] == pytest.approx(1.3, abs=0.05)
    # stage 4's factor is shrunk toward the op's mean over stages, but stays well below 1.3
    assert report.factors["stage4/k3_e1_g2"] == pytest.approx(1.0, abs=0.1)
    # the correction travels with the report and prices archs as the fit did
    again = InContextCorrection.from_dict(json.loads(json.dumps(report.correction)))
    assert again.predict(table, archs[:5]) == pytest.approx(
        [r["corrected_ms"] for r in report.rows[:5]])
    assert report.plain["mean_ratio"] > report.overhead["mean_ratio"]


def test_sampled_archs_hold_the_extremes_and_are_distinct(measured_db):
    with Store(measured_db) as store:
        table = LatencyTable(build_lut(store, "local", RT.key))
    archs = sample_archs(table, 30, seed=1)
    assert len(set(archs)) == 30
    ext = table.extremes()
    assert tuple(ext["fastest"]) in archs and tuple(ext["slowest"]) in archs


def test_fusion_rule(cifar):
    """nn-Meter's rule on two real pairs of the layout, with chosen latencies."""
    pairs = [p for p in cifar.fusion_pairs() if p.first.key != p.second.key]
    fused = pairs[0]
    apart = next(p for p in pairs if not {p.first.key, p.second.key} & {fused.first.key,
                                                                        fused.second.key})
    lat = {fused.first.key: 1.1, fused.second.key: 1.1, fused.key: 1.2,
           apart.first.key: 1.1, apart.second.key: 2.1, apart.key: 3.0}
    rows = fusion_table([fused, apart], lat, overhead_ms=0.1)
    assert [r["fused"] for r in rows] == [True, False]    # 1+1-1.1 = 0.9 > 0.5; 1+2-2.9 < 0.5
    assert rows[0]["saving_ms"] == pytest.approx(0.9) and rows[1]["saving_ms"] == pytest.approx(0.1)


def _validated(tmp_path, measured_db, cache, n, seed, every):
    """A copy of the measured store, its LUT, and a validation of ``n`` networks on it."""
    db = tmp_path / "v.db"
    db.write_bytes(measured_db.read_bytes())
    store = Store(db)
    lut = build_lut(store, "local", RT.key)
    return store, lut, run_validation(store, lut, [LOCAL], RT, n,
                                      CampaignSettings(timing=FAST, cache=cache), seed=seed,
                                      every=every)


def test_validation_measures_networks_once_and_is_stored_with_the_lut(tmp_path, measured_db,
                                                                      cache):
    store, lut, report = _validated(tmp_path, measured_db, cache, 12, seed=2, every=0)
    with store:
        assert report.n == 12 and report.n_train == 6
        frame = report.to_frame()
        assert len(frame) == 12 and (frame["split"] == "train").sum() == 6
        nets = [k for k in store.measured_keys("local", RT.key) if k.startswith("FBNet_")]
        assert len(nets) == 12
        for r in report.rows:   # every row's measurement is the stored one
            assert r["measured_ms"] == store.latest("local", RT.key)[
                NetworkCase(lut.layout, tuple(map(int, r["arch"]))).key].median_ms
        again = run_validation(store, lut, [LOCAL], RT, 12,
                               CampaignSettings(timing=FAST, cache=cache), seed=2, every=0)
        assert again.plain == report.plain                   # nothing re-measured
        exported = build_lut(store, "local", RT.key)
    assert exported.validation.plain == report.plain
    assert exported.validation.version == VALIDATION_VERSION and not exported.validation.points
    path = save_lut(exported, tmp_path / "lut.csv")
    assert load_lut(path).validation == exported.validation   # the file keeps the record


def test_interleaved_validation_compares_each_network_with_its_blocks_timed_next_to_it(
        tmp_path, measured_db, cache):
    store, lut, report = _validated(tmp_path, measured_db, cache, 10, seed=4, every=4)
    with store:
        measurements = list(store.iter_measurements("local", RT.key))
    layout = lut.layout
    nets = {m.case_key: m for m in measurements if m.case_key.startswith("FBNet_")}
    assert len(nets) == 10 and len(report.block_rounds) == 3        # groups of 4, 4 and 2
    assert all(0.2 < r < 5 for r in report.block_rounds)
    by_campaign = {}
    for m in measurements:
        by_campaign.setdefault(m.campaign_id, {})[m.case_key] = m
    groups = []
    for row in report.rows:
        arch = tuple(map(int, row["arch"]))
        net = nets[NetworkCase(layout, arch).key]
        timed_with = by_campaign[net.campaign_id]
        groups.append(net.campaign_id)
        cases = layout.arch_cases(arch)
        # its blocks were timed again in its own campaign, sample by sample in turn with it …
        assert all(c.key in timed_with for c in cases)
        assert net.extra["interleaved"] == len(timed_with) and all(
            m.extra["interleaved"] == len(timed_with) for m in timed_with.values())
        # … and it is priced with those times, not with the LUT measured before
        assert row["plain_ms"] == pytest.approx(sum(timed_with[c.key].median_ms for c in cases))
    assert sorted(groups.count(g) for g in set(groups)) == [2, 4, 4]
    assert report.summary()["interleaved"] == "samples" and len(report.correction["train"]) == 5


def test_cli_validate_writes_plot_csv_and_json(tmp_path, measured_db, cache_dir):
    db = tmp_path / "v.db"
    db.write_bytes(measured_db.read_bytes())
    p = subprocess.run([sys.executable, "-m", "lutfarm", "lut", "validate", "--db", str(db),
                        "--archs", "10", "--fusion", "--out", str(tmp_path / "out"), "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-1000:]
    summary = json.loads(p.stdout)
    assert summary["n"] == 5
    png = next((tmp_path / "out").glob("*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import csv
    rows = list(csv.DictReader(open(next((tmp_path / "out").glob("*.csv")))))
    assert len(rows) == 10
    held = [r for r in rows if r["split"] == "test"]
    measured = [float(r["measured_ms"]) for r in held]
    for name in ("plain", "overhead", "corrected"):   # the JSON is the CSV's held-out rows
        expected = latency_metrics([float(r[f"{name}_ms"]) for r in held], measured)
        assert summary[name] == pytest.approx(expected)
    with Store(db) as store:      # --fusion measured every adjacent pair of the layout
        pairs = [k for k in store.measured_keys("local", RT.key) if k.startswith("Pair__")]
    assert len(pairs) == len(get_layout("fbnet", "cifar").fusion_pairs())
    # the arch-level predictors, scored on the 10 measured networks
    e = subprocess.run([sys.executable, "-m", "lutfarm", "predict", "eval", "arch", "--db",
                        str(db), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert e.returncode == 0, e.stderr[-1000:]
    scores = json.loads(e.stdout)
    assert set(scores) >= {"plain_lut", "lut+residual", "mlp", "gbm"}
    assert scores["plain_lut"]["n"] > 0


def test_repeatability_compares_two_runs_and_remeasures_unreliable_cases(tmp_path, cache, cifar):
    from lutfarm.profiler.scheduling.repeatability import run_repeatability
    # at least 50 ms of samples per case: with FAST's 4-30 ms, one burst of load on a shared
    # 2-core machine moved the median difference of a whole run to 37 % (seen once in CI)
    timing = replace(FAST, min_s=0.05, max_s=0.2)
    with Store(tmp_path / "r.db") as store:
        from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
        run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=timing, cache=cache, only="ConvBlock_H8_*"))
        r = run_repeatability(store, cifar, [LOCAL], RT,
                              CampaignSettings(timing=timing, cache=cache, only="ConvBlock_H8_*"))
        # how well two runs agree on this shared VM is noise (its speed wanders 2x within
        # seconds; a clean-clone CI run once saw a median 40 %): that a report compares the
        # right cases exactly is checked on a deterministic clock instead
        # (test_firmware.py::test_repeatability_on_an_emulated_board_agrees_exactly)
        assert r.cases == 32
        assert r.remeasured == len(r.flagged)
        counts = dict(store.conn.execute(
            "SELECT case_key, COUNT(*) FROM measurements GROUP BY case_key").fetchall())
        assert all(counts[k] == 3 for k in r.flagged)
        assert store.latest_report("local", RT.key, "repeatability")["cases"] == 32


def test_drift_guard_warns_when_the_device_changed(tmp_path, cache, cifar):
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
    with Store(tmp_path / "d.db") as store:
        run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only="ConvBlock_H4_*"))
        # pretend the stored world was different: every block twice as fast, another runtime
        store.conn.execute("UPDATE measurements SET median_ms = median_ms / 2")
        ctx = store.context(1)
        ctx["runtime"]["version"] = "0.0.1"
        store.conn.execute("UPDATE contexts SET fingerprint = ?", (json.dumps(ctx),))
        store.conn.commit()
        s = run_campaign(store, cifar, LOCAL, RT, CampaignSettings(timing=FAST, cache=cache, only="ConvBlock_H4_*,AvgP_*"))
        assert s.measured == 1
        assert any("ms when stored (+" in w for w in s.drift), s.drift
        assert any("version changed from 0.0.1" in w for w in s.drift), s.drift
        assert store.latest_report("local", RT.key, "drift")["warnings"] == s.drift
