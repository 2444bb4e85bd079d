"""``lutfarm search supernet …``: train a one-shot supernet, score subnets with its weights."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lutfarm import environment
from lutfarm.cli.options import DATA_HELP, layout_options
from lutfarm.cli.output import TrainingProgress, err, out
from lutfarm.cli.search import search


@search.group("supernet")
def supernet() -> None:
    """One-shot supernets (SPOS / OFA): train once, score any subnet with inherited weights."""


@supernet.command("train")
@layout_options
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="total epochs (a resumed run goes on to this many)")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--lr", type=float, default=0.05, show_default=True)
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="linear learning-rate warm-up (sampled paths do not train without it)")
@click.option("--sandwich", is_flag=True,
              help="OFA's sandwich rule: largest, smallest and two random subnets per step")
@click.option("--distill", is_flag=True,
              help="with --sandwich: the smaller subnets learn the largest one's outputs "
                   "(in-place distillation, as BigNAS and OFA train)")
@click.option("--fair", is_flag=True,
              help="FairNAS's strict fairness: per step, every candidate of every layer runs "
                   "once (3 subnets a step for MCUNet, 9 for FBNet)")
@click.option("--macs-bins", type=click.IntRange(min=0), default=0, show_default=True,
              help="SPOS's sampling: subnets uniform over this many equal-width MACs bins "
                   "(0: uniform over the choices)")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="DataLoader worker processes")
@click.option("--max-batches", type=click.IntRange(min=1), default=None,
              help="cap the batches per epoch (a quick look)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes under DistributedDataParallel (gloo on CPU, NCCL on GPUs); "
                   "under torchrun, torchrun's")
@click.option("--device", "torch_device", default=None,
              help="torch device (default: cuda when present, else cpu)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="checkpoint, written every epoch; an existing one is resumed")
@click.option("--json", "as_json", is_flag=True)
def train_cmd(layout, data, epochs, batch_size, lr, warmup_epochs, sandwich, distill, fair, macs_bins, workers, max_batches, seed, nproc,
              torch_device, output, as_json):
    """Train a space's one-shot supernet on your data; kill it any time and run the same
    command again to resume from the last finished epoch."""
    from lutfarm.api import SupernetSettings, train_supernet
    from lutfarm.search.supernets.oneshot import TrainSettings

    settings = SupernetSettings(
        layout, output, data, TrainSettings(epochs, batch_size, lr, warmup_epochs=warmup_epochs,
                                            sandwich=sandwich, distill=distill, fair=fair,
                                            macs_bins=macs_bins,
                                            seed=seed,
                                            workers=workers, max_batches=max_batches),
        nproc, torch_device, quiet=as_json)
    if nproc > 1 or environment.torchrun_rank()[0] > 1:   # several processes: no bar
        result = train_supernet(settings, say=err.print)
    else:
        with TrainingProgress(f"{layout.space} supernet") as bar:
            result = train_supernet(
                settings, say=err.print,
                on_batch=lambda b: bar.batch(b["epoch"], epochs, b["step"], b["steps"],
                                             f"loss {b['loss']:.3f}  acc {b['train_acc']:.1%}"),
                on_epoch=lambda r: bar.line(
                    f"epoch {r['epoch'] + 1}/{epochs}: loss {r['loss']:.3f}, train acc "
                    f"{r['train_acc']:.1%}, {r['seconds']:.1f} s; checkpoint {output}"))
    if not result.trained:        # a torchrun rank other than 0
        return
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    r = result
    out.print(f"{output}: {r['space']}/{r['layout']} supernet, {r['epochs']} epochs on "
              f"{r['data']}; held-out accuracy (BN recalibrated) largest subnet "
              f"{r['largest_accuracy']:.1f} %, smallest {r['smallest_accuracy']:.1f} %")


@supernet.command("score")
@click.option("--supernet", "path", type=click.Path(dir_okay=False, path_type=Path),
              required=True)
@click.option("--arch", "archs", multiple=True, help="an arch of the supernet's space (repeat)")
@click.option("--random", "n_random", type=click.IntRange(min=0), default=0,
              help="also score this many random subnets")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def score_cmd(path, archs, n_random, seed, as_json):
    """Held-out accuracy of subnets with the supernet's weights (BN recalibrated per subnet)."""
    import numpy as np

    from lutfarm.search.supernets.oneshot import Checkpoint

    ck = Checkpoint.load(path)
    scorer = ck.scorer()
    layout = scorer.net.layout
    chosen = [layout.parse_arch(a) for a in archs]
    rng = np.random.default_rng(seed)
    chosen += [scorer.net.sample(rng) for _ in range(n_random)]
    if not chosen:
        raise click.UsageError("give --arch (repeatable) or --random N")
    rows = [{"arch": layout.arch_to_text(a), "accuracy": 100.0 * scorer(a)} for a in chosen]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        out.print(f"{r['accuracy']:6.2f} %  {r['arch']}")
