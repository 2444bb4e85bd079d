"""A runtime configuration: the part of a LUT's identity that says *how* blocks were run.

The same block differs by orders of magnitude between runtimes, thread counts and dtypes, so
a LUT is always per (device, runtime configuration); ``key`` is the stable string for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lutfarm.errors import LutfarmError
from lutfarm_agent.runtimes import RUNTIMES

# runtime -> (model format, dtypes it can time, default provider/delegate)
RUNTIME_SUPPORT = {
    "onnxruntime": ("onnx", ("fp32",), ""),
    "bench-sleep": ("onnx", ("fp32",), ""),
    "litert": ("tflite", ("fp32", "int8"), "xnnpack"),
    "tflite": ("tflite", ("fp32", "int8"), "xnnpack"),
    "tflm": ("tflite", ("fp32", "int8"), "reference"),
}
DTYPES = ("fp32", "int8")
MODEL_FORMATS = {name: fmt for name, (fmt, _, _) in RUNTIME_SUPPORT.items()}
# which export check (profiler.export_tflite) speaks for a runtime's results
CHECKED_BY = {"litert": "litert", "tflite": "litert", "tflm": "tflite-micro"}
TFLITE_PROVIDERS = ("xnnpack", "none")   # or "delegate:<library.so>" (GPU, Hexagon, …)


class RuntimeConfigError(LutfarmError, ValueError):
    """A runtime configuration lutfarm cannot run."""


@dataclass(frozen=True)
class RuntimeConfig:
    name: str = "onnxruntime"
    threads: int = 1
    dtype: str = "fp32"
    provider: str = ""   # execution provider / delegate; "" = the runtime's CPU default

    def __post_init__(self) -> None:
        if self.name not in RUNTIMES:
            raise RuntimeConfigError(f"unknown runtime {self.name!r}; choose one of: "
                                     f"{', '.join(RUNTIMES)}")
        if self.threads < 1:
            raise RuntimeConfigError(f"--threads must be at least 1, got {self.threads}")
        _, dtypes, default = RUNTIME_SUPPORT[self.name]
        if self.dtype not in dtypes:
            raise RuntimeConfigError(f"dtype {self.dtype!r} is not supported for {self.name}; "
                                     f"choose one of: {', '.join(dtypes)}")
        if not self.provider and default:
            # the default delegate is spelled out so that it is part of the LUT's identity
            object.__setattr__(self, "provider", default)
        if self.name in ("litert", "tflite") and not (
                self.provider in TFLITE_PROVIDERS or self.provider.startswith("delegate:")):
            raise RuntimeConfigError(
                f"--provider {self.provider!r} is not a {self.name} delegate; use xnnpack, none "
                f"(built-in kernels only) or delegate:<library.so> for an external delegate")
        if self.name == "tflm" and self.threads != 1:
            raise RuntimeConfigError("TFLite-Micro runs on one core: use --threads 1")

    @property
    def key(self) -> str:
        """e.g. ``onnxruntime-fp32-t1``, ``litert-int8-t1-xnnpack``, ``tflm-int8-t1-reference``."""
        parts = [self.name, self.dtype, f"t{self.threads}"]
        if self.provider:
            parts.append(self.provider)
        return "-".join(parts)

    @property
    def model_format(self) -> str:
        return MODEL_FORMATS[self.name]

    def agent_settings(self, affinity: list[int] | None = None) -> dict:
        """The ``runtime`` object of an agent job."""
        settings = asdict(self)
        if affinity:
            settings["affinity"] = list(affinity)
        return settings

    @classmethod
    def from_key(cls, key: str) -> RuntimeConfig:
        """Inverse of ``key``: ``<name>-<dtype>-t<threads>[-<provider>]`` (names may hold '-')."""
        parts = key.split("-")
        at = [i for i, p in enumerate(parts) if i >= 2 and p[:1] == "t" and p[1:].isdigit()]
        if not at:
            raise RuntimeConfigError(f"not a runtime key: {key!r} (expected e.g. "
                                     f"onnxruntime-fp32-t1)")
        i = at[0]
        return cls("-".join(parts[:i - 1]), int(parts[i][1:]), parts[i - 1],
                   "-".join(parts[i + 1:]))
