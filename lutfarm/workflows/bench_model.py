"""``lutfarm bench MODEL``: one model file timed on devices of the farm, with the farm's rules.

The file is read first (``model_file.inspect_model``: not a model, or a dynamic input without
``--shape``, stops here), stored in the model cache under its SHA-256 and measured as one
case (``Model_<sha16>``) by the ordinary campaign machinery: content-addressed upload,
adaptive sampling to a CI target, warm-up, raw samples, the device's context, drift guard on
a device that has measured this configuration before, each result in the store as it comes.

Every device is timed, also several of one kind (one campaign would share the case among
them): each device has a campaign of its own, all at once, so one device's trouble (no
runtime, an emulator that does not start) is its row's error alone. A
device whose newest measurement of the file is stored is not timed again unless ``fresh``
(or ``ops`` and the stored one has no profile); timed again, its row carries the earlier
median (the drift guard of a model file: more than ``DRIFT_TOLERANCE`` off is warned). One device failing (no runtime, an op its
firmware lacks, a model larger than it holds) is its row's error; the others go on.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import asdict, dataclass, field, replace

from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.export.model_file import ModelFile, ModelFileError
from lutfarm.profiler.runtime_config import RuntimeConfig, RuntimeConfigError
from lutfarm.profiler.scheduling.campaign import CampaignError, CampaignSettings, run_farm
from lutfarm.profiler.scheduling.device_worker import DRIFT_TOLERANCE
from lutfarm.profiler.store import Measurement, Store
from lutfarm_agent.runtimes import SPECS

log = logging.getLogger(__name__)

FORMAT_RUNTIMES = {"onnx": ("onnxruntime",), "tflite": ("litert", "tflite", "tflm")}
STATS = ("count", "min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "init_ms", "first_ms")
OTHERS = ("ci_lo_ms", "ci_hi_ms", "sampling_s")


@dataclass
class BenchRow:
    """One device's answer: benchmark_model's figures (ms), or why there is none."""

    device: str
    kind: str
    runtime: str                     # the configuration's key, e.g. litert-int8-t1-xnnpack
    runtime_name: str
    threads: int
    dtype: str
    model: str                       # the file's name
    case_key: str
    status: str                      # ok | failed
    error: str | None = None
    stored: bool = False             # from an earlier run (not timed by this one)
    campaign_id: int | None = None
    count: int | None = None
    min_ms: float | None = None
    median_ms: float | None = None
    mean_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    ci_lo_ms: float | None = None
    ci_hi_ms: float | None = None
    sampling_s: float | None = None   # seconds of timed samples (the rest is the farm's work)
    memory_bytes: int | None = None
    memory_method: str | None = None  # rss-growth | tflm-arena | mcu-arena
    emulated: str | None = None       # why these are not hardware timings, where they are not
    ops: dict | None = None           # the per-operator profile, where asked for
    previous_ms: float | None = None  # timed again: the device's earlier median of the file
    previous_at: float | None = None

    @property
    def drift(self) -> float | None:
        """This median against the earlier one (0.12: 12 % slower), where timed again."""
        if self.previous_ms is None or not self.median_ms:
            return None
        return self.median_ms / self.previous_ms - 1

    @property
    def ci_half_ms(self) -> float | None:
        if self.ci_lo_ms is None or self.ci_hi_ms is None:
            return None
        return (self.ci_hi_ms - self.ci_lo_ms) / 2

    def as_dict(self) -> dict:
        return dict(asdict(self), ci_half_ms=self.ci_half_ms, drift=self.drift)


@dataclass
class BenchRun:
    """What ``bench_model`` did: a row per device (inventory order)."""

    model: ModelFile
    rows: list[BenchRow] = field(default_factory=list)
    summaries: list = field(default_factory=list)   # the campaigns it ran

    @property
    def failed(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status != "ok"]


def runtime_for(model: ModelFile, device: Device, asked: RuntimeConfig | None,
                threads: int = 1) -> RuntimeConfig:
    """The runtime configuration that times ``model`` on ``device``: the asked one, or the
    file format's (ONNX: onnxruntime; TFLite: tflm on a microcontroller, else LiteRT, or
    tflite-runtime on a device that lists only it), at the model's own precision."""
    if asked is not None:
        if asked.model_format != model.fmt:
            fits = ", ".join(FORMAT_RUNTIMES[model.fmt])
            raise ModelFileError(f"--runtime {asked.name} runs {asked.model_format} models and "
                                 f"{model.name} is {model.fmt}: use --runtime {fits}")
        name, threads, provider = asked.name, asked.threads, asked.provider
        provider = "" if asked.provider_defaulted else provider
    elif model.fmt == "onnx":
        name, provider = "onnxruntime", ""
    elif device.is_mcu:
        name, provider = "tflm", ""
    else:
        only_tflite = "tflite" in device.runtimes and "litert" not in device.runtimes
        name, provider = ("tflite" if only_tflite else "litert"), ""
    dtype = model.dtype if model.dtype in SPECS[name].dtypes else "fp32"
    try:
        return RuntimeConfig(name, 1 if SPECS[name].max_threads == 1 else threads, dtype,
                             provider)
    except RuntimeConfigError as exc:
        raise ModelFileError(str(exc)) from None


