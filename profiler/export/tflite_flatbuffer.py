"""Where a TFLite model keeps its constant buffers, and moving them.

The TFLite schema lets a buffer live either inside the flatbuffer (``Buffer.data``) or after
it, addressed by ``Buffer.offset`` / ``Buffer.size`` (for models near flatbuffers' 2 GB limit).
ai-edge-quantizer 0.10 writes every buffer of a model the second way as soon as one constant
reaches 256 KiB, LiteRT reads both, and the TFLite-Micro host interpreter (0.dev2026…) reads
only ``data``: it runs such a model without an error and computes garbage (issue 13; the
reproduction is ``python -m lutfarm.profiler.export.tflite_flatbuffer``). ``inline_buffers`` is the
workaround the exporter applies; ``offset_buffers`` makes the other layout, for the
reproduction and its test.
"""

from __future__ import annotations

ALIGN = 16              # the schema's force_align for Buffer.data (int32 biases, SIMD loads)
IDENTIFIER = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def offset_buffer_count(model: bytes) -> int:
    """How many buffers live outside the flatbuffer (offset 1 is the schema's placeholder for
    an empty buffer, as TFLite itself reads it)."""
    m = _schema().Model.GetRootAsModel(model, 0)
    return sum(1 for i in range(m.BuffersLength()) if m.Buffers(i).Offset() > 1)


def _aligned_vector(builder, data: bytes) -> int:
    builder.StartVector(1, len(data), ALIGN)
    builder.head -= len(data)
    builder.Bytes[builder.head:builder.head + len(data)] = data
    return builder.EndVector()


def _pack(model_t) -> bytes:
    """Serialise with every inline buffer aligned to ``ALIGN`` (the generated ``Pack`` aligns
    byte vectors to 1)."""
    import flatbuffers

    schema = _schema()

    class AlignedBuffer(schema.BufferT):
        def Pack(self, builder):
            data = None if self.data is None else _aligned_vector(builder, bytes(self.data))
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    buffers = []
    for b in model_t.buffers or []:
        a = AlignedBuffer()
        a.data = None if b.data is None else bytes(bytearray(b.data))
        a.offset, a.size = b.offset, b.size
        buffers.append(a)
    model_t.buffers = buffers
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model_t.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def inline_buffers(model: bytes) -> bytes:
    """The same model with every buffer inside the flatbuffer (unchanged if none is outside)."""
    if not offset_buffer_count(model):
        return model
    model_t = _schema().ModelT.InitFromPackedBuf(bytearray(model), 0)
    for b in model_t.buffers:
        if b.offset > 1:
            b.data = model[b.offset:b.offset + b.size]
            b.offset = b.size = 0
    return _pack(model_t)


def offset_buffers(model: bytes) -> bytes:
    """The same model with every non-empty buffer after the flatbuffer, as ai-edge-quantizer
    writes large models."""
    model_t = _schema().ModelT.InitFromPackedBuf(bytearray(model), 0)
    payloads = []
    for b in model_t.buffers:
        payloads.append(None if b.data is None or len(b.data) == 0 else bytes(bytearray(b.data)))
        if payloads[-1] is not None:
            b.data, b.offset, b.size = None, 2, len(payloads[-1])   # placeholders, 8 bytes each
    head = len(_pack(model_t))
    position = _round_up(head)
    for b, data in zip(model_t.buffers, payloads):
        if data is not None:
            b.offset, position = position, _round_up(position + len(data))
    packed = _pack(model_t)
    if len(packed) != head:
        raise RuntimeError("the flatbuffer changed size when its offsets were filled in")
    out = bytearray(packed)
    for b, data in zip(model_t.buffers, payloads):
        if data is not None:
            out.extend(b"\0" * (b.offset - len(out)))
            out.extend(data)
    return bytes(out)


def _round_up(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def main() -> int:
    """Reproduce TFLite-Micro's misreading: one small int8 model (a 1x1 convolution with
    246 400 bytes of weights, so ai-edge-quantizer keeps its buffers inline), run in LiteRT and
    in TFLite-Micro as exported and with the same buffers moved after the flatbuffer."""
    import numpy as np

    from lutfarm.profiler.export.tflite import (
        _run_litert,
        _run_tflm,
        fp32_bytes,
        int8_bytes,
        sample_inputs,
    )
    from lutfarm.spaces.cases import BlockCase

    case = BlockCase("ConvNorm", 352, 700, h=2, w=2, kernel=1, stride=1, group=1)
    inline = int8_bytes(case, fp32_bytes(case))
    moved = offset_buffers(inline)
    x = sample_inputs(case, 1, "check")[0]
    ref = _run_litert(inline, x)
    print(f"{case.key}, int8, {len(inline)} bytes; outputs against LiteRT on the inline model:")
    for name, run in (("LiteRT", _run_litert), ("TFLite-Micro", _run_tflm)):
        for layout, data in (("inline buffers", inline), ("offset buffers", moved)):
            got = run(data, x)
            rel = float(np.sqrt(np.mean((got - ref) ** 2) / max(np.mean(ref ** 2), 1e-12)))
            print(f"  {name:<13} {layout:<15} relative RMS difference {rel:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
