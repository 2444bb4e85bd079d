"""MCUNet LUTs and search: the vectorised subnet sums agree with the per-arch case lists, a
missing entry is one clear error, and the seed's search keeps every limit it is given."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FAST, REPO
from lutfarm.lut import build_lut, save_lut
from lutfarm.lut.subnets import SubnetTable
from lutfarm.lut.table import LUT, LUTError
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.search.methods.evolution import SearchError
from lutfarm.search.methods.subnets import (
    SubnetConstraints,
    evolve_subnets,
    subnet_macs,
    subnet_peak_activation,
)
from lutfarm.spaces import get_layout

MCU = get_layout("mcunet", "vww").with_resolutions([96, 128])


def synthetic_lut(layout, drop: str | None = None) -> LUT:
    """Latencies that depend on each case (MACs plus a per-key jitter); not measurements."""
    def ms(key, macs):
        jitter = int(hashlib.sha256(key.encode()).hexdigest()[:4], 16) / 65535
        return 0.05 + macs / 2e7 * (1 + 0.2 * jitter)
    latency = {c.key: ms(c.key, c.macs) for c in layout.case_list() if c.key != drop}
    return LUT("mcunet", layout.name, layout.classes, "synthetic", "onnxruntime-fp32-t1", latency,
               meta={"resolutions": list(layout.resolutions)})


def test_subnet_sums_match_each_archs_own_cases_plain_and_overhead_corrected():
    lut = synthetic_lut(MCU)
    table = SubnetTable(lut)
    archs = MCU.sample_archs(40, seed=11)
    got = table.latency(MCU.to_genes(archs))
    corrected = table.latency(MCU.to_genes(archs), "overhead")
    for arch, plain, corr in zip(archs, got, corrected):
        cases = MCU.arch_cases(arch)
        want = sum(lut.latency_ms[c.key] for c in cases)
        o = lut.latency_ms[MCU.overhead_case(arch.resolution).key]
        assert plain == pytest.approx(want) and corr == pytest.approx(want - (len(cases) - 1) * o)


def test_a_lut_missing_a_case_names_it_and_how_to_measure_it():
    victim = MCU.arch_cases(MCU.sample_archs(1, seed=2)[0])[5].key
    table = SubnetTable(synthetic_lut(MCU, drop=victim))
    with pytest.raises(LUTError, match=f"lacks a latency for case {victim}; measure it: "
                                       f"lutfarm profile --space mcunet --only '{victim}'"):
        table.latency(MCU.to_genes(MCU.sample_archs(1, seed=2)))
    with pytest.raises(LUTError, match="lacks 1 of the layout's"):
        table.check_complete()


def test_the_seeds_search_keeps_every_limit_and_beats_random_sampling():
    table = SubnetTable(synthetic_lut(MCU))
    genes = MCU.to_genes(MCU.sample_archs(500, seed=1))
    budget = float(np.percentile(table.latency(genes), 30))
    limits = SubnetConstraints(budget_ms=budget, max_memory_kb=200, max_mmacs=40)
    r = evolve_subnets(MCU, table, limits, population=50, generations=40, seed=3)
    assert r["constraints"] == vars(limits)
    assert r["latency_ms"] <= budget and r["peak_memory_kb"] <= 200 and r["mmacs"] <= 40
    assert r["memory_method"] == "analytical" and r["evaluations"] == 2000
    arch = MCU.parse_arch(r["arch_str"])
    assert MCU.macs(arch) / 1e6 == pytest.approx(r["mmacs"])
    assert MCU.peak_activation(arch) / 1024 == pytest.approx(r["peak_activation_kb"])
    # the winner is feasible under the same metrics the search used, arch by arch
    genes = MCU.to_genes([arch])
    assert subnet_macs(MCU)(genes)[0] <= 40 and subnet_peak_activation(MCU)(genes)[0] <= 200
    assert table.latency(genes)[0] <= budget
    # a limit that nothing meets is one clear error
    with pytest.raises(SearchError, match="loosen the budget"):
        evolve_subnets(MCU, table, SubnetConstraints(max_memory_kb=1), population=10,
                       generations=2)


def lutfarm(*args):
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_profile_build_and_search_an_mcunet_lut_from_the_cli(tmp_path, cache):
    """profile --space mcunet --resolutions 96 (a slice, with the built-in sleep stand-in:
    not a real runtime) -> a LUT that knows its resolution -> search on it; then the
    analytical search without a LUT, and the errors a user meets."""
    runtime = RuntimeConfig("bench-sleep")
    layout = get_layout("mcunet", "vww").with_resolutions([96])
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, layout, LOCAL, runtime,
                         CampaignSettings(timing=FAST, cache=cache, only="MBConv_H48_*"))
        assert s.measured == 18 and not s.failed
        lut = build_lut(store, "local", runtime.key)
    assert lut.space == "mcunet" and lut.meta["resolutions"] == [96]
    assert len(lut.meta["missing"]) == len(layout.unique_cases()) + 1 - 18
    path = save_lut(lut, tmp_path / "mcu.csv")
    partial = lutfarm("search", "evolve", "--lut", path, "--budget-ms", 10, "--json")
    blocks = sum(1 for k in layout.case_keys() if not k.startswith("Identity_"))
    assert partial.returncode == 2, partial.stderr
    assert f"the LUT lacks {blocks - 18} of the layout's" in partial.stderr
    assert "lutfarm profile --space mcunet --resolutions 96" in partial.stderr
    show = lutfarm("lut", "show", "--lut", path)
    assert show.returncode == 0, show.stderr
    assert "resolutions" in show.stdout and "96" in show.stdout and "missing" in show.stdout
    mismatch = lutfarm("search", "evolve", "--lut", path, "--space", "fbnet", "--budget-ms", 1)
    assert mismatch.returncode == 2 and "is for the mcunet space, not fbnet" in mismatch.stderr
    free = lutfarm("search", "evolve", "--space", "mcunet", "--max-mmacs", 30,
                   "--max-memory-kb", 128, "--generations", 20, "--json")
    assert free.returncode == 0, free.stderr
    r = json.loads(free.stdout)
    assert r["mmacs"] <= 30 and r["peak_memory_kb"] <= 128 and "latency_ms" not in r
    none = lutfarm("search", "evolve", "--space", "mcunet")
    assert none.returncode == 2 and "give at least one limit" in none.stderr


def test_lut_validate_measures_subnets_per_resolution(tmp_path, cache):
    """``lut validate`` on a complete 96 px MCUNet LUT, with the built-in sleep stand-in (NOT a
    real runtime: every call costs the same 2 ms, so the overhead-corrected sum, which counts
    one call per subnet, must match the measured subnets and the plain sum must not)."""
    db = tmp_path / "v.db"
    p = lutfarm("profile", "--space", "mcunet", "--resolutions", 96, "--runtime", "bench-sleep",
                "--db", db, "--min-time", "0.005", "--max-time", "0.02", "--json")
    assert p.returncode == 0, p.stderr[-800:]
    v = lutfarm("lut", "validate", "--db", db, "--runtime", "bench-sleep", "--archs", 6,
                "--out", tmp_path, "--json")
    assert v.returncode == 0, v.stderr[-800:]
    report = json.loads(v.stdout)
    assert report["resolutions"] == [96] and report["n"] == 6
    overhead, plain = report["per_resolution"]["96"]["overhead"], report["plain"]
    # ~25 calls priced where the subnet makes one: the plain sum is several times too high,
    # the overhead-corrected one off only by the sleeps' jitter (a loaded machine adds some)
    assert plain["mean_ratio"] > 5
    assert abs(overhead["mean_ratio"] - 1) < (plain["mean_ratio"] - 1) / 10, overhead
    assert report["memory"] == {}             # arenas come with TFLite-Micro only
    assert (tmp_path / "validate_local_bench-sleep-fp32-t1_mcunet-vww.png").stat().st_size > 0


def test_profile_sample_measures_n_blocks_and_the_lut_predicts_the_rest(tmp_path, cache_dir):
    """--sample 60 on the 96 px MCUNet space with ONNX Runtime: the fixed layers and 60 of
    its inverted residuals measured (a start, then the adaptive loop), the others priced by
    the block predictor; the LUT is complete, marks each predicted entry and carries the
    held-out figures; a subnet search runs on it."""
    db, lut_path = tmp_path / "s.db", tmp_path / "mcu.csv"
    p = lutfarm("profile", "--space", "mcunet", "--resolutions", 96, "--sample", 60, "--db", db,
                "--min-time", "0.005", "--max-time", "0.02", "--json")
    assert p.returncode == 0, p.stderr[-1500:]
    report = json.loads(p.stdout)
    layout = get_layout("mcunet").with_resolutions([96])
    blocks = [c for c in layout.unique_cases() if c.kind == "MBConv"]
    assert report["measured"] <= 60 and report["measured"] + report["predicted"] == len(blocks)
    held = report["held_out"]
    assert held["n"] >= 5 and held["within_10pct"] > 0 and 0 < held["mape"] < 0.5
    e = lutfarm("lut", "export", "--db", db, "--device", "local", "-o", lut_path)
    assert e.returncode == 0, e.stderr[-800:]
    from lutfarm.lut import load_lut
    lut = load_lut(lut_path)
    assert not lut.missing_cases() and len(lut.predicted_cases()) == report["predicted"]
    assert lut.meta["predicted"]["held_out"] == held
    s = lutfarm("search", "evolve", "--lut", lut_path, "--max-mmacs", 20, "--generations", 20,
                "--json")
    assert s.returncode == 0, s.stderr[-800:]
    winner = json.loads(s.stdout)
    q = lutfarm("lut", "query", "--lut", lut_path, "--arch-json", json.dumps(winner["arch"]),
                "--arch", layout.smallest_arch().to_str(), "--breakdown", "--json")
    assert q.returncode == 0, q.stderr[-800:]
    smallest, found = json.loads(q.stdout)["archs"]          # --arch first, then --arch-json
    assert found["arch_str"] == winner["arch_str"]
    assert found["latency_ms"] == pytest.approx(winner["latency_ms"])
    assert found["latency_ms"] == pytest.approx(sum(x["ms"] for x in found["layers"]))
    assert smallest["latency_ms"] < found["latency_ms"] and smallest["mmacs"] < found["mmacs"]


def test_a_case_the_runtime_cannot_take_makes_its_subnets_infeasible_not_the_search_fail():
    """A LUT with one hole (an export the runtime refused) still searches: every subnet that
    needs the hole is infeasible, and the result names it; a LUT with many holes is refused."""
    biggest = MCU.largest_arch()
    hole = next(c.key for c in MCU.arch_cases(biggest) if c.kind == "MBConv" and c.se)
    table = SubnetTable(synthetic_lut(MCU, drop=hole))
    r = evolve_subnets(MCU, table, SubnetConstraints(budget_ms=1e9), population=30,
                       generations=15, seed=0)
    assert r["unpriced_cases"] == [hole]
    assert hole not in {c.key for c in MCU.arch_cases(MCU.parse_arch(r["arch_str"]))}
    assert np.isnan(table.latency(MCU.to_genes([biggest]), missing="nan")[0])
    half = synthetic_lut(MCU)
    for key in list(half.latency_ms)[::2]:
        del half.latency_ms[key]
    with pytest.raises(LUTError, match="lutfarm profile --space mcunet --resolutions 96,128"):
        evolve_subnets(MCU, SubnetTable(half), SubnetConstraints(budget_ms=1.0))
