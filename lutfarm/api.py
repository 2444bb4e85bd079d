"""lutfarm's workflows as functions: what the command line and a notebook both call.

Each takes a settings dataclass and returns a result with ``to_dict()`` and ``to_frame()``;
the CLI only parses options into the settings, calls, and prints. A notebook::

    from lutfarm.api import EvolveSettings, evolve
    result = evolve(EvolveSettings(lut="m4.csv", max_memory_kb=256, max_flash_kb=1024))
    result.to_frame()

``profile``, ``bench``, ``build_lut``, ``validate_lut``, ``evolve``, ``train_supernet`` and ``dnas``
are the command line's workflows; the lower-level calls (``lutfarm.run_campaign``, ``lutfarm.lut.build_lut``)
stay for code that drives a store itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lutfarm.errors import LutfarmError
from lutfarm.search.methods.registry import method_names
from lutfarm.spaces.registry import family_of


class SettingsError(LutfarmError, ValueError):
    """Settings that do not go together (names the options and what to give instead)."""


@dataclass
class ProfileSettings:
    """What ``lutfarm profile`` takes: a layout's missing cases measured on devices (resumable:
    what the store has is skipped)."""

    layout: object                       # lutfarm.spaces.get_layout(...)
    devices: list = field(default_factory=list)   # profiler Device records; [] -> local
    runtime: object = None               # a RuntimeConfig; None -> onnxruntime fp32, 1 thread
    db: str | Path | None = None         # None -> lutfarm.db (or $LUTFARM_DB)
    only: str | None = None              # case-key globs, comma-separated
    widths: tuple[float, ...] | None = None   # chain: every block at these width multipliers
    sample: int | None = None            # measure this many blocks, predict the rest
    timing: object = None                # lutfarm_agent.timing.TimingSettings
    farm: object = None                  # profiler.scheduling.campaign.FarmSettings
    cache: str | Path | None = None      # exported-model cache (default ~/.cache/lutfarm)
    export_workers: int | None = None
    priority: int = 0
    owner: str | None = None
    progress: object = None              # a campaign progress listener (the CLI's bars)


@dataclass
class ProfileResult:
    """One campaign summary per device kind; with ``sample``, the sampler's report."""

    summaries: list = field(default_factory=list)   # profiler CampaignSummary records
    sampled: dict | None = None          # measured, predicted, held-out figures

    @property
    def failed(self) -> int:
        return sum(len(s.failed) for s in self.summaries)

    def to_dict(self) -> dict | list:
        """As ``profile --json`` prints it: one summary, several, or the sampler's report."""
        if self.sampled is not None:
            return {k: v for k, v in self.sampled.items() if k != "latency_ms"}
        out = [s.as_dict() for s in self.summaries]
        return out[0] if len(out) == 1 else out

    def to_frame(self):
        """One row per campaign: its scalar figures."""
        import pandas as pd
        rows = [self.to_dict()] if self.sampled is not None else \
            [s.as_dict() for s in self.summaries]
        return pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                             for r in rows])


def profile(s: ProfileSettings) -> ProfileResult:
    """Measure the layout on the devices and store every result as it arrives."""
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.export.cache import ModelCache
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, plan_cases, run_farm
    from lutfarm.profiler.store import Store, default_db_path
    from lutfarm_agent.timing import TimingSettings

    devices, runtime = s.devices or [LOCAL], s.runtime or RuntimeConfig()
    if s.widths and family_of(s.layout.space) != "chain":
        raise SettingsError(f"the {s.layout.space} space has its own width multipliers; "
                            f"--widths is for fbnet")
    if s.sample is not None and (s.only or s.widths):
        raise SettingsError("--sample chooses the cases itself: leave out --only/--widths")
    settings = CampaignSettings(
        timing=s.timing or TimingSettings(), cache=ModelCache(s.cache) if s.cache else ModelCache(),
        progress=s.progress, farm=s.farm, export_workers=s.export_workers)
    with Store(s.db or default_db_path()) as store:
        if s.sample is not None:
            from lutfarm.workflows.sample_lut import sample_and_predict
            return ProfileResult(sampled=sample_and_predict(store, s.layout, devices, runtime,
                                                            s.sample, settings))
        cases = plan_cases(s.layout, s.only, s.widths) if s.widths else None
        settings = replace(settings, only=s.only, cases=cases, priority=s.priority,
                           owner=s.owner)
        return ProfileResult(run_farm(store, s.layout, devices, runtime, settings))


