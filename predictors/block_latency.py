"""Block-level latency for cases nobody measured (new widths, resolutions), nn-Meter style.

Features per block: H, Cin, Cout, expansion, kernel, stride, groups, MACs, params and bytes
moved (activations in and out, the expanded tensors, weights), mostly in log space. The model
is scikit-learn's ridge regression on degree-3 polynomial features of those, predicting log
latency, so it persists as plain coefficients in JSON (version-independent) and predicts with
numpy alone. ``adaptive_sample`` is nn-Meter's loop: train, find the validation cases it gets
wrong by more than 10 %, measure new cases near them, train again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import PolynomialFeatures

from lutfarm.lut.metrics import latency_metrics
from lutfarm.predictors.persistence import PredictorError, check_identity, read_model
from lutfarm.spaces.cases import BlockCase

FORMAT = "lutfarm-block-latency-v1"
DEGREE = 3   # cubic terms: 69 % vs 42 % within ±10 % for quadratic on 418 measured blocks here
DEGREES = (1, 2, 3)          # fit() picks among them by cross-validation unless told
ALPHAS = np.logspace(-4, 2, 13)
FEATURES = ("log_h", "log_cin", "log_cout", "exp", "kernel", "stride", "group", "log_macs",
            "log_params", "log_bytes")
KINDS = ("ConvBlock", "MBConv")          # inverted residuals: FBNet's and MCUNet's
SE_FEATURES = FEATURES + ("se",)         # MCUNet's blocks: with or without squeeze-excitation


def features(cases: list[BlockCase], names: tuple[str, ...] = FEATURES) -> np.ndarray:
    rows = []
    for c in cases:
        ho, wo = c.out_hw
        mid = c.cin * c.exp
        moved = 4 * (c.h * c.w * c.cin + ho * wo * c.cout + c.params
                     + c.h * c.w * mid + ho * wo * mid)
        values = {"log_h": np.log(c.h), "log_cin": np.log(c.cin), "log_cout": np.log(c.cout),
                  "exp": c.exp, "kernel": c.kernel, "stride": c.stride, "group": c.group or 1,
                  "log_macs": np.log1p(c.macs), "log_params": np.log1p(c.params),
                  "log_bytes": np.log1p(moved), "se": c.se or 0}
        rows.append([values[n] for n in names])
    return np.array(rows, float)


@dataclass
class BlockLatencyPredictor:
    """Latency (ms) of one kind of inverted residual (FBNet ConvBlock or MCUNet MBConv) on
    one (device, runtime configuration)."""

    device: str
    runtime: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    coef: np.ndarray | None = None
    intercept: float = 0.0
    meta: dict = field(default_factory=dict)
    _poly: PolynomialFeatures = field(default_factory=lambda: PolynomialFeatures(DEGREE),
                                      repr=False)
    names: tuple[str, ...] = FEATURES

    def _design(self, cases) -> np.ndarray:
        x = (features(cases, self.names) - self.mean) / self.std
        return self._poly.fit_transform(x)

    def fit(self, cases: list[BlockCase], latency_ms,
            degree: int | None = None) -> BlockLatencyPredictor:
        kinds = {c.kind for c in cases}
        if len(kinds) != 1 or not kinds <= set(KINDS):
            raise PredictorError(f"the block predictor models one kind of inverted residual "
                                 f"({' or '.join(KINDS)}), got {', '.join(sorted(kinds))}")
        self.names = SE_FEATURES if kinds == {"MBConv"} else FEATURES
        x = features(cases, self.names)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-9
        y = np.log(np.asarray(latency_ms, float))
        if degree is None:
            degree = self._pick_degree((x - self.mean) / self.std, y)
        self._poly = PolynomialFeatures(degree)
        model = RidgeCV(alphas=ALPHAS).fit(self._design(cases), y)
        self.coef, self.intercept = model.coef_, float(model.intercept_)
        self.meta.update(trained_on=len(cases), degree=degree, kind=kinds.pop())
        return self

    @property
    def kind(self) -> str:
        """The block kind it models (older files without it: by their features)."""
        return self.meta.get("kind") or ("MBConv" if "se" in self.names else "ConvBlock")

    @staticmethod
    def _pick_degree(x: np.ndarray, y: np.ndarray) -> int:
        """The polynomial degree with the smallest 5-fold cross-validated log error: cubic
        terms pay off on a few hundred blocks (FBNet's 418), overfit on a sample of 60."""
        from sklearn.model_selection import KFold, cross_val_score
        from sklearn.pipeline import make_pipeline

        folds = KFold(min(5, len(y)), shuffle=True, random_state=0)
        scores = {d: cross_val_score(make_pipeline(PolynomialFeatures(d),
                                                   RidgeCV(alphas=ALPHAS)),
                                     x, y, cv=folds, scoring="neg_mean_absolute_error").mean()
                  for d in DEGREES}
        return max(scores, key=scores.get)

    def predict(self, cases: list[BlockCase]) -> np.ndarray:
        other = sorted({c.kind for c in cases} - {self.kind})
        if other:
            raise PredictorError(f"this predictor models {self.kind} blocks, not "
                                 f"{', '.join(other)}; train one for that space "
                                 f"(lutfarm predict train --space …)")
        return np.exp(self._design(cases) @ self.coef + self.intercept)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({
            "format": FORMAT, "device": self.device, "runtime": self.runtime,
            "features": list(self.names), "degree": self._poly.degree,
            "mean": self.mean.tolist(), "std": self.std.tolist(),
            "coef": self.coef.tolist(), "intercept": self.intercept, "meta": self.meta}))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None,
             runtime: str | None = None) -> BlockLatencyPredictor:
        d = read_model(path, FORMAT, "block-latency predictor")
        check_identity(path, d, device=device, runtime=runtime)
        return cls(d["device"], d["runtime"], np.array(d["mean"]), np.array(d["std"]),
                   np.array(d["coef"]), d["intercept"], d["meta"],
                   PolynomialFeatures(d.get("degree", DEGREE)),
                   tuple(d.get("features") or FEATURES))


