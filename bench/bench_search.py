"""Search figures, each against a baseline measured in the same run.

1. speed: OFA-style constrained evolution, 100 x 500 on the FBNet CIFAR layout (HW-NAS-Bench
   raspi4 LUT, 30 ms budget, MACs objective): wall seconds and evaluations/s; random search with
   the same number of evaluations as the baseline (objective reached, time).
2. NB201 (real accuracies and latencies): best accuracy after k queries, mean of 20 seeds, for
   random, regularised evolution and predictor-guided search, vs the oracle.
3. targeting: edgegpu vs raspi4 winners at matched MACs, each priced on both.
4. DNAS: seconds per epoch (5 batches of 16) with the latency term vs without (alpha = 0).

Usage: python bench/bench_search.py [--nb201 PATH]
"""

from __future__ import annotations

import argparse

import numpy as np

from lutfarm.lut import LatencyTable, import_hwnasbench
from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.search.methods.evolution import constrained_evolution, random_search
from lutfarm.search.methods.nb201 import bench, load_nb201
from lutfarm.search.methods.targeting import targeting_matrix
from lutfarm.search.objectives.space import fbnet_space, lut_latency, macs
from lutfarm.spaces import get_layout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", default=None)
    args = ap.parse_args()
    layout = get_layout("fbnet", "cifar")
    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))
    space, lat, cost = fbnet_space(layout), lut_latency(table), macs(layout)

    def feasible(a):
        return lat(a) <= 30.0

    evo = constrained_evolution(space, cost, feasible, 100, 500)
    rnd = random_search(space, cost, evo.evaluations, feasible)
    print(f"speed: constrained evolution 100 x 500 in {evo.wall_s:.2f} s "
          f"({evo.evaluations / evo.wall_s:,.0f} evaluations/s; OFA reported 22 s), best "
          f"{evo.objective:.1f} MMACs; random search, same {rnd.evaluations} evaluations: "
          f"{rnd.wall_s:.2f} s, best {rnd.objective:.1f} MMACs")

    nb = load_nb201(args.nb201)
    for device in ("raspi4", "pixel3", "edgegpu", "eyeriss"):
        lats = nb.latency[device]
        for pct in (100, 60, 30):
            budget = float(np.nanpercentile(lats, pct))
            r = bench(nb, device, budget, queries=150, seeds=20)
            k = [49, 99, 149]
            cells = "  ".join(f"{m} " + "/".join(f"{c[i]:.2f}" for i in k)
                              for m, c in r.curves.items())
            print(f"NB201 {device:<8} ≤{budget:8.3f} ms (p{pct:<3}) oracle {r.oracle_accuracy:.2f}"
                  f" | best after 50/100/150 queries: {cells}")

    m = targeting_matrix({d: import_hwnasbench(BUNDLED, d) for d in ("edgegpu", "raspi4")})
    print(f"targeting at ≥ {m.macs_floor:.1f} MMACs: " + "; ".join(
        f"{w}-winner {m.latency[w]['edgegpu']:.2f} ms on edgegpu, {m.latency[w]['raspi4']:.2f} "
        f"ms on raspi4" for w in m.targets) + " | own-target speedup " + ", ".join(
        f"{k} {v:.2f}x" for k, v in m.own_advantage().items()))

    import torch

    from lutfarm.search.supernets.data import digits32
    from lutfarm.search.supernets.dnas import search
    data = torch.utils.data.Subset(digits32(), range(200))
    t = {}
    for alpha in (0.0, 0.2):
        r = search(table, data, 10, epochs=2, warmup_epochs=0, batch_size=16, max_batches=5,
                   alpha=alpha)
        t[alpha] = np.mean([e["seconds"] for e in r.epochs])
    print(f"DNAS seconds per epoch (5 batches of 16, weights and θ steps): without latency term "
          f"{t[0.0]:.2f} s, with {t[0.2]:.2f} s (ratio {t[0.2] / t[0.0]:.3f})")


if __name__ == "__main__":
    main()
