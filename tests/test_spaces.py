"""Every registered search space through one contract (spaces/registry.py): its cases export
and compute what torch computes, an architecture's cases are among the enumerated ones and
price the torch network it builds, encodings and text forms round-trip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import tinyspace  # noqa: F401  (registers the test-only fourth space: it takes every check)
import torch
from torch import nn

from lutfarm.spaces import ArchError, get_layout, get_space, list_spaces, parse_case_key
from lutfarm.spaces.mcunet import MCUNetArch, example_arch
from lutfarm.spaces.mcunet_modules import SqueezeExcite
from lutfarm.spaces.modules import build_block, build_network, seeded_init

SPACES = list_spaces()


def layout_of(space: str):
    return get_layout(space)          # the space's default layout


def sample_cases(layout, per_kind: int = 2) -> list:
    """The first and last case of every kind the layout enumerates (a spread of shapes)."""
    by_kind: dict[str, list] = {}
    for case in layout.unique_cases():
        by_kind.setdefault(case.kind, []).append(case)
    out = []
    for cases in by_kind.values():
        out += [cases[0], cases[-1]][:per_kind] if len(cases) > 1 else cases
    return out


@pytest.mark.parametrize("space", SPACES)
def test_the_space_is_registered_whole(space):
    entry = get_space(space)
    layout = layout_of(space)
    assert layout.space == space and entry.default_layout in entry.layouts
    assert layout.overhead_case().kind == "Identity"
    keys = [c.key for c in layout.unique_cases()]
    assert len(keys) == len(set(keys)) and all(parse_case_key(k).key == k for k in keys)
    # the layers above ask the record for their piece; each one it names resolves
    from lutfarm.spaces.registry import PIECES
    pieces = {kind: entry.piece(kind) for kind in PIECES}
    assert callable(pieces["table"])
    assert all(p is None or callable(p) for p in pieces.values()), pieces


@pytest.mark.parametrize("space", SPACES)
def test_cases_export_to_onnx_and_compute_what_torch_computes(space, cache):
    for case in sample_cases(layout_of(space)):
        model = cache.get(case)
        x = np.random.default_rng(1).standard_normal(case.input_shape).astype(np.float32)
        session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        with torch.no_grad():
            want = seeded_init(build_block(case), case.key)(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape, case.key
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max() + 1),
                                   err_msg=case.key)


def torch_costs(net: nn.Module, x: torch.Tensor) -> tuple[int, int, int, torch.Tensor]:
    """(MACs, weights, largest activation) of a torch network, counted by hooks: convs and
    linears, average pools (one add per input element), SE gates (one multiply each)."""
    macs = [0]
    largest = [x.numel()]

    def count(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            macs[0] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] ** 2
        elif isinstance(m, nn.Linear):
            macs[0] += m.in_features * m.out_features
        elif isinstance(m, (nn.AvgPool2d, SqueezeExcite)):
            macs[0] += inputs[0].numel()
        largest[0] = max(largest[0], out.numel())
    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear, nn.AvgPool2d, SqueezeExcite))]
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return macs[0], weights, largest[0], out


@pytest.mark.parametrize("space", SPACES)
def test_an_archs_cases_are_enumerated_and_price_the_network_torch_builds(space):
    layout = layout_of(space)
    enumerated = {c.key for c in layout.unique_cases()}
    for arch in layout.sample_archs(3, seed=7):
        cases = layout.arch_cases(arch)
        assert {c.key for c in cases} <= enumerated
        net = seeded_init(build_network(layout, arch), "contract")
        case = layout.network_case(arch)
        macs, weights, largest, out = torch_costs(net, torch.randn(*case.input_shape))
        assert out.shape == (1, layout.classes)
        assert layout.macs(arch) == macs and layout.params(arch) == weights
        assert layout.peak_activation(arch) >= largest


@pytest.mark.parametrize("space", SPACES)
def test_encodings_text_and_network_keys_round_trip(space):
    layout = layout_of(space)
    archs = layout.sample_archs(20, seed=3)
    encoded = layout.encode(archs)
    assert encoded.shape == (20, layout.encoding_size) and set(np.unique(encoded)) <= {0, 1}
    for arch, row in zip(archs, encoded):
        canonical = layout.network_case(arch).arch
        assert layout.decode(row) == canonical
        assert layout.parse_arch(layout.arch_to_text(arch)) == arch
        case = layout.network_case(arch)
        assert parse_case_key(case.key) == case


# -- the MCUNet space ----------------------------------------------------------------------

MCU = get_layout("mcunet", "vww")


def test_mcunet_widths_follow_ofamcunets_make_divisible():
    # stem 32, first block 16, stages 24..320, feature mix 384 (mcunet384), times 0.5/0.75/1.0
    assert MCU.channels(1.0) == (32, 16, [24, 40, 80, 96, 192, 320], 384)
    assert MCU.channels(0.5) == (16, 8, [16, 24, 40, 48, 96, 160], 384)
    # 24 * 0.75 = 18 rounds to 16, more than 10 % down, so 24 (the rule's guard)
    assert MCU.channels(0.75) == (24, 16, [24, 32, 64, 72, 144, 240], 384)


def test_mcunet_arch_depths_strides_and_se_as_the_seed_builds_them():
    arch = example_arch()          # deepest: 3 + 4 + 4 + 4 + 4 + 1 elastic blocks
    cases = MCU.arch_cases(arch)
    blocks = [c for c in cases if c.kind == "MBConv"]
    assert len(blocks) == 20 and [c.kind for c in cases[:2]] == ["ConvNormR6", "PointLinear"]
    assert [c.kind for c in cases[-3:]] == ["ConvNormR6", "AvgP", "FC"]
    assert [b.h for b in blocks if b.stride == 2] == [64, 32, 16, 8]    # 128 px, stem /2
    assert [b.se for b in blocks] == [0] * 3 + [0, 1, 1, 1] + [1] * 12 + [0]
    shallow = MCUNetArch(arch.ks, arch.e, (0,) * 6, 1.0, 128)            # base depth only
    assert sum(c.kind == "MBConv" for c in MCU.arch_cases(shallow)) == 1 + 2 * 4 + 1
    assert cases[-1].cout == 2 and get_layout("mcunet", "c10").arch_cases(arch)[-1].cout == 10


def test_mcunet_cases_per_resolution_and_readable_keys():
    # per width: stem, first block, 18 MBConv per stage for five stages (a stride block and
    # the repeated one, 9 kernel x expand each), 9 for the last, mix, pool, classifier = 104;
    # x 3 widths, minus the pool and classifier the widths share (4), minus stage 0's 18
    # blocks that widths 0.75 and 1.0 share (both 16 -> 24 channels): 290
    assert MCU.cases_per_resolution() == {r: 290 for r in (96, 112, 128, 144, 160)}
    narrow = MCU.with_resolutions([96, 128])
    # + the 96 px overhead model, - the classifier (no H: one case for every resolution)
    assert len(narrow.unique_cases()) == 290 * 2 + 1 - 1
    keys = {c.key for c in narrow.unique_cases()}
    assert "MBConv_H48_W48_Cin16_Cout24_exp6_kernel7_stride2_se0" in keys
    assert "MBConv_H8_W8_Cin96_Cout96_exp4_kernel5_stride1_se1" in keys


def test_mcunet_archs_read_from_json_the_seeds_dicts_and_strings_with_clear_errors():
    arch = MCU.sample_archs(1, seed=5)[0]
    assert MCU.parse_arch(json.dumps(arch.to_json())) == arch
    seed_cfg = {"wid": 1, "ks": list(arch.ks), "e": list(arch.e), "d": list(arch.d),
                "image_size": 112}
    parsed = MCU.parse_arch(json.dumps(seed_cfg))
    assert parsed.width == 0.75 and parsed.resolution == 112
    with pytest.raises(ArchError, match=r"kernel \[4\] not in \[3, 5, 7\]"):
        MCU.parse_arch(arch.to_str().replace("_k" + str(arch.ks[0]), "_k4"))
    with pytest.raises(ArchError, match="resolution 100 not in"):
        MCU.parse_arch(json.dumps(dict(arch.to_json(), resolution=100)))
    with pytest.raises(ArchError, match="expected r<resolution>"):
        MCU.parse_arch("r128-w1")


@pytest.mark.needs("tflite-toolchain")
def test_mcunet_blocks_export_to_tflite_int8_and_match_torch(cache):
    """The MCU path: an SE block and the fused first block as int8 TFLite, checked against
    torch by the exporter's own checks (TFLite-Micro's host interpreter among them)."""
    arch = example_arch()
    cases = MCU.arch_cases(arch)
    se_block = next(c for c in cases if c.kind == "MBConv" and c.se and c.stride == 2)
    for case in (se_block, cases[1]):
        model = cache.get(case, "tflite", "int8")
        assert model.checks and all(c["ok"] for c in model.checks), (case.key, model.checks)


@pytest.mark.needs("tflite-toolchain")
def test_tflite_export_runs_in_worker_processes_into_one_cache(tmp_path, cache):
    """get_many: the missing models exported by two worker processes (TFLite conversion takes
    seconds per block), found again by a fresh cache without exporting; the same bytes as this
    process's own export of a case."""
    from lutfarm.profiler.export.cache import ModelCache
    cases = {c.key: c for c in MCU.with_resolutions([96]).resolution_cases(96)
             if c.kind == "MBConv" and c.se and c.exp == 3 and c.kernel == 5}
    cases = dict(list(cases.items())[:3])
    fresh = ModelCache(tmp_path / "cache")
    seen = []
    out = fresh.get_many(cases, "tflite", "fp32", workers=2,
                         on_result=lambda key, model: seen.append(key))
    assert sorted(seen) == sorted(cases) and fresh.stats.exported == 3
    assert all(m.checks and all(c["ok"] for c in m.checks) for m in out.values())
    again = ModelCache(tmp_path / "cache")
    assert again.get_many(cases, "tflite", "fp32") == out and again.stats.reused == 3
    key = next(iter(cases))
    assert cache.get(cases[key], "tflite", "fp32").sha256 == out[key].sha256


