"""Model files lutfarm did not make, for the tests: a MobileNetV2 (Sandler et al. 2018) in
plain torch with random weights (no space of lutfarm's contains it) exported to ONNX, and a
one-op TFLite model written with the schema (an op a firmware may lack)."""

from __future__ import annotations

import torch
from torch import nn

# (expansion, output channels, repeats, first stride): the paper's table 2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6()) if relu else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        layers = [conv_bn(cin, mid, 1, 1)] if expansion != 1 else []
        layers += [conv_bn(mid, mid, 3, stride, groups=mid), conv_bn(mid, cout, 1, 1, relu=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    def __init__(self, classes: int = 10, width: float = 1.0):
        super().__init__()
        c = int(32 * width)
        layers = [conv_bn(3, c, 3, 2)]
        for t, out, n, s in SETTINGS:
            out = int(out * width)
            for i in range(n):
                layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        layers.append(conv_bn(c, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def export_onnx(path, resolution: int = 96, dynamic_batch: bool = False, width: float = 0.5):
    """The network with seeded random weights as an ONNX file (a dynamic batch on request)."""
    torch.manual_seed(0)
    model = MobileNetV2(width=width).eval()
    example = torch.randn(1, 3, resolution, resolution)
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}} if dynamic_batch else None)
    return path


def tflite_with_op(op_name: str) -> bytes:
    """A one-op fp32 TFLite model (input [1, 4] -> op -> output), written with the schema."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT()
    m.version = 3
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(s.BuiltinOperator, op_name)
    m.operatorCodes = [code]
    empty = s.BufferT()
    m.buffers = [empty, s.BufferT(), s.BufferT()]
    tensors = []
    for i, name in enumerate((b"in", b"out")):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 4], s.TensorType.FLOAT32, i + 1, name
        tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    g = s.SubGraphT()
    g.tensors, g.inputs, g.outputs, g.operators = tensors, [0], [1], [op]
    m.subgraphs = [g]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