@dataclass
class BenchSettings:
    """What ``lutfarm bench MODEL`` takes: one model file timed on each of the devices."""

    model: str | Path                    # a .onnx or .tflite file (read by content)
    devices: list = field(default_factory=list)   # profiler Device records; [] -> local
    runtime: object = None               # a RuntimeConfig; None -> the file format's
    threads: int = 1                     # with runtime None
    shapes: dict | None = None           # {input: dims} for dynamic dimensions (--shape)
    ops: bool = False                    # also a per-operator profile
    fresh: bool = False                  # time again where the store has it
    db: str | Path | None = None
    timing: object = None                # lutfarm_agent.timing.TimingSettings
    farm: object = None                  # profiler.scheduling.campaign.FarmSettings
    cache: str | Path | None = None
    progress: object = None


@dataclass
class BenchResult:
    """One row per device: benchmark_model's figures or the device's error."""

    model: object                        # profiler.export.model_file.ModelFile
    rows: list = field(default_factory=list)   # workflows.bench_model.BenchRow
    summaries: list = field(default_factory=list)   # the campaigns it ran (drift warnings, …)

    @property
    def failed(self) -> list:
        return [r for r in self.rows if r.status != "ok"]

    def to_dict(self) -> dict:
        m = self.model
        return {"model": {"name": m.name, "format": m.fmt, "sha256": m.sha256, "bytes": m.size,
                          "dtype": m.dtype, "ops": len(m.ops),
                          "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype}
                                     for i in m.inputs]},
                "devices": [r.as_dict() for r in self.rows]}

    def to_frame(self):
        """One row per device; the per-operator profile stays in ``rows[i].ops``."""
        import pandas as pd
        return pd.DataFrame([{k: v for k, v in r.as_dict().items() if k != "ops"}
                             for r in self.rows])


def bench(s: BenchSettings) -> BenchResult:
    """Time a model file on devices with the farm's rules; every result is stored."""
    from lutfarm.profiler.devices.record import LOCAL
    from lutfarm.profiler.export.cache import ModelCache
    from lutfarm.profiler.export.model_file import inspect_model, resolve_shapes
    from lutfarm.profiler.scheduling.campaign import CampaignSettings
    from lutfarm.profiler.store import Store, default_db_path
    from lutfarm.workflows.bench_model import bench_model
    from lutfarm_agent.timing import TimingSettings

    model = inspect_model(s.model)
    shapes = resolve_shapes(model, dict(s.shapes or {}))
    settings = CampaignSettings(timing=s.timing or TimingSettings(),
                                cache=ModelCache(s.cache) if s.cache else ModelCache(),
                                progress=s.progress, farm=s.farm)
    with Store(s.db or default_db_path()) as store:
        run = bench_model(store, model, s.devices or [LOCAL], s.runtime, s.threads, shapes,
                          s.ops, s.fresh, settings)
    return BenchResult(model, run.rows, run.summaries)


@dataclass
class LUTSettings:
    """What ``lutfarm lut export`` takes: a device's LUT built from the store."""

    device: str = "local"                # a device or device kind
    runtime: object = None               # a RuntimeConfig or a stored runtime key
    db: str | Path | None = None
    space: str | None = None             # default: the layout profiled last
    layout: str | None = None
    classes: int | None = None
    statistic: str = "median"
    output: str | Path | None = None     # .csv or .json: written when given


@dataclass
class LUTResult:
    lut: object                          # lutfarm.lut.LUT
    path: Path | None = None             # the file written, if any

    def to_dict(self) -> dict:
        return {"header": self.lut.header(), "path": str(self.path) if self.path else None}

    def to_frame(self):
        """One row per case: latency and what else was measured."""
        return self.lut.to_frame()


