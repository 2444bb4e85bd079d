"""Export cases to model files, content-addressed and cached.

``models/<sha256>.<fmt>`` holds each model once, named by the hash of its bytes; ``index/<spec>``
maps an export spec (case key, format, dtype, opset, exporter versions and revision) to that
hash and, for TFLite, the model's checks against torch. A second campaign finds every model
through the index and imports no torch at all.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lutfarm import environment
from lutfarm.errors import LutfarmError
from lutfarm.spaces.cases import BlockCase, PairCase
from lutfarm.spaces.fbnet import NetworkCase

OPSET = 17
EXPORTER_REVISION = "1"   # bump when the exported graphs change for the same case
TFLITE_REVISION = "3"     # 2: int8 buffers inline (TFLite-Micro misreads offset buffers);
#                           3: BatchNorm folded before conversion (same ops, other constants)




@dataclass(frozen=True)
class Exporter:
    """How one model format is made from a case: the one home of a format's dtypes, what
    versions its bytes depend on, and whether it is cheap enough to make in this process."""

    fmt: str
    dtypes: tuple[str, ...]
    packages: tuple[str, ...]        # whose versions change the bytes of its exports
    revision: str                    # bump when the exported graphs change for the same case
    make: Callable[..., tuple[bytes, tuple[dict, ...]]]   # (case, dtype, fp32 bytes) -> model
    in_process: bool = False         # seconds per block otherwise: worker processes
    spec_fields: tuple[str, ...] = ()   # the spec's fields (older caches' keys); () = all
    from_fp32: tuple[str, ...] = ()     # dtypes made from the format's (cached) fp32 model


def _make_onnx(case, dtype: str, fp32: bytes | None) -> tuple[bytes, tuple[dict, ...]]:
    return onnx_bytes(case), ()


def _make_tflite(case, dtype: str, fp32: bytes | None) -> tuple[bytes, tuple[dict, ...]]:
    from importlib.util import find_spec

    from lutfarm.profiler.export.tflite import tflite_bytes
    missing = [m for m in ("litert_torch", "ai_edge_quantizer", "ai_edge_litert",
                           "tflite_micro") if find_spec(m) is None]
    if missing:
        raise ExporterMissing(
            f"exporting TFLite models needs the controller's tflite extra (missing: "
            f"{', '.join(missing)}); install it with: pip install -e '.[tflite]'")
    data, results = tflite_bytes(case, dtype, fp32)
    return data, tuple(r.as_dict() for r in results)


EXPORTERS = {
    "onnx": Exporter("onnx", ("fp32",), ("torch",), EXPORTER_REVISION, _make_onnx,
                     in_process=True,
                     # keeps the specs (and caches) of earlier versions valid
                     spec_fields=("opset", "torch", "revision", "key", "fmt", "dtype")),
    "tflite": Exporter("tflite", ("fp32", "int8"), ("torch", "litert-torch", "ai-edge-quantizer"),
                       TFLITE_REVISION, _make_tflite, from_fp32=("int8",)),
}
FORMATS = {fmt: e.dtypes for fmt, e in EXPORTERS.items()}


class ExportError(LutfarmError, RuntimeError):
    """A case that cannot become a model file for the asked format (names the reason)."""


class ExporterMissing(LutfarmError, RuntimeError):
    """The controller lacks the packages that export this format."""


@dataclass(frozen=True)
class ExportedModel:
    case_key: str
    path: Path
    sha256: str
    fmt: str
    checks: tuple[dict, ...] = ()    # export_tflite.CheckResult.as_dict() per runtime

    def failed_check(self, runtime: str) -> dict | None:
        """The check in ``runtime`` that found the model computing something else, if any."""
        return next((c for c in self.checks if c["runtime"] == runtime and not c["ok"]), None)


@dataclass
class ExportStats:
    exported: int = 0
    reused: int = 0
    seconds: float = 0.0


def default_cache_dir() -> Path:
    return environment.cache_dir()


def _versions(fmt: str) -> dict[str, str]:
    # Read installed versions without importing the packages (torch alone costs ~1 s).
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in EXPORTERS[fmt].packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "missing"
    return out


def onnx_bytes(case: BlockCase | PairCase | NetworkCase) -> bytes:
    """Build the case's torch module with seeded weights and export it to one ONNX file."""
    import torch

    from lutfarm.spaces.modules import build_module, seeded_init

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
        self._versions: dict[str, dict] = {}

    def _spec_id(self, case: BlockCase, fmt: str, dtype: str) -> str:
        if fmt not in self._versions:
            self._versions[fmt] = _versions(fmt)
        exporter = EXPORTERS[fmt]
        spec = dict(self._versions[fmt], opset=OPSET, revision=exporter.revision, key=case.key,
                    fmt=fmt, dtype=dtype)
        if exporter.spec_fields:
            spec = {k: spec[k] for k in exporter.spec_fields}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def _model_path(self, sha: str, fmt: str) -> Path:
        return self.root / "models" / f"{sha}.{fmt}"

    def lookup(self, case: BlockCase, fmt: str = "onnx", dtype: str = "fp32") -> ExportedModel | None:
        index = self.root / "index" / self._spec_id(case, fmt, dtype)
        try:
            text = index.read_text().strip()
            entry = json.loads(text) if text.startswith("{") else {"sha256": text}
            sha, checks = entry["sha256"], tuple(entry.get("checks", ()))
        except (OSError, ValueError, KeyError):
            return None
        path = self._model_path(sha, fmt)
        return ExportedModel(case.key, path, sha, fmt, checks) if path.exists() else None

    def get(self, case: BlockCase, fmt: str = "onnx", dtype: str = "fp32") -> ExportedModel:
        """The case's model, exported now only if no earlier run did."""
        found = self.lookup(case, fmt, dtype)
        if found is not None:
            self.stats.reused += 1
            return found
        exporter = EXPORTERS.get(fmt)
        if exporter is None or dtype not in exporter.dtypes:
            raise ExportError(f"no exporter for format {fmt!r} and dtype {dtype!r}")
        # int8 starts from the (cached) fp32 model, which counts as its own export
        float_model = self.get(case, fmt, "fp32").path.read_bytes() \
            if dtype in exporter.from_fp32 else None
        t0 = time.perf_counter()
        data, checks = exporter.make(case, dtype, float_model)
        model = self.put(case, fmt, dtype, data, checks)
        self.stats.exported += 1
        self.stats.seconds += time.perf_counter() - t0
        return model

    def put(self, case: BlockCase, fmt: str, dtype: str, data: bytes,
            checks: tuple[dict, ...] = ()) -> ExportedModel:
        """Store ``data`` as the case's model (and its checks) for later lookups."""
        sha = hashlib.sha256(data).hexdigest()
        path = self._model_path(sha, fmt)
        _atomic_write(path, data)
        entry = json.dumps({"sha256": sha, "checks": list(checks)}) if checks else sha
        _atomic_write(self.root / "index" / self._spec_id(case, fmt, dtype), entry.encode())
        return ExportedModel(case.key, path, sha, fmt, tuple(checks))


    def get_many(self, cases: dict, fmt: str = "onnx", dtype: str = "fp32",
                 workers: int | None = None, on_result=None) -> dict:
        """``{key: ExportedModel or ExportError}`` for many cases, the missing ones exported in
        ``workers`` processes at once (default: one per CPU). TFLite conversion takes seconds per
        block, so a space's few hundred cases are worth the processes; ONNX export and cache
        hits stay in this process. ``on_result(key, model_or_error)`` is called as each ends."""
        out: dict = {}
        missing = {k: c for k, c in cases.items() if self.lookup(c, fmt, dtype) is None}
        workers = min(workers or os.cpu_count() or 1, len(missing))
        parallel = not EXPORTERS[fmt].in_process and workers > 1
        for key, case in cases.items():     # in this process: everything, or the cache hits
            if parallel and key in missing:
                continue
            try:
                out[key] = self.get(case, fmt, dtype)
            except ExportError as exc:
                out[key] = exc
            if on_result:
                on_result(key, out[key])
        if not parallel:
            return out
        t0 = time.perf_counter()
        try:
            _export_in_workers(self, missing, fmt, dtype, workers, out, on_result)
        finally:
            self.stats.seconds += time.perf_counter() - t0
        return out


