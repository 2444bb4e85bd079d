"""Two LUTs of one layout side by side: per-case ratios and where the block rankings differ.

A search is hardware-specific exactly where two configurations order a layer's candidate ops
differently; ``compare_luts`` finds those layers (FBNet's per-target architectures came from
them) and summarises how far the per-case latencies agree overall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from lutfarm.lut.table import LUT, LUTError
from lutfarm.plotting import figure
from lutfarm.spaces.fbnet import OPS
from lutfarm.spaces.registry import family_of


@dataclass
class LayerRanking:
    """One searchable layer: its ops ordered fastest first in A and in B."""

    layer: int
    order_a: list[str]
    order_b: list[str]
    kendall: float

    @property
    def fastest_differs(self) -> bool:
        return self.order_a[0] != self.order_b[0]


@dataclass
class Comparison:
    a: str                                  # "device/runtime" of each side
    b: str
    ratios: dict[str, float]                # case key -> B / A
    spearman: float
    kendall: float
    layers: list[LayerRanking] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    memory_ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        r = np.array(list(self.ratios.values()))
        return {"a": self.a, "b": self.b, "cases": len(self.ratios),
                "ratio_median": float(np.median(r)), "ratio_min": float(r.min()),
                "ratio_max": float(r.max()), "spearman": self.spearman,
                "kendall": self.kendall, "ratios": self.ratios,
                "layers_fastest_differs": [lr.layer for lr in self.layers if lr.fastest_differs],
                "layers_order_differs": [lr.layer for lr in self.layers if lr.order_a != lr.order_b],
                "mean_layer_kendall": float(np.mean([lr.kendall for lr in self.layers]))
                if self.layers else float("nan"),
                "layers": [{"layer": lr.layer, "kendall": lr.kendall, "fastest_a": lr.order_a[0],
                            "fastest_b": lr.order_b[0]} for lr in self.layers],
                "only_a": self.only_a, "only_b": self.only_b,
                "memory_ratios": self.memory_ratios}


def _label(lut: LUT) -> str:
    return f"{lut.device}/{lut.runtime}"


def compare_luts(a: LUT, b: LUT) -> Comparison:
    """Ratios B/A for the cases both have; per-layer op rankings for the layout they share."""
    if (a.space, a.layout_name) != (b.space, b.layout_name):
        raise LUTError(f"the LUTs describe different layouts ({a.space}/{a.layout_name} vs "
                       f"{b.space}/{b.layout_name}); compare LUTs of one layout")
    common = [k for k in a.latency_ms if k in b.latency_ms
              and a.latency_ms[k] > 0 and b.latency_ms[k] > 0]
    if len(common) < 3:
        raise LUTError(f"the LUTs share only {len(common)} measured cases; profile the same "
                       f"layout on both configurations first")
    xa = np.array([a.latency_ms[k] for k in common])
    xb = np.array([b.latency_ms[k] for k in common])
    mem_a, mem_b = a.peak_mem_bytes(), b.peak_mem_bytes()
    cmp = Comparison(_label(a), _label(b), {k: float(v) for k, v in zip(common, xb / xa)},
                     float(stats.spearmanr(xa, xb).statistic),
                     float(stats.kendalltau(xa, xb).statistic),
                     only_a=sorted(set(a.latency_ms) - set(b.latency_ms)),
                     only_b=sorted(set(b.latency_ms) - set(a.latency_ms)),
                     memory_ratios={k: mem_b[k] / mem_a[k] for k in common
                                    if mem_a.get(k) and mem_b.get(k)})
    slots = a.layout.choice_cases() if family_of(a.space) == "chain" else []
    for i, slot in enumerate(slots):       # per-layer re-ranking: FBNet's fixed layers only
        keys = [c.key for c in slot]
        if not all(k in a.latency_ms and k in b.latency_ms for k in keys):
            continue
        ta = [a.latency_ms[k] for k in keys]
        tb = [b.latency_ms[k] for k in keys]
        order = [OPS[j].name for j in np.argsort(ta, kind="stable")]
        order_b = [OPS[j].name for j in np.argsort(tb, kind="stable")]
        tau = float(stats.kendalltau(ta, tb).statistic)
        cmp.layers.append(LayerRanking(i, order, order_b, tau))
    return cmp


def plot_comparison(cmp: Comparison, a: LUT, b: LUT, path) -> None:
    """Log-log scatter of per-case latency, A against B; the diagonal is 'same speed'."""
    keys = list(cmp.ratios)
    xa = np.array([a.latency_ms[k] for k in keys])
    xb = np.array([b.latency_ms[k] for k in keys])
    fig, ax = figure((6, 6))
    ax.loglog(xa, xb, ".", alpha=0.7)
    lo, hi = min(xa.min(), xb.min()), max(xa.max(), xb.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"{cmp.a} (ms)")
    ax.set_ylabel(f"{cmp.b} (ms)")
    ax.set_title(f"per-case latency: Spearman {cmp.spearman:.3f}, "
                 f"{sum(lr.fastest_differs for lr in cmp.layers)}/{len(cmp.layers)} layers "
                 f"change their fastest op", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