def build_lut(s: LUTSettings) -> LUTResult:
    """The LUT of one (device, runtime configuration), optionally written to a file."""
    from lutfarm.lut import build_lut as build
    from lutfarm.lut import save_lut
    from lutfarm.lut.build import stored_runtime
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.store import Store, default_db_path

    config = s.runtime or RuntimeConfig()
    with Store(s.db or default_db_path()) as store:
        key = config if isinstance(config, str) else stored_runtime(store, s.device, config)
        space = s.space or ("fbnet" if s.layout else None)
        lut = build(store, s.device, key, space, s.layout, s.classes, s.statistic)
    return LUTResult(lut, save_lut(lut, s.output) if s.output else None)


@dataclass
class EvolveSettings:
    """What ``lutfarm search evolve`` takes; ``lut`` a LUT file (or a loaded LUT)."""

    lut: str | Path | object | None = None
    space: str | None = None             # the LUT's space (checked), or mcunet without a LUT
    budget_ms: float | None = None
    objective: str = "mmacs"             # mmacs | mparams: a capacity proxy without accuracy
    max_mmacs: float | None = None
    max_mparams: float | None = None
    max_memory_kb: float | None = None
    max_flash_kb: float | None = None
    accuracy: str | Path | None = None   # an accuracy predictor or supernet file
    method: str = "constrained"
    population: int | None = None        # default: 100 (20 when accuracy is a supernet)
    generations: int | None = None       # default: 500 (10 when accuracy is a supernet)
    seed: int = 0
    latency_model: str = "auto"          # auto | plain | overhead | corrected
    plot: str | Path | None = None       # an FBNet search's Pareto plot
    verify: bool = False                 # measure the winner end to end on ``device``
    rounds: int = 5                      # with verify: searches until a winner holds, at most
    device: str = "local"
    db: str | Path | None = None
    verify_accuracy: int = 0             # train the winner and K random feasible subnets
    verify_steps: int = 400              # ... each for this many SGD steps (the recipe)
    verify_seeds: int = 2                # ... with this many seeds each (the seed noise)
    torch_device: str | None = None      # for that training: cpu, cuda (default: cuda if any)
    on_trained: Callable | None = None   # (done, total) after each stand-alone training


@dataclass
class EvolveResult:
    """A search's winner and how it was found (keys as ``search evolve --json`` prints)."""

    data: dict
    rounds: list = field(default_factory=list)     # verified rounds, in order
    objective_name: str = ""                       # what objective_value measures
    family: str = ""                               # the space's family (how to print it)

    def __getitem__(self, key: str):
        return self.data[key]

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def to_dict(self) -> dict:
        return dict(self.data)

    def to_frame(self):
        """One row: the winner's scalar figures (lists and nested dicts left out)."""
        import pandas as pd
        return pd.DataFrame([{k: v for k, v in self.data.items()
                              if not isinstance(v, (list, dict))}])


