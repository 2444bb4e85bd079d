"""Shared fixtures: one model cache and one measured store per test session (real exports,
real onnxruntime, real SQLite), with short timing settings so the suite stays quick."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.timing import TimingSettings
from profiler.campaign import run_campaign
from profiler.devices import LOCAL
from profiler.export import ModelCache
from profiler.runtime_config import RuntimeConfig
from profiler.store import Store
from spaces import get_layout

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent

# Short but real timing: enough for correct statistics, not for precise figures.
FAST = TimingSettings(warmup_runs=2, warmup_s=0.0, min_runs=8, min_s=0.004, max_s=0.03,
                      target_rel_ci=0.05, min_sample_s=0.0002, retries=0)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["LUTFARM_CACHE"] = str(path)  # CLI runs in tests share it too
    return path


@pytest.fixture(scope="session")
def cache(cache_dir) -> ModelCache:
    return ModelCache(cache_dir)


@pytest.fixture(scope="session")
def cifar():
    return get_layout("fbnet", "cifar")


@pytest.fixture(scope="session")
def measured_db(tmp_path_factory, cache, cifar) -> Path:
    """A store holding a complete CIFAR-layout campaign on the local device."""
    path = tmp_path_factory.mktemp("store") / "measured.db"
    with Store(path) as store:
        summary = run_campaign(store, cifar, LOCAL, RuntimeConfig(), FAST, cache)
    assert summary.failed == [] and summary.measured == len(cifar.unique_cases()) + 1
    return path
