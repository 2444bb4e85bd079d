"""TFLite paths for real: litert-torch exports (fp32, full int8), LiteRT, tflite-runtime under
numpy 1 and its numpy-2 refusal, the TFLite-Micro host interpreter with arena bisection, and
the MCU harness protocol against the labelled pty firmware stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import FAST, NP1_PYTHON, REPO, agent_root
from lutfarm.profiler.export.cache import ExportError, ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig, RuntimeConfigError
from lutfarm.spaces import BlockCase
from lutfarm_agent.protocol import events_in

pytestmark = pytest.mark.needs("tflite-toolchain")

# small cases: conversion costs ~2 s each whatever the size
CONV = BlockCase.from_key("ConvBlock_H4_W4_Cin184_Cout184_exp1_kernel3_stride1_group1")
SKIP = BlockCase.from_key("Skip_H8_W8_Cin64_Cout64_stride1")


@pytest.fixture(scope="module")
def models(cache: ModelCache) -> dict:
    """fp32 and int8 TFLite models of two blocks, in the session's cache."""
    return {(c.key, dtype): cache.get(c, "tflite", dtype) for c in (CONV, SKIP)
            for dtype in ("fp32", "int8")}


def run_agent(job: dict, python: str = sys.executable) -> tuple[int, list[dict]]:
    proc = subprocess.run([python, "-m", "lutfarm_agent"], input=json.dumps(job), capture_output=True,
                          text=True, cwd=agent_root(), timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(agent_root())))
    return proc.returncode, events_in(proc.stdout)


def job(models: list, **runtime) -> dict:
    return {"job_id": "t", "runtime": {"threads": 1, **runtime}, "timing": FAST.to_dict(),
            "cases": [{"key": m.case_key, "model": str(m.path), "sha256": m.sha256}
                      for m in models]}


def results(events: list[dict]) -> dict[str, dict]:
    return {e["key"]: e for e in events if e["event"] == "result"}


# -- export --------------------------------------------------------------------------------


def test_exports_are_nhwc_int8_end_to_end_checked_and_cached(models, cache_dir):
    from ai_edge_litert.interpreter import Interpreter

    fp32, int8 = models[(CONV.key, "fp32")], models[(CONV.key, "int8")]
    assert fp32.sha256 != int8.sha256 and fp32.path.suffix == ".tflite"
    it = Interpreter(model_path=str(int8.path))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert list(inp["shape"]) == [1, 4, 4, 184]               # NHWC
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8  # full integer, io included
    ops = {o["op_name"] for o in it._get_ops_details()}
    assert "DEQUANTIZE" not in ops and "QUANTIZE" not in ops
    for m, dtype in ((fp32, "fp32"), (int8, "int8")):
        litert = [c for c in m.checks if c["runtime"] == "litert"]
        assert litert and litert[0]["ok"], (dtype, m.checks)
    again = ModelCache(cache_dir)
    assert again.get(CONV, "tflite", "int8") == int8 and again.stats == type(again.stats)(reused=1)


def test_the_checks_catch_a_model_that_computes_something_else(models):
    from lutfarm.profiler.export.tflite import check_model

    data = models[(CONV.key, "fp32")].path.read_bytes()
    assert all(r.ok for r in check_model(CONV, data, "fp32"))
    # the int8 model judged as fp32: ~2 % quantisation noise is far outside float rounding
    int8 = models[(CONV.key, "int8")].path.read_bytes()
    litert = [r for r in check_model(CONV, int8, "fp32") if r.runtime == "litert"][0]
    assert not litert.ok and litert.error > 100 * litert.tolerance
    with pytest.raises(ExportError, match="LiteRT cannot run"):
        check_model(SKIP, data, "fp32")                     # another block's shapes


# 1x1 convolution with exactly 256 KiB of int8 weights: ai-edge-quantizer stores such a
# model's buffers after the flatbuffer
BIG = BlockCase.from_key("ConvNorm_H2_W2_Cin512_Cout512_kernel1_stride1_group1")


def test_tflm_misreads_buffers_after_the_flatbuffer_so_exports_keep_them_inside(cache):
    from lutfarm.profiler.export.tflite import check_model
    from lutfarm.profiler.export.tflite_flatbuffer import offset_buffer_count, offset_buffers

    model = cache.get(BIG, "tflite", "int8")
    data = model.path.read_bytes()
    assert offset_buffer_count(data) == 0
    assert all(c["ok"] for c in model.checks), model.checks    # TFLite-Micro included
    moved = offset_buffers(data)
    assert offset_buffer_count(moved) > 0
    checks = {r.runtime: r for r in check_model(BIG, moved, "int8")}
    assert checks["litert"].ok                  # the same, valid model: LiteRT reads it right
    # the interpreter's side: should this fail, TFLite-Micro now reads offset buffers and
    # profiler.tflite_flatbuffer's workaround can go
    assert not checks["tflite-micro"].ok and checks["tflite-micro"].error > 0.5


