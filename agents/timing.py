"""How one model gets timed: warm-up, call batching, a stop rule on the median's CI.

Conventions follow TFLite's benchmark_model and TVM's time_evaluator (init and first
inference apart, warm-up by runs and by seconds, batches of calls for short blocks), but the
number of samples is not fixed: sampling stops once the confidence interval of the median is
within ``target_rel_ci`` of it (or ``max_s`` is spent), so quiet cases finish early and noisy
ones get the time they need.
"""

from __future__ import annotations

import bisect
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable


@dataclass
class TimingSettings:
    """Every knob of the timing loop; defaults aim at +-1 % medians in as few samples as the
    case's spread allows (at least ``min_runs``), which is what ``bench_campaign`` holds
    against the statistical floor."""

    warmup_runs: int = 5
    warmup_s: float = 0.002
    min_runs: int = 20          # samples, at least
    min_s: float = 0.0          # seconds of sampling, at least (the CI rule decides by default)
    max_s: float = 2.0          # stop sampling here even if the CI is still wide
    target_rel_ci: float = 0.01  # half-width of the median's CI relative to the median; 0 = fixed time
    confidence: float = 0.95
    min_sample_s: float = 0.0005  # batch calls so each sample lasts at least this long
    max_cv: float = 0.10        # fixed-time mode: a spread above this is suspicious, time again
    retries: int = 1            # how many times a suspicious case is timed again

    @classmethod
    def from_dict(cls, d: dict | None) -> TimingSettings:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError("unknown timing settings: " + ", ".join(sorted(unknown)))
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TimingResult:
    """Per-call times in milliseconds and their statistics."""

    samples_ms: list[float]
    batch: int                  # calls per sample
    warmup_calls: int
    sampling_s: float           # wall time spent in timed samples
    converged: bool             # the CI target was met
    attempts: int = 1
    stats: dict[str, float] = field(default_factory=dict)


def median_ci(sorted_values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (normal approx. to binomial)."""
    n = len(sorted_values)
    if n == 0:
        return (math.nan, math.nan)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(n) / 2
    lo = max(int(math.floor(n / 2 - half)) - 1, 0)
    hi = min(int(math.ceil(1 + n / 2 + half)) - 1, n - 1)
    return (sorted_values[lo], sorted_values[hi])


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without needing numpy here."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples_ms: list[float], confidence: float = 0.95) -> dict[str, float]:
    """count/min/max/mean/std/median/p90/p95/p99, the median's CI and the CV."""
    s = sorted(samples_ms)
    mean = statistics.fmean(s)
    # two-pass fsum, not statistics.stdev: that one is exact with Fractions, ~5 ms per 4 000 samples
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in s) / (len(s) - 1)) if len(s) > 1 else 0.0
    median = statistics.median(s)
    lo, hi = median_ci(s, confidence)
    return {
        "count": len(s), "min": s[0], "max": s[-1], "mean": mean, "std": std, "median": median,
        "p90": _percentile(s, 90), "p95": _percentile(s, 95), "p99": _percentile(s, 99),
        "ci_lo": lo, "ci_hi": hi,
        "rel_ci": (hi - lo) / (2 * median) if median > 0 else math.inf,
        "cv": std / mean if mean > 0 else math.inf,
    }


