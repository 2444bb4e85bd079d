"""Blocks in context: pair deltas, the adaptive choice of pairs, pricing networks with them."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import FAST, REPO
from lutfarm.lut import LatencyTable, build_lut, save_lut
from lutfarm.lut.metrics import latency_metrics
from lutfarm.predictors.in_context import InContextCorrection
from lutfarm.predictors.pair_context import candidate_pairs, pair_delta, slot_pairs
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings
from lutfarm.profiler.store import Store
from lutfarm.search.objectives.space import lut_latency
from lutfarm.spaces import PairCase
from lutfarm.spaces.fbnet import NUM_OPS
from lutfarm.workflows.pair_fidelity import measure_pair_context
from lutfarm.workflows.validate_networks import run_validation, sample_archs

RT = RuntimeConfig()


def test_pair_delta_is_a_share_of_the_two_blocks_own_cost():
    # o = 0.1: own costs 0.9 and 1.9; the pair costs 2.5 with its one call: 2.4 vs 2.8 own
    assert pair_delta(2.5, 1.0, 2.0, 0.1) == pytest.approx((2.4 - 2.8) / 2.8)
    assert pair_delta(10.0, 1.0, 1.0, 0.1) == pytest.approx(0.9)      # clipped: noise
    assert pair_delta(0.1, 0.1, 0.1, 0.1) == 0.0                       # nothing of their own


def test_slot_pairs_cover_every_adjacent_position_and_repeat_within_a_stage(cifar):
    grid = slot_pairs(cifar)
    assert len(grid) == cifar.num_layers - 1 and len(grid[0]) == len(grid[0][0]) == NUM_OPS
    cands = candidate_pairs(cifar)
    assert sum(n for _, n in cands.values()) == (cifar.num_layers - 1) * NUM_OPS ** 2
    assert len(cands) < 0.8 * (cifar.num_layers - 1) * NUM_OPS ** 2   # shapes repeat
    assert max(n for _, n in cands.values()) >= 2


def _truth(pair) -> float:
    """A stand-in device's in-context share: same-expansion neighbours save 30 %, a 5x5
    kernel after anything costs 15 % more, skips nothing."""
    a, b = pair.first, pair.second
    if a.kind != "ConvBlock" or b.kind != "ConvBlock":
        return 0.0
    return (-0.3 if a.exp == b.exp else 0.0) + (0.15 if b.kernel == 5 else 0.0)


def _stand_in_rounds(lut):
    """measure_pairs for a LABELLED STAND-IN device: T12 = T1 + T2 − o + r·own, r = _truth."""
    calls = []

    def measure(store, layout, pairs, devices, runtime, settings=None, every=16):
        calls.append(len(pairs))
        o = lut.overhead_ms
        out = []
        for k in range(0, len(pairs), every):
            r = {layout.overhead_case().key: o}
            for p in pairs[k:k + every]:
                t1, t2 = lut.latency_ms[p.first.key], lut.latency_ms[p.second.key]
                r.update({p.first.key: t1, p.second.key: t2,
                          p.key: t1 + t2 - o + _truth(p) * (t1 + t2 - 2 * o)})
            out.append(r)
        return out
    return measure, calls


def test_adaptive_pairs_learn_a_known_context_and_price_networks_with_it(
        measured_db, cifar, monkeypatch):
    with Store(measured_db) as store:
        lut = build_lut(store, "local", RT.key)
    measure, calls = _stand_in_rounds(lut)
    monkeypatch.setattr("lutfarm.profiler.scheduling.networks.measure_pairs", measure)
    got = measure_pair_context(None, lut, [LOCAL], RT, 120, group=16)
    ctx = got.context
    assert len(ctx.measured) == 120 and calls[0] == 60 and calls[1:] == [16, 16, 16, 12]
    assert got.cost(len(lut.latency_ms))["pairs"] == 120
    # the first half is stratified: every (op, op) couple of convolution blocks is measured
    first = [PairCase.from_key(k) for k in list(ctx.measured)[:60]]
    couples = {tuple((c.kind, c.exp, c.kernel, c.group) for c in (p.first, p.second))
               for p in first}
    assert len(couples) == 60
    table = LatencyTable(lut)
    delta = ctx.delta_ms(table)
    grid = slot_pairs(cifar)
    truth = np.array([[[_truth(p) for p in row] for row in layer] for layer in grid])
    cost = np.maximum(table.matrix - lut.overhead_ms, 0)
    for i, layer in enumerate(grid):      # a measured pair prices exactly what it measured
        for a, row in enumerate(layer):
            for b, p in enumerate(row):
                if p.key in ctx.measured:
                    assert delta[i, a, b] == pytest.approx(
                        truth[i, a, b] * (cost[i, a] + cost[i + 1, b]), abs=1e-9)
    archs = np.array(sample_archs(table, 60, seed=3))
    base = table.latency(archs, "overhead")
    layers = np.arange(cifar.num_layers - 1)
    networks = base + (truth[layers, archs[:, :-1], archs[:, 1:]]
                       * (cost[layers, archs[:, :-1]] + cost[layers + 1, archs[:, 1:]])).sum(1)
    priced = ctx.predict(table, archs)
    assert latency_metrics(priced, networks)["mape"] < 0.4 * latency_metrics(base, networks)[
        "mape"]
    # the correction that starts from the pairs travels in JSON and prices the same
    corr = InContextCorrection(pairs=ctx).fit(table, archs[:30], networks[:30])
    again = InContextCorrection.from_dict(json.loads(json.dumps(corr.to_dict())), table)
    assert np.allclose(again.predict(table, archs), corr.predict(table, archs))
    # held out: well inside ±10 % and far closer than the overhead sum (over LUTs measured
    # apart, the held-out MAPE ran 0.18-0.52x the overhead sum's, ±10 % 97-100 %)
    held = latency_metrics(again.predict(table, archs[30:]), networks[30:])
    sum_only = latency_metrics(base[30:], networks[30:])
    assert held["within_10pct"] >= 0.9 and held["within_5pct"] >= 0.75
    assert held["mape"] < 0.6 * sum_only["mape"]


def test_validation_with_pairs_times_each_pair_with_its_blocks_and_stores_the_context(
        tmp_path, measured_db, cache):
    db = tmp_path / "v.db"
    db.write_bytes(measured_db.read_bytes())
    with Store(db) as store:
        lut = build_lut(store, "local", RT.key)
        report = run_validation(store, lut, [LOCAL], RT, 8,
                                CampaignSettings(timing=FAST, cache=cache), seed=1, every=4,
                                pairs=6)
        pairs = [m for m in store.iter_measurements("local", RT.key)
                 if m.case_key.startswith("Pair__")]
        by_campaign = {}
        for m in store.iter_measurements("local", RT.key):
            by_campaign.setdefault(m.campaign_id, set()).add(m.case_key)
        exported = build_lut(store, "local", RT.key)
    assert len(pairs) == 6
    for m in pairs:            # each pair shared its campaign with both blocks and the empty model
        first, second = m.case_key.split("__")[1:]
        assert {first, second, lut.layout.overhead_case().key} <= by_campaign[m.campaign_id]
        assert m.extra["interleaved"] == len(by_campaign[m.campaign_id])
    assert report.pair_cost["pairs"] == 6 and report.pair_cost["times_lut"] > 0
    assert report.paired["n"] == 4 and all("paired_ms" in r for r in report.rows)
    stored = exported.validation.correction
    assert len(stored["pairs"]["measured"]) == 6
    table = LatencyTable(exported)
    metric = lut_latency(table, "corrected")           # what a search prices with
    assert metric.correction.pairs.measured == report.correction["pairs"]["measured"]
    archs = np.array([[int(c) for c in r["arch"]] for r in report.rows])
    without = InContextCorrection.from_dict({**stored, "pairs": None}, table)
    assert np.allclose(metric(archs), InContextCorrection.from_dict(stored, table).predict(
        table, archs)) and not np.allclose(metric(archs), without.predict(table, archs))
    # lut query prices with the same correction, from the exported file
    def query(lut, *extra):
        return subprocess.run([sys.executable, "-m", "lutfarm", "lut", "query", "--lut",
                               str(lut), "--arch", ",".join(map(str, archs[0])), "--latency",
                               "corrected", *extra], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    q = query(save_lut(exported, tmp_path / "lut.csv"), "--json")
    assert q.returncode == 0, q.stderr[-800:]
    item = json.loads(q.stdout)["archs"][0]
    assert item["model"] == "corrected"
    assert item["latency_ms"] == pytest.approx(float(metric(archs[:1])[0]), rel=1e-9)
    q = query(save_lut(replace(exported, meta={**exported.meta, "validation": None}),
                       tmp_path / "plain.csv"))
    assert q.returncode != 0 and "validate it" in q.stderr
    # the dashboard's LUT page shows the paired row and what the pairs cost
    import urllib.request

    from test_dashboard import Server
    server = Server(db)
    try:
        page = urllib.request.urlopen(f"{server.base}/lut?target=local&runtime={RT.key}",
                                      timeout=30).read().decode()
    finally:
        server.stop()
    assert "<td>paired</td>" in page and "of 6 adjacent block pairs measured" in page
