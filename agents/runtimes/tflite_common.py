"""What LiteRT (``ai-edge-litert``) and ``tflite-runtime`` share: the same Interpreter API.

Settings: ``threads``; ``provider`` = ``xnnpack`` (the default delegate), ``none`` (built-in
kernels only) or ``delegate:<library.so>`` (an external delegate: GPU, Hexagon, …). Whether
XNNPACK really took nodes is read back from the interpreter and reported with each result.
"""

from __future__ import annotations

import re

import numpy as np

from lutfarm_agent.runtimes import Loaded, RuntimeUnavailable, input_shape


def random_input(shape, dtype, rng) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def make_interpreter(module, path: str, settings: dict):
    """``module`` is ``ai_edge_litert.interpreter`` or ``tflite_runtime.interpreter``."""
    provider = settings.get("provider") or "xnnpack"
    kwargs = {"model_path": path, "num_threads": int(settings.get("threads") or 1)}
    if provider == "none":
        kwargs["experimental_op_resolver_type"] = \
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    elif provider.startswith("delegate:"):
        library = provider.split(":", 1)[1]
        try:
            kwargs["experimental_delegates"] = [module.load_delegate(library)]
        except (ValueError, OSError) as exc:
            raise RuntimeUnavailable(f"cannot load delegate {library!r} on this device: "
                                     f"{exc}") from None
        kwargs["experimental_op_resolver_type"] = \
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    elif provider != "xnnpack":
        raise RuntimeUnavailable(f"unknown TFLite delegate setting {provider!r}; use xnnpack, "
                                 f"none or delegate:<library.so>")
    try:
        it = module.Interpreter(**kwargs)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ValueError(_explain(str(exc))) from None
    return it


def _explain(message: str) -> str:
    """Interpreter errors -> one line that names the unsupported op where there is one."""
    text = " ".join(message.split())
    bad = re.findall(r"Tensor (\d+) has invalid quantization parameters", text)
    if bad:         # one sentence per tensor: say it once, with the first reason
        reason = text.split("Tensor " + bad[0])[0].strip().rstrip(".")
        return (f"the runtime refuses the model: {len(bad)} tensor(s) have invalid quantization "
                f"parameters (tensor {bad[0]}: {reason}); a file older than its checks may "
                f"run on --runtime tflm")
    for marker in ("Didn't find op for builtin opcode", "Encountered unresolved custom op"):
        if marker in text:
            return "unsupported op: " + text[text.index(marker):][:200]
    return text[:300]


def load_tflite(module, path: str, settings: dict) -> Loaded:
    it = make_interpreter(module, path, settings)
    resized = False
    for d in it.get_input_details():     # -1 in a signature: a dimension the file leaves open
        declared = [int(s) for s in d.get("shape_signature", d["shape"])]
        shape = input_shape(d["name"], declared, settings.get("shapes"))
        if shape != [int(s) for s in d["shape"]]:
            it.resize_tensor_input(d["index"], shape)
            resized = True
    if resized:
        it.allocate_tensors()
    rng = np.random.default_rng(0)
    described = []
    for d in it.get_input_details():
        shape = [int(s) for s in d["shape"]]
        it.set_tensor(d["index"], random_input(shape, d["dtype"], rng))
        described.append({"name": d["name"], "shape": shape, "dtype": np.dtype(d["dtype"]).name})
    ops = [op.get("op_name") for op in it._get_ops_details()]
    delegated = "DELEGATE" in ops
    details = {"delegate": (settings.get("provider") or "xnnpack") if delegated else "none",
               "delegated": delegated}
    return Loaded(it.invoke, described, details=details)
