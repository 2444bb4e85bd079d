"""The stored form of a LUT's validation: one versioned record for both families.

``lut validate`` measures whole networks (chain spaces) or subnets (elastic spaces) and stores
how well the LUT's sums held; the LUT's header carries it, a search reads its correction, the
dashboard draws it. Before version 2 it was an undeclared dict whose keys differed by family;
``from_dict`` still reads those (``version`` absent), and refuses one written by a newer lutfarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from lutfarm.lut.table import LUTError

VALIDATION_VERSION = 2


@dataclass
class LUTValidation:
    """Held-out metrics (``lut.metrics.latency_metrics`` dicts) of a LUT against measurement."""

    family: str                      # "chain" (whole networks) or "elastic" (subnets)
    device: str
    runtime: str
    layout: str
    n: int                           # held-out networks the metrics are over
    plain: dict                      # FBNet's sum
    overhead: dict                   # the runtime's per-call cost paid once
    corrected: dict = field(default_factory=dict)       # chain: with the in-context correction
    n_measured: int | None = None    # chain: measured in all (train + held-out)
    n_train: int = 0                 # chain: networks that fitted the correction
    plain_all_archs: dict = field(default_factory=dict)
    ridge_alpha: float | None = None
    in_context_factors: dict = field(default_factory=dict)
    correction: dict = field(default_factory=dict)      # InContextCorrection.to_dict()
    paired: dict = field(default_factory=dict)          # chain: adjacent pairs' sum, unfitted
    pair_cost: dict = field(default_factory=dict)       # chain: pairs timed, × the LUT's cases
    interleaved: str | None = None   # "samples", "cases" or None (compared with the LUT)
    block_rounds: list = field(default_factory=list)
    memory: dict = field(default_factory=dict)          # arena ratios (TFLite-Micro)
    space: str | None = None         # elastic: the space (chain LUTs say it in their header)
    resolutions: list = field(default_factory=list)     # elastic
    per_resolution: dict = field(default_factory=dict)  # elastic: "96" -> {plain, overhead}
    unpriced_cases: list = field(default_factory=list)  # elastic: subnets using them skipped
    measured_only: dict = field(default_factory=dict)   # elastic, sampled LUT: additivity
    predicted_blocks: int = 0        # elastic: blocks the LUT only predicted, summed
    points: list = field(default_factory=list)          # per network: measured and predicted
    version: int = VALIDATION_VERSION

    def to_dict(self, points: bool = True) -> dict:
        """What the store keeps and ``--json`` prints (``points=False``: a LUT header's)."""
        d = asdict(self)
        if not points:
            d.pop("points")
        return d

    @classmethod
    def from_dict(cls, d: dict, **defaults) -> LUTValidation:
        """Read a stored report (any version so far); ``defaults`` fill what an old one lacks
        (its device and runtime are the store's keys)."""
        d = {**defaults, **d}
        version = d.get("version", 1)
        if version > VALIDATION_VERSION:
            raise LUTError(f"this validation report is version {version}, newer than this "
                           f"lutfarm reads ({VALIDATION_VERSION}): upgrade lutfarm")
        if version == 1:    # the unversioned dicts, keyed by family
            elastic = "per_resolution" in d or d.get("space") == "mcunet"
            d = {**d, "family": "elastic" if elastic else "chain"}
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("device", "runtime", "layout", "plain", "overhead") if k not in d]
        if missing:
            raise LUTError(f"a validation report lacks {', '.join(missing)}: validate the LUT "
                           f"again (lutfarm lut validate)")
        return cls(**{k: v for k, v in d.items() if k in known and k != "version"})

    @property
    def safe_margin(self) -> float:
        """Held-out mean of plain sum / measured (below 1: the plain sum under-predicts)."""
        return float((self.plain or {}).get("mean_ratio", 1.0))


class ValidationRun:
    """What a family's validation run shares: ``stored()`` gives the record, ``rows`` one dict
    per measured network."""

    runtime: str
    rows: list

    def stored(self) -> LUTValidation:
        raise NotImplementedError

    def summary(self) -> dict:
        """The ``--json`` form: the record without its per-network points."""
        return self.stored().to_dict(points=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def to_frame(self):
        """One row per measured network: measured and predicted (ms)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def write(self, out_dir, target: str, name: str, plot) -> tuple[Path, Path]:
        """The plot (``plot(report, path)``) and the per-network table, written to
        ``out_dir/validate_<target>_<runtime>_<name>.png|.csv``."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in target)  # a file name
        stem = Path(out_dir) / f"validate_{safe}_{self.runtime}_{name}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        plot(self, stem.with_suffix(".png"))
        self.to_frame().to_csv(stem.with_suffix(".csv"), index=False)
        return stem.with_suffix(".png"), stem.with_suffix(".csv")


def stored_validation(store, device: str, runtime: str) -> LUTValidation | None:
    """The newest validation the store keeps for a configuration, or None."""
    report = store.latest_report(device, runtime, "validation")
    return LUTValidation.from_dict(report, device=device, runtime=runtime) if report else None
