"""``lutfarm search …``: find the best network for one device."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from lutfarm.cli import cli
from lutfarm.cli.options import DATA_HELP, STORE
from lutfarm.cli.output import err, out
from lutfarm.lut import load_lut
from lutfarm.search.methods.registry import METHODS

OBJECTIVES = ("mmacs", "mparams")
LATENCY_MODELS = ("corrected", "plain", "overhead")


@cli.group()
def search() -> None:
    """Search architectures for a device: evolution, DNAS, benchmarks."""


@search.command("evolve")
@click.option("--lut", "lut_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the device's LUT (required for fbnet; mcunet can search on MACs and its "
                   "analytical memory alone)")
@click.option("--space", default=None, help="the LUT's space (checked), or mcunet without a LUT")
@click.option("--budget-ms", type=float, default=None, help="latency budget under the LUT")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="mmacs", show_default=True,
              help="what to maximise: a capacity proxy for accuracy (no accuracy predictor for "
                   "FBNet ships yet)")
@click.option("--max-mmacs", type=float, default=None, help="constraint: at most this many MMACs")
@click.option("--max-mparams", type=float, default=None, help="constraint: at most M params")
@click.option("--max-memory-kb", type=float, default=None,
              help="constraint: largest block peak memory in KiB under the LUT's memory column "
                   "(TFLite-Micro arena: MCUNet's 256 / 512 KB budgets)")
@click.option("--max-flash-kb", type=float, default=None,
              help="constraint (mcunet): flash in KiB: the model's measured bytes from the LUT "
                   "plus the firmware's code and data (MCUNet's 1 MB on STM32F746); without "
                   "measured sizes, the int8 weights")
@click.option("--accuracy", "accuracy_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="maximise accuracy instead: a supernet checkpoint (held-out "
                                 "accuracy, BN recalibrated) or an accuracy predictor JSON")
@click.option("--method", type=click.Choice(list(METHODS)),
              default="constrained", show_default=True,
              help="evolution, predictor, local and bananas only for cell spaces (nb201)")
@click.option("--population", type=click.IntRange(min=2), default=None,
              help="default 100 (20 when a supernet scores every subnet)")
@click.option("--generations", type=click.IntRange(min=1), default=None,
              help="default 500 (10 when a supernet scores every subnet)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--latency", "latency_model", type=click.Choice(["auto", *LATENCY_MODELS]),
              default="auto", show_default=True,
              help="plain: the LUT sum; corrected: with the in-context correction its "
                   "validation stored (the search exploits its errors: verify with --rounds); "
                   "overhead: Σ(T−o)+o, biased low on search winners; auto: plain unless the "
                   "LUT's validation found the plain sum under-predicting networks, and with "
                   "--verify the plain sum scaled by what the measured winners showed")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pareto plot (PNG) of latency vs objective")
@click.option("--verify", is_flag=True, help="measure the winner end to end on --device")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="with --verify: search, measure, refit the latency model on the measured "
                   "winner and search again, until a winner holds the budget using ≥ 95 %% "
                   "of it (at most this many rounds); none held: exit 1")
@click.option("--device", default="local", show_default=True)
@click.option("--db", type=STORE, default=None,
              help="store for --verify (default lutfarm.db or $LUTFARM_DB)")
@click.option("--verify-accuracy", type=click.IntRange(min=0), default=0, metavar="K",
              help="with --accuracy: train the winner and K random feasible subnets "
                   "stand-alone and report measured beside predicted accuracy")
@click.option("--verify-steps", type=click.IntRange(min=1), default=400, show_default=True,
              help="SGD steps of that stand-alone training (the ranking benchmark's recipe)")
@click.option("--verify-seeds", type=click.IntRange(min=1), default=2, show_default=True,
              help="seeds per subnet: their spread is the seed noise the winner must beat")
@click.option("--json", "as_json", is_flag=True)
def evolve_cmd(lut_path, space, budget_ms, objective, max_mmacs, max_mparams, max_memory_kb,
               max_flash_kb, accuracy_path, method, population, generations, seed, latency_model,
               plot, verify, rounds, device, db, verify_accuracy, verify_steps, verify_seeds,
               as_json):
    """Maximise the objective (accuracy with --accuracy, else a capacity proxy) under the LUT's
    latency budget and MACs/params/memory limits."""
    from lutfarm.api import EvolveSettings, evolve

    settings = EvolveSettings(
        lut=lut_path, space=space, budget_ms=budget_ms, objective=objective,
        max_mmacs=max_mmacs, max_mparams=max_mparams, max_memory_kb=max_memory_kb,
        max_flash_kb=max_flash_kb, accuracy=accuracy_path, method=method,
        population=population, generations=generations, seed=seed,
        latency_model=latency_model, plot=plot, verify=verify, rounds=rounds, device=device,
        db=db, verify_accuracy=verify_accuracy, verify_steps=verify_steps,
        verify_seeds=verify_seeds)
    from lutfarm.cli.output import TrainingProgress
    with TrainingProgress("stand-alone training") as bar:
        if verify_accuracy:
            settings.on_trained = lambda i, n: bar.batch(0, 1, i, n, "winner, then random "
                                                         "feasible subnets")
        r = evolve(settings, on_round=None if as_json else _print_round)
    if plot:
        err.print(f"Pareto plot: {plot}")
    if as_json:
        click.echo(json.dumps(r.to_dict()))
    elif r.family == "elastic":
        _print_subnet(r)
    elif r.family == "cell":
        latency = f"{r['latency_ms']:.4f} ms, " if "latency_ms" in r.data else ""
        out.print(f"{r['arch_str']}\n  {latency}{r['mmacs']:.2f} MMACs, {r['mparams']:.3f} M "
                  f"params; {r.objective_name} {r['objective_value']:.3f}; "
                  f"{r['evaluations']} evaluations ({r['method']}) in {r['wall_s']:.2f} s")
    else:
        _print_fbnet(r, settings)
    if "accuracy_check" in r.data and not as_json:
        _print_accuracy_check(r["accuracy_check"])
    v = r.get("verified")
    if v is not None and not v["held"]:
        err.print(f"error: no winner held the {budget_ms:g} ms budget in {v['rounds_used']} "
                  f"round(s); the closest measured {v['at_lut_speed_ms']:.4f} ms at the LUT's "
                  f"speed, {v['at_lut_speed_over_budget']:.3f}x the budget: allow more "
                  f"--rounds or loosen --budget-ms", soft_wrap=True)
        sys.exit(1)


def _print_fbnet(r, s) -> None:
    memory = (f"; peak memory {r['peak_memory_kb']:.0f} KiB (limit {s.max_memory_kb:g})"
              if "peak_memory_kb" in r.data else "")
    out.print(f"{r['arch_str']}  {r['latency_ms']:.4f} ms (budget {s.budget_ms:g}, "
              f"{r['latency_model']} latency), {r.objective_name} {r['objective_value']:.3f}; "
              f"{r['evaluations']} evaluations in {r['wall_s']:.2f} s "
              f"({r['evaluations_per_s']:,.0f}/s){memory}")
    if "verified" in r.data:
        v = r["verified"]
        scale = f", the plain sum scaled {v['scale']:.3f}x by them" if "scale" in v else ""
        out.print(f"{v['rounds_used']} of at most {v['rounds_allowed']} rounds{scale}; answer "
                  f"of round {v['round']}")
        out.print(f"measured on {s.device}: {v['measured_ms']:.4f} ms, its blocks at "
                  f"{v['speed']:.2f}× their LUT time: {v['at_lut_speed_ms']:.4f} ms at the "
                  f"LUT's speed (predicted {v['predicted_ms']:.4f}), "
                  f"{v['at_lut_speed_over_budget']:.1%} of the budget, which "
                  f"{'holds' if v['holds_at_lut_speed'] else '[red]is broken'}")


def _print_subnet(r) -> None:
    latency = f"{r['latency_ms']:.3f} ms, " if "latency_ms" in r.data else ""
    accuracy = r.get("accuracy_source")
    out.print(f"{r['arch_str']}\n  {latency}{r['mmacs']:.1f} MMACs, peak memory "
              f"{r['peak_memory_kb']:.0f} KiB ({r['memory_method']}), flash "
              f"{r['flash_kb']:.0f} KiB ({r['flash_method']}); "
              + (f"{accuracy} {r['objective_value']:.3f}; " if accuracy else
                 f"{r['objective']} {r['objective_value']:.2f} [dim](a capacity proxy, not "
                 f"accuracy)[/]; ") +
              f"{r['evaluations']} evaluations in {r['wall_s']:.1f} s"
              + (" [yellow]EMULATED timings" if r.get("emulated") else ""))


def _print_accuracy_check(c: dict) -> None:
    t = Table(title=f"trained stand-alone: {c['recipe']['steps']} steps × {c['seeds']} seeds on "
                    f"{c['data']} ({c['torch_device']}, {c['seconds']:.0f} s)")
    for col in ("subnet", "predicted %", "measured %", "per seed"):
        t.add_column(col, justify="left" if col == "subnet" else "right")
    for s in c["subnets"]:
        t.add_row(f"[bold]winner[/] {s['arch'][:40]}" if s["role"] == "winner" else s["arch"][:48],
                  f"{s['predicted']:.2f}", f"{s['mean']:.2f}",
                  " ".join(f"{v:.2f}" for v in s["measured"]))
    out.print(t)
    beats = c["winner_beats_random"]
    verdict = ("beats them by more than the seed noise" if beats else
               "does not beat them by more than the seed noise" if beats is not None else
               "(one seed: no seed noise to compare with)")
    def fmt(v, spec=".2f"):
        return "n/a" if v is None else format(v, spec)

    out.print(f"winner {c['winner_measured']:.2f} % measured vs the random subnets' mean "
              f"{fmt(c['random_measured_mean'])} % (best {fmt(c['random_measured_best'])} %): "
              f"margin {fmt(c['margin'], '+.2f')} points, seed noise {fmt(c['seed_noise'])}: "
              f"{verdict}; Kendall τ predicted vs measured "
              f"{fmt(c['kendall_predicted_vs_measured'])}")


def _print_round(r) -> None:
    out.print(f"round {r.round}: {''.join(map(str, r.arch))} predicted {r.predicted_ms:.4f} ms, "
              f"measured {r.measured_ms:.4f} ms with its blocks at {r.speed:.2f}× their LUT "
              f"time, so {r.at_lut_speed_ms:.4f} ms at the LUT's speed "
              f"({r.at_lut_speed_ms / r.budget_ms:.1%} of the budget"
              f"{'' if r.holds else ', [red]over'})")


@search.command("target")
@click.option("--lut", "luts", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="two or more LUTs of one layout (repeat --lut)")
@click.option("--mmacs", type=float, default=None,
              help="capacity floor every winner must meet (default: median of random archs)")
@click.option("--json", "as_json", is_flag=True)
def target_cmd(luts, mmacs, as_json):
    """Search for each LUT's device at matched capacity; price every winner on every device."""
    from lutfarm.search.methods.targeting import targeting_matrix

    if len(luts) < 2:
        raise click.BadParameter("give at least two --lut files")
    loaded = {}
    for p in luts:
        lut = load_lut(p)
        loaded[f"{lut.device}/{lut.runtime}" if lut.device in loaded else lut.device] = lut
    m = targeting_matrix(loaded, mmacs)
    if as_json:
        click.echo(json.dumps(m.summary()))
        return
    t = Table(title=f"winners (rows) on targets (columns), ms; every winner ≥ {m.macs_floor:.1f} "
                    f"MMACs")
    t.add_column("winner for")
    for name in m.targets:
        t.add_column(name, justify="right")
    for w in m.targets:
        t.add_row(f"{w} ({m.macs[w]:.1f} MMACs)",
                  *[f"[bold]{m.latency[w][c]:.3f}" if c == w else f"{m.latency[w][c]:.3f}"
                    for c in m.targets])
    out.print(t)
    for name, adv in m.own_advantage().items():
        out.print(f"on {name}, its own winner is {adv:.2f}x faster than the others' best")