def _rel_ci(s: list[float], confidence: float) -> float:
    """Relative half-width of the median's CI, from an already sorted list."""
    lo, hi = median_ci(s, confidence)
    med = s[len(s) // 2]
    return (hi - lo) / (2 * med) if med > 0 else math.inf


def for_deterministic_clock(settings: TimingSettings) -> TimingSettings:
    """A clock that counts instructions (an emulated MCU) gives every sample the same time:
    five samples without warm-up by seconds or retries say all there is to say."""
    return replace(settings, warmup_runs=min(settings.warmup_runs, 1), warmup_s=0.0,
                   min_runs=min(settings.min_runs, 5), min_s=0.0, retries=0)


def _time_batch(fn: Callable[[], object], batch: int, clock: Callable[[], float]) -> float:
    """``batch`` calls; a function with a ``many(n)`` (an MCU's ``RUN n``: one round trip for
    many invokes) makes them itself."""
    many = getattr(fn, "many", None)
    t0 = clock()
    if many is not None:
        many(batch)
    else:
        for _ in range(batch):
            fn()
    return clock() - t0


def _warm_up(fn: Callable[[], object], settings: TimingSettings,
             clock: Callable[[], float]) -> tuple[int, int]:
    """Warm up; doubles as batch calibration: grow the batch until one batch lasts
    min_sample_s. Returns (batch, calls made)."""
    batch, calls, start = 1, 0, clock()
    while True:
        dt = _time_batch(fn, batch, clock)
        calls += batch
        if dt < settings.min_sample_s:
            grow = settings.min_sample_s / max(dt, 1e-9) * 1.2
            batch = max(batch * 2, int(math.ceil(batch * min(grow, 64))))
            continue
        if calls >= settings.warmup_runs and clock() - start >= settings.warmup_s:
            return batch, calls


def _done(ordered: list[float], sampling: float, settings: TimingSettings) -> bool:
    """The CI stop rule: enough samples, and the median's CI within the target."""
    return (len(ordered) >= settings.min_runs and sampling >= settings.min_s
            and settings.target_rel_ci > 0
            and _rel_ci(ordered, settings.confidence) <= settings.target_rel_ci)


def time_once(fn: Callable[[], object], settings: TimingSettings,
              clock: Callable[[], float] = time.perf_counter) -> TimingResult:
    """Warm up, size the batch, then sample until the stop rule holds."""
    batch, calls = _warm_up(fn, settings, clock)
    samples: list[float] = []
    ordered: list[float] = []      # kept sorted as samples arrive: the CI is a lookup, not a sort
    sampling, converged = 0.0, False
    while True:
        dt = _time_batch(fn, batch, clock)
        sampling += dt
        samples.append(dt * 1000.0 / batch)
        bisect.insort(ordered, samples[-1])
        # Every sample is a chance to stop: a case takes only the samples its spread needs.
        if _done(ordered, sampling, settings):
            converged = True
            break
        if sampling >= settings.max_s and len(samples) >= settings.min_runs:
            break
    return TimingResult(samples, batch, calls, sampling, converged,
                        stats=summarize(samples, settings.confidence))


def suspicious(result: TimingResult, settings: TimingSettings) -> bool:
    """Worth timing again: with a CI target, only when the target was missed (a converged
    median is as precise as asked, whatever its outliers do to the CV, and a second attempt
    would throw its samples away); in fixed-time mode, a CV above ``max_cv``."""
    if settings.target_rel_ci > 0:
        return not result.converged
    return result.stats["cv"] > settings.max_cv


def time_callable(fn: Callable[[], object], settings: TimingSettings,
                  clock: Callable[[], float] = time.perf_counter) -> TimingResult:
    """``time_once``, repeated while the result looks suspicious; the tightest attempt wins."""
    best = time_once(fn, settings, clock)
    attempts, sampling = 1, best.sampling_s
    while attempts <= settings.retries and suspicious(best, settings):
        again = time_once(fn, settings, clock)
        attempts += 1
        sampling += again.sampling_s
        if again.stats["rel_ci"] < best.stats["rel_ci"]:
            best = again
    best.attempts = attempts
    best.sampling_s = sampling  # every timed attempt counts towards the time spent timing
    return best


def time_interleaved(fns: list, settings: TimingSettings, clocks: list = None) -> list:
    """Time several models sample by sample in turn (A B C A B C …), until every one meets
    the stop rule or ``max_s`` of sampling per model is spent: all of them see the same
    moments of the machine, so their ratios hold on a machine whose speed wanders (a
    network against its blocks). ``clocks``: one per function (an MCU times itself), default
    the host's. One TimingResult per function, in order."""
    clocks = clocks or [time.perf_counter] * len(fns)
    warm = [_warm_up(fn, settings, clock) for fn, clock in zip(fns, clocks)]
    samples = [[] for _ in fns]
    ordered = [[] for _ in fns]
    sampling = [0.0] * len(fns)
    while True:
        for i, fn in enumerate(fns):
            batch = warm[i][0]
            dt = _time_batch(fn, batch, clocks[i])
            sampling[i] += dt
            samples[i].append(dt * 1000.0 / batch)
            bisect.insort(ordered[i], samples[i][-1])
        done = [_done(o, t, settings) for o, t in zip(ordered, sampling)]
        if all(done) or (max(sampling) >= settings.max_s
                         and len(samples[0]) >= settings.min_runs):
            return [TimingResult(s, b, calls, t, ok, stats=summarize(s, settings.confidence))
                    for s, (b, calls), t, ok in zip(samples, warm, sampling, done)]
