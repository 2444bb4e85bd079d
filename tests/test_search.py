"""Search: operators, constraints, evolution vs random, NB201 on real data, targeting, DNAS."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, SHARED_DATA
from lutfarm.lut import LatencyTable, import_hwnasbench
from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.search.methods.evolution import (
    SearchError,
    constrained_evolution,
    random_search,
    regularized_evolution,
)
from lutfarm.search.methods.targeting import targeting_matrix
from lutfarm.search.objectives.space import GeneSpace, fbnet_space, lut_latency, macs
from lutfarm.spaces import get_layout
from lutfarm.spaces.nb201 import NB201Error, parse_arch_str

CIFAR = get_layout("fbnet", "cifar")
NB201 = SHARED_DATA / "nb201_master.csv"
RASPI = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))


def test_mutation_and_crossover():
    space, rng = GeneSpace(22, 9), np.random.default_rng(0)
    pop = space.random(500, rng)
    child = space.mutate(pop, 0.0, rng)
    assert ((child != pop).sum(axis=1) == 1).all()        # exactly one gene, a new value
    a, b = space.random(200, rng), space.random(200, rng)
    c = space.crossover(a, b, rng)
    assert ((c == a) | (c == b)).all() and (c != a).any() and (c != b).any()


def test_additive_metrics_match_the_case_sums():
    archs = fbnet_space(CIFAR).random(50, np.random.default_rng(1))
    m = macs(CIFAR)(archs)
    want = [sum(c.macs for c in CIFAR.arch_cases(a)) / 1e6 for a in archs]
    np.testing.assert_allclose(m, want)
    np.testing.assert_allclose(lut_latency(RASPI)(archs), RASPI.latency(archs))


def test_constrained_evolution_respects_the_budget_and_beats_random_search():
    space, lat, cost = fbnet_space(CIFAR), lut_latency(RASPI), macs(CIFAR)

    def feasible(a):
        return lat(a) <= 28.0

    evo = constrained_evolution(space, cost, feasible, population=50, generations=100, seed=1)
    rnd = random_search(space, cost, evo.evaluations, feasible, seed=1)
    assert lat(np.array([evo.arch]))[0] <= 28.0
    assert evo.objective > rnd.objective
    rea = regularized_evolution(space, cost, 2000, feasible, seed=1)
    assert lat(np.array([rea.arch]))[0] <= 28.0 and rea.evaluations == 2000
    with pytest.raises(SearchError, match="loosen the budget"):
        constrained_evolution(space, cost, lambda a: lat(a) <= 1.0, generations=1)


def test_nb201_arch_strings():
    s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"
    assert parse_arch_str(s) == [4, 2, 1, 2, 1, 0]
    with pytest.raises(NB201Error):
        parse_arch_str("|conv~0|")


@pytest.mark.needs("nb201-data")
def test_evolution_beats_random_search_on_nb201():
    from lutfarm.search.methods.nb201 import bench, load_nb201
    table = load_nb201(NB201)
    r = bench(table, "raspi4", float(np.nanmax(table.latency["raspi4"])), queries=150,
              seeds=20, methods=("random", "evolution"))
    assert r.oracle_accuracy == pytest.approx(table.accuracy.max())
    assert r.curves["evolution"][-1] > r.curves["random"][-1]
    assert (np.diff(r.curves["random"]) >= 0).all() and r.curves["random"][-1] <= r.oracle_accuracy


def test_path_encoding_sees_the_paths_a_cell_keeps():
    from lutfarm.search.methods.nb201 import path_encoding
    enc = path_encoding([[0] * 6, [0, 0, 0, 3, 0, 0], [2, 3, 2, 3, 0, 0], [1] * 6])
    assert enc.shape == (4, 100)
    assert enc[0].sum() == 0                                   # every path cut
    assert enc[1].sum() == 1 and enc[1, 2] == 1                # the one direct conv3x3
    np.testing.assert_array_equal(enc[1], enc[2])              # dead edges change nothing
    assert enc[3].sum() == 4                                   # 4 live paths of skips


@pytest.mark.parametrize("method", ["local", "bananas"])
def test_query_efficient_searches_stay_feasible_and_find_the_optimum(method):
    from lutfarm.search.methods.query_efficient import bananas, local_search
    space = GeneSpace(6, 5)
    weights = np.array([3.0, -1.0, 2.0, 0.5, 1.0, -2.0])
    queried = []

    def objective(a):
        queried.extend(map(tuple, a))
        return a @ weights

    def feasible(a):           # a fifth of the space, not the optimum's corner
        return a[:, 1] + a[:, 5] <= 5

    if method == "local":
        r = local_search(space, objective, 200, feasible, seed=1)   # ~24 queries per move
    else:
        r = bananas(space, objective, 200, feasible, seed=1)
    every = np.stack(np.meshgrid(*[np.arange(5)] * 6, indexing="ij"), -1).reshape(-1, 6)
    best = (every[feasible(every)] @ weights).max()
    assert len(queried) == len(set(queried)) == 200              # no arch asked twice
    assert feasible(np.array(queried)).all()                     # no infeasible query
    assert r.objective == pytest.approx(best)


@pytest.mark.needs("nb201-data")
def test_unmeasured_nb201_latencies_are_never_feasible():
    from lutfarm.search.methods.nb201 import load_nb201
    table = load_nb201(NB201)
    tpu = table.latency["edgetpu"]
    assert np.isnan(tpu).sum() > 0 and not (tpu[~np.isnan(tpu)] <= 0).any()   # -1 in the file


def test_each_winner_is_fastest_on_its_own_target():
    m = targeting_matrix({d: import_hwnasbench(BUNDLED, d) for d in ("edgegpu", "raspi4")},
                         generations=100)
    assert all(v >= m.macs_floor - 1e-9 for v in m.macs.values())
    adv = m.own_advantage()
    assert adv["edgegpu"] > 1.2 and adv["raspi4"] > 1.2


def test_latency_term_alone_moves_theta_to_fast_blocks():
    from lutfarm.search.supernets.dnas import fbnet_loss
    lut = torch.tensor(RASPI.matrix, dtype=torch.float32)
    theta = torch.zeros_like(lut, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    before = float((torch.softmax(theta.detach(), 1) * lut).sum())
    for _ in range(100):
        m = torch.nn.functional.gumbel_softmax(theta, tau=5.0)
        loss = fbnet_loss(torch.tensor(2.0), (m * lut).sum() + RASPI.fixed_ms, 0.2, 0.6)
        opt.zero_grad()
        loss.backward()
        opt.step()
    probs = torch.softmax(theta.detach(), 1)
    assert float((probs * lut).sum()) < 0.8 * before
    fastest = lut.argmin(1)
    assert (probs.argmax(1) == fastest).float().mean() > 0.8


def test_dnas_runs_end_to_end_on_bundled_digits():
    from lutfarm.search.supernets.data import digits32
    from lutfarm.search.supernets.dnas import search
    data = torch.utils.data.Subset(digits32(), range(64))
    r = search(RASPI, data, 10, epochs=2, warmup_epochs=1, batch_size=8, max_batches=1,
               n_samples=3)
    assert len(r.arch) == 22 and len(r.epochs) == 2 and len(r.samples) == 3
    assert r.latency_ms == pytest.approx(float(RASPI.latency([r.arch])[0]))
    assert r.epochs[1]["tau"] == pytest.approx(5.0 * np.exp(-0.045))


def test_dnas_resumes_from_its_checkpoint_to_the_same_result(tmp_path):
    from lutfarm.search.supernets.data import digits32
    from lutfarm.search.supernets.dnas import DNASCheckpointError, search
    data = torch.utils.data.Subset(digits32(), range(64))
    kw = dict(epochs=2, warmup_epochs=1, batch_size=8, max_batches=2, n_samples=2)
    whole = search(RASPI, data, 10, **kw, checkpoint=tmp_path / "a.pt")

    def kill(record):
        raise KeyboardInterrupt     # after the epoch's checkpoint, as a Ctrl-C would land

    with pytest.raises(KeyboardInterrupt):
        search(RASPI, data, 10, **kw, checkpoint=tmp_path / "b.pt", log=kill)
    batches = []
    resumed = search(RASPI, data, 10, **kw, checkpoint=tmp_path / "b.pt",
                     on_batch=batches.append)
    assert resumed.theta == whole.theta and resumed.arch == whole.arch
    assert [b["epoch"] for b in batches] == [1, 1]             # only the second epoch ran
    assert {"loss", "ce", "latency_ms", "tau", "train_acc"} <= set(batches[0])
    assert resumed.epochs[-1]["argmax_latency_ms"] == pytest.approx(
        float(RASPI.latency([[int(c) for c in resumed.epochs[-1]["argmax_arch"]]])[0]))
    with pytest.raises(DNASCheckpointError, match="differs in seed"):
        search(RASPI, data, 10, **{**kw, "seed": 1}, checkpoint=tmp_path / "b.pt")


def test_dnas_on_two_gloo_ranks_ends_with_identical_weights(tmp_path):
    from lutfarm.search.supernets.data import digits32
    from lutfarm.search.supernets.dnas import spawn_search
    data = torch.utils.data.Subset(digits32(), range(96))
    r = spawn_search(2, RASPI, data, 10, tmp_path / "d.pt", device="cpu", epochs=1,
                     warmup_epochs=0, batch_size=8, max_batches=2, n_samples=1,
                     final_weights=tmp_path / "ranks")
    r0, r1 = (torch.load(tmp_path / "ranks" / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    assert not torch.equal(r0["theta"], torch.zeros_like(r0["theta"]))   # θ was trained
    assert torch.equal(torch.tensor(r.theta), r0["theta"])
    assert len(r.epochs) == 1 and len(r.arch) == 22


def test_cli_evolve_and_target(tmp_path):
    lut = tmp_path / "raspi4.csv"
    other = tmp_path / "edgegpu.csv"
    for path, dev in ((lut, "raspi4"), (other, "edgegpu")):
        subprocess.run([sys.executable, "-m", "lutfarm", "lut", "import-hwnasbench", "--device",
                        dev, "-o", str(path)], cwd=REPO, check=True, capture_output=True, timeout=600)
    p = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(lut),
                        "--budget-ms", "30", "--generations", "50", "--json", "--plot",
                        str(tmp_path / "p.png")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["latency_ms"] <= 30 and r["evaluations"] == 5000 and len(r["arch"]) == 22
    assert set(r) >= {"arch", "latency_ms", "objective_value", "evaluations", "wall_s"}
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    t = subprocess.run([sys.executable, "-m", "lutfarm", "search", "target", "--lut", str(lut),
                        "--lut", str(other), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert json.loads(t.stdout)["own_target_speedup"]["raspi4"] > 1.0
    bad = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(lut),
                          "--budget-ms", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("error: found only 0 of 100")
    no_o = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(lut),
                           "--budget-ms", "30", "--latency", "overhead"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert no_o.returncode == 2 and "no empty-model entry" in no_o.stderr


def test_runtime_keys_round_trip():
    from lutfarm.profiler.runtime_config import RuntimeConfig
    for rc in (RuntimeConfig(), RuntimeConfig("bench-sleep", 4), RuntimeConfig(threads=2,
                                                                               provider="CPUExecutionProvider")):
        assert RuntimeConfig.from_key(rc.key) == rc


def test_verify_measures_the_winner_end_to_end(tmp_path, measured_db):
    from lutfarm.lut import build_lut, save_lut
    from lutfarm.profiler.store import Store
    db = tmp_path / "v.db"
    db.write_bytes(measured_db.read_bytes())
    with Store(db) as store:
        lut = save_lut(build_lut(store, "local", "onnxruntime-fp32-t1"), tmp_path / "local.csv")
        table = LatencyTable(build_lut(store, "local", "onnxruntime-fp32-t1"))
    budget = float(np.median(table.latency(fbnet_space(CIFAR).random(200, np.random.default_rng(0)))))
    p = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(lut),
                        "--budget-ms", f"{budget:.4f}", "--generations", "30", "--verify", "--db",
                        str(db), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    out = json.loads(p.stdout)      # printed whether or not a winner held
    v = out["verified"]
    # no validation report: the plain sum, scaled from round 2 on by what winners measured
    assert out["latency_model"] == "scaled" and v["rounds_allowed"] == 5
    first = v["rounds"][0]
    assert first["predicted_ms"] <= budget + 1e-6
    assert first["predicted_ms"] == pytest.approx(float(table.latency([first["arch"]])[0]))
    # the loop ends with a winner that holds at the LUT's speed (on this machine round 1's
    # plain-sum winner usually does not: whole networks cost more than their blocks alone)
    assert p.returncode == 0 and v["held"] and v["at_lut_speed_ms"] <= budget, p.stderr[-800:]
    assert v["rounds_used"] == len(v["rounds"]) <= 5
    if len(v["rounds"]) > 1:       # round 2 on: priced with what round 1 measured
        ratio = first["at_lut_speed_ms"] / first["predicted_ms"]
        assert v["scale"] >= ratio - 1e-9
        assert v["rounds"][1]["predicted_ms"] == pytest.approx(
            ratio * float(table.latency([v["rounds"][1]["arch"]])[0]), rel=1e-6) or \
            v["rounds"][1]["arch"] == first["arch"]
    for r in v["rounds"][:-1]:     # a round ends the loop only once a winner holds
        assert not (r["holds_at_lut_speed"] and r["at_lut_speed_over_budget"] >= 0.95)
    from lutfarm.spaces.fbnet import NetworkCase
    with Store(db) as store:     # every winner was measured as a whole network, and reported
        stored = store.latest("local", "onnxruntime-fp32-t1")
    for r in v["rounds"]:
        assert r["measured_ms"] == stored[NetworkCase(CIFAR, tuple(r["arch"])).key].median_ms


def test_fbnetv2_width_table_uses_measured_entries_and_scales_the_rest():
    from lutfarm.search.objectives.widths import layer_latency, stage_widths, width_table
    t, head, counts = width_table(RASPI, (0.5, 1.0))
    full = [0] * 22
    np.testing.assert_allclose(layer_latency(t, CIFAR, full, [1] * 7),
                               RASPI.matrix[np.arange(22), full])     # full width = the LUT
    narrow = layer_latency(t, CIFAR, full, [0] * 7)
    assert (narrow <= RASPI.matrix[np.arange(22), full] + 1e-9).all() and narrow.sum() < \
        0.7 * RASPI.matrix[np.arange(22), full].sum()
    assert counts["measured"] > 0 and counts["predicted"] > 0
    assert stage_widths(CIFAR, (0.5, 1.0))[6].tolist() == [176, 352]


def test_fbnetv2_latency_term_narrows_the_stages():
    from lutfarm.search.supernets.dnas import SuperNet, fbnet_loss
    net = SuperNet(RASPI, 10, widths=(0.5, 0.75, 1.0))
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.05)
    with torch.no_grad():
        before = float(net._width_latency(torch.softmax(net.theta, 1), torch.softmax(net.phi, 1)))
    for _ in range(60):
        m = torch.nn.functional.gumbel_softmax(net.theta, tau=5.0)
        g = torch.nn.functional.gumbel_softmax(net.phi, tau=5.0)
        loss = fbnet_loss(torch.tensor(2.0), net._width_latency(m, g), 0.2, 0.6)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(net._width_latency(torch.softmax(net.theta, 1), torch.softmax(net.phi, 1)))
    assert after < 0.8 * before
    assert (torch.softmax(net.phi, 1).argmax(1) == 0).float().mean() > 0.7   # narrowest wins
    x, _ = net(torch.randn(2, 3, 32, 32), tau=1.0)
    assert x.shape == (2, 10)


def test_cli_dnas_with_widths_and_bench_nb201(tmp_path):
    lut = tmp_path / "raspi4.csv"
    subprocess.run([sys.executable, "-m", "lutfarm", "lut", "import-hwnasbench", "--device",
                    "raspi4", "-o", str(lut)], cwd=REPO, check=True, capture_output=True, timeout=600)
    p = subprocess.run([sys.executable, "-m", "lutfarm", "search", "dnas", "--lut", str(lut),
                        "--epochs", "1", "--warmup-epochs", "0", "--max-batches", "1",
                        "--batch-size", "4", "--widths", "0.5,1.0", "--checkpoint",
                        str(tmp_path / "d.pt"), "--json"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-800:]
    r = json.loads(p.stdout)
    assert len(r["arch"]) == 22 and len(r["stage_channels"]) == 7 and r["latency_ms"] > 0
    assert "epoch 1/1: loss" in p.stderr and "argmax" in p.stderr and (tmp_path / "d.pt").exists()
    bad = subprocess.run([sys.executable, "-m", "lutfarm", "search", "dnas", "--lut", str(lut),
                          "--widths", "0.5,2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--widths must lie in (0, 1]" in bad.stderr


@pytest.mark.needs("nb201-data")
def test_cli_bench_nb201_scores_every_method_against_the_oracle():
    b = subprocess.run([sys.executable, "-m", "lutfarm", "search", "bench-nb201", "--device",
                        "pixel3", "--budget-ms", "10", "--queries", "30", "--seeds", "3",
                        "--nb201", str(NB201), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert b.returncode == 0, b.stderr[-800:]
    s = json.loads(b.stdout)
    assert set(s["mean_found_accuracy"]) == {"random", "evolution", "predictor", "local",
                                             "bananas", "bananas-path"}
    assert all(v <= s["oracle_accuracy"] for v in s["mean_found_accuracy"].values())
    # the noise floor: 15 625 cells compute 6 466 functions; the best class mean is not above
    # the luckiest cell, and a found cell's class mean never beats it
    assert s["feasible_classes"] < s["feasible_archs"]
    assert s["class_oracle_accuracy"] <= s["oracle_accuracy"]
    assert all(v >= 0 for v in s["mean_class_regret"].values())


@pytest.mark.needs("nb201-data")
def test_nb201_isomorphism_classes_are_the_6466_of_the_benchmark():
    from lutfarm.search.methods.nb201 import cell_classes, load_nb201
    from lutfarm.spaces.nb201 import cell_class_key
    classes = cell_classes()
    assert len(np.unique(classes)) == 6466           # NAS-Bench-201's own count
    # by hand: node 1 = skip(x) = x, so conv3x3 into node 3 from x or from node 1 is one term,
    # and a sum's order does not matter
    assert cell_class_key((1, 0, 0, 3, 1, 0)) == cell_class_key((1, 0, 0, 1, 3, 0))
    # a skip edge is the identity: conv3x3 of node 1 = skip(x) is conv3x3 of x
    assert cell_class_key((1, 0, 0, 3, 0, 0)) == cell_class_key((1, 0, 0, 0, 3, 0))
    assert cell_class_key((0, 0, 0, 2, 0, 0)) != cell_class_key((0, 0, 0, 3, 0, 0))
    table = load_nb201(NB201)
    sizes = np.bincount(classes)
    spread = [np.ptp(table.accuracy[classes == k]) for k in np.flatnonzero(sizes >= 2)[::25]]
    assert 0 < np.median(spread) < 2.0         # members differ by their training runs' noise


def test_measured_width_variants_replace_the_stand_in(tmp_path, measured_db, cache):
    from dataclasses import replace as dc_replace

    from conftest import FAST
    from lutfarm.lut import build_lut
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, plan_cases, run_campaign
    from lutfarm.profiler.store import Store
    from lutfarm.search.objectives.widths import width_table
    db = tmp_path / "w.db"
    db.write_bytes(measured_db.read_bytes())
    only = "ConvBlock_H4_*_exp1_*"
    cases = plan_cases(CIFAR, only, (0.5, 1.0))
    assert len(cases) > len(plan_cases(CIFAR, only))
    with Store(db) as store:
        s = run_campaign(store, CIFAR, LOCAL, RuntimeConfig(), CampaignSettings(timing=FAST, cache=cache, cases=cases))
        assert s.measured == len(cases) - len(plan_cases(CIFAR, only)) and not s.failed
        lut = build_lut(store, "local", RuntimeConfig().key)
    table = LatencyTable(lut)
    t, _, counts = width_table(table, (0.5, 1.0))
    slot = CIFAR.layer_slots()[19]                  # stage 5, inner layer at 4 x 4
    half = dc_replace(slot.case(0), cin=96, cout=96)
    assert t[19, 0, 0, 0] == lut.latency_ms[half.key]
    assert counts["measured"] > 0


def test_evolve_under_a_peak_memory_budget(tmp_path):
    """MCUNet-style: the largest block's memory must fit. The LUT's memory column here is
    each block's activation bytes at int8 (in + expanded + out), written into a HW-NAS-Bench
    LUT."""
    from click.testing import CliRunner

    from lutfarm.cli import cli
    from lutfarm.lut import save_lut
    from lutfarm.search.objectives.space import lut_peak_memory

    lut = import_hwnasbench(BUNDLED, "raspi4", "cifar")
    cases = {c.key: c for row in lut.layout.choice_cases() for c in row}
    cases.update({c.key: c for c in lut.layout.fixed_cases()})

    def act_bytes(c):
        n, ch, h, w = c.input_shape if len(c.input_shape) == 4 else (*c.input_shape, 1, 1)
        s = c.stride or 1
        return ch * h * w * (1 + (c.exp or 0)) + c.cout * max(h // s, 1) * max(w // s, 1)

    for key, c in cases.items():
        lut.extra.setdefault(key, {})["peak_mem_bytes"] = act_bytes(c)
    lut.meta["memory_method"] = "test: activation bytes"
    path = save_lut(lut, tmp_path / "mem.csv")
    memory = lut_peak_memory(lut)
    free = json.loads(CliRunner().invoke(cli, ["search", "evolve", "--lut", str(path),
                                               "--budget-ms", "1000", "--generations", "30",
                                               "--json"]).stdout)
    unconstrained_kb = float(memory(np.array([free["arch"]]))[0])
    smallest_kb = max(memory.fixed, memory.table.min(axis=1).max())   # best achievable
    assert unconstrained_kb > smallest_kb, "the free winner must need more than the minimum"
    limit = (smallest_kb + unconstrained_kb) / 2
    res = CliRunner().invoke(cli, ["search", "evolve", "--lut", str(path), "--budget-ms", "1000",
                                   "--generations", "30", "--max-memory-kb", str(limit), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    by_hand = max(act_bytes(c) for c in lut.layout.arch_cases(got["arch"])) / 1024
    assert got["peak_memory_kb"] == pytest.approx(by_hand) and by_hand <= limit
    assert got["mmacs"] < free["mmacs"]            # the budget binds: a smaller network wins


def test_search_on_a_lut_with_a_missing_entry_names_it_instead_of_returning_nan(tmp_path):
    """evolve and DNAS price archs through LatencyTable: one missing case is one clear error."""
    from lutfarm.lut import save_lut
    from lutfarm.lut.table import LUTError

    lut = import_hwnasbench(BUNDLED, "raspi4")
    key = CIFAR.choice_cases()[5][7].key
    del lut.latency_ms[key]
    partial = LatencyTable(lut)
    with pytest.raises(LUTError, match=key):
        lut_latency(partial)
    from lutfarm.search.supernets.dnas import SuperNet
    with pytest.raises(LUTError, match=key):
        SuperNet(partial, classes=10)
    path = save_lut(lut, tmp_path / "partial.csv")
    p = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(path),
                        "--budget-ms", "30", "--generations", "2", "--population", "8"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stdout
    assert p.stderr.count("\n") == 1 and key in p.stderr and "Traceback" not in p.stderr


def test_verified_search_learns_from_each_measured_winner_until_one_holds_its_budget():
    """A synthetic device: expansion-6 blocks cost 15 % more inside networks than the LUT says,
    and the correction never saw one (its training networks avoid them)."""
    from lutfarm.predictors.in_context import InContextCorrection, block_costs
    from lutfarm.search.methods.verified import verified_search
    from lutfarm.search.objectives.space import CorrectedLatency

    space, mm = fbnet_space(CIFAR), macs(CIFAR)
    factor = np.ones(9 * 7)
    factor[[s * 9 + op for s in range(7) for op in (3, 7)]] = 1.15

    def truth(archs):
        return RASPI.latency(archs) + block_costs(RASPI, archs) @ (factor - 1)

    rng = np.random.default_rng(0)
    train = space.random(30, rng)
    train[train == 3], train[train == 7] = 2, 6
    model = CorrectedLatency(RASPI, InContextCorrection().fit(RASPI, train, truth(train)))
    budget = float(np.median(truth(space.random(300, rng))))
    measured = []

    def measure(arch):
        measured.append(tuple(arch))
        return float(truth(np.array([arch]))[0]), 1.0

    def search(latency):
        return constrained_evolution(space, mm, lambda a: latency(a) <= budget, 40, 40, seed=1)

    answer, rounds = verified_search(search, model, space, measure, budget, 8)
    first, last = rounds[0], rounds[-1]
    assert not first.within_budget           # the blind model promised what the device breaks
    assert answer.within_budget and last.within_budget and answer.measured_ms >= 0.9 * budget
    assert abs(last.predicted_ms / last.measured_ms - 1) < abs(first.predicted_ms /
                                                                first.measured_ms - 1)
    assert len(measured) == len(rounds) == len(set(measured))   # each winner measured once
    assert len(model.correction.train) == 30 + len(rounds) - 1   # learnt from each miss


def test_cli_verified_search_on_the_corrected_model(tmp_path, measured_db, cache):
    """validate (correction stored with the LUT) -> export -> search on the corrected model,
    measuring each round's winner on this machine."""
    from conftest import FAST
    from lutfarm.lut import build_lut, save_lut
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings
    from lutfarm.profiler.store import Store
    from lutfarm.spaces.fbnet import NetworkCase
    from lutfarm.workflows.validate_networks import run_validation
    db = tmp_path / "v.db"
    db.write_bytes(measured_db.read_bytes())
    rt = RuntimeConfig()
    with Store(db) as store:
        bare = save_lut(build_lut(store, "local", rt.key), tmp_path / "bare.csv")
        run_validation(store, build_lut(store, "local", rt.key), [LOCAL], rt, 12,
                       CampaignSettings(timing=FAST, cache=cache), every=0)
        lut = save_lut(build_lut(store, "local", rt.key), tmp_path / "local.csv")
    table = LatencyTable(build_lut(Store(db), "local", rt.key))
    # the budget as the command line gets it: rounded to 0.1 µs (a winner within the rounded
    # budget is over the unrounded one by up to 50 ns, and CI once found one)
    budget = round(float(np.median(table.latency(
        fbnet_space(CIFAR).random(200, np.random.default_rng(0))))), 4)
    args = [sys.executable, "-m", "lutfarm", "search", "evolve", "--budget-ms", f"{budget:.4f}",
            "--generations", "30", "--db", str(db)]
    p = subprocess.run(args + ["--lut", str(bare), "--latency", "corrected"], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode != 0 and "carries no in-context correction" in p.stderr
    p = subprocess.run(args + ["--lut", str(lut), "--latency", "corrected", "--verify",
                               "--rounds", "3", "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    out = json.loads(p.stdout)       # printed whether or not a winner held
    v = out["verified"]
    # the corrected model fitted to 12 quick networks may miss in every round (the search
    # seeks out where it errs low): then exit 1 with one line, the rounds still in the JSON
    if v["held"]:
        assert p.returncode == 0, p.stderr[-800:]
    else:
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 1 and p.stderr.count("error:") == 1 and lines[-1].startswith(
            f"error: no winner held the {budget:g} ms budget in {len(v['rounds'])} round(s)")
        assert f"{v['at_lut_speed_over_budget']:.3f}x" in lines[-1]
        assert v["at_lut_speed_ms"] == min(r["at_lut_speed_ms"] for r in v["rounds"])
    assert out["latency_model"] == "corrected" and out["budget_ms"] == pytest.approx(budget, 1e-3)
    assert 1 <= len(v["rounds"]) <= 3
    with Store(db) as store:
        stored = store.latest("local", rt.key)
    for r in v["rounds"]:       # every round's winner was measured as a whole network
        assert r["measured_ms"] == stored[NetworkCase(CIFAR, tuple(r["arch"])).key].median_ms
        assert r["predicted_ms"] <= budget * (1 + 1e-6) or r["round"] > 1
    chosen = next(r for r in v["rounds"] if r["arch"] == out["arch"])
    assert v["measured_ms"] == chosen["measured_ms"]
    assert v["within_budget"] == (v["measured_ms"] <= budget)
    # judged at the LUT's speed: the measurement over the speed its blocks ran at just then
    assert v["speed"] > 0 and v["at_lut_speed_ms"] == pytest.approx(v["measured_ms"] / v["speed"])
    assert v["holds_at_lut_speed"] or not any(r["holds_at_lut_speed"] for r in v["rounds"])


def _device_that_costs_more_than_its_blocks(table):
    """A stand-in for end-to-end measurement, so the loop's logic is checked exactly: whole
    networks cost 1.1x their LUT sum plus 0.3 ms (what the issue saw on ONNX Runtime here:
    winners at 1.07-1.26x). The real device is checked by the CLI test below."""
    def measure(arch):
        return 1.1 * float(table.latency([arch])[0]) + 0.3, 1.0
    return measure


def test_verify_keeps_searching_until_a_winner_holds_where_the_plain_sum_misses():
    from lutfarm.search.methods.registry import run_method
    from lutfarm.search.methods.verified import verified_search
    from lutfarm.search.objectives.space import MeasuredScale, within
    space, plain = fbnet_space(CIFAR), lut_latency(RASPI)
    budget = float(np.median(plain(space.random(300, np.random.default_rng(1)))))
    measure = _device_that_costs_more_than_its_blocks(RASPI)

    def search(latency):
        return run_method("constrained", space, macs(CIFAR), within((latency, budget)), 3000,
                          seed=0, population=50)

    # the miss the issue reports: the plain sum's winner predicted within budget, measured over
    answer, rounds = verified_search(search, plain, space, measure, budget, 5)
    assert rounds[0].predicted_ms <= budget < rounds[0].measured_ms
    assert not any(r.holds for r in rounds) and not answer.holds   # overriding the measured
    assert answer.at_lut_speed_ms == min(r.at_lut_speed_ms for r in rounds)  # ... is not enough
    # scaled by what the measured winners showed: round 2 on, the loop ends within budget
    answer, rounds = verified_search(search, MeasuredScale(plain), space, measure, budget, 5)
    assert not rounds[0].holds and answer.holds and 2 <= len(rounds) <= 5
    assert answer.at_lut_speed_ms >= 0.9 * budget         # and it still uses the budget
    assert answer.objective == max(r.objective for r in rounds if r.holds)


def test_auto_latency_trusts_the_plain_sum_unless_its_validation_found_it_low():
    from lutfarm.lut.validation_report import LUTValidation
    from lutfarm.search.objectives.space import auto_latency_model

    def report(mean_ratio, correction=None):
        return LUTValidation("chain", "d", "rt", "cifar", 6, {"mean_ratio": mean_ratio}, {},
                             correction=correction or {})
    fitted = {"model": "in-context-v3"}
    assert auto_latency_model(None) == "plain"                           # never validated
    assert auto_latency_model(report(1.04, fitted)) == "plain"
    assert auto_latency_model(report(0.87, fitted)) == "corrected"
    assert auto_latency_model(report(0.87)) == "plain"                   # nothing to correct


@pytest.mark.needs("nb201-data")
def test_canonical_nb201_queries_never_train_one_function_twice():
    from lutfarm.search.methods.nb201 import SPACE, load_nb201
    from lutfarm.search.methods.registry import run_method
    table = load_nb201(NB201)
    lat = table.latency["raspi4"]
    budget = float(np.nanpercentile(lat, 30))

    def objective(archs):
        return table.lookup(table.accuracy, archs)

    def feasible(archs):
        return table.lookup(lat, archs) <= budget

    for method in ("random", "evolution", "local", "predictor", "bananas"):
        raw = run_method(method, SPACE, objective, feasible, 150, seed=3)
        canon = run_method(method, table.canonical_space(), objective, feasible, 150, seed=3)
        classes = table.classes[SPACE.encode(canon.archs)]
        assert len(canon.archs) == 150 and len(np.unique(classes)) == 150, method
        assert feasible(canon.archs).all()
        if method == "random":     # uniform draws over 4 688 cells do hit one class twice
            assert len(np.unique(table.classes[SPACE.encode(raw.archs)])) < 150


@pytest.mark.needs("nb201-data")
def test_macs_starts_are_the_feasible_classes_with_the_most_live_compute():
    from lutfarm.search.methods.nb201 import SPACE, load_nb201, macs_starts
    from lutfarm.spaces.nb201 import LAYOUTS
    table = load_nb201(NB201)
    layout = LAYOUTS["cifar10"]
    for arch in ((3, 3, 3, 3, 3, 3), (0, 1, 2, 4, 0, 3), (2, 0, 0, 0, 0, 0)):
        assert table.macs[SPACE.encode(np.array([arch]))[0]] == layout.macs(arch)
    # a conv feeding node 1, whose only way out is a none edge, computes nothing that counts
    dead, live = SPACE.encode(np.array([(3, 0, 0, 1, 0, 0), (0, 0, 0, 1, 0, 0)]))
    assert table.classes[dead] == table.classes[live]
    assert table.live_macs[dead] == table.macs[live] < table.macs[dead]
    ok = table.latency["pixel3"] <= np.nanpercentile(table.latency["pixel3"], 30)
    starts = macs_starts(table, ok, np.random.default_rng(0), top=20)
    codes = SPACE.encode(starts)
    assert ok[codes].all() and len(np.unique(table.classes[codes])) == 20
    others = np.setdiff1d(table.classes[ok], table.classes[codes])
    best_other = max(table.live_macs[np.flatnonzero(table.classes == k)[0]] for k in others)
    assert table.live_macs[codes].min() >= best_other
    again = macs_starts(table, ok, np.random.default_rng(1), top=20)
    assert set(SPACE.encode(again)) == set(codes) and (SPACE.encode(again) != codes).any()


@pytest.mark.needs("nb201-data")
def test_the_single_sample_floor_is_zero_without_noise_and_not_beaten_by_querying_all():
    from dataclasses import replace

    from lutfarm.search.methods.nb201 import load_nb201, single_sample_floor
    table = load_nb201(NB201)
    ok = table.latency["fpga"] <= np.nanpercentile(table.latency["fpga"], 30)
    # members without training noise: one query per class finds the best class exactly
    assert single_sample_floor(replace(table, accuracy=table.class_mean), ok) == 0.0
    floor = single_sample_floor(table, ok)
    # the real table: fpga's best class (6 cells) has one feasible cell, 0.5 points under its
    # mean, so the best value seen belongs to another class
    assert floor > 0.1
    assert single_sample_floor(table, ok, seed=1) == pytest.approx(floor, abs=0.05)
