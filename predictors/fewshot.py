"""Few-shot latency transfer to a new device (HELP's setting), done transparently.

What other devices taught: for every known (meta-train) device, a ridge model of log-latency
on the architecture encoding, trained on that device's measured archs. A new device is then
described by ~10 measured archs: its log-latency is fitted as a ridge combination of the known
devices' predictions (alpha by leave-one-out CV). Devices rank architectures alike far more
than they differ, and this uses exactly HELP's information: meta-train devices' data plus the
new device's few samples. Latencies must be positive; they are modelled in log space.

What other devices cannot teach, the architecture itself can: with ``free`` features (log FLOPs
first, then params, op counts, the device's own block-LUT sum where one exists; standardised
by the caller), a second ridge model sees them beside the known devices' predictions, and the
prediction is the mean of both in log space. When the samples themselves rank better by FLOPs
than the model does by leave-one-out, FLOPs (fitted on the samples) join that mean: a device
unlike every known one then falls back towards the ranking that needs no samples at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.linear_model import Ridge, RidgeCV

from lutfarm.predictors.persistence import PredictorError, check_identity, read_model

FORMAT = "lutfarm-fewshot-v1"
ALPHAS = np.logspace(-3, 3, 13)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    rho = stats.spearmanr(a, b).statistic
    return -1.0 if np.isnan(rho) else float(rho)


def _loo(feats: np.ndarray, both: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Leave-one-out log predictions of the two-model mean (known devices alone, and with the
    free features) on the samples."""
    out = np.empty(len(ly))
    for i in range(len(ly)):
        keep = np.arange(len(ly)) != i
        a = RidgeCV(alphas=ALPHAS).fit(feats[keep], ly[keep]).predict(feats[i:i + 1])[0]
        b = RidgeCV(alphas=ALPHAS).fit(both[keep], ly[keep]).predict(both[i:i + 1])[0]
        out[i] = (a + b) / 2
    return out


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
    free_combo: np.ndarray | None = None           # ridge on [known devices, free features]
    free_intercept: float = 0.0
    flops_fit: tuple[float, float] | None = None   # log ms from the first free feature
    feature_scale: np.ndarray | None = None        # (mean, sd) of the meta predictions

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
        f = self._features(x)
        self.feature_scale = np.array([f.mean(axis=0), np.maximum(f.std(axis=0), 1e-12)])
        return self

    def _with_free(self, feats: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Known devices' predictions (``feats``) standardised like the free features, so that
        the ridge penalty weighs both alike."""
        f = feats
        if self.feature_scale is not None:
            f = (f - self.feature_scale[0]) / self.feature_scale[1]
        return np.column_stack([f, free])

    def adapt(self, x: np.ndarray, latency: np.ndarray, target: str = "",
              free: np.ndarray | None = None) -> FewShotTransfer:
        """Fit the new device from a few measured archs (``free``: their free features)."""
        y = np.asarray(latency, float)
        if len(y) < 3 or np.any(y <= 0):
            raise PredictorError("adapting needs at least 3 positive latencies of the device")
        ly, feats = np.log(y), self._features(x)
        m = RidgeCV(alphas=ALPHAS).fit(feats, ly)
        self.combo, self.combo_intercept, self.target = m.coef_, float(m.intercept_), target
        self.free_combo, self.flops_fit = None, None
        if free is None:
            return self
        both = self._with_free(feats, free)
        m = RidgeCV(alphas=ALPHAS).fit(both, ly)
        self.free_combo, self.free_intercept = m.coef_, float(m.intercept_)
        if _spearman(free[:, 0], ly) >= _spearman(_loo(feats, both, ly), ly):
            # matched spread, not least squares: FLOPs then weigh in the mean as much as each
            # model does, rather than as little as its noisy slope on a few samples says
            f = free[:, 0]
            slope = np.sign(np.corrcoef(f, ly)[0, 1]) * ly.std() / max(f.std(), 1e-12)
            self.flops_fit = (float(slope), float(ly.mean() - slope * f.mean()))
        return self

    def predict(self, x: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
        if self.combo is None:
            raise PredictorError("adapt the predictor to a device first")
        feats = self._features(x)
        logs = [feats @ self.combo + self.combo_intercept]
        if self.free_combo is not None:
            if free is None:
                raise PredictorError("this device was adapted with free features (FLOPs, …): "
                                     "pass them to predict too")
            logs.append(self._with_free(feats, free) @ self.free_combo + self.free_intercept)
            if self.flops_fit is not None:
                logs.append(free[:, 0] * self.flops_fit[0] + self.flops_fit[1])
        return np.exp(np.mean(logs, axis=0))

    # -- persistence: plain JSON, independent of scikit-learn's version --------------------------
    def save(self, path: str | Path) -> None:
        data = {"format": FORMAT, "space": self.space, "encoding": self.encoding,
                "devices": self.devices, "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "target": self.target,
                "combo": None if self.combo is None else self.combo.tolist(),
                "combo_intercept": self.combo_intercept,
                "free_combo": None if self.free_combo is None else self.free_combo.tolist(),
                "free_intercept": self.free_intercept, "flops_fit": self.flops_fit,
                "feature_scale": None if self.feature_scale is None
                else self.feature_scale.tolist()}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path, space: str | None = None) -> FewShotTransfer:
        data = read_model(path, FORMAT, "few-shot predictor")
        check_identity(path, data, space=space)
        p = cls(data["space"], data["encoding"], data["devices"], np.array(data["coef"]),
                np.array(data["intercept"]), None, data["combo_intercept"], data["target"])
        if data["combo"] is not None:
            p.combo = np.array(data["combo"])
        if data.get("feature_scale") is not None:
            p.feature_scale = np.array(data["feature_scale"])
        if data.get("free_combo") is not None:       # files from before free features lack it
            p.free_combo = np.array(data["free_combo"])
            p.free_intercept = data["free_intercept"]
            p.flops_fit = tuple(data["flops_fit"]) if data.get("flops_fit") else None
        return p
