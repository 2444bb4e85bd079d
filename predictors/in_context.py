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
from lutfarm.predictors.pair_context import PairContext
from lutfarm.spaces.fbnet import NUM_OPS, OPS

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


def _base(table: LatencyTable, archs, pairs: PairContext | None = None) -> np.ndarray:
    if pairs is not None:
        return pairs.predict(table, np.asarray(archs))
    return table.latency(archs, "overhead" if table.lut.overhead_ms is not None else "plain")


STAGE_SCALE = 0.1    # per-(op, stage) shares enter scaled down: 100x the ridge penalty
CALL_SCALE = 10.0    # the constant-milliseconds feature, scaled up: nearly free to use
MODEL = "in-context-v4"


def arch_weights_m(layout, archs) -> np.ndarray:
    """Millions of weights per arch: a network's weights do not all stay in cache between
    its blocks, as a block's do when it is timed alone over and over."""
    key = (layout.name, layout.classes)
    if key not in _WEIGHTS:
        m = np.array([[c.params for c in row] for row in layout.choice_cases()], float) / 1e6
        _WEIGHTS[key] = (m, sum(c.params for c in layout.fixed_cases()) / 1e6)
    m, fixed = _WEIGHTS[key]
    a = np.asarray(archs)
    return m[np.arange(m.shape[0]), a].sum(axis=1) + fixed


_WEIGHTS: dict = {}


@dataclass
class InContextCorrection:
    """measured / base − 1 ≈ b + Σ_op u_op·share_op + Σ_(op,stage) c·share_(op,stage)
    + d·b̃/base + w·W·b̃/base (W: the arch's millions of weights), fitted by scikit-learn's
    ridge (alpha by k-fold CV).

    The per-op shares let a handful of networks learn "grouped blocks cost 1.3× in context"
    once for all stages; the per-(op, stage) terms enter scaled down, so the ridge keeps them
    near zero unless the networks insist: shrinkage toward per-op factors, which is what
    20–40 training networks support (63 free factors overfit them). ``d·b̃/base`` (b̃: the
    training networks' median base) is a constant number of milliseconds per network (the
    runtime's own call and graph overheads that the overhead model leaves), which in relative
    terms shrinks as networks grow; it enters scaled up, nearly unpenalised. On ONNX Runtime
    here (60 interleaved networks, 30 to train, 20 splits) it took ±10 % from 90 % to 94 %.
    The weights term (v4) is the cost of weights that a network, unlike a block timed in a
    loop, reads cold: the v3 error correlated with the weights (Spearman −0.38 on LiteRT), and
    the term took ±5 % from 79 % to 86 % (ORT) and 86.5 % to 89.5 % (LiteRT), 40 networks to
    fit, 20 splits.
    """

    alpha: float = 1.0
    coef: np.ndarray | None = None
    intercept: float = 0.0
    stages: int = 0
    train: list[tuple[str, float]] = field(default_factory=list)   # (arch, measured / base)
    typical_ms: float = 1.0          # b̃, the training networks' median base
    pairs: PairContext | None = None  # adjacent pairs measured in context: the base adds them

    def features(self, table: LatencyTable, archs) -> tuple[np.ndarray, np.ndarray]:
        """(feature matrix, base ms) of ``archs`` priced by ``table``."""
        base = _base(table, archs, self.pairs)
        per_stage = block_costs(table, archs) / base[:, None]
        stages = per_stage.shape[1] // NUM_OPS
        per_op = per_stage.reshape(len(base), stages, NUM_OPS).sum(axis=1)
        call = CALL_SCALE * self.typical_ms / base
        weights = arch_weights_m(table.layout, archs) * self.typical_ms / base
        return np.column_stack([per_op, STAGE_SCALE * per_stage, call, weights]), base

    def fit(self, tables, archs, measured, folds: int = 5, seed: int = 0) -> InContextCorrection:
        """``tables``: one LatencyTable, or one per arch (the block costs timed around it)."""
        self.typical_ms = float(np.median(_stack(self, tables, archs)[1]))
        x, base = _stack(self, tables, archs)
        ratio = np.asarray(measured, float) / base
        cv = KFold(min(folds, len(ratio)), shuffle=True, random_state=seed)
        model = RidgeCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_squared_error").fit(x, ratio - 1)
        self.alpha = float(model.alpha_)
        self.coef, self.intercept = model.coef_, float(model.intercept_)
        self.stages = (x.shape[1] - 2) // NUM_OPS - 1
        self.train = [("".join(map(str, a)), float(r)) for a, r in zip(np.asarray(archs), ratio)]
        return self

    def refit(self, table: LatencyTable, archs, measured) -> InContextCorrection:
        """A correction fitted on this one's training networks plus ``archs`` (measured ms),
        every network priced by ``table``: its ratios carry over whatever the LUT's speed."""
        old = np.array([[int(c) for c in a] for a, _ in self.train], int)
        ratios = np.array([r for _, r in self.train])
        every = np.concatenate([old, np.asarray(archs, int).reshape(-1, old.shape[1])])
        measured_all = np.concatenate([ratios * _base(table, old, self.pairs),
                                       np.asarray(measured, float)])
        return InContextCorrection(pairs=self.pairs).fit(table, every, measured_all)

    def predict(self, tables, archs) -> np.ndarray:
        x, base = _stack(self, tables, archs)
        return base * (1 + x @ self.coef + self.intercept)

    def factors(self) -> dict[str, float]:
        """Cost inside a network / cost alone, per ``stage<s>/<op>`` (the bias included)."""
        per_op = self.coef[:NUM_OPS]
        per_stage = self.coef[NUM_OPS:NUM_OPS * (self.stages + 1)]
        return {f"stage{s}/{OPS[o].name}":
                float(1 + self.intercept + per_op[o] + STAGE_SCALE * per_stage[s * NUM_OPS + o])
                for s in range(self.stages) for o in range(NUM_OPS) if OPS[o].exp is not None}

    def to_dict(self) -> dict:
        """What a LUT file carries so a search can price archs with this correction."""
        out = {"model": MODEL, "alpha": self.alpha, "coef": self.coef.tolist(),
               "intercept": self.intercept, "stages": self.stages,
               "typical_ms": self.typical_ms, "train": [list(t) for t in self.train]}
        if self.pairs is not None:
            out["pairs"] = self.pairs.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict, table: LatencyTable | None = None) -> InContextCorrection:
        """The stored correction; one stored by another version of this model is fitted again
        on its training networks' ratios, priced by ``table`` (the LUT it came with)."""
        pairs = PairContext.from_dict(d["pairs"]) if d.get("pairs") else None
        if d.get("model") == MODEL:
            return cls(d["alpha"], np.asarray(d["coef"], float), float(d["intercept"]),
                       int(d["stages"]), [(a, float(r)) for a, r in d.get("train", [])],
                       float(d["typical_ms"]), pairs)
        if table is None or len(d.get("train") or []) < 3:
            raise ValueError(f"the stored correction is a {d.get('model')!r} model without its "
                             f"training networks; validate the LUT again (lutfarm lut validate)")
        return cls(train=[(a, float(r)) for a, r in d["train"]], pairs=pairs).refit(table, [], [])


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
