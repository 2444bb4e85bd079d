"""Is weight sharing telling the truth, and does searching on it pay?

1. Trains the FBNet (cifar layout) one-shot supernet on digits or --data FOLDER (or --space
   mcunet), timing epochs.
2. Trains --standalone subnets from scratch (the real networks, ``build_network``) for a few
   epochs and reports Kendall τ between their held-out accuracy and the supernet's.
3. Under the bundled HW-NAS-Bench raspi4 LUT (fbnet only), at three latency budgets, searches on
   supernet accuracy and compares the winner with random feasible subnets (supernet accuracy),
   as the ratio winner / mean of random.

    python bench/bench_supernet.py [--data FOLDER] [--epochs 30] [--standalone 20]
        [--standalone-seeds 2] [--sandwich --distill] [--no-search] [--device cuda] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch
import torch.nn.functional as F


def standalone_accuracy(layout, arch, train_set, held_out, epochs, device, seed=0) -> float:
    from lutfarm.search.supernets.data import loader
    from lutfarm.seeding import torch_seeded
    from lutfarm.spaces.modules import build_network

    with torch_seeded(seed):
        net = build_network(layout, arch).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=4e-5)
    steps = epochs * len(loader(train_set, 64, drop_last=True))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=steps)
    size = getattr(arch, "resolution", None)
    for epoch in range(epochs):
        net.train()
        for x, y in loader(train_set, 64, shuffle=True, seed=epoch, drop_last=True):
            x, y = x.to(device), y.to(device)
            if size and x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    right = seen = 0
    with torch.no_grad():
        for x, y in loader(held_out, 256):
            x = x.to(device)
            if size and x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            right += int((net(x).argmax(1).cpu() == y).sum())
            seen += len(y)
    return 100.0 * right / seen


def main() -> None:
    from dataclasses import asdict

    from scipy import stats

    from lutfarm.search.supernets.data import load_images, num_classes
    from lutfarm.search.supernets.oneshot import Checkpoint, TrainSettings, train
    from lutfarm.spaces import get_layout

    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("--data", default="digits",
                    help="'digits' or an image folder root/<class>/<image> (τ needs data where "
                         "stand-alone subnets differ by more than seed noise)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--standalone", type=int, default=20)
    ap.add_argument("--standalone-epochs", type=int, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--sandwich", action="store_true")
    ap.add_argument("--distill", action="store_true")
    ap.add_argument("--standalone-seeds", type=int, default=1,
                    help="train each stand-alone subnet this often (seeds 0..N-1): the τ between "
                         "two seeds is the most any supernet can reach on this data")
    ap.add_argument("--no-search", action="store_true", help="skip the search-vs-random part")
    ap.add_argument("--warmup-epochs", type=float, default=TrainSettings.warmup_epochs)
    ap.add_argument("--lr", type=float, default=TrainSettings.lr)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = a.data if a.data == "digits" else str(Path(a.data).resolve())
    classes = num_classes(load_images(data, 32))
    layout = get_layout(a.space, "cifar" if a.space == "fbnet" else "c10", classes)
    if a.space == "mcunet":
        layout = layout.with_resolutions([32, 48])
    settings = TrainSettings(epochs=a.epochs, sandwich=a.sandwich, distill=a.distill, lr=a.lr,
                             warmup_epochs=a.warmup_epochs)
    result: dict = {"space": a.space, "data": data, "device": device, "torch_device_name":
                    torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"}
    with TemporaryDirectory() as tmp:
        ck = Checkpoint(layout.space, layout.name, classes,
                        list(getattr(layout, "resolutions", [])) or None, data, asdict(settings))
        t0 = time.perf_counter()
        ck = train(ck, Path(tmp) / "s.pt", settings, device)
        result["supernet_train_s"] = time.perf_counter() - t0
        result["seconds_per_epoch"] = float(np.median([r["seconds"] for r in ck.history]))
        result["final_train_acc"] = ck.history[-1]["train_acc"]
        scorer = ck.scorer(device)
        net = scorer.net
        train_set, held_out = ck.datasets()
        rng = np.random.default_rng(7)
        archs = [net.sample(rng) for _ in range(a.standalone)]
        one_shot = [100.0 * scorer(x) for x in archs]
        result["largest_accuracy"] = 100.0 * scorer(net.largest())
        result["smallest_accuracy"] = 100.0 * scorer(net.smallest())
        t0 = time.perf_counter()
        runs = np.array([[standalone_accuracy(layout, x, train_set, held_out,
                                              a.standalone_epochs, device, seed)
                          for x in archs] for seed in range(a.standalone_seeds)])
        alone = list(runs.mean(0))
        if a.standalone_seeds > 1:
            result["standalone_seed_tau"] = float(stats.kendalltau(runs[0], runs[1]).statistic)
        result["standalone_train_s"] = time.perf_counter() - t0
        result["kendall_tau"] = float(stats.kendalltau(one_shot, alone).statistic)
        result["spearman"] = float(stats.spearmanr(one_shot, alone).statistic)
        result["subnets"] = [{"arch": layout.arch_to_text(x), "supernet": s, "standalone": t}
                             for x, s, t in zip(archs, one_shot, alone)]
        if a.space == "fbnet" and not a.no_search:
            result["budgets"] = search_vs_random(ck, scorer)
    if a.json:
        print(json.dumps(result))
        return
    print(f"supernet: {result['seconds_per_epoch']:.2f} s/epoch on {result['torch_device_name']}"
          f" ({a.epochs} epochs, {result['supernet_train_s']:.0f} s)")
    print(f"held-out accuracy with inherited weights: largest {result['largest_accuracy']:.1f} %,"
          f" smallest {result['smallest_accuracy']:.1f} %, random subnets mean "
          f"{np.mean([s['supernet'] for s in result['subnets']]):.1f} %")
    print(f"Kendall τ supernet vs stand-alone ({a.standalone} subnets, {a.standalone_epochs} "
          f"epochs each): {result['kendall_tau']:.3f} (Spearman {result['spearman']:.3f})")
    if "standalone_seed_tau" in result:
        print(f"Kendall τ stand-alone seed 0 vs seed 1 (the ceiling on this data): "
              f"{result['standalone_seed_tau']:.3f}")
    for b in result.get("budgets", []):
        print(f"budget {b['budget_ms']:.1f} ms: searched {b['searched_accuracy']:.2f} % at "
              f"{b['searched_latency_ms']:.2f} ms; random feasible mean "
              f"{b['random_mean_accuracy']:.2f} % (best {b['random_best_accuracy']:.2f} %); "
              f"ratio {b['ratio_to_random_mean']:.3f}")


def search_vs_random(ck, scorer) -> list[dict]:
    from lutfarm.lut import LatencyTable, import_hwnasbench
    from lutfarm.lut.hwnasbench import BUNDLED
    from lutfarm.search.methods.evolution import constrained_evolution, sample_feasible
    from lutfarm.search.objectives.space import fbnet_space, lut_latency

    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))
    space, latency = fbnet_space(table.layout), lut_latency(table)
    cloud = latency(space.random(5000, np.random.default_rng(0)))
    out = []
    for q in (10, 30, 60):
        budget = float(np.percentile(cloud, q))

        def feasible(g, budget=budget):
            return latency(g) <= budget

        def goal(g):
            return np.array([100.0 * scorer(tuple(int(v) for v in row)) for row in g])

        r = constrained_evolution(space, goal, feasible, 20, 10, seed=0,
                                  seeds=np.array([table.extremes()["fastest"]]))
        rand = sample_feasible(space, 20, feasible, np.random.default_rng(1))
        ra = goal(rand)
        out.append({"percentile": q, "budget_ms": budget, "searched_accuracy": r.objective,
                    "searched_latency_ms": float(latency(np.array([r.arch]))[0]),
                    "random_mean_accuracy": float(ra.mean()),
                    "random_best_accuracy": float(ra.max()),
                    "ratio_to_random_mean": r.objective / float(ra.mean()),
                    "evaluations": r.evaluations})
    return out


if __name__ == "__main__":
    main()
