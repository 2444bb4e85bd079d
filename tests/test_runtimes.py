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
    assert done == {"event": "done", "measured": 1, "failed": 0}


@pytest.mark.parametrize("name", list(SPECS))
def test_every_runtime_is_described_or_says_how_to_install_it(name):
    [described] = events_in(_agent(sys.executable, "--describe").stdout)
    entry = described["runtimes"][name]
    if "error" in entry:
        assert SPECS[name].install in entry["error"] or "numpy" in entry["error"], entry
    else:
        assert entry["name"] == name and entry["version"]
