"""Predictors: few-shot latency transfer on HELP's protocol, persistence."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from conftest import SHARED_DATA as DATA
from lutfarm.predictors.encoding import one_hot, with_pairs
from lutfarm.predictors.fewshot import FewShotTransfer
from lutfarm.predictors.persistence import PredictorError


def test_encodings():
    a = np.array([[0, 2], [1, 1]])
    assert one_hot(a, 3).tolist() == [[1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]
    x = with_pairs(a, 3)
    assert x.shape == (2, 6 + 9) and x[0, 6 + 2] == 1 and x[1, 6 + 4] == 1


def test_transfer_recovers_a_device_that_mixes_known_ones(tmp_path):
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 9, (600, 22))
    x = one_hot(archs, 9)
    w = {d: rng.random(x.shape[1]) for d in "abc"}
    lat = {d: np.exp(x @ w[d] * 0.1) for d in "abc"}
    new = np.exp(x @ (0.7 * w["a"] + 0.3 * w["c"]) * 0.1)      # an unseen device
    model = FewShotTransfer("fbnet", "onehot").fit_meta(
        x[:500], {d: v[:500] for d, v in lat.items()}).adapt(x[500:510], new[500:510])
    pred = model.predict(x[510:])
    assert np.corrcoef(np.log(pred), np.log(new[510:]))[0, 1] > 0.99
    path = tmp_path / "p.json"
    model.save(path)
    np.testing.assert_allclose(FewShotTransfer.load(path, "fbnet").predict(x[510:]), pred)
    with pytest.raises(PredictorError, match="trained for space 'fbnet', not 'nb201'"):
        FewShotTransfer.load(path, "nb201")
    with pytest.raises(PredictorError, match="600 latencies for 500 archs"):
        FewShotTransfer("fbnet", "onehot").fit_meta(x[:500], lat)
    with pytest.raises(PredictorError, match="positive"):
        model.adapt(x[:3], np.array([1.0, 0.0, 2.0]))


def test_free_features_rescue_a_device_unlike_every_known_one(tmp_path):
    """Known devices all rank by the one-hot weights; the new one ranks by a count no known
    device cares about (its FLOPs, say). Without free features the transfer cannot see it."""
    from scipy import stats
    rng = np.random.default_rng(1)
    archs = rng.integers(0, 9, (900, 22))
    x = one_hot(archs, 9)
    w = {d: rng.random(x.shape[1]) for d in "abc"}
    lat = {d: np.exp(x @ w[d] * 0.1) for d in "abc"}
    flops = (archs == 3).sum(1) * 2.0 + (archs == 7).sum(1) + rng.random(900) * 0.1
    new = np.exp(0.2 * flops)
    free = np.column_stack([flops, (archs == 8).sum(1)])
    free = (free - free.mean(0)) / free.std(0)
    meta = FewShotTransfer("fbnet", "onehot").fit_meta(x[:500], {d: v[:500] for d, v in lat.items()})
    a, q = slice(500, 510), slice(510, None)
    plain = stats.spearmanr(meta.adapt(x[a], new[a]).predict(x[q]), new[q]).statistic
    model = meta.adapt(x[a], new[a], free=free[a])
    pred = model.predict(x[q], free=free[q])
    rho = stats.spearmanr(pred, new[q]).statistic
    assert model.flops_fit is not None                 # the samples rank by it: it joins
    assert rho > 0.9 and rho > plain + 0.2, (rho, plain)
    path = tmp_path / "p.json"
    model.save(path)
    np.testing.assert_allclose(FewShotTransfer.load(path, "fbnet").predict(x[q], free=free[q]), pred)
    with pytest.raises(PredictorError, match="pass them to predict"):
        model.predict(x[q])


@pytest.mark.needs("shared-data")
def test_fewshot_on_every_fbnet_device_beats_flops_and_the_samples_alone():
    """FBNet, every device outside HELP's meta-train (GPUs at batch 1 especially, where FLOPs
    rank at 0.2): the transfer beats both baselines on each."""
    from lutfarm.predictors.help_protocol import evaluate_targets
    r = evaluate_targets("fbnet", DATA)
    assert len(r["devices"]) >= 15
    for device, v in r["devices"].items():
        assert v["spearman"] > max(v["flops_spearman"], v["samples_only_spearman"]), (device, v)


@pytest.mark.needs("shared-data")
def test_fewshot_eval_cli_gives_the_three_figures_per_target():
    proc = subprocess.run([sys.executable, "-m", "lutfarm", "predict", "eval", "fewshot",
                           "--space", "nb201", "--target", "edgetpu", "--target", "raspi4",
                           "--seed", "2", "--data", str(DATA), "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["space"] == "nb201" and r["first_seed"] == 2 and set(r["devices"]) == {"edgetpu", "raspi4"}
    for v in r["devices"].values():
        assert {"spearman", "flops_spearman", "samples_only_spearman"} <= set(v)
    # an edge TPU ranks unlike FLOPs (0.3); the transfer with free features does far better
    assert r["devices"]["edgetpu"]["spearman"] > r["devices"]["edgetpu"]["flops_spearman"] + 0.2


@pytest.mark.needs("shared-data")
@pytest.mark.parametrize("space", ["fbnet", "nb201"])
def test_help_protocol_beats_help(space):
    from lutfarm.predictors.help_protocol import evaluate
    r = evaluate(space, DATA, seeds=5)
    assert set(r["spearman"]) == set(r["help"])
    assert r["mean"] > r["help_mean"], r


def test_pairwise_loss_prefers_the_right_order():
    import torch

    from lutfarm.predictors.accuracy import pairwise_loss
    y = torch.tensor([1.0, 2.0, 3.0])
    good, bad = pairwise_loss(torch.tensor([0.1, 0.5, 0.9]), y), pairwise_loss(
        torch.tensor([0.9, 0.5, 0.1]), y)
    assert good < bad


def test_mlp_learns_saves_and_refuses_another_space(tmp_path):
    from scipy import stats

    from lutfarm.predictors.accuracy import MLPPredictor
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 5, (400, 6))
    x = one_hot(archs, 5)
    y = x @ rng.normal(size=x.shape[1]) + 0.05 * rng.normal(size=400)
    m = MLPPredictor(x.shape[1], hidden=64, meta={"space": "nb201"}).fit(x[:300], y[:300],
                                                                        "mse", epochs=150)
    assert stats.kendalltau(m.predict(x[300:]), y[300:]).statistic > 0.8
    path = tmp_path / "acc.json"
    m.save(path)
    np.testing.assert_allclose(MLPPredictor.load(path, "nb201").predict(x[300:]),
                               m.predict(x[300:]), rtol=1e-5)
    with pytest.raises(PredictorError, match="not 'fbnet'"):
        MLPPredictor.load(path, "fbnet")
    with pytest.raises(PredictorError, match="unknown loss"):
        m.fit(x, y, "hinge")


@pytest.mark.needs("shared-data")
def test_accuracy_predictor_ranks_nb201_with_424_samples():
    from lutfarm.predictors.nb201_accuracy import evaluate
    r = evaluate(DATA / "nb201_master.csv", sizes=(424,), methods=("pairwise",), epochs=150)
    assert r["pairwise"][424]["kendall"] > 0.6


def test_arch_level_predictors_on_synthetic_in_context_effects(measured_db):
    from lutfarm.lut import LatencyTable, build_lut
    from lutfarm.predictors.arch_latency import evaluate
    from lutfarm.predictors.in_context import block_costs
    from lutfarm.profiler.store import Store
    with Store(measured_db) as store:
        table = LatencyTable(build_lut(store, "local", "onnxruntime-fp32-t1"))
    archs = np.random.default_rng(2).integers(0, 9, (160, 22))
    costs = block_costs(table, archs)
    factors = np.ones(costs.shape[1])
    factors[[1, 5, 12]] = 1.3
    measured = table.latency(archs, "overhead") + costs @ (factors - 1)
    r = evaluate(table, archs, measured)
    assert r["lut+residual"]["within_5pct"] == 1.0
    assert r["lut+residual"]["spearman"] > r["mlp"]["spearman"]
    assert r["plain_lut"]["mean_ratio"] > 1.0


def _random_blocks(n, seed):
    from lutfarm.spaces import BlockCase
    rng = np.random.default_rng(seed)
    out = {}
    while len(out) < n:
        g = int(rng.choice([1, 2]))
        c = BlockCase("ConvBlock", int(rng.choice([16, 24, 32, 64])), int(rng.choice([16, 32, 64])),
                      h=int(rng.choice([8, 16, 32])), w=0, exp=int(rng.choice([1, 3, 6])),
                      kernel=int(rng.choice([3, 5])), stride=int(rng.choice([1, 2])), group=g)
        c = type(c)(**{**c.__dict__, "w": c.h})
        out[c.key] = c
    return list(out.values())


def test_block_predictor_learns_saves_and_adaptive_sampling_adds_cases(tmp_path):
    from lutfarm.predictors.block_latency import BlockLatencyPredictor, adaptive_sample

    def fake_device(cases):   # a deterministic cost model standing in for a device
        return {c.key: 0.01 + c.macs / 2e8 * (1.3 if c.group == 2 else 1.0) for c in cases}

    train, val = _random_blocks(80, 1), _random_blocks(40, 2)
    p, history = adaptive_sample(fake_device, train, val, rounds=1, device="d", runtime="r")
    assert history[-1]["train"] >= history[0]["train"]
    assert history[-1]["within_10pct"] >= 0.8
    test = _random_blocks(30, 3)
    truth = np.array(list(fake_device(test).values()))
    path = tmp_path / "b.json"
    p.save(path)
    np.testing.assert_allclose(BlockLatencyPredictor.load(path, "d", "r").predict(test),
                               p.predict(test))
    with pytest.raises(PredictorError, match="trained for device 'd', not 'pi'"):
        BlockLatencyPredictor.load(path, device="pi")
    assert np.corrcoef(p.predict(test), truth)[0, 1] > 0.95


def test_cli_predict_train_query_and_eval(tmp_path, measured_db):
    run = lambda *a: subprocess.run([sys.executable, "-m", "lutfarm", "predict", *map(str, a)],  # noqa: E731
                                    cwd=REPO, capture_output=True, text=True, timeout=300)
    model = tmp_path / "block.json"
    t = run("train", "--db", measured_db, "-o", model)
    assert t.returncode == 0, t.stderr
    assert json.loads(model.read_text())["meta"]["held_out"]["n"] > 0
    key = "ConvBlock_H28_W28_Cin40_Cout40_exp6_kernel3_stride1_group1"   # never measured
    q = run("query", "--model", model, "--case", key, "--json")
    assert json.loads(q.stdout)[key] > 0
    bad = run("train", "--db", measured_db, "--device", "nowhere", "-o", model)
    assert bad.returncode == 2 and bad.stderr.startswith("error: 0 ConvBlock cases (fbnet) measured on nowhere")
    mcu = run("train", "--space", "mcunet", "--db", measured_db, "-o", tmp_path / "m.json")
    assert mcu.returncode == 2 and "0 MBConv cases (mcunet)" in mcu.stderr
    assert "--space mcunet --sample" in mcu.stderr
    other = run("query", "--model", model, "--case",
                "MBConv_H48_W48_Cin8_Cout16_exp3_kernel3_stride2_se0")
    assert other.returncode == 2, other.stderr
    assert "models ConvBlock blocks, not MBConv" in other.stderr


@pytest.mark.needs("shared-data")
def test_cli_predict_eval_fewshot_beats_help_on_fbnet():
    e = subprocess.run([sys.executable, "-m", "lutfarm", "predict", "eval", "fewshot", "--data",
                        str(DATA), "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert e.returncode == 0, e.stderr[-800:]
    r = json.loads(e.stdout)
    assert r["fbnet"]["mean"] > r["fbnet"]["help_mean"]
    for space in ("fbnet", "nb201"):     # and every other device beside the two baselines
        assert "edgegpu" in r["nb201"]["devices"] and "pixel2" in r[space]["devices"]


def test_a_predictor_is_repeatable_and_leaves_the_callers_random_state_alone():
    import torch

    from lutfarm.predictors.accuracy import MLPPredictor
    x = np.random.default_rng(0).random((40, 6))
    y = x @ np.arange(6.0)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = MLPPredictor(6, hidden=16, layers=1, seed=4).fit(x, y, epochs=5)
    b = MLPPredictor(6, hidden=16, layers=1, seed=4).fit(x, y, epochs=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


@pytest.mark.needs("nb201-data")
def test_cli_predict_eval_accuracy_ranks_held_out_nb201_archs():
    e = subprocess.run([sys.executable, "-m", "lutfarm", "predict", "eval", "accuracy", "--data",
                        str(DATA), "--train-sizes", "200", "--epochs", "60", "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert e.returncode == 0, e.stderr[-800:]
    r = json.loads(e.stdout)
    assert set(r) == {"mse", "pairwise", "fbnetv3"}
    for method, by_n in r.items():       # 200 training archs already rank 3000 held-out ones
        assert by_n["200"]["kendall"] > 0.3, (method, by_n)
