"""ONNX Runtime, CPU execution provider by default; threads and provider are settings.

``shapes`` ({input: [dims]}) fills a model's dynamic dimensions; its per-operator profile is
ONNX Runtime's own profiler (``enable_profiling``), read back from the trace it writes."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import onnxruntime as ort

from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable, input_shape

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}


def _provider(settings: dict) -> str:
    provider = settings.get("provider") or "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise RuntimeUnavailable("onnxruntime here has no {}; available: {}".format(
            provider, ", ".join(ort.get_available_providers())))
    return provider


def info(settings: dict) -> dict:
    return {"name": "onnxruntime", "version": ort.__version__, "provider": _provider(settings),
            "threads": int(settings.get("threads") or 1),
            "available_providers": ort.get_available_providers()}


def _options(settings: dict):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(settings.get("threads") or 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if settings.get("stop_spinning"):     # models timed in turn (lutfarm_agent.__main__)
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    return opts


def _feeds(session, settings: dict) -> tuple:
    rng = np.random.default_rng(0)
    feeds, described = {}, []
    for inp in session.get_inputs():
        shape = input_shape(inp.name, inp.shape, settings.get("shapes"))
        dtype = _DTYPES.get(inp.type, np.float32)
        if np.dtype(dtype).kind in "iu":
            feeds[inp.name] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        described.append({"name": inp.name, "shape": shape, "dtype": np.dtype(dtype).name})
    return feeds, described


def load(path: str, settings: dict) -> Loaded:
    opts = _options(settings)
    details = {"spinning": "stopped after each run"} if settings.get("stop_spinning") else {}
    session = ort.InferenceSession(path, sess_options=opts, providers=[_provider(settings)])
    details["providers"] = session.get_providers()    # what ORT really runs it with
    feeds, described = _feeds(session, settings)
    outputs = [o.name for o in session.get_outputs()]

    def run():
        return session.run(outputs, feeds)

    return Loaded(run, described, details=details,
                  profile=lambda runs: profile(path, settings, runs))


def profile(path: str, settings: dict, runs: int) -> dict:
    """Per-node times from ONNX Runtime's profiler over ``runs`` runs (after one untimed)."""
    opts = _options(settings)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(path, sess_options=opts, providers=[_provider(settings)])
        feeds, _ = _feeds(session, settings)
        outputs = [o.name for o in session.get_outputs()]
        for _ in range(runs + 1):
            session.run(outputs, feeds)
        trace = session.end_profiling()
        with open(trace) as f:
            events = json.load(f)
    # the last ``runs`` model runs' node events (each run's kernel time is a "Node" event
    # named <node>_kernel_time; the first run above is warm-up)
    per_node: dict = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            args = e.get("args") or {}
            name = e["name"][:-len("_kernel_time")]
            entry = per_node.setdefault(name, {"node": name, "op": args.get("op_name", "?"),
                                               "us": []})
            entry["us"].append(float(e.get("dur", 0)))
    nodes = [{"node": n["node"], "op": n["op"], "ms": sum(n["us"][-runs:]) / min(runs, len(
        n["us"])) / 1000.0} for n in per_node.values()]
    return {"method": "onnxruntime profiler", "runs": runs, "nodes": nodes}
