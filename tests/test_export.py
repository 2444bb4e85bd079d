"""Every block type exports to one self-contained ONNX file that computes what torch computes."""

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lutfarm.profiler.export.cache import ModelCache
from lutfarm.spaces import get_layout
from lutfarm.spaces.fbnet import OPS
from lutfarm.spaces.modules import build_block, build_network, seeded_init

CIFAR = get_layout("fbnet", "cifar")
SLOTS = CIFAR.layer_slots()
# A stride-2 channel-changing slot and a residual slot, for every op; plus the fixed layers.
CASES = [SLOTS[5].case(op) for op in OPS] + [SLOTS[2].case(op) for op in OPS] \
    + CIFAR.fixed_cases() + [CIFAR.overhead_case()]


def _torch_out(case, x):
    module = seeded_init(build_block(case), case.key)
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_onnx_model_matches_torch_block(case, cache):
    model = cache.get(case)
    x = np.random.default_rng(1).standard_normal(case.input_shape).astype(np.float32)
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    want = _torch_out(case, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max() + 1))


@pytest.mark.parametrize("case", CASES[:2], ids=[c.key for c in CASES[:2]])
def test_model_file_is_single_and_content_addressed(case, cache):
    model = cache.get(case)
    data = model.path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == model.sha256 == model.path.stem
    proto = onnx.load_model_from_string(data)
    onnx.checker.check_model(proto)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    # no external-data or temporary files beside the models (other tests export TFLite models
    # into the same session cache)
    assert sorted(p.name for p in model.path.parent.iterdir()
                  if p.suffix not in (".onnx", ".tflite")) == []


def test_second_campaign_reexports_nothing(cache_dir, cache):
    case = CASES[3]
    first = cache.get(case)
    again = ModelCache(cache_dir)          # a new process would build exactly this
    second = again.get(case)
    assert second == first
    assert again.stats.exported == 0 and again.stats.reused == 1


def test_residual_blocks_add_their_input():
    block = build_block(SLOTS[2].case(0))
    assert block.residual
    assert not build_block(SLOTS[5].case(0)).residual


def test_whole_network_runs_and_has_the_classes():
    net = seeded_init(build_network(CIFAR, [op % 9 for op in range(22)]), "net")
    with torch.no_grad():
        y = net(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 100)
