"""How much more (or less) each block costs inside a network than alone: the in-context
correction of a LUT sum, learned from measured networks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from lutfarm.lut.query import LatencyTable
from lutfarm.spaces import NUM_OPS, OPS

ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


@dataclass
class InContextCorrection:
    """measured − base ≈ b + Σ_l c[op_l, stage_l] · (T[l, op_l] − o): one factor per (op, stage),
    63 for FBNet, fitted by scikit-learn's ridge (shrunk towards "the LUT is right", alpha by
    k-fold CV). The factors say what the runtime does to blocks in context: e.g. grouped
    blocks (channel shuffle) costing ~1.3x inside ONNX Runtime networks, because whole
    networks stay in its blocked layout while isolated blocks convert at both ends.
    """

    table: LatencyTable
    alpha: float = 1.0
    coef: np.ndarray | None = None
    intercept: float = 0.0

    def features(self, archs) -> np.ndarray:
        a = np.asarray(archs)
        layout = self.table.layout
        stages = np.array([s.stage for s in layout.layer_slots()])
        cost = self.table.matrix - (self.table.lut.overhead_ms or 0.0)   # (layers, ops)
        x = np.zeros((len(a), len(layout.stage_layers) * NUM_OPS))
        rows = np.arange(len(a))
        for layer in range(layout.num_layers):
            np.add.at(x, (rows, stages[layer] * NUM_OPS + a[:, layer]), cost[layer, a[:, layer]])
        return x

    def fit(self, archs, residual, folds: int = 5, seed: int = 0) -> InContextCorrection:
        x, y = self.features(archs), np.asarray(residual, float)
        cv = KFold(min(folds, len(y)), shuffle=True, random_state=seed)
        model = RidgeCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_squared_error").fit(x, y)
        self.alpha = float(model.alpha_)
        self.coef, self.intercept = model.coef_, float(model.intercept_)
        return self

    def predict(self, archs) -> np.ndarray:
        return self.features(archs) @ self.coef + self.intercept

    def factors(self) -> dict[str, float]:
        """Cost inside a network / cost alone, per ``stage<s>/<op>``."""
        stages = len(self.table.layout.stage_layers)
        return {f"stage{s}/{OPS[o].name}": float(1 + self.coef[s * NUM_OPS + o])
                for s in range(stages) for o in range(NUM_OPS) if OPS[o].exp is not None}
