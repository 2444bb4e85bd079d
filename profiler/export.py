"""Export cases to model files, content-addressed and cached.

``models/<sha256>.onnx`` holds each model once, named by the hash of its bytes; ``index/<spec>``
maps an export spec (case key, format, dtype, opset, torch version, exporter revision) to that
hash. A second campaign finds every model through the index and imports no torch at all.
The TorchScript-based exporter (``dynamo=False``) is used: ~0.01 s per block here against
~0.5 s for the dynamo exporter, and it writes one self-contained file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from spaces.cases import BlockCase, PairCase
from spaces.fbnet import NetworkCase

OPSET = 17
EXPORTER_REVISION = "1"   # bump when the exported graphs change for the same case


@dataclass(frozen=True)
class ExportedModel:
    case_key: str
    path: Path
    sha256: str
    fmt: str


@dataclass
class ExportStats:
    exported: int = 0
    reused: int = 0
    seconds: float = 0.0


def default_cache_dir() -> Path:
    base = os.environ.get("LUTFARM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lutfarm")
    return Path(base)


def _torch_version() -> str:
    # Read the installed version without importing torch (an import costs ~1 s).
    from importlib.metadata import version
    return version("torch")


def onnx_bytes(case: BlockCase | PairCase | NetworkCase) -> bytes:
    """Build the case's torch module with seeded weights and export it to one ONNX file."""
    import torch

    from spaces.fbnet_modules import build_module, seeded_init

    module = seeded_init(build_module(case), case.key)
    example = torch.randn(*case.input_shape, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"],
                          do_constant_folding=True)
    return buf.getvalue()


@dataclass
class ModelCache:
    """Content-addressed store of exported models (safe to share between processes)."""

    root: Path = field(default_factory=default_cache_dir)
    stats: ExportStats = field(default_factory=ExportStats)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / "models").mkdir(parents=True, exist_ok=True)
        (self.root / "index").mkdir(parents=True, exist_ok=True)
        self._spec_base: dict | None = None

    def _spec_id(self, case: BlockCase, fmt: str, dtype: str) -> str:
        if self._spec_base is None:
            self._spec_base = {"opset": OPSET, "torch": _torch_version(),
                               "revision": EXPORTER_REVISION}
        spec = dict(self._spec_base, key=case.key, fmt=fmt, dtype=dtype)
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def _model_path(self, sha: str, fmt: str) -> Path:
        return self.root / "models" / f"{sha}.{fmt}"

    def lookup(self, case: BlockCase, fmt: str = "onnx", dtype: str = "fp32") -> ExportedModel | None:
        index = self.root / "index" / self._spec_id(case, fmt, dtype)
        try:
            sha = index.read_text().strip()
        except OSError:
            return None
        path = self._model_path(sha, fmt)
        return ExportedModel(case.key, path, sha, fmt) if path.exists() else None

    def get(self, case: BlockCase, fmt: str = "onnx", dtype: str = "fp32") -> ExportedModel:
        """The case's model, exported now only if no earlier run did."""
        found = self.lookup(case, fmt, dtype)
        if found is not None:
            self.stats.reused += 1
            return found
        if fmt != "onnx" or dtype != "fp32":
            raise ValueError(f"no exporter for format {fmt!r} and dtype {dtype!r}")
        t0 = time.perf_counter()
        data = onnx_bytes(case)
        sha = hashlib.sha256(data).hexdigest()
        path = self._model_path(sha, fmt)
        _atomic_write(path, data)
        _atomic_write(self.root / "index" / self._spec_id(case, fmt, dtype), sha.encode())
        self.stats.exported += 1
        self.stats.seconds += time.perf_counter() - t0
        return ExportedModel(case.key, path, sha, fmt)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
