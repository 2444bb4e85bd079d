"""Does the supernet rank subnets as training them would? The ranking benchmark.

N subnets drawn uniformly among those feasible under a LUT budget (FBNet: the bundled
HW-NAS-Bench raspi4 LUT, or --lut; MCUNet without a LUT: a MACs budget, labelled so), each
trained alone with one fixed recipe (counted in steps) and two seeds. Printed as Kendall τ
against the seeds' mean, each beside the baseline measured in the same run, the seed-to-seed
τ (the ceiling: training does not rank itself better than that): the supernet's τ, the
parameter count's, the MACs', NASWOT's; with the device and the time each part took.

    python bench/bench_ranking.py [--space fbnet|mcunet] [--data fashion-mnist:12000]
        [--n 30] [--seeds 2] [--steps 400] [--supernet-epochs 20] [--sandwich --distill]
        [--fair] [--macs-bins 10] [--crop-kernels] [--supernet FILE|none] [--save-supernet FILE] [--archs-from REPORT.json]
        [--standalone-from REPORT.json] [--percentile 50] [--predictor-samples 200]
        [--device cuda] [--json]

``--standalone-from`` takes the subnets and their stand-alone accuracies (and recipe) from an
earlier ``--json`` report, so that supernets trained with different levers are compared on the
same subnets at the price of their own training only; ``--archs-from`` takes the subnets alone
(say, to train them with a longer recipe, ``--supernet none``).

``--predictor-samples N`` also fits OFA's accuracy predictor (3 x 400 MLP) to N
supernet-scored subnets and reports its τ beside the supernet's (0: none).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch


def feasible_archs(layout, net, n: int, percentile: float, lut_path: str | None, seed: int):
    """``n`` distinct subnets drawn uniformly among those under the budget, and the budget."""
    from lutfarm.search.methods.evolution import sample_feasible
    from lutfarm.search.supernets.ranking import macs_and_params

    rng = np.random.default_rng(seed)
    if layout.space == "fbnet":
        from lutfarm.lut import LatencyTable, import_hwnasbench, load_lut
        from lutfarm.lut.hwnasbench import BUNDLED
        from lutfarm.search.objectives.space import fbnet_space, lut_latency

        lut = load_lut(lut_path) if lut_path else import_hwnasbench(BUNDLED, "raspi4", "cifar")
        table = LatencyTable(lut)
        space, latency = fbnet_space(table.layout), lut_latency(table)
        budget = float(np.percentile(latency(space.random(5000, np.random.default_rng(0))),
                                     percentile))
        genes = sample_feasible(space, n, lambda g: latency(g) <= budget, rng)
        archs = [tuple(int(v) for v in row) for row in genes]
        return archs, {"kind": "lut latency", "lut": lut_path or "HW-NAS-Bench raspi4 (bundled)",
                       "percentile": percentile, "budget_ms": budget}
    pool = [net.sample(rng) for _ in range(max(200, 4 * n))]
    macs = np.array([macs_and_params(layout, a)[0] for a in pool], float)
    budget = float(np.percentile(macs, percentile))
    inside = [a for a, m in zip(pool, macs) if m <= budget]
    return inside[:n], {"kind": "MACs (no LUT given)", "percentile": percentile,
                        "budget_macs": budget}


def main() -> None:
    from lutfarm.search.supernets.data import data_spec, load_images, num_classes
    from lutfarm.search.supernets.oneshot import Checkpoint, TrainSettings, train
    from lutfarm.search.supernets.ranking import Recipe, ranking_benchmark
    from lutfarm.spaces import get_layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="fbnet", choices=("fbnet", "mcunet"))
    ap.add_argument("--data", default="fashion-mnist:12000")
    ap.add_argument("--n", type=int, default=30, help="subnets (the issue asks for >= 30)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=Recipe.steps, help="stand-alone SGD steps")
    ap.add_argument("--supernet", default=None,
                    help="a trained checkpoint (else trained here); none: no supernet")
    ap.add_argument("--save-supernet", default=None, help="keep the supernet trained here")
    ap.add_argument("--fair", action="store_true", help="FairNAS's strict fairness")
    ap.add_argument("--macs-bins", type=int, default=0,
                    help="supernet subnets uniform over this many MACs bins (SPOS)")
    ap.add_argument("--crop-kernels", action="store_true",
                    help="MCUNet: plain centre-cropped kernels, no OFA transform matrices")
    ap.add_argument("--archs-from", default=None, help="the subnets of an earlier --json report")
    ap.add_argument("--standalone-from", default=None,
                    help="the subnets and stand-alone accuracies of an earlier --json report")
    ap.add_argument("--supernet-epochs", type=int, default=20)
    ap.add_argument("--max-batches", type=int, default=None, help="supernet: batches per epoch")
    ap.add_argument("--sandwich", action="store_true")
    ap.add_argument("--distill", action="store_true")
    ap.add_argument("--percentile", type=float, default=50.0, help="budget: this percentile of "
                    "random archs' latency (MACs for mcunet)")
    ap.add_argument("--predictor-samples", type=int, default=200,
                    help="fit OFA's accuracy predictor to this many supernet-scored subnets")
    ap.add_argument("--lut", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = data_spec(a.data)
    classes = num_classes(load_images(data, 32))
    layout = get_layout(a.space, "cifar" if a.space == "fbnet" else "c10", classes)
    if a.space == "mcunet":
        layout = layout.with_resolutions([32, 48])
    earlier = json.loads(Path(a.standalone_from or a.archs_from).read_text()) \
        if (a.standalone_from or a.archs_from) else None
    recipe = Recipe(**earlier["recipe"]) if a.standalone_from else Recipe(steps=a.steps)
    with TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        settings = TrainSettings(epochs=a.supernet_epochs, sandwich=a.sandwich,
                                 distill=a.distill, fair=a.fair, max_batches=a.max_batches,
                                 kernel_transforms=not a.crop_kernels, macs_bins=a.macs_bins)
        ck = Checkpoint(layout.space, layout.name, classes,
                        list(getattr(layout, "resolutions", [])) or None, data, asdict(settings))
        if a.supernet and a.supernet != "none":
            ck = Checkpoint.load(Path(a.supernet))
        elif a.supernet != "none":
            ck = train(ck, Path(a.save_supernet or Path(tmp) / "s.pt"), settings, device)
        supernet_s = time.perf_counter() - t0
        scorer = ck.scorer(device) if ck.epochs_done else None
        train_set, held_out = ck.datasets()
        if earlier:
            archs = [layout.parse_arch(t) for t in earlier["archs"]]
            budget = earlier["budget"]
        else:
            from lutfarm.search.supernets.oneshot import build_supernet
            archs, budget = feasible_archs(layout, build_supernet(layout, classes), a.n,
                                           a.percentile, a.lut, seed=7)
        report = ranking_benchmark(layout, archs, train_set, held_out, recipe, scorer, device,
                                   a.seeds, data, on_subnet=_progress(len(archs)),
                                   standalone=earlier["standalone"] if a.standalone_from
                                   else None)
        if a.predictor_samples and scorer is not None:
            from lutfarm.search.objectives.accuracy import train_accuracy_predictor
            t1 = time.perf_counter()
            model = train_accuracy_predictor(ck, a.predictor_samples, device=device)
            report.estimates["predictor"] = [float(v) for v in
                                             model.predict(layout.encode(archs))]
            report.seconds["predictor_s"] = time.perf_counter() - t1
    report.budget = budget
    report.seconds["supernet_train_s"] = supernet_s
    out = report.to_dict()
    out.update(torch_device=torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
               supernet={"epochs": ck.epochs_done, "settings": ck.settings,
                         "largest_accuracy": 100.0 * scorer(scorer.net.largest())}
               if scorer else None,
               held_out_images=len(held_out), train_images=len(train_set))
    if a.json:
        print(json.dumps(out))
        return
    taus = out["taus"]
    ceiling = taus.get("ceiling")
    print(f"{a.space}, {len(archs)} subnets under {budget}, {len(train_set)} training / "
          f"{len(held_out)} held-out images of {data}, on {out['torch_device']}")
    print(f"stand-alone: {len(report.standalone[0])} seeds x {recipe.steps} steps, mean accuracy "
          f"{np.mean(report.mean_standalone):.2f} % (range {np.min(report.mean_standalone):.2f}"
          f"-{np.max(report.mean_standalone):.2f}), {report.seconds['standalone_s']:.0f} s")
    if ceiling is not None:
        print(f"ceiling (seed 0 vs seed 1) τ = {ceiling:.3f} ± {out['tau_se']['ceiling']:.3f} "
              f"(bootstrap standard error over the subnets)")
    se = out["tau_se"]
    for name in ("supernet", "predictor", "params", "macs", "naswot"):
        if name in taus:
            rel = f" = {taus[name] / ceiling:.2f}x the ceiling baseline" if ceiling else ""
            print(f"{name:>8} τ = {taus[name]:+.3f} ± {se.get(name, float('nan')):.3f}{rel}")
    if scorer:
        print(f"supernet: {ck.epochs_done} epochs ({supernet_s:.0f} s here), largest subnet "
              f"{out['supernet']['largest_accuracy']:.1f} % held out")


def _progress(n: int):
    """A line per trained subnet on stderr: the run takes long on a CPU."""
    import sys
    t0 = time.perf_counter()

    def say(k: int, report) -> None:
        print(f"subnet {k + 1}/{n} trained ({report.standalone[-1]}), "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return say


if __name__ == "__main__":
    main()