@search.command("bench-nb201")
@click.option("--device", required=True, help="a latency column of the NB201 table, e.g. raspi4")
@click.option("--budget-ms", type=float, required=True)
@click.option("--nb201", "nb201_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="nb201_master.csv (default: ../shared/data, $LUTFARM_DATA or "
                   "$LUTFARM_NB201)")
@click.option("--dataset", default="cifar10", show_default=True)
@click.option("--queries", type=int, default=150, show_default=True)
@click.option("--seeds", type=int, default=20, show_default=True)
@click.option("--starts", type=click.Choice(["macs", "uniform"]), default="macs",
              show_default=True, help="where methods with a start begin: the feasible classes "
                   "with the most live MACs, or random feasible archs")
@click.option("--raw-queries", is_flag=True,
              help="allow two queries in one isomorphism class (by default never)")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True)
def bench_cmd(device, budget_ms, nb201_path, dataset, queries, seeds, starts, raw_queries, plot,
              as_json):
    """Random vs evolution vs predictor-guided on NB201's real data, against the oracle, the
    best class mean and the single-sample floor."""
    from lutfarm.search.methods.nb201 import bench, load_nb201

    result = bench(load_nb201(nb201_path, dataset), device, budget_ms, queries, seeds,
                   canonical=not raw_queries, starts=starts)
    if plot:
        from lutfarm.search.plots import curves_plot
        curves_plot(result, plot)
        err.print(f"curves: {plot}")
    s = result.summary()
    if as_json:
        click.echo(json.dumps(s))
        return
    out.print(f"NB201 {dataset} on {device}, latency ≤ {budget_ms:g} ms: {s['feasible_archs']} "
              f"feasible archs in {s['feasible_classes']} isomorphism classes, oracle "
              f"{s['oracle_accuracy']:.3f} %, best class mean {s['class_oracle_accuracy']:.3f} %; "
              f"querying every class once reaches {s['floor_class_regret']:.3f} class regret "
              f"(the floor)")
    for m, acc in s["mean_found_accuracy"].items():
        out.print(f"  {m:<12} {acc:.3f} % after {queries} queries (regret "
                  f"{s['mean_regret'][m]:.3f} to the oracle, {s['mean_class_regret'][m]:.3f} "
                  f"to the best class mean; mean of {seeds} seeds)")