def evolve(s: EvolveSettings, on_round: Callable | None = None) -> EvolveResult:
    """Maximise the objective (accuracy with ``s.accuracy``, else a capacity proxy) under the
    LUT's latency budget and the MACs/params/memory/flash limits. ``on_round(r)`` hears each
    verified round."""
    from lutfarm.lut import load_lut

    lut = load_lut(s.lut) if isinstance(s.lut, (str, Path)) else s.lut
    space, file_layout = s.space, None
    if lut is not None and space and space != lut.space:
        raise SettingsError(f"the LUT {s.lut} is for the {lut.space} space, not {space} "
                            f"(--space)")
    if lut is None and s.accuracy is not None:      # the accuracy file says what to search
        from lutfarm.search.objectives.accuracy import accuracy_layout
        file_layout = accuracy_layout(s.accuracy)
        space = space or file_layout.space
    space = lut.space if lut is not None else (space or "fbnet")
    family = family_of(space)
    small = family == "cell"               # a few genes: every method can run on it
    if s.method not in method_names(small_space=small):
        raise SettingsError(f"search method {s.method!r} is not for the {space} space; "
                            f"choose one of {', '.join(method_names(small_space=small))}")
    accuracy, layout, objective = None, None, s.objective
    if s.accuracy is not None:
        from lutfarm.search.objectives.accuracy import accuracy_objective
        layout = lut.layout if lut is not None else file_layout
        if lut is None and layout.space != space:
            raise SettingsError(f"{s.accuracy} is for the {layout.space} space, not {space} "
                                f"(--space)")
        accuracy, objective = accuracy_objective(s.accuracy, layout), "accuracy"
    cheap = accuracy is None or accuracy.source != "supernet"
    population = s.population or (100 if cheap else 20)
    generations = s.generations or (500 if cheap else 10)
    if family == "cell":        # 15 625 archs in NB201: a few hundred evaluations find it
        population, generations = s.population or 50, s.generations or 10
    if family != "chain" and (s.verify or s.plot):
        raise SettingsError(f"--verify and --plot are for fbnet searches, not {space}")
    if s.verify_accuracy and accuracy is None:
        raise SettingsError("--verify-accuracy checks what --accuracy predicted: give "
                            "--accuracy supernet.pt (or an accuracy predictor)")
    if s.verify_accuracy < 0 or s.verify_steps < 1 or s.verify_seeds < 1:
        raise SettingsError("--verify-accuracy, --verify-steps and --verify-seeds must be "
                            "positive")
    if family == "chain":
        result = _evolve_fbnet(s, lut, objective, population, generations, accuracy, on_round)
    elif family == "elastic":
        if s.max_mparams is not None:
            raise SettingsError(f"--max-mparams is not a limit of a {space} search; use "
                                f"--max-flash-kb")
        result = _evolve_subnets(s, lut, space, objective, population, generations, accuracy,
                                 layout)
    else:
        result = None
    if result is not None:
        if s.verify_accuracy:
            result.data["accuracy_check"] = _check_accuracy(s, accuracy, result)
        return result
    if accuracy is not None or s.max_memory_kb is not None or s.max_flash_kb is not None:
        raise SettingsError(f"a {space} search takes --budget-ms, --max-mmacs and "
                            f"--max-mparams (accuracy: lutfarm search bench-nb201)")
    return _evolve_cells(s, lut, space, objective, population, generations)


def _check_accuracy(s: EvolveSettings, accuracy, result: EvolveResult) -> dict:
    """Train the winner and the search's random feasible subnets stand-alone."""
    from lutfarm.search.objectives.accuracy import accuracy_data
    from lutfarm.search.supernets.ranking import Recipe
    from lutfarm.search.supernets.verify import check_accuracy

    layout = accuracy.layout
    train_set, held_out, data = accuracy_data(s.accuracy, layout)
    device = s.torch_device or _torch_device()
    check = check_accuracy(layout, layout.parse_arch(result["arch_str"]),
                           [layout.parse_arch(t) for t in result.data.pop("random_feasible")],
                           accuracy.score, train_set, held_out, Recipe(steps=s.verify_steps),
                           s.verify_seeds, device, data, s.on_trained)
    return check.to_dict()


def _torch_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _evolve_cells(s: EvolveSettings, lut, space, objective, population,
                  generations) -> EvolveResult:
    from lutfarm.lut.cells import CellTable
    from lutfarm.search.methods.cells import CellConstraints, evolve_cells
    from lutfarm.spaces import get_layout

    limits = CellConstraints(s.budget_ms, s.max_mmacs, s.max_mparams)
    if not any(v is not None for v in vars(limits).values()):
        raise SettingsError("give at least one limit: --budget-ms, --max-mmacs or "
                            "--max-mparams")
    layout = lut.layout if lut is not None else get_layout(space)
    table = CellTable(lut) if lut is not None else None
    return EvolveResult(evolve_cells(layout, table, limits, s.method, population,
                                     generations, s.seed, objective),
                        objective_name=f"{objective} (a capacity proxy)", family="cell")