def test_a_campaign_refuses_a_case_its_runtime_computes_unlike_torch(cache, cifar, tmp_path):
    """The model in the cache is one TFLite-Micro computes wrongly (its real checks say so):
    a TFLite-Micro campaign fails that case with the reason instead of timing it."""
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.export.tflite import check_model
    from lutfarm.profiler.export.tflite_flatbuffer import offset_buffers
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
    from lutfarm.profiler.store import Store

    bad = offset_buffers(cache.get(BIG, "tflite", "int8").path.read_bytes())
    wrong = ModelCache(tmp_path / "cache")
    wrong.put(BIG, "tflite", "int8", bad, tuple(r.as_dict() for r in check_model(BIG, bad, "int8")))
    runtime = RuntimeConfig(name="tflm", dtype="int8")
    with Store(tmp_path / "s.db") as store:
        s = run_campaign(store, cifar, LOCAL, runtime,
                         CampaignSettings(timing=FAST, cache=wrong, cases=[BIG]))
        failed = dict(s.failed)
        assert "computes unlike its torch block in tflite-micro" in failed[BIG.key]
        assert BIG.key not in store.measured_keys("local", runtime.key)


def test_tflite_runtime_configs_carry_their_delegate_in_the_key():
    assert RuntimeConfig("litert", 1, "int8").key == "litert-int8-t1-xnnpack"
    assert RuntimeConfig("tflm", 1, "int8").key == "tflm-int8-t1-reference"
    assert RuntimeConfig.from_key("litert-fp32-t2-none") == RuntimeConfig("litert", 2, "fp32", "none")
    with pytest.raises(RuntimeConfigError, match="not supported for onnxruntime"):
        RuntimeConfig("onnxruntime", 1, "int8")
    with pytest.raises(RuntimeConfigError, match="xnnpack, none .*delegate:"):
        RuntimeConfig("litert", 1, "fp32", "gpu")
    with pytest.raises(RuntimeConfigError, match=r"tflm runs on at most 1 thread"):
        RuntimeConfig("tflm", 2, "int8")


# -- agent runtimes ------------------------------------------------------------------------


def test_litert_times_both_dtypes_and_says_whether_xnnpack_ran(models):
    ms = [models[(CONV.key, "fp32")], models[(CONV.key, "int8")]]
    code, events = run_agent(job(ms, name="litert", provider="xnnpack"))
    assert code == 0
    for r in results(events).values():
        assert r["status"] == "ok" and r["stats"]["median"] > 0
        assert r["details"] == {"delegate": "xnnpack", "delegated": True}
        assert r["memory"]["method"] == "rss-growth" and r["memory"]["peak_bytes"] > 0
    code, events = run_agent(job(ms[:1], name="litert", provider="none"))
    assert results(events)[CONV.key]["details"]["delegated"] is False


def test_an_external_delegate_that_cannot_load_fails_that_case_by_name(models):
    code, events = run_agent(job([models[(SKIP.key, "fp32")]], name="litert",
                                 provider="delegate:/nonexistent/libhexagon_delegate.so"))
    r = results(events)[SKIP.key]
    assert r["status"] == "failed" and "cannot load delegate" in r["error"]
    assert "libhexagon_delegate.so" in r["error"]


@pytest.mark.needs("tflite-runtime")
def test_tflite_runtime_under_numpy2_is_refused_with_both_fixes(models):
    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("this environment has numpy 1")
    code, events = run_agent(job([models[(SKIP.key, "int8")]], name="tflite"))
    assert code == 2 and events[-1]["event"] == "fatal"
    assert "numpy<2" in events[-1]["error"] and "ai-edge-litert" in events[-1]["error"]


@pytest.mark.needs("agent-np1")
def test_tflite_runtime_times_int8_on_an_old_board_environment(models):
    code, events = run_agent(job([models[(CONV.key, "int8")]], name="tflite"), str(NP1_PYTHON))
    assert code == 0
    hello = events[0]
    assert hello["context"]["numpy"].startswith("1.")
    assert hello["context"]["runtime"]["version"].startswith("2.14")
    r = results(events)[CONV.key]
    assert r["status"] == "ok" and r["stats"]["median"] > 0


