"""How much more (or less) each block costs inside a network than alone: the in-context
correction of a LUT sum, learned from measured networks.

The model works in relative terms: measured / base − 1 (base being the overhead-corrected
LUT sum) is explained by the share of the base each kind of block takes. Two consequences:
the loss is the relative error every fidelity metric reports, and a correction learned while
the machine ran at one speed still applies when it runs at another (a uniform slowdown
scales the measurement and the LUT alike), so it can travel with the LUT to a search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from lutfarm.lut.query import LatencyTable, rows_by_table
from lutfarm.spaces import NUM_OPS, OPS

ALPHAS = tuple(10.0 ** np.arange(-5, 1.5, 0.5))


def block_costs(table: LatencyTable, archs) -> np.ndarray:
    """(archs, stages × ops) ms of each arch's blocks by (stage, op), less the per-call
    overhead each LUT entry carries."""
    a = np.asarray(archs)
    layout = table.layout
    stages = np.array([s.stage for s in layout.layer_slots()])
    cost = table.matrix - (table.lut.overhead_ms or 0.0)   # (layers, ops)
    x = np.zeros((len(a), len(layout.stage_layers) * NUM_OPS))
    rows = np.arange(len(a))
    for layer in range(layout.num_layers):
        np.add.at(x, (rows, stages[layer] * NUM_OPS + a[:, layer]), cost[layer, a[:, layer]])
    return x


def _base(table: LatencyTable, archs) -> np.ndarray:
    return table.latency(archs, "overhead" if table.lut.overhead_ms is not None else "plain")


@dataclass
class InContextCorrection:
    """measured / base − 1 ≈ b + Σ_op u_op·share_op + Σ_(op,stage) c·share_(op,stage)
    + d·o/base, fitted by scikit-learn's ridge (alpha by k-fold CV).

    The per-op shares let a handful of networks learn "grouped blocks cost 1.3× in context"
    once for all stages; the per-(op, stage) terms only take what differs by stage, and the
    ridge keeps them near zero unless the networks insist: shrinkage toward per-op factors,
    which is what 20–40 training networks can support (63 free factors cannot). ``d`` is a
    constant number of milliseconds per network (e.g. the runtime call the overhead model
    leaves), which in relative terms shrinks as networks grow.
    """

    alpha: float = 1.0
    coef: np.ndarray | None = None
    intercept: float = 0.0
    stages: int = 0
    train: list[tuple[str, float]] = field(default_factory=list)   # (arch, measured / base)

    def features(self, table: LatencyTable, archs) -> tuple[np.ndarray, np.ndarray]:
        """(feature matrix, base ms) of ``archs`` priced by ``table``."""
        base = _base(table, archs)
        per_stage = block_costs(table, archs) / base[:, None]
        stages = per_stage.shape[1] // NUM_OPS
        per_op = per_stage.reshape(len(base), stages, NUM_OPS).sum(axis=1)
        call = (table.lut.overhead_ms or 0.0) / base
        return np.column_stack([per_op, per_stage, call]), base

    def fit(self, tables, archs, measured, folds: int = 5, seed: int = 0) -> InContextCorrection:
        """``tables``: one LatencyTable, or one per arch (the block costs timed around it)."""
        x, base = _stack(self, tables, archs)
        ratio = np.asarray(measured, float) / base
        cv = KFold(min(folds, len(ratio)), shuffle=True, random_state=seed)
        model = RidgeCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_squared_error").fit(x, ratio - 1)
        self.alpha = float(model.alpha_)
        self.coef, self.intercept = model.coef_, float(model.intercept_)
        self.stages = (x.shape[1] - 1) // NUM_OPS - 1
        self.train = [("".join(map(str, a)), float(r)) for a, r in zip(np.asarray(archs), ratio)]
        return self

    def refit(self, table: LatencyTable, archs, measured) -> InContextCorrection:
        """A correction fitted on this one's training networks plus ``archs`` (measured ms),
        every network priced by ``table``: its ratios carry over whatever the LUT's speed."""
        old = np.array([[int(c) for c in a] for a, _ in self.train], int)
        ratios = np.array([r for _, r in self.train])
        every = np.concatenate([old, np.asarray(archs, int).reshape(-1, old.shape[1])])
        measured_all = np.concatenate([ratios * _base(table, old), np.asarray(measured, float)])
        return InContextCorrection().fit(table, every, measured_all)

    def predict(self, tables, archs) -> np.ndarray:
        x, base = _stack(self, tables, archs)
        return base * (1 + x @ self.coef + self.intercept)

    def factors(self) -> dict[str, float]:
        """Cost inside a network / cost alone, per ``stage<s>/<op>`` (the bias included)."""
        per_op = self.coef[:NUM_OPS]
        per_stage = self.coef[NUM_OPS:NUM_OPS * (self.stages + 1)]
        return {f"stage{s}/{OPS[o].name}":
                float(1 + self.intercept + per_op[o] + per_stage[s * NUM_OPS + o])
                for s in range(self.stages) for o in range(NUM_OPS) if OPS[o].exp is not None}

    def to_dict(self) -> dict:
        """What a LUT file carries so a search can price archs with this correction."""
        return {"model": "in-context-v2", "alpha": self.alpha, "coef": self.coef.tolist(),
                "intercept": self.intercept, "stages": self.stages,
                "train": [list(t) for t in self.train]}

    @classmethod
    def from_dict(cls, d: dict) -> InContextCorrection:
        if d.get("model") != "in-context-v2":
            raise ValueError(f"unknown correction model {d.get('model')!r}; validate the LUT "
                             f"again with this lutfarm (lutfarm lut validate)")
        return cls(d["alpha"], np.asarray(d["coef"], float), float(d["intercept"]),
                   int(d["stages"]), [(a, float(r)) for a, r in d.get("train", [])])


def _stack(model: InContextCorrection, tables, archs) -> tuple[np.ndarray, np.ndarray]:
    """Features of archs priced each by its own table (grouped, so each table prices once)."""
    a = np.asarray(archs)
    if isinstance(tables, LatencyTable):
        return model.features(tables, a)
    x, base = None, np.zeros(len(a))
    for rows in rows_by_table(tables):
        fx, fb = model.features(tables[rows[0]], a[rows])
        if x is None:
            x = np.zeros((len(a), fx.shape[1]))
        x[rows], base[rows] = fx, fb
    return x, base