def test_nb201_profiles_into_a_lut_that_prices_its_networks(tmp_path, cache):
    """NB201 as an entry: its 15 cases measured (ONNX Runtime), a LUT per cell op and
    resolution, an arch priced from its cases; its networks are DAGs built by its own
    registered builder and export like any case."""
    from conftest import FAST
    from lutfarm.lut import build_lut
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
    from lutfarm.profiler.store import Store
    layout = get_layout("nb201", "cifar10")
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, layout, LOCAL, RuntimeConfig(),
                         CampaignSettings(timing=FAST, cache=cache))
        assert s.measured == len(layout.unique_cases()) + 1 and not s.failed
        lut = build_lut(store, "local", RuntimeConfig().key)
    assert lut.space == "nb201" and not lut.missing_cases()
    conv3, pool = (3,) * 6, (4,) * 6
    price = {a: sum(lut.latency_ms[c.key] for c in layout.arch_cases(a)) for a in (conv3, pool)}
    assert price[conv3] > price[pool]
    net = layout.network_case(layout.parse_arch("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|"
                                                "avg_pool_3x3~0|nor_conv_1x1~1|none~2|"))
    model = cache.get(net)
    x = np.random.default_rng(0).standard_normal(net.input_shape).astype(np.float32)
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = seeded_init(build_network(layout, net.arch), net.key)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max() + 1))


