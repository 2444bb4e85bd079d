"""A model file a user brings (``lutfarm bench``): what it is, read before anything is sent.

The controller reads the file itself (ONNX with ``onnx``, TFLite with LiteRT's schema module)
so that a file that is not a model, or an input left dynamic without ``--shape``, is one line
here and no campaign starts. The file then goes to devices as it is, content-addressed like
an exported case (``ModelCache.put``), and the agent derives its inputs from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lutfarm.errors import LutfarmError
from lutfarm.spaces.cases import ModelFileCase

TFLITE_MAGIC = b"TFL3"
# TFLite's TensorType numbers and ONNX's TensorProto.DataType numbers -> numpy names
_TFLITE_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
                 7: "int16", 9: "int8"}
_ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
               9: "bool", 10: "float16", 11: "float64"}
_QUANTIZED_ONNX_OPS = {"QuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                       "MatMulInteger", "DynamicQuantizeLinear"}


class ModelFileError(LutfarmError, ValueError):
    """A file that cannot be benchmarked as given (names the file and what to do)."""


@dataclass(frozen=True)
class ModelInput:
    name: str
    shape: tuple            # None where the file leaves a dimension open
    dtype: str

    @property
    def dynamic(self) -> bool:
        return None in self.shape

    def spelled(self) -> str:
        return "x".join("?" if d is None else str(d) for d in self.shape)


@dataclass(frozen=True)
class ModelFile:
    """One model file as the controller read it."""

    path: Path
    fmt: str                       # "onnx" | "tflite"
    sha256: str
    size: int
    inputs: tuple[ModelInput, ...]
    dtype: str                     # "int8" for a quantized model, else "fp32"
    ops: tuple[str, ...]           # operator types, in graph order, with repeats

    @property
    def name(self) -> str:
        return self.path.name

    def case(self, shapes: dict[str, tuple[int, ...]] | None = None) -> ModelFileCase:
        """The case that measures this file (at ``shapes`` for its dynamic inputs)."""
        return ModelFileCase(self.sha256, tuple(sorted((shapes or {}).items())))


def inspect_model(path: str | Path) -> ModelFile:
    """Read ``path`` as an ONNX or TFLite model, whatever its name ends in."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file {path}: {exc.strerror or exc}") from None
    sha = hashlib.sha256(data).hexdigest()
    if data[4:8] == TFLITE_MAGIC:
        inputs, dtype, ops = _read_tflite(path, data)
        fmt = "tflite"
    else:
        inputs, dtype, ops = _read_onnx(path, data)
        fmt = "onnx"
    return ModelFile(path, fmt, sha, len(data), inputs, dtype, ops)


def _not_a_model(path: Path, data: bytes) -> ModelFileError:
    return ModelFileError(f"{path} is not an ONNX or TFLite model (its first bytes are "
                          f"{data[:8]!r}); give a .onnx or .tflite file")


def _module(name: str, package: str, what: str):
    """``name`` imported, or one line saying which package reading ``what`` needs."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModelFileError(f"reading a {what} model needs {package} on the controller: "
                             f"pip install {package}") from None


def _read_onnx(path: Path, data: bytes) -> tuple:
    onnx = _module("onnx", "onnx", "ONNX")
    from google.protobuf.message import DecodeError  # onnx's own dependency
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise _not_a_model(path, data) from None
    graph = model.graph
    if not graph.node:
        raise _not_a_model(path, data)
    constants = {i.name for i in graph.initializer}
    inputs = []
    for i in graph.input:
        if i.name in constants:     # older exporters list weights among the inputs
            continue
        t = i.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in t.shape.dim)
        inputs.append(ModelInput(i.name, dims, _ONNX_TYPES.get(t.elem_type, "float32")))
    ops = tuple(n.op_type for n in graph.node)
    dtype = "int8" if _QUANTIZED_ONNX_OPS & set(ops) else "fp32"
    return tuple(inputs), dtype, ops


def _read_tflite(path: Path, data: bytes) -> tuple:
    schema = _module("ai_edge_litert.schema_py_generated", "ai-edge-litert", "TFLite")
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        names = {}
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            names[i] = (code.CustomCode() or b"CUSTOM").decode() if op == \
                schema.BuiltinOperator.CUSTOM else _builtin_name(schema, op)
        ops = tuple(names[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength()))
        inputs = []
        for k in range(graph.InputsLength()):
            t = graph.Tensors(graph.Inputs(k))
            signature = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
            dims = tuple(int(d) if d > 0 else None for d in signature)
            inputs.append(ModelInput(t.Name().decode(), dims, _TFLITE_TYPES.get(t.Type(), "?")))
        # quantized: a constant (weight) tensor of 8 bits
        int8 = any(graph.Tensors(i).Type() in (3, 9) and
                   model.Buffers(graph.Tensors(i).Buffer()).DataLength() > 0
                   for i in range(graph.TensorsLength()))
    except Exception as exc:      # a flatbuffer that lies about its offsets
        raise ModelFileError(f"{path} starts like a TFLite model but cannot be read "
                             f"({type(exc).__name__}: {exc}); is it truncated?") from None
    return tuple(inputs), "int8" if int8 else "fp32", ops


def _builtin_name(schema, op: int) -> str:
    for name, value in vars(schema.BuiltinOperator).items():
        if value == op and not name.startswith("_"):
            return name
    return f"BUILTIN_{op}"


def parse_shapes(specs: tuple[str, ...] | list[str]) -> dict[str, tuple[int, ...]]:
    """``--shape name:1x3x224x224`` (repeatable) -> {name: dims}."""
    out = {}
    for spec in specs:
        name, sep, dims = spec.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            raise ModelFileError(f"--shape {spec!r}: give an input's name and its dimensions, "
                                 f"e.g. --shape input:1x3x224x224")
        out[name] = shape
    return out


def resolve_shapes(model: ModelFile, shapes: dict[str, tuple[int, ...]]
                   ) -> dict[str, tuple[int, ...]]:
    """The shapes the agent is given: every dynamic input's, checked against the file (an
    unknown name, a wrong rank, a fixed dimension changed and a dynamic one left out are
    refused with the input's name)."""
    known = {i.name: i for i in model.inputs}
    for name, dims in shapes.items():
        if name not in known:
            raise ModelFileError(f"--shape {name}:…: {model.name} has no input {name!r}; its "
                                 f"inputs: {', '.join(f'{i.name} ({i.spelled()})' for i in model.inputs)}")
        declared = known[name].shape
        if len(dims) != len(declared) or any(d is not None and d != g
                                             for d, g in zip(declared, dims)):
            raise ModelFileError(f"--shape {name}:{'x'.join(map(str, dims))} does not fit input "
                                 f"{name!r} of {model.name}, which is {known[name].spelled()}")
    for i in model.inputs:
        if i.dynamic and i.name not in shapes:
            example = "x".join(str(d or 1) for d in i.shape)
            raise ModelFileError(f"input {i.name!r} of {model.name} has a dynamic shape "
                                 f"({i.spelled()}); give it with --shape {i.name}:{example}")
    # only dynamic inputs change the measurement (and the case's key)
    return {n: d for n, d in shapes.items() if known[n].dynamic}