def _evolve_subnets(s: EvolveSettings, lut, space, objective, population, generations,
                    accuracy, layout) -> EvolveResult:
    from lutfarm.lut.subnets import SubnetTable
    from lutfarm.search.methods.subnets import SubnetConstraints, evolve_subnets
    from lutfarm.spaces import get_layout

    limits = SubnetConstraints(s.budget_ms, s.max_memory_kb, s.max_mmacs, s.max_flash_kb)
    if not any(v is not None for v in vars(limits).values()):
        raise SettingsError("give at least one limit: --budget-ms, --max-memory-kb, "
                            "--max-flash-kb or --max-mmacs")
    layout = layout or (lut.layout if lut is not None else get_layout(space))
    table = SubnetTable(lut) if lut is not None else None
    latency_model = "plain" if s.latency_model == "auto" else s.latency_model
    return EvolveResult(evolve_subnets(layout, table, limits, s.method, population, generations,
                                       s.seed, latency_model, objective, accuracy,
                                       random_draws=s.verify_accuracy),
                        family="elastic")


def _evolve_fbnet(s: EvolveSettings, lut, objective, population, generations, accuracy,
                  on_round) -> EvolveResult:
    from lutfarm.lut import LatencyTable
    from lutfarm.search.methods.registry import run_method
    from lutfarm.search.objectives.space import (
        MeasuredScale,
        auto_latency_model,
        fbnet_space,
        lut_latency,
        lut_peak_memory,
        macs,
        params,
        within,
    )

    if lut is None or s.budget_ms is None:
        raise SettingsError("an fbnet search needs --lut and --budget-ms")
    if s.max_flash_kb is not None:
        raise SettingsError("--max-flash-kb is for mcunet searches (microcontrollers); "
                            "limit an fbnet search's size with --max-mparams")
    table = LatencyTable(lut)
    layout = table.layout
    latency_model = s.latency_model
    if latency_model == "auto":
        latency_model = auto_latency_model(lut.validation)
    space, latency = fbnet_space(layout), lut_latency(table, latency_model)
    if s.verify and s.latency_model == "auto" and latency_model == "plain":
        # nothing but the measured winners says how far the plain sum is off on this device
        latency_model, latency = "scaled", MeasuredScale(latency, latency.name)
    mm, mp = macs(layout), params(layout)
    goal = accuracy or (mm if objective == "mmacs" else mp)
    memory = lut_peak_memory(lut) if s.max_memory_kb is not None else None
    fastest = np.array([table.extremes()["fastest"]])   # a start for tight budgets

    def feasible_under(latency):
        return within((latency, s.budget_ms), (mm, s.max_mmacs), (mp, s.max_mparams),
                      (memory, s.max_memory_kb))

    def run(latency):
        return run_method(s.method, space, goal, feasible_under(latency),
                          population * generations, s.seed, population, fastest)

    searches, rounds_done = [], []

    def search(latency):
        searches.append(run(latency))
        return searches[-1]

    if s.verify:
        from lutfarm.search.methods.verified import verified_search
        answer, rounds_done = verified_search(
            search, latency, space, _measurer(lut, s.device, s.db), s.budget_ms, s.rounds,
            report=on_round or (lambda r: None))
        best, objective_value = answer.arch, answer.objective
    else:
        best, objective_value = search(latency).arch, searches[0].objective
    r = searches[-1]
    arch = np.array([best])
    evaluations, wall_s = sum(x.evaluations for x in searches), sum(x.wall_s for x in searches)
    result = {"arch": [int(v) for v in best], "arch_str": "".join(map(str, best)),
              "latency_ms": float(latency(arch)[0]), "objective": objective,
              "objective_value": objective_value, "mmacs": float(mm(arch)[0]),
              "mparams": float(mp(arch)[0]), "evaluations": evaluations,
              "wall_s": wall_s, "evaluations_per_s": evaluations / max(wall_s, 1e-9),
              "method": r.method, "budget_ms": s.budget_ms, "latency_model": latency_model,
              "lut": str(s.lut)}
    if accuracy is not None:
        result.update(accuracy=objective_value, accuracy_source=accuracy.name)
    if memory is not None:
        result.update(peak_memory_kb=float(memory(arch)[0]), max_memory_kb=s.max_memory_kb,
                      memory_method=lut.meta.get("memory_method"))
    if s.verify:
        result["verified"] = {**_prices(lut, answer.arch), **answer.as_dict(),
                              "held": answer.holds, "rounds_used": len(rounds_done),
                              "rounds_allowed": s.rounds,
                              "rounds": [h.as_dict() for h in rounds_done]}
        if isinstance(latency, MeasuredScale):
            result["verified"]["scale"] = latency.scale
    if s.verify_accuracy:
        from lutfarm.search.methods.evolution import distinct_feasible, sample_feasible
        ok = feasible_under(latency)
        drawn = sample_feasible(space, 4 * s.verify_accuracy, ok, np.random.default_rng(
            [s.seed, 7]), seeds=fastest)
        drawn = distinct_feasible(space, drawn[(drawn != arch).any(1)], ok)
        result["random_feasible"] = ["".join(map(str, a)) for a in drawn[:s.verify_accuracy]]
    if s.plot:
        from lutfarm.search.plots import pareto_plot
        cloud = np.concatenate([space.random(4000, np.random.default_rng(s.seed)),
                                r.archs if r.archs.ndim == 2 and len(r.archs) else arch, arch])
        pareto_plot(latency(cloud), goal(cloud), len(cloud) - 1, s.budget_ms, s.plot,
                    goal.name, f"{lut.device} / {lut.runtime}: {r.method}")
    what = accuracy.name if accuracy is not None else f"{objective} (a capacity proxy)"
    return EvolveResult(result, list(rounds_done), what, family="chain")


