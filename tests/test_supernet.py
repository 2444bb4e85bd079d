"""One-shot supernets: resumable and repeatable training, BN recalibration, DDP on two gloo
ranks, subnet scoring, and searches that maximise accuracy (supernet or predictor)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import REPO
from lutfarm.search.supernets.data import digits32, split
from lutfarm.search.supernets.oneshot import (
    Checkpoint,
    SupernetError,
    TrainSettings,
    build_supernet,
    recalibrate_bn,
    train,
    train_distributed,
    train_epoch,
)
from lutfarm.spaces import get_layout

MCU = get_layout("mcunet", "c10", 10).with_resolutions([32, 48])   # small enough for a CPU
FAST = TrainSettings(epochs=2, batch_size=32, max_batches=3, seed=3)


def _checkpoint(layout=MCU, settings=FAST) -> Checkpoint:
    from dataclasses import asdict
    return Checkpoint(layout.space, layout.name, 10, list(getattr(layout, "resolutions", [])) or
                      None, "digits", asdict(settings))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Killed(Exception):
    pass


def _kill_after_first_epoch(record):
    raise _Killed    # the checkpoint of that epoch is already on disk, as after a real kill


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    whole = train(_checkpoint(), tmp_path / "whole.pt", FAST, "cpu")
    with pytest.raises(_Killed):
        train(_checkpoint(), tmp_path / "part.pt", FAST, "cpu", on_epoch=_kill_after_first_epoch)
    first = Checkpoint.load(tmp_path / "part.pt")
    assert first.epochs_done == 1
    after_one = dict(first.state)
    resumed = train(first, tmp_path / "part.pt", FAST, "cpu")
    assert resumed.epochs_done == 2 and len(resumed.history) == 2
    assert _same(whole.state, resumed.state)
    assert not _same(whole.state, after_one)                # the second epoch changed them
    assert _same(Checkpoint.load(tmp_path / "whole.pt").state, whole.state)


@pytest.mark.parametrize("space,layout", [("fbnet", "cifar"), ("mcunet", "c10")])
def test_every_subnet_runs_and_the_ends_are_the_largest_and_smallest(space, layout):
    lay = get_layout(space, layout, 10)
    lay = lay.with_resolutions([32]) if space == "mcunet" else lay
    net = build_supernet(lay, 10).eval()
    x = torch.randn(2, 3, lay.input_size, lay.input_size)
    rng = np.random.default_rng(0)
    for arch in [net.largest(), net.smallest(), net.sample(rng), net.sample(rng)]:
        assert net(x, arch).shape == (2, 10)
    assert lay.macs(net.largest()) > lay.macs(net.sample(rng)) > lay.macs(net.smallest())


def _sliced(full: torch.Tensor, rows: int, cols: int, groups: int) -> torch.Tensor:
    """The grouped-conv weight a block-diagonal slice of a dense 1x1 weight stands for."""
    r, c = rows // groups, cols // groups
    return torch.cat([full[g * r:(g + 1) * r, g * c:(g + 1) * c] for g in range(groups)])


@pytest.mark.parametrize("cin,cout,stride", [(16, 16, 1), (16, 24, 2)])
def test_each_fbnet_candidate_of_a_shared_block_is_the_space_block_with_sliced_weights(
        cin, cout, stride):
    from lutfarm.search.supernets.fbnet import ElasticFBNetBlock
    from lutfarm.spaces.fbnet import OPS, LayerSlot
    from lutfarm.spaces.modules import build_block

    torch.manual_seed(0)
    shared = ElasticFBNetBlock(cin, cout, stride).eval()
    for bn in [shared.expand.bn, shared.depthwise.bn, shared.project.bn]:
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.normal_()
        bn.bias.data.normal_()
    x = torch.randn(2, cin, 8, 8)
    slot = LayerSlot(0, 0, 8, cin, cout, stride)
    for op in OPS:
        block = build_block(slot.case(op)).eval()
        convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
        bns = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if op.exp is None:
            sources = [(shared.project, cout)] if convs else []
            with torch.no_grad():
                for conv in convs:
                    conv.weight.copy_(shared.project.conv.weight[:cout, :cin])
        else:
            mid, g, k = cin * op.exp, op.group, op.kernel
            o = (shared.depthwise.conv.kernel - k) // 2
            sources = [(shared.expand, mid), (shared.depthwise, mid), (shared.project, cout)]
            with torch.no_grad():
                convs[0].weight.copy_(_sliced(shared.expand.conv.weight, mid, cin, g))
                convs[1].weight.copy_(shared.depthwise.conv.weight[:mid, :, o:o + k, o:o + k])
                convs[2].weight.copy_(_sliced(shared.project.conv.weight, cout, mid, g))
        with torch.no_grad():
            for bn, (src, c) in zip(bns, sources):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).copy_(getattr(src.bn, name)[:c])
            torch.testing.assert_close(shared(x, op.index), block(x), msg=op.name)


def test_recalibration_gives_a_subnet_its_own_batch_statistics():
    net = build_supernet(MCU, 10)
    x = digits32(48).tensors[0][:64]
    arch = net.smallest()
    recalibrate_bn(net, arch, [(x, None)], "cpu")
    stem = net.stem
    out = stem.conv(torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear",
                                                    align_corners=False), 8)
    c = out.shape[1]
    torch.testing.assert_close(stem.bn.running_mean[:c], out.mean((0, 2, 3)))
    assert not net.training
    wide = net.largest()
    recalibrate_bn(net, wide, [(x, None)], "cpu")
    assert not torch.allclose(stem.bn.running_mean[:c], out.mean((0, 2, 3)))


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    settings = TrainSettings(epochs=1, batch_size=16, max_batches=3, seed=1)
    init = build_supernet(MCU, 10).state_dict()
    train_distributed(_checkpoint(settings=settings), tmp_path / "ddp.pt", settings, nproc=2,
                      device="cpu", final_weights=tmp_path / "ranks", quiet=True)
    r0 = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ranks" / "rank1.pt", weights_only=True)
    assert _same(r0, r1)
    assert not _same(r0, {k: v for k, v in init.items()})
    assert Checkpoint.load(tmp_path / "ddp.pt").epochs_done == 1


def test_more_nccl_ranks_than_gpus_is_refused_before_any_rank_starts():
    from lutfarm.search.supernets.distributed import DistributedError, spawn

    ranks = torch.cuda.device_count() + 1
    with pytest.raises(DistributedError, match=f"needs {ranks} GPUs"):
        spawn(print, (), ranks, "cuda")


def test_distillation_learns_the_largest_subnets_outputs_and_needs_the_sandwich():
    with pytest.raises(SupernetError, match="needs --sandwich"):
        TrainSettings(distill=True)
    x, y = digits32(32).tensors[0][:16], torch.arange(16) % 10
    grads = {}
    for distill in (False, True):
        torch.manual_seed(0)
        net = build_supernet(MCU, 10)
        settings = TrainSettings(epochs=1, sandwich=True, distill=distill, max_batches=1)
        opt = torch.optim.SGD(net.parameters(), lr=0.0)
        train_epoch(net, [(x, y)], opt, settings, 0, "cpu")
        grads[distill] = net.classifier.weight.grad.clone()
    assert not torch.allclose(grads[False], grads[True])    # the smaller subnets' loss changed


def test_ofa_kernel_transforms_start_as_the_centre_crop_and_then_learn_per_kernel_size():
    from lutfarm.search.supernets.elastic import ElasticConv
    torch.manual_seed(0)
    conv = ElasticConv(6, 6, 7, depthwise=True, transform_kernels=(3, 5, 7))
    assert sorted(conv.transforms) == ["3x3", "5x5"]
    x = torch.randn(2, 6, 9, 9)
    for k in (3, 5, 7):
        s = (7 - k) // 2
        crop = torch.nn.functional.conv2d(x, conv.weight[:, :, s:s + k, s:s + k], None, 1,
                                          k // 2, 1, 6)
        assert torch.allclose(conv(x, kernel=k), crop, atol=1e-6)
    conv(x, kernel=3).square().sum().backward()
    assert conv.transforms["3x3"].grad.abs().sum() > 0      # 3x3 learns its own transform
    assert conv.transforms["5x5"].grad.abs().sum() > 0      # through the 7 -> 5 -> 3 chain
    with torch.no_grad():
        conv.transforms["3x3"].add_(0.1)
    s = 2
    crop = torch.nn.functional.conv2d(x, conv.weight[:, :, s:s + 3, s:s + 3], None, 1, 1, 1, 6)
    assert not torch.allclose(conv(x, kernel=3), crop, atol=1e-4)
    assert torch.allclose(conv(x, kernel=7), torch.nn.functional.conv2d(x, conv.weight, None, 1,
                                                                        3, 1, 6), atol=1e-6)
    names = [n for n, _ in build_supernet(MCU, 10).named_parameters() if "transforms" in n]
    assert len(names) == 2 * 20                       # two matrices in each of MCUNet's 20 blocks


@pytest.mark.parametrize("layout, per_step", [(MCU, 3), (get_layout("fbnet", "cifar", 10), 9)])
def test_strict_fairness_runs_every_candidate_of_every_layer_once_per_step(layout, per_step):
    net = build_supernet(layout, 10)
    settings = TrainSettings(fair=True, seed=5)
    from lutfarm.search.supernets.oneshot import step_archs
    archs = step_archs(net, settings, 0, 0)
    assert len(archs) == per_step
    if layout.space == "mcunet":
        from lutfarm.spaces.mcunet import EXPANDS, KERNELS
        for i in range(20):
            assert sorted(a.ks[i] for a in archs) == list(KERNELS)
            assert sorted(a.e[i] for a in archs) == list(EXPANDS)
    else:
        for i in range(len(archs[0])):
            assert sorted(a[i] for a in archs) == list(range(9))
    assert step_archs(net, settings, 0, 1) != archs        # a new draw every step
    assert step_archs(net, settings, 0, 0) == archs        # the same one on every rank
    with pytest.raises(SupernetError, match="pick one"):
        TrainSettings(fair=True, sandwich=True)


def test_macs_binned_sampling_trains_the_large_and_small_ends_as_often_as_the_middle():
    from lutfarm.search.supernets.oneshot import step_archs
    net = build_supernet(MCU, 10)
    binned = [step_archs(net, TrainSettings(macs_bins=5), 0, k)[0] for k in range(400)]
    uniform = [step_archs(net, TrainSettings(), 0, k)[0] for k in range(400)]
    assert binned[:3] == [step_archs(net, TrainSettings(macs_bins=5), 0, k)[0] for k in range(3)]
    macs_b = np.array([MCU.macs(a) for a in binned], float)
    macs_u = np.array([MCU.macs(a) for a in uniform], float)
    edges = np.linspace(min(macs_b.min(), macs_u.min()), max(macs_b.max(), macs_u.max()), 6)
    share_b = np.histogram(macs_b, edges)[0] / 400
    share_u = np.histogram(macs_u, edges)[0] / 400
    assert share_b[-2:].sum() > 1.5 * share_u[-2:].sum()     # the large end, far more often
    assert share_b.max() < share_u.max()                     # and no MACs level dominates


def test_a_fair_step_sums_the_gradients_of_its_subnets():
    x, y = digits32(32).tensors[0][:8], torch.arange(8) % 10
    torch.manual_seed(0)
    net = build_supernet(MCU, 10)
    settings = TrainSettings(epochs=1, fair=True, max_batches=1, seed=2, lr=0.0)  # no step
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    train_epoch(net, [(x, y)], opt, settings, 0, "cpu")
    from lutfarm.search.supernets.oneshot import step_archs
    expected = [torch.zeros_like(p) for p in net.parameters()]
    for arch in step_archs(net, settings, 0, 0):
        copy = build_supernet(MCU, 10)
        copy.load_state_dict(net.state_dict())
        copy.train()
        torch.nn.functional.cross_entropy(copy(x, arch), y).backward()
        for e, p in zip(expected, copy.parameters()):
            if p.grad is not None:
                e.add_(p.grad)
    got = [p.grad if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]
    assert sum(float(e.abs().sum()) for e in expected) > 0
    assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got, expected))


def test_the_held_out_split_never_overlaps_training():
    data = digits32()
    tr, te = split(data, 0.2, seed=5)
    assert not set(tr.indices) & set(te.indices)
    assert len(te) == round(len(data) * 0.2) and len(tr) + len(te) == len(data)
    assert split(data, 0.2, seed=5)[1].indices == te.indices


def _cli(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kw)


MCU_ARGS = ("--space", "mcunet", "--layout", "c10", "--resolutions", "32,48", "--data", "digits",
            "--batch-size", "32", "--max-batches", "4")


def test_cli_train_killed_mid_run_resumes_and_refuses_another_space(tmp_path):
    out = tmp_path / "s.pt"
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm", "search", "supernet", "train",
                             *MCU_ARGS, "--epochs", "30", "-o", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not out.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = Checkpoint.load(out).epochs_done
    assert 1 <= done < 30
    r = _cli("search", "supernet", "train", *MCU_ARGS, "--epochs", done + 1, "-o", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming {out} after epoch {done} of {done + 1}" in " ".join(r.stderr.split())
    summary = json.loads(r.stdout)
    assert summary["epochs"] == done + 1
    scorer = Checkpoint.load(out).scorer(None)     # the figure is the checkpoint's own score
    assert summary["largest_accuracy"] == pytest.approx(100.0 * scorer(scorer.net.largest()))
    bad = _cli("search", "supernet", "train", "--data", "digits", "-o", out)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: {out} holds a mcunet/c10 supernet")


@pytest.fixture(scope="module")
def tiny_supernet(tmp_path_factory):
    path = tmp_path_factory.mktemp("supernet") / "mcu.pt"
    r = _cli("search", "supernet", "train", *MCU_ARGS, "--epochs", "1", "-o", path, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    return path


def test_search_on_supernet_accuracy_reports_what_the_supernet_scores(tiny_supernet):
    r = _cli("search", "evolve", "--accuracy", tiny_supernet, "--max-mmacs", "3",
             "--population", "4", "--generations", "2", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout)
    assert found["mmacs"] <= 3 and found["space"] == "mcunet"
    s = _cli("search", "supernet", "score", "--supernet", tiny_supernet, "--arch",
             found["arch_str"], "--json")
    assert s.returncode == 0, s.stderr[-2000:]
    assert json.loads(s.stdout)[0]["accuracy"] == pytest.approx(found["accuracy"])


def test_accuracy_predictor_from_supernet_scores_drives_a_fast_search(tiny_supernet, tmp_path):
    acc = tmp_path / "acc.json"
    t = _cli("predict", "train", "accuracy", "--supernet", tiny_supernet, "--samples", "12",
             "--epochs", "30", "-o", acc)
    assert t.returncode == 0, t.stderr[-2000:]
    meta = json.loads(acc.read_text())["meta"]
    assert meta["space"] == "mcunet" and meta["samples"] == 12
    assert meta["held_out"]["n_test"] == 3 and meta["resolutions"] == [32, 48]
    r = _cli("search", "evolve", "--accuracy", acc, "--max-mmacs", "3", "--population", "20",
             "--generations", "20", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout)
    assert found["mmacs"] <= 3 and found["evaluations"] == 400
    assert "predicted" in found["accuracy_source"]
    lo, hi = meta["accuracy_range"]
    assert lo - 20 < found["accuracy"] < hi + 20
    wrong = _cli("search", "evolve", "--space", "fbnet", "--accuracy", acc, "--max-mmacs", "3")
    assert wrong.returncode == 2 and "is for the mcunet space, not fbnet" in wrong.stderr


def test_a_missing_or_foreign_supernet_file_is_one_clear_line(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    r = _cli("search", "supernet", "score", "--supernet", junk, "--random", "1")
    assert r.returncode == 2 and r.stderr.startswith(f"error: {junk} is not a lutfarm supernet")
    with pytest.raises(SupernetError, match="no one-shot supernet for the nb201 space"):
        build_supernet(get_layout("nb201"), 10)
    assert os.path.exists(junk)


def _idx(path, array: np.ndarray) -> None:
    """An IDX file of bytes, gzipped (MNIST's format, as Debian ships Fashion-MNIST)."""
    import gzip
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_a_folder_of_idx_files_and_its_absence_in_one_line(tmp_path,
                                                                               monkeypatch):
    from lutfarm.search.supernets import data
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 28, 28)), np.arange(40) % 10
    for part, n in (("train", 40), ("t10k", 40)):
        _idx(tmp_path / f"{part}-images-idx3-ubyte.gz", images[:n])
        _idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", labels[:n])
    got = data.load_images(tmp_path, 32)          # a folder holding the four files
    assert len(got) == 40 and got.classes[9] == "Ankle boot" and data.num_classes(got) == 10
    x, y = got[3]
    assert x.shape == (3, 32, 32) and int(y) == 3 and -1.0 <= float(x.min()) <= float(x.max()) <= 1
    same = data.load_images(tmp_path, 28)[3][0][0]          # at 28 px: the bytes, scaled
    assert torch.allclose(same, torch.tensor(images[3], dtype=torch.float32) / 127.5 - 1)
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", tmp_path / "absent")
    with pytest.raises(data.DataError, match="apt-get install dataset-fashion-mnist"):
        data.load_images("fashion-mnist", 32)
    r = _cli("search", "supernet", "train", "--data", tmp_path / "nowhere", "-o",
             tmp_path / "s.pt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.needs("fashion-mnist")
def test_a_supernet_trains_on_a_slice_of_debians_fashion_mnist(tmp_path):
    from lutfarm.search.supernets.data import fashion_mnist, load_images
    train, test = load_images("fashion-mnist:600", 32), fashion_mnist(32, "test")
    assert len(train) == 600 and len(test) == 10_000
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10   # the published test set
    r = _cli("search", "supernet", "train", "--space", "mcunet", "--layout", "c10",
             "--resolutions", "32", "--data", "fashion-mnist:600", "--batch-size", "32",
             "--max-batches", "6", "--epochs", "1", "-o", tmp_path / "s.pt", "--json")
    assert r.returncode == 0, r.stderr[-1500:]
    assert 0 <= json.loads(r.stdout)["largest_accuracy"] <= 100


def test_macs_and_params_read_off_the_network_agree_with_the_block_counts():
    """Two independent counts: hooks on the real network's convolutions and linear layers,
    and the FBNet cases' own formulas (which leave out pooling and batch-norm parameters)."""
    from lutfarm.search.objectives.space import macs, params
    from lutfarm.search.supernets.ranking import macs_and_params
    from lutfarm.spaces import get_layout
    layout = get_layout("fbnet", "cifar", 10)
    for arch in ([0] * 22, [8] * 22, list(np.random.default_rng(0).integers(0, 9, 22))):
        m, p = macs_and_params(layout, tuple(arch))
        assert m / 1e6 == pytest.approx(macs(layout)(np.array([arch]))[0], rel=0.01)
        assert p / 1e6 == pytest.approx(params(layout)(np.array([arch]))[0], rel=0.02)


def test_naswot_scores_distinct_images_above_copies_of_one():
    from lutfarm.search.supernets.ranking import naswot
    from lutfarm.spaces import get_layout
    layout = get_layout("mcunet", "c10").with_resolutions([32])
    arch = layout.largest_arch()
    x = digits32(32).tensors[0][:32]
    score = naswot(layout, arch, x)
    assert score == naswot(layout, arch, x) and np.isfinite(score)      # seeded
    assert naswot(layout, arch, x[:1].repeat(32, 1, 1, 1)) < score - 10


def test_the_ranking_benchmark_trains_each_subnet_per_seed_and_reports_every_tau():
    from lutfarm.search.supernets.ranking import Recipe, ranking_benchmark
    from lutfarm.spaces import get_layout
    layout = get_layout("mcunet", "c10").with_resolutions([32])
    train_set, held_out = split(digits32(32))
    rng = np.random.default_rng(0)
    from lutfarm.search.supernets.oneshot import build_supernet
    archs = [build_supernet(layout, 10).sample(rng) for _ in range(3)]
    report = ranking_benchmark(layout, archs, train_set, held_out, Recipe(steps=3), seeds=2,
                               data="digits")
    assert np.array(report.standalone).shape == (3, 2)
    assert all(0 <= a <= 100 for row in report.standalone for a in row)
    assert set(report.taus()) == {"ceiling", "params", "macs", "naswot"}
    d = report.to_dict()
    assert d["n"] == 3 and d["recipe"]["steps"] == 3 and d["seconds"]["standalone_s"] > 0
    assert set(d["tau_se"]) <= set(d["taus"]) and all(v >= 0 for v in d["tau_se"].values())


def test_verify_accuracy_trains_the_winner_and_random_feasible_subnets_stand_alone(
        tiny_supernet):
    from lutfarm.search.methods.subnets import subnet_macs
    from lutfarm.search.objectives.accuracy import accuracy_data
    from lutfarm.search.supernets.ranking import Recipe, train_standalone
    r = _cli("search", "evolve", "--accuracy", tiny_supernet, "--max-mmacs", "3",
             "--population", "4", "--generations", "2", "--verify-accuracy", "2",
             "--verify-steps", "3", "--verify-seeds", "2", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout)
    c = found["accuracy_check"]
    assert [s["role"] for s in c["subnets"]] == ["winner", "random", "random"]
    assert c["subnets"][0]["arch"] == found["arch_str"]
    assert c["subnets"][0]["predicted"] == pytest.approx(found["accuracy"])
    assert len({s["arch"] for s in c["subnets"]}) == 3
    ck = Checkpoint.load(tiny_supernet)
    layout = ck.layout_obj()
    archs = [layout.parse_arch(s["arch"]) for s in c["subnets"]]
    assert (subnet_macs(layout)(layout.to_genes(archs)) <= 3).all()   # the search's limits
    assert all(len(s["measured"]) == 2 for s in c["subnets"])
    # the figure is a real stand-alone run: training the winner again gives it back
    train_set, held_out, data = accuracy_data(tiny_supernet, layout)
    assert data == ck.data
    again = train_standalone(layout, archs[0], train_set, held_out, Recipe(steps=3), "cpu", 1)
    assert again == pytest.approx(c["subnets"][0]["measured"][1])
    assert c["seed_noise"] >= 0 and c["winner_beats_random"] in (True, False)
    text = _cli("search", "evolve", "--accuracy", tiny_supernet, "--max-mmacs", "3",
                "--population", "4", "--generations", "2", "--verify-accuracy", "1",
                "--verify-steps", "2", "--verify-seeds", "1")
    assert text.returncode == 0, text.stderr[-2000:]
    assert "trained stand-alone" in text.stdout and "no seed noise" in text.stdout
    bad = _cli("search", "evolve", "--space", "mcunet", "--max-mmacs", "3",
               "--verify-accuracy", "2")
    assert bad.returncode == 2 and "--verify-accuracy checks what --accuracy predicted" in \
        bad.stderr
