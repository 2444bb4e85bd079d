"""Export cases to TFLite: fp32 with ``litert-torch`` and full-integer int8 with
``ai-edge-quantizer`` (no TensorFlow needed), and check every model against its torch block.

Models take and give NHWC tensors (``to_channel_last_io``), as boards feed them. The int8 model
is quantised end to end (weights per channel, activations per tensor, int8 input and output)
from a calibration set generated here from the case key, so exports are reproducible and need
no download. These packages are the ``tflite`` extra of the controller; boards need only a
TFLite runtime.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np

from lutfarm.profiler.export.cache import ExportError
from lutfarm.profiler.export.tflite_flatbuffer import inline_buffers
from lutfarm_agent.protocol import one_line
from lutfarm_agent.quiet import QuietStderr

CALIBRATION_SAMPLES = 16
FP32_TOLERANCE = 1e-4      # max |error| over the output's range: float re-association only
INT8_TOLERANCE = 0.10      # relative RMS error: a full-int8 block measures 1-3 % here


@dataclass(frozen=True)
class CheckResult:
    """How far the exported model is from its torch block on a held-out input, in one runtime.

    fp32: max |error| relative to the output's range; int8: relative RMS error (a few
    saturated elements are normal after calibration, a wrong kernel moves all of them)."""

    runtime: str
    error: float
    tolerance: float
    message: str = ""      # why it could not run there, when it could not

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance

    def as_dict(self) -> dict:
        return {"runtime": self.runtime, "error": self.error, "tolerance": self.tolerance,
                "ok": self.ok, "message": self.message}


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def sample_inputs(case, n: int, purpose: str) -> list[np.ndarray]:
    """NHWC float32 inputs drawn from the case key (calibration and checks use other seeds)."""
    rng = np.random.default_rng(_seed(f"{purpose}:{case.key}"))
    return [rng.standard_normal(nhwc(case.input_shape)).astype(np.float32) for _ in range(n)]


def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """NCHW -> NHWC; other ranks (a classifier's (N, C)) are left alone."""
    return (shape[0], *shape[2:], shape[1]) if len(shape) == 4 else tuple(shape)


def torch_module(case):
    from lutfarm.spaces.modules import build_module, seeded_init

    return seeded_init(build_module(case), case.key)


def _litert_torch():
    """Import litert-torch quietly: its import logs optional-kernel misses to stderr."""
    with QuietStderr():
        import litert_torch
        from litert_torch import progress
    progress.console.quiet = True          # its rich progress lines are not ours to print
    return litert_torch


def fold_batchnorm(module):
    """Fold each BatchNorm that directly follows a convolution into it (eval mode). The
    converter folds them too, into the same graph; folding first spares torch.export's
    decompositions a third of their work (a whole CIFAR network: 12.9 -> 8.3 s here)."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                module[i + 1] = nn.Identity()
    return module


def fp32_bytes(case) -> bytes:
    """The case's torch block as an NHWC fp32 TFLite flatbuffer."""
    import torch

    litert_torch = _litert_torch()
    module = fold_batchnorm(torch_module(case))
    example = torch.from_numpy(sample_inputs(case, 1, "example")[0])
    if len(case.input_shape) == 4:
        with torch.no_grad():   # a whole network ends in (N, classes): only its input moves
            out_rank = module(example.permute(0, 3, 1, 2)).ndim
        module = litert_torch.to_channel_last_io(
            module, args=[0], outputs=[0] if out_rank == 4 else []).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # torch.export's pytree deprecation notices
        try:
            edge = litert_torch.convert(module, (example,))
            return bytes(edge.model_content())
        except Exception as exc:
            raise ExportError(f"{case.key}: litert-torch cannot convert it: "
                              f"{one_line(exc, 300)}") from None


def int8_bytes(case, float_model: bytes) -> bytes:
    """Full-integer int8 (weights, activations, input, output) from the fp32 model."""
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(float_model)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    runner = _litert_interpreter(float_model).get_signature_list()
    signature, io = next(iter(runner.items()))
    name = io["inputs"][0]
    calibration = {signature: [{name: x} for x in
                               sample_inputs(case, CALIBRATION_SAMPLES, "calibration")]}
    failure = None
    with QuietStderr() as log:
        try:
            result = q.quantize(q.calibrate(calibration, num_threads=1),
                                enable_progress_report=False)
        except Exception as exc:
            failure = exc
    if failure is not None:
        detail = one_line(failure, 300) if str(failure).strip() else log.text.strip()[-300:]
        raise ExportError(f"{case.key}: ai-edge-quantizer cannot make it int8: {detail}")
    # its large models keep their buffers after the flatbuffer, which TFLite-Micro misreads
    return inline_buffers(bytes(result.quantized_model))


def tflite_bytes(case, dtype: str, float_model: bytes | None = None
                 ) -> tuple[bytes, list[CheckResult]]:
    """The model file for ``dtype`` (``fp32`` | ``int8``) and its checks against torch.

    A model LiteRT computes wrongly is refused (the conversion is wrong); a disagreement in
    another runtime is returned with the checks, and a campaign on that runtime refuses it."""
    data = float_model or fp32_bytes(case)
    if dtype == "int8":
        data = int8_bytes(case, data)
    elif dtype != "fp32":
        raise ExportError(f"no TFLite exporter for dtype {dtype!r}; choose fp32 or int8")
    checks = check_model(case, data, dtype)
    bad = [r for r in checks if r.runtime == "litert" and not r.ok]
    if bad:
        raise ExportError(
            f"{case.key}: the {dtype} TFLite model disagrees with its torch block in LiteRT "
            f"(error {bad[0].error:.3g} > tolerance {bad[0].tolerance:.3g}); not measuring a "
            f"wrong model")
    return data, checks


def _litert_interpreter(data: bytes, delegates: bool = True):
    """LiteRT on ``data``; ``delegates=False``: its builtin kernels only (no XNNPACK)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else \
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with QuietStderr():
        it = Interpreter(model_content=data, num_threads=1,
                         experimental_op_resolver_type=resolver)
        it.allocate_tensors()
    return it


def _qparams(detail: dict) -> tuple[float, int]:
    """(scale, zero point) from LiteRT's or TFLite-Micro's tensor details."""
    if "quantization" in detail:
        return detail["quantization"]
    q = detail.get("quantization_parameters") or {}
    scales, zeros = q.get("scales", []), q.get("zero_points", [])
    return (float(scales[0]), int(zeros[0])) if len(scales) else (0.0, 0)


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float -> the tensor's dtype with its (scale, zero point); floats pass through."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = _qparams(detail)
    if dtype.kind == "f" or not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = _qparams(detail)
    if np.dtype(detail["dtype"]).kind == "f" or not scale:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero) * scale


def _run_litert(data: bytes, x: np.ndarray, delegates: bool = True) -> np.ndarray:
    it = _litert_interpreter(data, delegates)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(inp["index"], quantize(x, inp))
    it.invoke()
    return dequantize(it.get_tensor(out["index"]), out)


def _run_tflm(data: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    with QuietStderr():
        it = runtime.Interpreter.from_bytes(data, arena_size=max(len(data) * 10, 4 << 20))
    inp, out = it.get_input_details(0), it.get_output_details(0)
    it.set_input(quantize(x, inp), 0)
    it.invoke()
    return dequantize(it.get_output(0), out)


def check_model(case, data: bytes, dtype: str) -> list[CheckResult]:
    """Compare the model with its torch block on a held-out input in LiteRT and in the
    TFLite-Micro host interpreter: fp32 to float rounding, int8 to quantisation noise."""
    import torch

    x = sample_inputs(case, 1, "check")[0]
    with torch.no_grad():
        tx = torch.from_numpy(x)
        ref = torch_module(case)(tx.permute(0, 3, 1, 2) if x.ndim == 4 else tx).numpy()
    if ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    span = float(np.abs(ref).max()) or 1.0
    runners = [("litert", _run_litert), ("tflite-micro", _run_tflm)]
    results = []
    for name, run in runners:
        note, failure, got = "", None, None
        try:
            got = run(data, x)
        except Exception as exc:
            failure = exc
        if failure is not None and name == "litert" and "XNNPACK" in str(failure):
            # XNNPACK refuses some int8 graphs its builtin kernels run: judge the model there
            # (a campaign with the delegate fails on it, naming the delegate)
            note = f"XNNPACK cannot run it ({one_line(failure, 120)}); checked without"
            try:
                got, failure = _run_litert(data, x, delegates=False), None
            except Exception as exc:
                failure = exc
        if failure is not None:
            if name == "litert":
                raise ExportError(f"{case.key}: LiteRT cannot run the exported model: "
                                  f"{one_line(failure, 300)}") from None
            results.append(CheckResult(name, float("inf"), 0.0, one_line(failure, 300)))
            continue
        if got.shape != ref.shape:
            raise ExportError(f"{case.key}: the TFLite model's output is {got.shape}, torch's "
                              f"{ref.shape}")
        if dtype == "int8":
            error = float(np.sqrt(np.mean((got - ref) ** 2) / max(np.mean(ref ** 2), 1e-12)))
            results.append(CheckResult(name, error, INT8_TOLERANCE, note))
        else:
            error = float(np.abs(got - ref).max()) / max(1.0, span)
            results.append(CheckResult(name, error, FP32_TOLERANCE, note))
    return results