# -- cell spaces: searched on their own LUT --------------------------------------------------

def _profiled_lut(space: str, tmp_path, cache):
    from conftest import FAST
    from lutfarm.lut import build_lut, load_lut, save_lut
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
    from lutfarm.profiler.store import Store
    layout = get_layout(space)
    with Store(tmp_path / f"{space}.db") as store:
        s = run_campaign(store, layout, LOCAL, RuntimeConfig(),
                         CampaignSettings(timing=FAST, cache=cache))
        assert s.measured == len(layout.unique_cases()) + 1 and not s.failed
        path = save_lut(build_lut(store, "local", RuntimeConfig().key), tmp_path / f"{space}.csv")
    return layout, path, load_lut(path)


@pytest.mark.parametrize("space", ["nb201", "tiny"])
def test_a_cell_space_is_profiled_and_searched_on_its_own_lut(space, tmp_path, cache):
    """NB201 could be profiled into a LUT but not searched on it; every "cell" space now is,
    the test-only ``tiny`` space included (its whole definition is tests/tinyspace.py):
    profile -> LUT -> search evolve, the winner's figures recomputed from the LUT file."""
    from lutfarm.api import EvolveSettings, evolve
    layout, path, lut = _profiled_lut(space, tmp_path, cache)
    archs = [tuple(int(v) for v in a) for a in np.ndindex(*layout.gene_sizes)]
    price = {a: sum(lut.latency_ms[c.key] for c in layout.arch_cases(a)) for a in archs}
    budget = float(np.percentile(list(price.values()), 40))
    best = max((layout.macs(a), a) for a in archs if price[a] <= budget)     # the oracle
    table = get_space(space).piece("table")(lut)          # what the search prices with
    assert np.allclose(table.latency(np.array(archs)), [price[a] for a in archs])
    r = evolve(EvolveSettings(lut=path, budget_ms=budget, seed=1))
    arch = tuple(r["arch"])
    assert r.family == "cell" and r["latency_ms"] == pytest.approx(price[arch])
    assert r["latency_ms"] <= budget and r["mmacs"] == pytest.approx(layout.macs(arch) / 1e6)
    assert layout.parse_arch(r["arch_str"]) == arch
    if space == "tiny":                 # 9 archs: any method finds the optimum
        assert arch == best[1]
    else:                               # 500 evaluations of 15 625: near the oracle's MACs
        assert r["mmacs"] >= 0.8 * best[0] / 1e6
    cli = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(path),
                          "--budget-ms", f"{budget}", "--method", "bananas",
                          "--generations", "2", "--json"], capture_output=True, text=True,
                         timeout=600)
    if space == "tiny":                 # the CLI cannot see a space registered by a test
        assert cli.returncode == 2 and "unknown space 'tiny'" in cli.stderr
    else:
        assert cli.returncode == 0, cli.stderr[-1500:]
        got = json.loads(cli.stdout)
        assert got["method"].startswith("bananas") and got["latency_ms"] <= budget


def test_a_space_names_a_piece_the_layers_know_or_is_refused():
    from lutfarm.spaces.registry import Space, register_space
    entry = get_space("tiny")
    with pytest.raises(ValueError, match="unknown pieces \\['lutz'\\]"):
        register_space(Space("tiny2", entry.description, entry.layouts, entry.default_layout,
                             entry.network_case, family="cell", pieces={"lutz": "x:y"}))
    assert entry.piece("validate") is None and entry.piece("supernet") is None
