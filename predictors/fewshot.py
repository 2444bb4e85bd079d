"""Few-shot latency transfer to a new device (HELP's setting), done transparently.

What other devices taught: for every known (meta-train) device, a ridge model of log-latency
on the architecture encoding, trained on that device's measured archs. A new device is then
described by ~10 measured archs: its log-latency is fitted as a ridge combination of the known
devices' predictions (alpha by leave-one-out CV). Devices rank architectures alike far more
than they differ, and this uses exactly HELP's information: meta-train devices' data plus the
new device's few samples. Latencies must be positive; they are modelled in log space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV

from lutfarm.predictors.persistence import PredictorError, check_identity, read_model

FORMAT = "lutfarm-fewshot-v1"
ALPHAS = np.logspace(-3, 3, 13)


@dataclass
class FewShotTransfer:
    space: str
    encoding: str                                  # "onehot" | "pairs"
    devices: list[str] = field(default_factory=list)
    coef: np.ndarray | None = None                 # (devices, features) meta models
    intercept: np.ndarray | None = None
    combo: np.ndarray | None = None                # adaptation to the new device
    combo_intercept: float = 0.0
    target: str = ""

    def _features(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef.T + self.intercept

    def fit_meta(self, x: np.ndarray, latency: dict[str, np.ndarray],
                 alpha: float = 1.0) -> FewShotTransfer:
        """One log-latency model per known device (rows with a non-positive latency dropped)."""
        self.devices = sorted(latency)
        coefs, inters = [], []
        for d in self.devices:
            y = np.asarray(latency[d], float)
            if len(y) != len(x):
                raise PredictorError(f"device {d}: {len(y)} latencies for {len(x)} archs")
            ok = np.isfinite(y) & (y > 0)
            m = Ridge(alpha=alpha).fit(x[ok], np.log(y[ok]))
            coefs.append(m.coef_)
            inters.append(m.intercept_)
        self.coef, self.intercept = np.array(coefs), np.array(inters)
        return self

    def adapt(self, x: np.ndarray, latency: np.ndarray, target: str = "") -> FewShotTransfer:
        """Fit the new device from a few measured archs."""
        y = np.asarray(latency, float)
        if len(y) < 3 or np.any(y <= 0):
            raise PredictorError("adapting needs at least 3 positive latencies of the device")
        m = RidgeCV(alphas=ALPHAS).fit(self._features(x), np.log(y))
        self.combo, self.combo_intercept, self.target = m.coef_, float(m.intercept_), target
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.combo is None:
            raise PredictorError("adapt the predictor to a device first")
        return np.exp(self._features(x) @ self.combo + self.combo_intercept)

    # -- persistence: plain JSON, independent of scikit-learn's version --------------------------
    def save(self, path: str | Path) -> None:
        data = {"format": FORMAT, "space": self.space, "encoding": self.encoding,
                "devices": self.devices, "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "target": self.target,
                "combo": None if self.combo is None else self.combo.tolist(),
                "combo_intercept": self.combo_intercept}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path, space: str | None = None) -> FewShotTransfer:
        data = read_model(path, FORMAT, "few-shot predictor")
        check_identity(path, data, space=space)
        p = cls(data["space"], data["encoding"], data["devices"], np.array(data["coef"]),
                np.array(data["intercept"]), None, data["combo_intercept"], data["target"])
        if data["combo"] is not None:
            p.combo = np.array(data["combo"])
        return p
