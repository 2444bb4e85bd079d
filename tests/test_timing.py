"""The timing loop's statistics and stop rules, on synthetic clocks and distributions."""

import numpy as np
import pytest

from lutfarm_agent.timing import TimingSettings, median_ci, summarize, time_callable, time_once


def test_median_ci_covers_the_true_median_about_95_percent():
    rng = np.random.default_rng(7)
    hits = 0
    trials = 2000
    for _ in range(trials):
        x = sorted(rng.lognormal(0.0, 0.5, size=60))   # true median = 1.0
        lo, hi = median_ci(x, 0.95)
        hits += lo <= 1.0 <= hi
    assert 0.93 <= hits / trials <= 0.985


def test_summary_statistics_agree_with_numpy():
    x = list(np.random.default_rng(3).exponential(2.0, size=101))
    s = summarize(x)
    assert s["count"] == 101
    for name, q in [("median", 50), ("p90", 90), ("p95", 95), ("p99", 99)]:
        assert s[name] == pytest.approx(np.percentile(x, q))
    assert s["mean"] == pytest.approx(np.mean(x))
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["ci_lo"] <= s["median"] <= s["ci_hi"]


class FakeClock:
    """A clock that advances only when the timed function runs."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, durations, 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations(self.calls)
        self.calls += 1


def test_short_calls_are_batched_and_a_quiet_case_stops_at_the_minimum():
    clock = FakeClock(lambda i: 10e-6)            # 10 us per call, no noise
    s = TimingSettings(min_s=0.05, max_s=1.0, min_sample_s=0.001)
    r = time_once(clock.work, s, clock)
    assert r.batch >= 100                          # each sample >= 1 ms
    assert r.converged and r.stats["median"] == pytest.approx(0.01)
    assert 0.05 <= r.sampling_s < 0.06             # stopped right after min_s


def test_a_noisy_case_samples_longer_than_a_quiet_one():
    rng = np.random.default_rng(0)
    noisy = FakeClock(lambda i: 1e-3 * rng.lognormal(0, 0.1))
    quiet = FakeClock(lambda i: 1e-3 * rng.lognormal(0, 0.01))
    s = TimingSettings(min_s=0.01, max_s=5.0, min_sample_s=0.0)
    rn, rq = time_once(noisy.work, s, noisy), time_once(quiet.work, s, quiet)
    assert rn.converged and rq.converged
    assert len(rn.samples_ms) > 3 * len(rq.samples_ms)
    assert rn.stats["rel_ci"] <= 0.01


def test_fixed_time_mode_ignores_the_ci():
    clock = FakeClock(lambda i: 1e-3)
    s = TimingSettings(min_s=0.3, max_s=0.3, target_rel_ci=0.0, min_sample_s=0.0)
    r = time_once(clock.work, s, clock)
    assert not r.converged and 0.3 <= r.sampling_s < 0.31


def test_by_default_a_quiet_case_stops_at_min_runs():
    """No minimum time: the CI rule is checked at every sample, so a case whose median is
    already within +-1 % after ``min_runs`` samples takes exactly those."""
    rng = np.random.default_rng(2)
    clock = FakeClock(lambda i: 1e-3 * rng.lognormal(0, 0.002))
    r = time_callable(clock.work, TimingSettings(min_sample_s=0.0), clock)
    assert r.converged and r.attempts == 1
    assert len(r.samples_ms) == TimingSettings().min_runs
    assert r.stats["rel_ci"] <= 0.01


def test_a_converged_case_is_not_timed_again_however_wide_its_outliers():
    rng = np.random.default_rng(1)
    clock = FakeClock(lambda i: 1e-3 * (5.0 if rng.random() < 0.2 else 1.0))  # 20 % outliers
    s = TimingSettings(min_s=0.02, max_s=0.05, min_sample_s=0.0, max_cv=0.1, retries=2)
    r = time_callable(clock.work, s, clock)
    assert r.stats["cv"] > 0.1 and r.converged
    assert r.attempts == 1                         # the median is as precise as asked


def test_a_case_that_misses_its_ci_target_is_timed_again_and_all_attempts_count():
    rng = np.random.default_rng(1)
    clock = FakeClock(lambda i: 1e-3 * rng.lognormal(0, 0.5))   # far too wide for 50 ms
    s = TimingSettings(min_s=0.02, max_s=0.05, min_sample_s=0.0, retries=2)
    r = time_callable(clock.work, s, clock)
    assert not r.converged and r.attempts == 3     # both retries used
    assert r.sampling_s > 3 * 0.05


def test_in_fixed_time_mode_a_suspicious_spread_is_timed_again():
    rng = np.random.default_rng(1)
    clock = FakeClock(lambda i: 1e-3 * (5.0 if rng.random() < 0.2 else 1.0))
    s = TimingSettings(min_s=0.02, max_s=0.02, target_rel_ci=0.0, min_sample_s=0.0, retries=2)
    r = time_callable(clock.work, s, clock)
    assert r.attempts == 3 and r.sampling_s > 3 * 0.02


def test_interleaved_timing_gives_every_model_the_same_moments_of_a_wandering_machine():
    """The machine runs at full speed, then at half speed: timed one after the other, two
    models' ratio is off by 2x; timed sample by sample in turn, it holds."""
    from lutfarm_agent.timing import time_interleaved
    now = [0.0]
    slow = lambda: 2.0 if now[0] > 0.05 else 1.0       # noqa: E731

    def model(ms):
        def run():
            now[0] += ms * 1e-3 * slow()
        return run

    def clock():
        return now[0]

    s = TimingSettings(warmup_runs=1, warmup_s=0.0, min_runs=20, min_s=0.05, max_s=1.0,
                       min_sample_s=0.0)
    a, b = time_once(model(1.0), s, clock), time_once(model(0.5), s, clock)
    assert a.stats["median"] / b.stats["median"] == pytest.approx(1.0)   # 2 / 1: the drift
    now[0] = 0.0
    ra, rb = time_interleaved([model(1.0), model(0.5)], s, [clock, clock])
    assert ra.stats["median"] / rb.stats["median"] == pytest.approx(2.0)
    assert ra.stats["count"] == rb.stats["count"] >= 20 and ra.converged and rb.converged
