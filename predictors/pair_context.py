"""What a block costs next to its neighbour, from adjacent pairs measured in context.

A block timed alone starts from a cold input and ends by handing its output back to the
caller; inside a network its input is its neighbour's hot output, a layout conversion between
the two may be skipped, an activation fused. nn-Meter measures such pairs; here a pair's
in-context delta is

    r = (T₁₂ − o − (T₁ − o) − (T₂ − o)) / ((T₁ − o) + (T₂ − o))

(o: the empty model, the per-call cost each timed model carries once), a share of the two
blocks' own cost, measured with T₁, T₂ and o timed in turn with the pair, so that a machine
whose speed wanders cancels out and the share travels to a LUT measured at another hour.
An arch then costs its overhead-corrected sum plus Σ r̂ · (c_a + c_b) over its adjacent
layers: measured r where the pair was measured, a tree ensemble's prediction elsewhere (pairs
of one shape repeat across a stage, so a few hundred measured pairs stand for ≈ 1 500).
Which pairs to measure is chosen adaptively: a stratified first half (every op couple), then
the pairs whose predicted milliseconds the ensemble is least sure of, weighted by how often
random archs contain them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor

from lutfarm.lut.query import LatencyTable
from lutfarm.spaces.cases import BlockCase, PairCase
from lutfarm.spaces.fbnet import NUM_OPS

CLIP = 0.9          # |r| beyond this is a measurement of noise, not of context
MODEL = "pair-context-v1"


def pair_delta(t12: float, t1: float, t2: float, overhead: float) -> float:
    """The in-context share r of one pair (see the module docstring), clipped to ±CLIP."""
    own = max(t1 - overhead, 0.0) + max(t2 - overhead, 0.0)
    if own <= 0:
        return 0.0
    return float(np.clip((t12 - t1 - t2 + overhead) / own, -CLIP, CLIP))


def _block_features(c: BlockCase) -> list[float]:
    skip = c.kind != "ConvBlock"
    return [float(skip), float(c.exp or 0), float(c.kernel or 0), float(c.group or 1),
            float(c.stride or 1), np.log2(c.cin), np.log2(c.cout), np.log2(c.h or 1)]


def pair_features(pair: PairCase, c1: float, c2: float) -> list[float]:
    """Both blocks' shapes and ops, and the first one's share of their own cost."""
    share = c1 / (c1 + c2) if c1 + c2 > 0 else 0.5
    return [*_block_features(pair.first), *_block_features(pair.second), share]


def slot_pairs(layout) -> list[list[list[PairCase]]]:
    """``[layer][op_a][op_b]``: the pair of layer ``layer`` running ``op_a`` and the next
    running ``op_b``, for the layout's ``num_layers − 1`` adjacent layer positions."""
    cases = layout.choice_cases()
    return [[[PairCase(a, b) for b in nxt] for a in cur] for cur, nxt in zip(cases, cases[1:])]


def candidate_pairs(layout) -> dict[str, tuple[PairCase, int]]:
    """Every distinct adjacent pair, with how many layer positions it occurs at."""
    out: dict[str, tuple[PairCase, int]] = {}
    for layer in slot_pairs(layout):
        for row in layer:
            for p in row:
                _, n = out.get(p.key, (p, 0))
                out[p.key] = (p, n + 1)
    return out