@pytest.mark.needs("agent-np1")
def test_tflite_runtime_times_an_interleaved_job_case_by_case_at_two_threads(models):
    """Its idle XNNPACK pools spin with no knob to stop them (blocks timed in turn at 2 threads
    ran 7x their LUT times); LiteRT's do not."""
    ms = [models[(CONV.key, "int8")], models[(SKIP.key, "int8")]]
    for name, python, threads, in_turn in (("tflite", str(NP1_PYTHON), 2, False),
                                           ("tflite", str(NP1_PYTHON), 1, True),
                                           ("litert", sys.executable, 2, True)):
        code, events = run_agent(dict(job(ms, name=name, threads=threads), interleave=True),
                                 python)
        found = results(events)
        assert code == 0 and len(found) == 2
        assert all(r["status"] == "ok" and (r.get("interleaved") == 2) == in_turn
                   for r in found.values()), (name, threads, found)


def test_tflm_host_finds_the_smallest_arena_and_reports_it_as_memory(models):
    m = models[(CONV.key, "int8")]
    code, events = run_agent(job([m], name="tflm"))
    r = results(events)[CONV.key]
    assert r["status"] == "ok", r
    arena = r["memory"]["peak_bytes"]
    assert r["memory"]["method"] == "tflm-arena" and r["details"]["arena_bytes"] == arena
    # one alignment step less does not run (probed in an agent-like process: this one has
    # JAX's threads, which fork() must not copy)
    code = ("import sys; from lutfarm_agent.runtimes.tflm_rt import probe_arena as p\n"
            "d = open(sys.argv[1], 'rb').read(); a = int(sys.argv[2])\n"
            "print(p(d, a) is None, p(d, a - 16) is None)")
    proc = subprocess.run([sys.executable, "-c", code, str(m.path), str(arena)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "False"], proc.stderr


def test_tflm_arena_limit_is_a_clear_error_for_that_case(models):
    """The limit fails the case that needs more and spares the one that fits (its arena,
    found without a limit, decides which it is)."""
    _, alone = run_agent(job([models[(SKIP.key, "int8")]], name="tflm"))
    skip_arena = results(alone)[SKIP.key]["memory"]["peak_bytes"]
    limit = skip_arena + 64
    code, events = run_agent(job([models[(CONV.key, "int8")], models[(SKIP.key, "int8")]],
                                 name="tflm", arena_limit=limit))
    r = results(events)
    assert f"no tensor arena up to {limit} bytes" in r[CONV.key]["error"]
    assert "arena_limit" in r[CONV.key]["error"]
    assert r[SKIP.key]["status"] == "ok" and r[SKIP.key]["memory"]["peak_bytes"] == skip_arena
    # the job on the board: at least its cases' timed samples
    assert events[-1].pop("elapsed_s") >= sum(e.get("sampling_s") or 0 for e in events)
    assert events[-1] == {"event": "done", "measured": 1, "failed": 1}


def test_smallest_arena_bisects_to_the_alignment():
    from lutfarm_agent.runtimes.tflm_rt import ARENA_ALIGN, smallest_arena

    tried = []

    def works(size):
        tried.append(size)
        return size >= 100_003

    found = smallest_arena(works, 1 << 24)
    assert found - ARENA_ALIGN < 100_003 <= found and len(tried) < 40
    with pytest.raises(ValueError, match="no tensor arena up to 65536"):
        smallest_arena(works, 65536)


def test_a_corrupted_tflite_model_fails_by_checksum(models, tmp_path):
    m = models[(SKIP.key, "int8")]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(m.path.read_bytes()[:-10] + b"0123456789")
    j = job([m], name="litert")
    j["cases"][0]["model"] = str(bad)
    _, events = run_agent(j)
    assert "checksum mismatch" in results(events)[SKIP.key]["error"]


# -- MCU harness against the stand-in firmware ---------------------------------------------


@pytest.fixture
def standin(tmp_path):
    """The LABELLED firmware stand-in on a pty (lutfarm_agent.mcu.standin), small like an MCU."""
    link = tmp_path / "ttyMCU"
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm_agent.mcu.standin", "--link", str(link),
                             "--max-arena", str(400_000), "--max-model", str(200_000)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not link.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert link.exists(), proc.stderr.read() if proc.poll() is not None else "no pty"
    yield str(link)
    proc.kill()
    proc.wait()


def test_the_agent_times_a_block_on_the_board_by_its_own_clock(models, standin):
    m = models[(SKIP.key, "int8")]
    code, events = run_agent(job([m], name="tflm", serial=standin, baud=921600))
    assert code == 0
    assert events[0]["context"]["runtime"]["board"] == "standin-not-an-mcu"
    r = results(events)[SKIP.key]
    assert r["status"] == "ok", r
    assert r["memory"]["method"] == "mcu-arena" and 0 < r["memory"]["peak_bytes"] <= 400_000
    assert r["details"]["kernels"] == "reference"
    # the same arena the host interpreter finds: one bisection, two transports
    _, host = run_agent(job([m], name="tflm"))
    assert results(host)[SKIP.key]["memory"]["peak_bytes"] == r["memory"]["peak_bytes"]


def test_board_limits_and_crc_errors_are_named(models, standin):
    from lutfarm_agent.mcu.harness import Board, BoardError

    big = models[(CONV.key, "fp32")]                       # > the board's 200 kB of flash
    assert big.path.stat().st_size > 200_000
    _, events = run_agent(job([big], name="tflm", serial=standin))
    assert "holds at most 200000" in results(events)[CONV.key]["error"]
    board = Board({"serial": standin})
    board.hello()
    data = models[(SKIP.key, "int8")].path.read_bytes()
    with pytest.raises(BoardError, match="CRC"):
        board.command(f"LOAD {len(data)} deadbeef", data)
    with pytest.raises(BoardError, match="NOMODEL|ARENA"):
        board.run(1)


def test_a_missing_serial_port_is_a_clear_error(models, tmp_path):
    _, events = run_agent(job([models[(SKIP.key, "int8")]], name="tflm",
                              serial=str(tmp_path / "ttyNONE")))
    assert events[-1]["event"] == "fatal"
    assert "cannot open the board's serial port" in events[-1]["error"]


def test_profile_on_a_board_stores_arena_memory_and_the_lut_carries_it(models, standin,
                                                                         tmp_path, cache_dir):
    from click.testing import CliRunner

    from lutfarm.cli import cli
    from lutfarm.lut import load_lut

    db, out = tmp_path / "mcu.db", tmp_path / "mcu.csv"
    runner = CliRunner()
    res = runner.invoke(cli, ["profile", "--db", str(db), "--runtime", "tflm", "--dtype", "int8",
                              "--serial", standin, "--only", SKIP.key, "--max-time", "0.05",
                              "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["runtime"] == "tflm-int8-t1-reference" and summary["measured"] == 1
    res = runner.invoke(cli, ["lut", "export", "--db", str(db), "--runtime", "tflm", "--dtype",
                              "int8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    lut = load_lut(out)
    assert lut.meta["memory_method"] == "mcu-arena" and "delegated_cases" not in lut.meta
    assert lut.peak_mem_bytes()[SKIP.key] > 0
    res = runner.invoke(cli, ["profile", "--db", str(db), "--runtime", "litert", "--serial",
                              standin])
    assert res.exit_code == 2 and "--serial needs a runtime that runs on a board: --runtime tflm" in " ".join(res.output.split())


def test_describe_asks_the_board_behind_the_port(standin):
    proc = subprocess.run([sys.executable, "-m", "lutfarm_agent", "--describe", "--serial", standin],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    tflm = events_in(proc.stdout)[0]["runtimes"]["tflm"]
    assert tflm["board"] == "standin-not-an-mcu" and tflm["max_arena"] == 400_000


def test_a_whole_network_exports_with_nhwc_input_and_class_scores_out(cache, cifar):
    """What ``lut validate --runtime litert`` measures (slow: ~30 s of conversion)."""
    from ai_edge_litert.interpreter import Interpreter

    from lutfarm.spaces.fbnet import NetworkCase

    m = cache.get(NetworkCase(cifar, tuple([0] * 22)), "tflite", "fp32")
    assert all(c["ok"] for c in m.checks), m.checks
    it = Interpreter(model_path=str(m.path))
    assert list(it.get_input_details()[0]["shape"]) == [1, 32, 32, 3]
    assert list(it.get_output_details()[0]["shape"]) == [1, 100]


def test_an_op_the_runtime_lacks_is_named(tmp_path):
    """torch.sort converts to STABLEHLO_SORT, which neither LiteRT 2.3 nor TFLite-Micro runs."""
    import torch

    from lutfarm.profiler.export.tflite import _litert_torch

    class Sorts(torch.nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=1).values

    path = tmp_path / "sort.tflite"
    path.write_bytes(_litert_torch().convert(Sorts().eval(), (torch.randn(1, 16),)).model_content())
    for name in ("litert", "tflm"):
        j = {"runtime": {"name": name, "threads": 1}, "timing": FAST.to_dict(),
             "cases": [{"key": "sort", "model": str(path)}]}
        _, events = run_agent(j)
        error = results(events)["sort"]["error"]
        assert "unsupported op" in error and "STABLEHLO_SORT" in error, (name, error)