class MeasureError(LutfarmError, RuntimeError):
    """A verified search's winner could not be measured on the device."""


def _measurer(lut, device_name, db):
    """arch -> (measured ms, speed): the whole network on the device with the LUT's runtime
    configuration, timed with its blocks; speed = their time now / in the LUT."""
    from lutfarm.profiler.devices.record import get_device
    from lutfarm.profiler.runtime_config import RuntimeConfig
    from lutfarm.profiler.scheduling.networks import measure_interleaved
    from lutfarm.profiler.store import Store, default_db_path
    from lutfarm.spaces.fbnet import NetworkCase

    runtime, layout = RuntimeConfig.from_key(lut.runtime), lut.layout
    device = get_device(device_name)

    def measure(arch) -> tuple[float, float]:
        arch = tuple(int(v) for v in arch)
        with Store(db or default_db_path()) as store:
            got = measure_interleaved(store, layout, [arch], [device], runtime,
                                      target=device_name)
        if arch not in got.networks:
            raise MeasureError(f"{NetworkCase(layout, arch).key} could not be measured on "
                               f"{device_name}: {got.why_failed()}")
        keys = [c.key for c in layout.arch_cases(arch)]
        now = got.rounds[0]
        speed = sum(now[k] for k in keys) / sum(lut.latency_ms[k] for k in keys) \
            if all(k in now for k in keys) else 1.0
        return got.networks[arch], speed
    return measure


def _prices(lut, arch) -> dict:
    """The plain and overhead-corrected sums of one arch, beside what was measured."""
    from lutfarm.lut import LatencyTable
    table = LatencyTable(lut)
    plain = float(table.latency([arch])[0])
    return {"plain_ms": plain, "overhead_corrected_ms": float(table.latency([arch], "overhead")[0])
            if lut.overhead_ms is not None else plain}


@dataclass
class ValidateSettings:
    """What ``lutfarm lut validate`` takes: measure whole networks on ``devices`` and compare
    them with the LUT's sums (chain spaces: ``archs`` in all; elastic: per resolution)."""

    devices: list                        # profiler Device records (one kind)
    runtime: object                      # a RuntimeConfig
    db: str | Path
    target: str = "local"                # the device or kind the LUT is stored under
    archs: int = 30
    seed: int = 0
    fusion: bool = False                 # chain: the fusion-aware correction
    every: int = 0                       # chain: re-time blocks every N networks
    pairs: int = 0                       # chain: adjacent pairs measured in context first
    measure_blocks: bool = False         # elastic: measure the subnets' predicted blocks
    out_dir: str | Path = "."            # where the plot and the per-network table go
    progress: object = None              # a campaign progress listener (the CLI's bars)


@dataclass
class ValidateOutcome:
    """The stored validation report, its family, and the files written beside it."""

    report: object                       # ValidationReport or SubnetValidationReport
    family: str
    plot: Path
    table: Path
    skipped_cases: list = field(default_factory=list)   # cases the runtime could not take

    def to_dict(self) -> dict:
        return self.report.summary()

    def to_frame(self):
        return self.report.to_frame()


