"""Every registered runtime through one contract (timm-style: a runtime is tested the day it
is registered in lutfarm_agent.runtimes.SPECS): the empty model of its format and each dtype
it claims loads, runs and is timed by the real agent, which reports what it used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import FAST, NP1_PYTHON, agent_root, need
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.spaces import get_layout
from lutfarm_agent.protocol import events_in
from lutfarm_agent.runtimes import SPECS

# what each runtime needs on this machine beyond the controller's own environment
NEEDS = {"litert": "tflite-toolchain", "tflm": "tflite-toolchain", "tflite": "agent-np1"}
CASES = [(name, dtype) for name, spec in SPECS.items() for dtype in spec.dtypes]


def _python(name: str) -> str:
    return str(NP1_PYTHON) if name == "tflite" else sys.executable


def _agent(python: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    root = agent_root()
    return subprocess.run([python, "-m", "lutfarm_agent", *args], input=stdin, cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(root)))


@pytest.mark.parametrize("name, dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_every_runtime_times_the_empty_model(name, dtype, cache):
    if name in NEEDS:
        need(NEEDS[name])
    spec = SPECS[name]
    config = RuntimeConfig(name, 1, dtype)
    assert config.model_format == spec.model_format and config.provider == spec.default_provider
    case = get_layout("fbnet", "cifar").overhead_case()
    model = cache.get(case, spec.model_format, dtype)
    job = {"job_id": "contract", "runtime": config.agent_settings(), "timing": FAST.to_dict(),
           "cases": [{"key": case.key, "model": str(model.path), "sha256": model.sha256}]}
    proc = _agent(_python(name), stdin=json.dumps(job))
    events = events_in(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert [e["event"] for e in events] == ["hello", "result", "done"], events
    hello, result, done = events
    assert hello["context"]["runtime"]["name"] == name
    assert result["status"] == "ok", result
    assert result["stats"]["count"] >= FAST.min_runs and result["stats"]["median"] > 0
    assert result["memory"]["method"] and result["memory"]["peak_bytes"] >= 0
    assert done.pop("elapsed_s") > 0
    assert done == {"event": "done", "measured": 1, "failed": 0}


# Found by this test: tflite-runtime 2.14's XNNPACK takes no node of an int8 model, so its
# "tflite-int8-t1-xnnpack" cases run on the built-in kernels. Each result says so
# (details.delegated) and a LUT's header counts them (delegated_cases); LiteRT's XNNPACK does
# take them.
NOT_TAKEN = {("tflite", "int8"): "none"}
# the numpy dtype a model of each precision takes, and what each runtime says it ran with
INPUT_DTYPE = {"fp32": "float32", "int8": "int8"}
USED_PROVIDER = {"onnxruntime": lambda d: d["providers"][0],
                 "litert": lambda d: d["delegate"], "tflite": lambda d: d["delegate"],
                 "tflm": lambda d: d["kernels"]}


@pytest.mark.parametrize("name, dtype", [c for c in CASES if not SPECS[c[0]].stand_in],
                         ids=[f"{n}-{d}" for n, d in CASES if not SPECS[n].stand_in])
def test_every_runtime_times_a_real_block_with_the_dtype_and_provider_asked(name, dtype, cache):
    """An empty model proves little: a convolution block, and the runtime's own report that
    it ran the precision and the provider the configuration (and so the LUT key) names."""
    if name in NEEDS:
        need(NEEDS[name])
    config = RuntimeConfig(name, 1, dtype)
    case = next(c for c in get_layout("fbnet", "cifar").unique_cases()
                if c.key == "ConvBlock_H8_W8_Cin64_Cout64_exp1_kernel3_stride1_group1")
    model = cache.get(case, config.model_format, dtype)
    job = {"job_id": "contract", "runtime": config.agent_settings(), "timing": FAST.to_dict(),
           "cases": [{"key": case.key, "model": str(model.path), "sha256": model.sha256}]}
    proc = _agent(_python(name), stdin=json.dumps(job))
    assert proc.returncode == 0, proc.stderr[-800:]
    [result] = [e for e in events_in(proc.stdout) if e["event"] == "result"]
    assert result["status"] == "ok", result
    assert result["stats"]["median"] > 0
    assert [i["dtype"] for i in result["inputs"]] == [INPUT_DTYPE[dtype]], result["inputs"]
    expected = "CPUExecutionProvider" if name == "onnxruntime" else config.provider
    expected = NOT_TAKEN.get((name, dtype), expected)
    assert USED_PROVIDER[name](result["details"]) == expected, result["details"]


@pytest.mark.parametrize("name", list(SPECS))
def test_every_runtime_is_described_or_says_how_to_install_it(name):
    [described] = events_in(_agent(sys.executable, "--describe").stdout)
    entry = described["runtimes"][name]
    if "error" in entry:
        assert SPECS[name].install in entry["error"] or "numpy" in entry["error"], entry
    else:
        assert entry["name"] == name and entry["version"]