def bench_model(store: Store, model: ModelFile, devices: list[Device],
                runtime: RuntimeConfig | None = None, threads: int = 1,
                shapes: dict | None = None, ops: bool = False, fresh: bool = False,
                settings: CampaignSettings | None = None) -> BenchRun:
    """Time ``model`` on every device (see the module's docstring); rows in device order."""
    s = settings or CampaignSettings()
    cache = s.cache or ModelCache()
    case = model.case(shapes)
    configs = {d.name: d.resolve(runtime_for(model, d, runtime, threads)) for d in devices}
    run = BenchRun(model)
    todo = [d for d in devices if fresh or not _stored(store, d, configs[d.name], case.key, ops)]
    # the drift guard of a model timed again: its own earlier median on the same device
    before = {d.name: m for d in todo
              if (m := _newest(store, d, configs[d.name], case.key)) and m.status == "ok"}
    if todo:
        stored = cache.put(case, model.fmt, "fp32", model.path.read_bytes())
        options = {"ops": True} if ops else {}
        if shapes:
            options["shapes"] = {n: list(d) for n, d in shapes.items()}
        s = replace(s, cases=[case], models={case.key: stored}, fresh=True,
                    stop=s.stop or threading.Event(),
                    case_options={case.key: options},
                    notes={"model_file": {"name": model.name, "sha256": model.sha256,
                                          "bytes": model.size, "shapes": options.get("shapes"),
                                          "ops": ops}})
    errors: dict[str, str] = {}

    def on(device: Device) -> None:
        try:
            summaries = run_farm(store, None, [device], configs[device.name], s)
        except CampaignError as exc:      # no runtime there, an emulator that cannot start, …
            errors[device.name] = str(exc)
            log.info("bench on %s: %s", device.name, exc)
            return
        run.summaries.extend(summaries)
        for summary in summaries:
            errors.update(summary.device_errors)

    _all_at_once(on, todo, s.stop)
    ours = {summary.campaign_id for summary in run.summaries}
    for d in devices:
        row = _row(store, model, case.key, d, configs[d.name], errors.get(d.name),
                   ours if d in todo else None)
        earlier = before.get(d.name)
        if earlier is not None and row.median_ms:
            row.previous_ms, row.previous_at = earlier.median_ms, earlier.created
        run.rows.append(row)
    return run


def _all_at_once(each, devices: list[Device], stop: threading.Event | None) -> None:
    """``each(device)`` in a thread per device; Ctrl-C (which only this thread sees) stops
    every device's campaign as Ctrl-C stops one, and is raised once they have let go."""
    pool = ThreadPoolExecutor(max(1, len(devices)))
    try:
        for future in [pool.submit(each, d) for d in devices]:
            while True:
                try:
                    future.result(timeout=0.2)
                    break
                except FuturesTimeout:
                    continue
    except KeyboardInterrupt:
        if stop is not None:
            stop.set()
        raise
    finally:
        pool.shutdown(wait=True)


def _newest(store: Store, device: Device, runtime: RuntimeConfig, key: str,
            campaigns: set[int] | None = None) -> Measurement | None:
    """The device's newest measurement of ``key`` (of these campaigns, when given)."""
    found = [m for m in store.iter_measurements(device.name, runtime.key) if m.case_key == key
             and (campaigns is None or m.campaign_id in campaigns)]
    return found[-1] if found else None


def _stored(store: Store, device: Device, runtime: RuntimeConfig, key: str, ops: bool) -> bool:
    m = _newest(store, device, runtime, key)
    return m is not None and m.status == "ok" and (not ops or bool(m.ops))


def _row(store: Store, model: ModelFile, key: str, device: Device, runtime: RuntimeConfig,
         error: str | None, campaigns: set[int] | None) -> BenchRow:
    """The device's row: this run's measurement (``campaigns``), or the stored one (None)."""
    row = BenchRow(device.name, device.kind, runtime.key, runtime.name, runtime.threads,
                   model.dtype, model.name, key, "failed", stored=campaigns is None)
    m = _newest(store, device, runtime, key, campaigns)
    if m is None:
        row.error = error or "not measured (lutfarm -v bench … logs why)"
        return row
    row.status, row.campaign_id = m.status, m.campaign_id
    if m.status != "ok":
        row.error = m.error or error
        return row
    for name in STATS + OTHERS:
        setattr(row, name, getattr(m, name))
    row.memory_bytes, row.memory_method, row.ops = m.peak_mem_bytes, m.mem_method, m.ops
    if m.context_id is not None:
        row.emulated = store.context(m.context_id).get("emulated")
    return row


def drift_warnings(rows: list[BenchRow]) -> list[str]:
    """Rows whose median moved more than ``DRIFT_TOLERANCE`` since the device last timed the
    file: the machine, its load or its software changed (or the model runs unsteadily)."""
    return [f"{r.device}: {r.median_ms:.4g} ms now, {r.previous_ms:.4g} ms when last timed "
            f"({r.drift:+.0%})" for r in rows
            if r.drift is not None and abs(r.drift) > DRIFT_TOLERANCE]


def op_table(profile: dict) -> list[dict]:
    """A per-operator profile by op type: total ms per run, share of the profiled total,
    node count; slowest first."""
    nodes = profile.get("nodes") or []
    total = sum(n["ms"] for n in nodes) or 1.0
    by_op: dict[str, dict] = {}
    for n in nodes:
        entry = by_op.setdefault(n["op"], {"op": n["op"], "ms": 0.0, "count": 0})
        entry["ms"] += n["ms"]
        entry["count"] += 1
    rows = sorted(by_op.values(), key=lambda e: -e["ms"])
    for e in rows:
        e["share"] = e["ms"] / total
    return rows


def slowest_nodes(profile: dict, n: int = 10) -> list[dict]:
    nodes = profile.get("nodes") or []
    total = sum(x["ms"] for x in nodes) or 1.0
    return [dict(x, share=x["ms"] / total) for x in sorted(nodes, key=lambda x: -x["ms"])[:n]]