def validate_lut(s: ValidateSettings) -> ValidateOutcome:
    """Measure networks of the LUT's space end to end and store how well its sums hold (the
    space's ``validate`` piece: whole networks for a chain, subnets for an elastic space)."""
    from lutfarm.lut import build_lut
    from lutfarm.profiler.scheduling.campaign import CampaignSettings
    from lutfarm.profiler.store import Store
    from lutfarm.spaces.registry import get_space

    if s.archs < 6:
        raise SettingsError("give --archs 6 or more (half of them train the correction)")
    runtime = s.devices[0].resolve(s.runtime)      # what it stored (an MCU's kernels)
    with Store(s.db) as store:
        table = build_lut(store, s.target, runtime.key)
        space = get_space(table.space)
        validate = space.piece("validate")
        if validate is None:
            raise SettingsError(f"the {table.space} space has no network validation; a "
                                f"{table.space} LUT's sums are checked by 'lutfarm lut query' "
                                f"against measured networks")
        campaign = CampaignSettings(progress=s.progress) if s.progress else CampaignSettings()
        report, png, csv, skipped = validate(store, table, s, runtime, campaign)
    return ValidateOutcome(report, space.family, png, csv, skipped)


@dataclass
class SupernetSettings:
    """What ``lutfarm search supernet train`` takes (``train`` holds the optimiser's)."""

    layout: object                       # a layout of a space with a supernet
    output: str | Path                   # the checkpoint: written every epoch, resumed
    data: str = "digits"                 # digits, fashion-mnist[:N], or a folder (load_images)
    train: object = None                 # lutfarm.search.supernets.oneshot.TrainSettings
    nproc: int = 1                       # DistributedDataParallel processes
    torch_device: str | None = None
    quiet: bool = False                  # the DDP workers print nothing


@dataclass
class SupernetResult:
    data: dict
    trained: bool = True                 # False: this process is a torchrun rank other than 0

    def __getitem__(self, key: str):
        return self.data[key]

    def to_dict(self) -> dict:
        return dict(self.data)

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame([{k: v for k, v in self.data.items() if not isinstance(v, list)}])


def train_supernet(s: SupernetSettings, on_batch: Callable | None = None,
                   on_epoch: Callable | None = None,
                   say: Callable[[str], None] = lambda line: None) -> SupernetResult:
    """Train (or resume) a space's one-shot supernet and score its largest and smallest
    subnets; under torchrun each rank calls this and rank 0 gets the result."""
    from dataclasses import asdict

    from lutfarm import environment
    from lutfarm.search.supernets.data import data_spec, load_images, num_classes
    from lutfarm.search.supernets.oneshot import (
        Checkpoint,
        SupernetError,
        TrainSettings,
        build_supernet,
        train,
        train_distributed,
    )

    layout, output = s.layout, Path(s.output)
    spec = data_spec(s.data)
    settings = s.train or TrainSettings()
    epochs = settings.epochs
    resolutions = list(layout.resolutions) if family_of(layout.space) == "elastic" else None
    if output.exists():
        ck = Checkpoint.load(output)
        mine = (layout.space, layout.name, spec, resolutions)
        if (ck.space, ck.layout, ck.data, ck.resolutions) != mine:
            raise SupernetError(
                f"{output} holds a {ck.space}/{ck.layout} supernet on {ck.data} "
                f"(resolutions {ck.resolutions}), not {layout.space}/{layout.name} on {spec}; "
                f"give another -o or delete {output} to start over")
        saved = {k: v for k, v in ck.settings.items() if k != "epochs"}
        settings = TrainSettings(epochs=epochs, **saved)
        if ck.epochs_done >= epochs:
            say(f"{output}: already trained {ck.epochs_done} epochs (asked {epochs})")
        else:
            say(f"resuming {output} after epoch {ck.epochs_done} of {epochs}")
    else:
        classes = num_classes(load_images(spec, layout.input_size))
        build_supernet(layout.with_classes(classes), classes)     # fails now if no supernet
        ck = Checkpoint(layout.space, layout.name, classes, resolutions, spec, asdict(settings))
    world, rank = environment.torchrun_rank()
    if ck.epochs_done < epochs:
        if world > 1:          # under torchrun: this process is one rank
            import torch.distributed as dist
            dist.init_process_group("nccl" if (s.torch_device or "").startswith("cuda")
                                    else "gloo")
            try:
                ck = train(ck, output, settings, s.torch_device)
            finally:
                dist.destroy_process_group()
            if rank != 0:
                return SupernetResult({}, trained=False)
        elif s.nproc > 1:
            say(f"training on {s.nproc} processes (DistributedDataParallel)")
            ck = train_distributed(ck, output, settings, s.nproc, s.torch_device,
                                   quiet=s.quiet)
        else:
            ck = train(ck, output, settings, s.torch_device, on_batch=on_batch,
                       on_epoch=on_epoch)
    ck = Checkpoint.load(output)
    scorer = ck.scorer(s.torch_device)
    net = scorer.net
    ends = {"largest": net.largest(), "smallest": net.smallest()}
    return SupernetResult({
        "supernet": str(output), "space": ck.space, "layout": ck.layout,
        "classes": ck.classes, "data": ck.data, "epochs": ck.epochs_done,
        "seconds_per_epoch": [round(r["seconds"], 2) for r in ck.history],
        **{f"{k}_accuracy": 100.0 * scorer(a) for k, a in ends.items()}})