def neighbours(case: BlockCase, rng: np.random.Generator, n: int = 2) -> list[BlockCase]:
    """Cases near ``case``: channels scaled by 0.75-1.25 (multiples of 8), same structure."""
    out = []
    for _ in range(n):
        cin = max(8, int(round(case.cin * rng.uniform(0.75, 1.25) / 8)) * 8)
        cout = max(8, int(round(case.cout * rng.uniform(0.75, 1.25) / 8)) * 8)
        if (cin * case.exp) % case.group == 0 and cout % case.group == 0:
            out.append(replace(case, cin=cin, cout=cout))
    return out


def adaptive_sample(measure: Callable[[list[BlockCase]], dict[str, float]],
                    train: list[BlockCase], validation: list[BlockCase], rounds: int = 2,
                    per_round: int = 40, seed: int = 0, device: str = "", runtime: str = ""):
    """nn-Meter's loop; returns (predictor, per-round validation metrics)."""
    rng = np.random.default_rng(seed)
    known = measure(train + validation)
    train = [c for c in train if c.key in known]
    validation = [c for c in validation if c.key in known]
    y_val = np.array([known[c.key] for c in validation])
    history = []
    for round_ in range(rounds + 1):
        p = BlockLatencyPredictor(device, runtime).fit(train, [known[c.key] for c in train])
        pred = p.predict(validation)
        history.append({"round": round_, "train": len(train), **latency_metrics(pred, y_val)})
        if round_ == rounds:
            return p, history
        worst = [validation[i] for i in np.argsort(-np.abs(pred / y_val - 1))
                 if abs(pred[i] / y_val[i] - 1) > 0.10][:per_round // 2]
        fresh = {c.key: c for w in worst for c in neighbours(w, rng)
                 if c.key not in known}
        known.update(measure(list(fresh.values())))
        train += [c for c in fresh.values() if c.key in known]