def _export_in_workers(cache: ModelCache, missing: dict, fmt: str, dtype: str, workers: int,
                       out: dict, on_result) -> None:
    """Worker processes (``python -m lutfarm.profiler.export.worker``), fed one case key at a
    time by one thread each; every worker writes into the same content-addressed cache. Plain
    subprocesses, not multiprocessing: no fork of a process holding torch or TensorFlow
    threads, and no demand on the caller's ``__main__``."""
    import subprocess
    import sys
    import threading

    queue = list(missing)
    lock = threading.Lock()
    fatal: list[str] = []

    def serve(proc) -> None:
        while True:
            with lock:
                if not queue or fatal:
                    return
                key = queue.pop(0)
            proc.stdin.write(key + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                with lock:
                    fatal.append(f"an export worker died while exporting {key}")
                return
            answer = json.loads(line)
            with lock:
                if answer["error"] is None:
                    out[key] = cache.lookup(missing[key], fmt, dtype)
                    cache.stats.exported += 1 + (dtype in EXPORTERS[fmt].from_fp32)
                elif answer["type"] == "ExporterMissing":
                    fatal.append(answer["error"])
                    return
                else:
                    out[key] = ExportError(answer["error"])
                if on_result:
                    on_result(key, out[key])

    procs = [subprocess.Popen([sys.executable, "-m", "lutfarm.profiler.export.worker",
                               str(cache.root), fmt, dtype], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(workers)]
    threads = [threading.Thread(target=serve, args=(p,), daemon=True) for p in procs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    if fatal:
        if fatal[0].startswith("an export worker died"):
            raise ExportError(fatal[0])
        raise ExporterMissing(fatal[0])


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