@dataclass
class DNASRun:
    """What ``lutfarm search dnas`` takes: an FBNet LUT, the data, FBNet's hyper-parameters."""

    lut: str | Path
    data: str = "digits"                 # digits, fashion-mnist[:N], or a folder (load_images)
    settings: object = None              # lutfarm.search.supernets.dnas.DNASSettings
    checkpoint: str | Path | None = None  # default: one per run under the lutfarm cache
    nproc: int = 1                       # DistributedDataParallel processes
    torch_device: str | None = None


def dnas(s: DNASRun, on_batch: Callable | None = None, log: Callable | None = None,
         say: Callable[[str], None] = lambda line: None):
    """FBNet's differentiable search with the LUT's latency in the loss, resumable from its
    checkpoint (the same run, asked again, goes on where it stopped). Returns the DNASResult."""
    import hashlib

    from lutfarm import environment
    from lutfarm.lut import LatencyTable, load_lut
    from lutfarm.search.supernets.data import load_images, num_classes
    from lutfarm.search.supernets.dnas import DNASSettings, search, spawn_search

    st = s.settings or DNASSettings()
    if st.widths and (max(st.widths) != 1.0 or min(st.widths) <= 0):
        raise SettingsError("--widths must lie in (0, 1] and include 1.0 (the LUT's width)")
    lut = load_lut(s.lut)
    if family_of(lut.space) != "chain":
        raise SettingsError("DNAS searches a chain space (fbnet) LUT; search other spaces "
                            "with: lutfarm search evolve")
    table = LatencyTable(lut)
    dataset = load_images(s.data, table.layout.input_size)
    classes = num_classes(dataset)
    checkpoint = Path(s.checkpoint) if s.checkpoint else None
    if checkpoint is None:
        key = hashlib.sha256(repr((str(Path(s.lut).resolve()), str(s.data), st.warmup_epochs,
                                   st.batch_size, st.max_batches, st.alpha, st.beta, st.seed,
                                   st.widths)).encode()).hexdigest()[:16]
        checkpoint = environment.cache_dir() / "dnas" / f"{key}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    say(f"resuming from {checkpoint}" if checkpoint.exists() else
        f"checkpoint {checkpoint}: written every epoch, the same command resumes from it")
    if s.nproc > 1:
        say(f"training on {s.nproc} processes (DistributedDataParallel); checkpoint "
            f"{checkpoint}")
        return spawn_search(s.nproc, table, dataset, classes, checkpoint, s.torch_device,
                            settings=st)
    return search(table, dataset, classes, st, device=s.torch_device, log=log,
                  on_batch=on_batch, checkpoint=checkpoint)