@dataclass
class PairContext:
    """Measured in-context shares by pair key, and the ensemble that predicts the rest."""

    measured: dict[str, float] = field(default_factory=dict)   # pair key -> r
    shares: dict[str, float] = field(default_factory=dict)     # pair key -> c₁/(c₁+c₂) timed
    seed: int = 0
    _model: ExtraTreesRegressor | None = field(default=None, repr=False)
    _deltas: dict = field(default_factory=dict, repr=False)   # id(table) -> (table, delta)

    def add(self, round_ms: dict[str, float], pairs: list[PairCase], overhead_key: str) -> None:
        """Take the pairs measured in one interleaved round (key -> median ms)."""
        o = round_ms[overhead_key]
        for p in pairs:
            keys = (p.key, p.first.key, p.second.key)
            if all(k in round_ms for k in keys):
                t12, t1, t2 = (round_ms[k] for k in keys)
                self.measured[p.key] = pair_delta(t12, t1, t2, o)
                c1, c2 = max(t1 - o, 0.0), max(t2 - o, 0.0)
                self.shares[p.key] = c1 / (c1 + c2) if c1 + c2 > 0 else 0.5
        self._model = None
        self._deltas.clear()

    def fit(self) -> PairContext:
        keys = sorted(self.measured)
        if len(keys) < 2:
            raise ValueError(f"need at least 2 measured pairs to predict the others, got "
                             f"{len(keys)}")
        x = [self._features(k, self.shares[k]) for k in keys]
        y = [self.measured[k] for k in keys]
        self._model = ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2,
                                          random_state=self.seed).fit(x, y)
        return self

    @staticmethod
    def _features(key: str, share: float) -> list[float]:
        p = PairCase.from_key(key)
        return pair_features(p, share, 1 - share)

    def _predict(self, x: np.ndarray, spread: bool = False):
        if self._model is None:
            self.fit()
        if not spread:
            return self._model.predict(x)
        each = np.stack([t.predict(x) for t in self._model.estimators_])
        return each.mean(axis=0), each.std(axis=0)

    def delta_ms(self, table: LatencyTable) -> np.ndarray:
        """(layers − 1, ops, ops): the milliseconds layer ``i`` running op ``a`` followed by
        op ``b`` adds to the overhead-corrected sum (negative: context saves)."""
        o = table.lut.overhead_ms or 0.0
        cost = np.maximum(table.matrix - o, 0.0)
        grid = slot_pairs(table.layout)
        n = len(grid)
        ca = np.repeat(cost[:-1, :, None], NUM_OPS, axis=2)
        cb = np.repeat(cost[1:, None, :], NUM_OPS, axis=1)
        total = ca + cb
        share = np.divide(ca, total, out=np.full_like(total, 0.5), where=total > 0)
        keys = [p.key for layer in grid for row in layer for p in row]
        x = np.array([pair_features(p, s, 1 - s) for p, s in
                      zip((p for layer in grid for row in layer for p in row), share.ravel())])
        r = self._predict(x)
        known = np.array([self.measured.get(k, np.nan) for k in keys])
        r = np.where(np.isnan(known), r, known).reshape(n, NUM_OPS, NUM_OPS)
        return r * total

    def predict(self, table: LatencyTable, archs) -> np.ndarray:
        """Overhead-corrected sum plus the adjacent pairs' deltas, ms per arch."""
        a = np.asarray(archs)
        base = table.latency(a, "overhead")
        cached = self._deltas.get(id(table))
        if cached is None or cached[0] is not table:   # a search prices one table many times
            cached = self._deltas[id(table)] = (table, self.delta_ms(table))
        return base + self.added(cached[1], a)

    @staticmethod
    def added(delta: np.ndarray, archs: np.ndarray) -> np.ndarray:
        """Σ over adjacent layers of ``delta[i, a_i, a_i+1]``: one gather, one row sum."""
        layers = np.arange(delta.shape[0])
        return delta[layers, archs[:, :-1], archs[:, 1:]].sum(axis=1)

    def next_pairs(self, layout, table: LatencyTable, n: int) -> list[PairCase]:
        """The ``n`` unmeasured pairs worth measuring next: stratified over op couples while
        fewer than 2 are measured, then by the ensemble's spread in milliseconds times how
        often the pair occurs (nn-Meter's adaptive sampling, on a budget)."""
        cands = {k: v for k, v in candidate_pairs(layout).items() if k not in self.measured}
        rng = np.random.default_rng(self.seed + len(self.measured))
        if len(self.measured) < 2:
            return stratified(cands, n, rng)
        o = table.lut.overhead_ms or 0.0
        cost = {k: max(v - o, 0.0) for k, v in table.lut.latency_ms.items()}
        keys = list(cands)
        own = np.array([cost.get(cands[k][0].first.key, 0) + cost.get(cands[k][0].second.key, 0)
                        for k in keys])
        share = np.array([cost.get(cands[k][0].first.key, 0) for k in keys]) / np.maximum(own,
                                                                                      1e-9)
        x = np.array([pair_features(cands[k][0], s, 1 - s) for k, s in zip(keys, share)])
        _, std = self._predict(x, spread=True)
        weight = std * own * np.array([cands[k][1] for k in keys])
        order = np.argsort(-weight)[:n]
        return [cands[keys[i]][0] for i in order]

    def to_dict(self) -> dict:
        return {"model": MODEL, "measured": self.measured, "shares": self.shares,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> PairContext:
        """The ensemble is fitted again from the measured shares (deterministic seed)."""
        if d.get("model") != MODEL:
            raise ValueError(f"the stored pair context is a {d.get('model')!r} model; measure "
                             f"the pairs again (lutfarm lut validate --pairs N)")
        return cls(dict(d["measured"]), dict(d["shares"]), int(d.get("seed", 0)))


def stratified(cands: dict[str, tuple[PairCase, int]], n: int, rng) -> list[PairCase]:
    """``n`` pairs spread over (first op, second op) couples, then over their shapes."""
    by_couple: dict[tuple, list[PairCase]] = {}
    for p, _ in cands.values():
        couple = (p.first.kind, p.first.exp, p.first.kernel, p.first.group,
                  p.second.kind, p.second.exp, p.second.kernel, p.second.group)
        by_couple.setdefault(couple, []).append(p)
    pools = [list(rng.permutation(len(v))) for v in by_couple.values()]
    groups = list(by_couple.values())
    out: list[PairCase] = []
    while len(out) < n and any(pools):
        for g, pool in zip(groups, pools):
            if pool and len(out) < n:
                out.append(g[pool.pop()])
    return out
