"""``lutfarm predict …``: latency and accuracy predictors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lutfarm.cli import cli
from lutfarm.cli.options import db_option, runtime_options
from lutfarm.cli.output import err, out
from lutfarm.profiler.store import Store
from lutfarm.spaces.registry import family_of


@cli.group()
def predict() -> None:
    """Train, evaluate and query predictors (block latency, arch latency, few-shot, accuracy)."""


def _space_option(f):
    from lutfarm.spaces import get_space, list_spaces

    with_blocks = [s for s in list_spaces() if get_space(s).block_kind]
    return click.option("--space", default="fbnet", show_default=True,
                        type=click.Choice(with_blocks),
                        help="whose searchable blocks (fbnet: ConvBlock, mcunet: MBConv)")(f)


@predict.command("train")
@click.argument("what", type=click.Choice(["block", "accuracy"]), default="block",
                required=False)
@click.option("--device", default="local", show_default=True, help="block: device or kind")
@_space_option
@runtime_options
@db_option
@click.option("--supernet", "supernet_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="accuracy: the trained supernet that scores the subnets")
@click.option("--samples", type=click.IntRange(min=10), default=500, show_default=True,
              help="accuracy: subnets scored by the supernet")
@click.option("--epochs", type=click.IntRange(min=1), default=300, show_default=True,
              help="accuracy: training epochs of the MLP")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def train_cmd(what, device, space, runtime_config, db, supernet_path, samples, epochs, output):
    """block (default): latency predictor from every searchable block of a space measured on a
    device. accuracy: OFA's accuracy predictor (MLP 3 x 400, L1, mean accuracy as base) on
    subnets scored by a one-shot supernet. JSON out."""
    if what == "accuracy":
        _train_accuracy(supernet_path, samples, epochs, output)
        return
    import numpy as np

    from lutfarm.lut.metrics import latency_metrics
    from lutfarm.predictors.block_latency import BlockLatencyPredictor
    from lutfarm.predictors.persistence import PredictorError
    from lutfarm.spaces import BlockCase, get_space

    kind = get_space(space).block_kind
    with Store(db) as store:
        found = store.latest(device, runtime_config.key)
    cases = [BlockCase.from_key(k) for k in found if k.startswith(kind + "_")]
    if len(cases) < 20:
        hint = ("lutfarm profile --widths 0.5,1.0" if family_of(space) == "chain"
                else f"lutfarm profile --space {space} --sample 60")
        raise PredictorError(f"{len(cases)} {kind} cases ({space}) measured on {device} with "
                             f"{runtime_config.key}; profile at least 20 (e.g. {hint})")
    y = np.array([found[c.key].median_ms for c in cases])
    order = np.random.default_rng(0).permutation(len(cases))
    cut = int(len(cases) * 0.8)
    tr, te = order[:cut], order[cut:]
    held = BlockLatencyPredictor(device, runtime_config.key).fit([cases[i] for i in tr], y[tr])
    metrics = latency_metrics(held.predict([cases[i] for i in te]), y[te])
    final = BlockLatencyPredictor(device, runtime_config.key, meta={"held_out": metrics})
    final.fit(cases, y).save(output)
    err.print(f"wrote {output}: trained on {len(cases)} blocks; held-out (20 %) ±10 % "
              f"{metrics['within_10pct']:.1%}, MAPE {metrics['mape']:.1%}, Spearman "
              f"{metrics['spearman']:.3f}")


def _train_accuracy(supernet_path, samples, epochs, output) -> None:
    from lutfarm.cli.output import TrainingProgress
    from lutfarm.search.objectives.accuracy import train_accuracy_predictor
    from lutfarm.search.supernets.oneshot import Checkpoint

    if supernet_path is None:
        raise click.UsageError("predict train accuracy needs --supernet (from 'lutfarm search "
                               "supernet train')")
    ck = Checkpoint.load(supernet_path)
    with TrainingProgress("scoring subnets") as bar:
        model = train_accuracy_predictor(ck, samples, epochs, on_scored=lambda i, n: bar.batch(
            0, 1, i, n, "with the supernet (BN recalibrated each)"))
    model.save(output)
    m = model.meta["held_out"]
    err.print(f"wrote {output}: {ck.space}/{ck.layout} accuracy predictor on {model.meta['samples']} "
              f"supernet-scored subnets; held-out (20 %) MAE {m['mae_points']:.2f} points, "
              f"Kendall τ {m['kendall']:.3f}, Spearman {m['spearman']:.3f}")


@predict.command("query")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True)
@click.option("--case", "keys", multiple=True, required=True,
              help="case key(s) of the kind the model was trained on (ConvBlock_…, MBConv_…)")
@click.option("--json", "as_json", is_flag=True)
def query_cmd(model_path, keys, as_json):
    """Predicted latency (ms) of block cases, measured or not."""
    from lutfarm.predictors.block_latency import BlockLatencyPredictor
    from lutfarm.spaces import BlockCase

    model = BlockLatencyPredictor.load(model_path)
    cases = [BlockCase.from_key(k) for k in keys]
    ms = model.predict(cases)
    if as_json:
        click.echo(json.dumps({c.key: float(v) for c, v in zip(cases, ms)}))
    else:
        for c, v in zip(cases, ms):
            click.echo(f"{v:.4f} ms  {c.key}")


@predict.command("eval")
@click.argument("what", type=click.Choice(["arch", "fewshot", "accuracy"]))
@click.option("--device", default="local", show_default=True, help="arch: device or kind")
@runtime_options
@db_option
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="fewshot/accuracy: the shared data folder (default ../shared/data or "
                   "$LUTFARM_DATA)")
@click.option("--train-sizes", default="50,100,424,1000", show_default=True,
              help="accuracy: numbers of training archs to score (comma-separated)")
@click.option("--epochs", type=click.IntRange(min=1), default=300, show_default=True,
              help="accuracy: training epochs of each predictor")
@click.option("--space", "spaces", type=click.Choice(["fbnet", "nb201"]), multiple=True,
              help="fewshot: the space(s) (default both; one space gives its own JSON object)")
@click.option("--target", "targets", multiple=True,
              help="fewshot: target device(s) (default every device outside HELP's meta-train)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="fewshot: first seed of the 10 draws of adaptation samples")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(what, device, runtime_config, db, data, train_sizes, epochs, spaces, targets, seed,
             as_json):
    """Metrics of a predictor family: arch (measured networks in the store), fewshot (HELP's
    protocol on every device: the transfer's Spearman beside FLOPs' and a model of the 10
    samples alone), accuracy (NB201 Kendall τ vs training archs)."""
    from lutfarm import environment

    data = data or environment.data_dir()
    if what == "arch":
        from lutfarm.lut import LatencyTable, build_lut
        from lutfarm.predictors.arch_latency import evaluate, measured_networks
        with Store(db) as store:
            table = LatencyTable(build_lut(store, device, runtime_config.key))
            archs, ms = measured_networks(store, device, runtime_config.key, table.layout)
        if len(archs) < 10:
            raise click.UsageError(f"{len(archs)} networks measured on {device}; run "
                                   f"'lutfarm lut validate' first")
        result = evaluate(table, archs, ms)
    elif what == "fewshot":
        from lutfarm.predictors.help_protocol import evaluate, evaluate_targets
        from lutfarm.predictors.persistence import PredictorError
        result = {}
        for space in spaces or ("fbnet", "nb201"):
            try:
                result[space] = evaluate_targets(space, data, list(targets) or None,
                                                 first_seed=seed)
            except PredictorError as exc:
                if targets and "no device" in str(exc) and not spaces:
                    continue             # a device of the other space
                raise
            if not targets:              # HELP's own split, beside its published figures
                result[space] = {**evaluate(space, data), **result[space]}
        if not result:
            raise click.UsageError(f"no device {', '.join(targets)} in either space's data")
        if len(result) == 1:
            result = next(iter(result.values()))
    else:
        from lutfarm.predictors.nb201_accuracy import evaluate
        try:
            sizes = tuple(int(n) for n in train_sizes.split(","))
        except ValueError:
            raise click.BadParameter(f"--train-sizes takes comma-separated integers, got "
                                     f"{train_sizes!r}") from None
        result = evaluate(data / "nb201_master.csv", sizes=sizes, epochs=epochs)
    if as_json:
        click.echo(json.dumps(result))
        return
    if what == "arch":
        for name in ("plain_lut", "lut+residual", "mlp", "gbm"):
            m = result[name]
            out.print(f"{name:<13} ±10 % {m['within_10pct']:6.1%}  ±5 % {m['within_5pct']:6.1%}"
                      f"  MAPE {m['mape']:5.1%}  RMSE {m['rmse_ms']:.4f} ms  "
                      f"Spearman {m['spearman']:.3f}  Kendall {m['kendall']:.3f}")
    elif what == "fewshot":
        for r in ([result] if "devices" in result else result.values()):
            out.print(f"{r['space']}: Spearman with {r['samples']} samples, mean of {r['seeds']} "
                      f"draws (transfer / FLOPs alone / the samples alone)")
            for d, v in r["devices"].items():
                worse = v["spearman"] < max(v["flops_spearman"], v["samples_only_spearman"])
                out.print(f"  {d:<16} {v['spearman']:.3f} / {v['flops_spearman']:.3f} / "
                          f"{v['samples_only_spearman']:.3f}" + ("  (below a baseline)" if worse
                                                                 else ""))
            if "help_mean" in r:
                out.print(f"  HELP's meta-test split: mean {r['mean']:.3f} (HELP published "
                          f"{r['help_mean']:.3f})")
    else:
        for method, by_n in result.items():
            out.print(f"{method:<9} " + "  ".join(f"n={n}: τ {v['kendall']:.3f}"
                                                   for n, v in by_n.items()))
