"""A runtime configuration: the part of a LUT's identity that says *how* blocks were run.

The same block differs by orders of magnitude between runtimes, thread counts and dtypes, so
a LUT is always per (device, runtime configuration); ``key`` is the stable string for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lutfarm.errors import LutfarmError
from lutfarm_agent.runtimes import SPECS, RuntimeSpec

DTYPES = ("fp32", "int8")


class RuntimeConfigError(LutfarmError, ValueError):
    """A runtime configuration lutfarm cannot run."""


@dataclass(frozen=True)
class RuntimeConfig:
    name: str = "onnxruntime"
    threads: int = 1
    dtype: str = "fp32"
    provider: str = ""   # execution provider / delegate; "" = the runtime's CPU default
    # the provider was not asked for, only the runtime's default filled in
    provider_defaulted: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name not in SPECS:
            raise RuntimeConfigError(f"unknown runtime {self.name!r}; choose one of: "
                                     f"{', '.join(SPECS)}")
        spec = self.spec
        if self.threads < 1:
            raise RuntimeConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.dtype not in spec.dtypes:
            raise RuntimeConfigError(f"dtype {self.dtype!r} is not supported for {self.name}; "
                                     f"choose one of: {', '.join(spec.dtypes)}")
        if not self.provider and spec.default_provider:
            # the default delegate is spelled out so that it is part of the LUT's identity
            object.__setattr__(self, "provider", spec.default_provider)
            object.__setattr__(self, "provider_defaulted", True)
        delegate = spec.delegates and self.provider.startswith("delegate:")
        if spec.providers and self.provider not in spec.providers and not delegate:
            hint = " or delegate:<library.so> for an external delegate" if spec.delegates else ""
            raise RuntimeConfigError(
                f"--provider {self.provider!r} is not a {self.name} provider; use "
                f"{', '.join(spec.providers)}{hint}")
        if spec.max_threads is not None and self.threads > spec.max_threads:
            raise RuntimeConfigError(f"{self.name} runs on at most {spec.max_threads} "
                                     f"thread(s): use --threads {spec.max_threads}")

    @property
    def key(self) -> str:
        """e.g. ``onnxruntime-fp32-t1``, ``litert-int8-t1-xnnpack``, ``tflm-int8-t1-reference``."""
        parts = [self.name, self.dtype, f"t{self.threads}"]
        if self.provider:
            parts.append(self.provider)
        return "-".join(parts)

    @property
    def spec(self) -> RuntimeSpec:
        return SPECS[self.name]

    @property
    def model_format(self) -> str:
        return self.spec.model_format

    def agent_settings(self, affinity: list[int] | None = None) -> dict:
        """The ``runtime`` object of an agent job."""
        settings = asdict(self)
        settings.pop("provider_defaulted")
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