@search.command("dnas")
@click.option("--lut", "lut_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--warmup-epochs", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--max-batches", type=int, default=None, help="cap the batches per epoch")
@click.option("--alpha", type=float, default=0.2, show_default=True)
@click.option("--beta", type=float, default=0.6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--widths", default=None, metavar="0.5,0.75,1.0",
              help="FBNetV2: also search a width multiplier per stage (channel masks)")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="written after every epoch and resumed from (default: one per run under the "
                   "lutfarm cache, so the same command resumes)")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes under DistributedDataParallel (gloo on CPU, NCCL on GPUs)")
@click.option("--json", "as_json", is_flag=True)
def dnas_cmd(lut_path, data, epochs, warmup_epochs, batch_size, max_batches, alpha, beta, seed,
             widths, checkpoint, nproc, as_json):
    """FBNet's differentiable search with the LUT's latency in the loss; progress per batch, a
    checkpoint per epoch, and the same command resumes a killed run."""
    from lutfarm.api import DNASRun
    from lutfarm.api import dnas as run_dnas
    from lutfarm.cli.output import TrainingProgress
    from lutfarm.search.supernets.dnas import DNASSettings

    try:
        mults = tuple(sorted(float(w) for w in widths.split(","))) if widths else None
    except ValueError:
        raise click.BadParameter(f"--widths {widths!r}: give multipliers like 0.5,0.75,1.0")\
            from None
    settings = DNASSettings(epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size,
                            alpha=alpha, beta=beta, max_batches=max_batches, seed=seed,
                            widths=mults)
    run = DNASRun(lut_path, data, settings, checkpoint, nproc)
    if nproc > 1:
        _print_dnas(run_dnas(run, say=err.print), as_json)
        return
    with TrainingProgress("DNAS") as bar:
        r = run_dnas(run, say=err.print,
                     on_batch=lambda b: bar.batch(
                         b["epoch"], epochs, b["step"], b["steps"],
                         f"loss {b['loss']:.3f} CE {b['ce']:.3f} LAT {b['latency_ms']:.3f} ms "
                         f"τ {b['tau']:.2f}"),
                     log=lambda e: bar.line(
                         f"epoch {e['epoch'] + 1}/{epochs}: loss {e['loss']:.3f} (CE "
                         f"{e['ce']:.3f}), train acc {e['train_acc']:.1%}, expected latency "
                         f"{e['expected_latency_ms']:.3f} ms, τ {e['tau']:.2f}, argmax "
                         f"{e['argmax_arch']} = {e['argmax_latency_ms']:.3f} ms, "
                         f"{e['seconds']:.1f} s"))
    _print_dnas(r, as_json)


def _print_dnas(r, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(r.summary()))
    else:
        out.print(f"argmax arch {''.join(map(str, r.arch))}: {r.latency_ms:.4f} ms")
        if r.widths:
            out.print(f"stage widths {r.widths['width_multipliers']} -> channels "
                      f"{r.widths['stage_channels']} (width latencies: "
                      f"{r.widths['width_latency_sources']})")
        for s in r.samples:
            out.print(f"  sample {''.join(map(str, s['arch']))}: {s['latency_ms']:.4f} ms")
