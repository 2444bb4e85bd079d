"""ONNX Runtime, CPU execution provider by default; threads and provider are settings."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable

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


def load(path: str, settings: dict) -> Loaded:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(settings.get("threads") or 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    details = {}
    if settings.get("stop_spinning"):     # models timed in turn (lutfarm_agent.__main__)
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        details["spinning"] = "stopped after each run"
    session = ort.InferenceSession(path, sess_options=opts, providers=[_provider(settings)])
    details["providers"] = session.get_providers()    # what ORT really runs it with
    rng = np.random.default_rng(0)
    feeds, described = {}, []
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        dtype = _DTYPES.get(inp.type, np.float32)
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        described.append({"name": inp.name, "shape": shape, "dtype": np.dtype(dtype).name})
    outputs = [o.name for o in session.get_outputs()]

    def run():
        return session.run(outputs, feeds)

    return Loaded(run, described, details=details)
