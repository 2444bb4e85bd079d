"""The LUT record: case key -> latency (ms) for one device and runtime configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from lutfarm.errors import LutfarmError
from lutfarm.spaces import get_layout
from lutfarm.spaces.fbnet import FBNetLayout
from lutfarm.spaces.registry import family_of

# Optional per-case columns a LUT may carry next to its latency, in file order.
# model_bytes: the case's model as the runtime loaded it (flash on a microcontroller)
# persistent_bytes: the part of a TFLite-Micro arena a network's blocks add up (firmware's)
EXTRA_COLUMNS = ("std_ms", "ci_lo_ms", "ci_hi_ms", "count", "cv", "peak_mem_bytes", "predicted",
                 "model_bytes", "persistent_bytes")
# The store report ``profile --sample`` leaves: predicted latencies for the unmeasured blocks
PREDICTIONS_REPORT = "block-predictions"


class LUTError(LutfarmError, ValueError):
    """A LUT that cannot answer the question asked of it."""


@dataclass
class LUT:
    """FBNet-style lookup table; ``layout`` says which networks its sums describe."""

    space: str
    layout_name: str
    classes: int
    device: str
    runtime: str
    latency_ms: dict[str, float]
    statistic: str = "median"
    extra: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> EXTRA_COLUMNS
    meta: dict = field(default_factory=dict)   # source, created, overhead case, context, …

    @property
    def layout(self) -> FBNetLayout:
        layout = get_layout(self.space, self.layout_name, self.classes)
        if self.meta.get("resolutions") and family_of(self.space) == "elastic":
            layout = layout.with_resolutions(self.meta["resolutions"])   # what it was built for
        return layout

    @property
    def header(self) -> dict:
        """Everything but the rows: what a file stores above them."""
        return {"space": self.space, "layout": self.layout_name, "classes": self.classes,
                "device": self.device, "runtime": self.runtime, "statistic": self.statistic,
                **self.meta}

    def missing_cases(self) -> list[str]:
        """Cases of the layout this LUT cannot price."""
        return [c.key for c in self.layout.unique_cases() if c.key not in self.latency_ms]

    def predicted_cases(self) -> list[str]:
        """Entries the block predictor priced instead of a measurement."""
        return [k for k, e in self.extra.items() if e.get("predicted")]

    def peak_mem_bytes(self) -> dict[str, int]:
        """Per-case peak memory where measured (``meta["memory_method"]`` says which kind)."""
        return {k: int(e["peak_mem_bytes"]) for k, e in self.extra.items()
                if e.get("peak_mem_bytes") is not None}

    def model_bytes(self) -> dict[str, int]:
        """Per-case model size as loaded (measured, or predicted for predicted rows)."""
        return {k: int(e["model_bytes"]) for k, e in self.extra.items()
                if e.get("model_bytes") is not None}

    def persistent_bytes(self) -> dict[str, int]:
        """Per-case persistent part of the arena (a microcontroller's firmware says it)."""
        return {k: int(e["persistent_bytes"]) for k, e in self.extra.items()
                if e.get("persistent_bytes") is not None}

    @property
    def validation(self):
        """How well its sums held against measured networks (``LUTValidation``), if validated."""
        from lutfarm.lut.validation_report import LUTValidation

        stored = self.meta.get("validation")
        return LUTValidation.from_dict(stored, device=self.device, runtime=self.runtime) \
            if stored else None

    @property
    def target(self) -> dict | None:
        """The microcontroller the LUT was measured on (board, core, clock, kernels, timer,
        firmware sizes), or None for other runtimes."""
        return self.meta.get("target")

    @property
    def overhead_ms(self) -> float | None:
        """The measured cost of an empty model (per-call overhead), when the LUT has it."""
        return self.latency_ms.get(self.layout.overhead_case().key)

    def to_frame(self):
        """The rows as a pandas DataFrame indexed by case key: ``latency_ms`` and the extra
        columns this LUT carries (the header stays in ``LUT.header``)."""
        import pandas as pd

        frame = pd.DataFrame({"latency_ms": pd.Series(self.latency_ms, dtype=float)})
        frame.index.name = "key"
        extra = pd.DataFrame.from_dict(self.extra, orient="index")
        return frame.join(extra[[c for c in EXTRA_COLUMNS if c in extra]]) if len(extra) \
            else frame

    def __len__(self) -> int:
        return len(self.latency_ms)
