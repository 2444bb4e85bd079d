"""Shared fixtures: one model cache and one measured store per test session (real exports,
real onnxruntime, real SQLite), with short timing settings so the suite stays quick."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pytest

from lutfarm.profiler.devices.record import LOCAL
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm_agent.timing import TimingSettings

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


def agent_root() -> Path:
    """The agent bundle as a device gets it (``lutfarm_agent/`` inside): the directory to run
    ``python -m lutfarm_agent`` from with an interpreter that has no lutfarm installed."""
    from lutfarm.profiler.devices.deploy import local_agent_dir
    return local_agent_dir()

IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_DATA = REPO.parent / "shared" / "data"
NP1_PYTHON = REPO / ".venv" / "agent-np1" / "bin" / "python"


def _python38() -> str | None:
    """A working Python 3.8 interpreter, if this machine has one (pyenv keeps one here)."""
    candidates = [shutil.which("python3.8"),
                  *map(str, Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))]
    for exe in filter(None, candidates):
        if subprocess.run([exe, "--version"], capture_output=True, timeout=600).returncode == 0:
            return exe
    return None


def _sshd() -> str | None:
    from sshd import sshd_available
    return sshd_available()


def _netns() -> str | None:
    from sshd import netns_available
    return netns_available()


def _postgres() -> str | None:
    from postgres import postgres_available
    return postgres_available()


def _arm_boards() -> str | None:
    from armboards import unavailable
    return unavailable()


def _mcu() -> str | None:
    from mcu import unavailable
    return unavailable()


def _files(*names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        absent = [n for n in names if not (SHARED_DATA / n).is_file()]
        return f"shared data {', '.join(absent)} not in {SHARED_DATA}" if absent else None
    return check


# Components the suite needs; a test asks for one with @pytest.mark.needs("name"). Missing
# here: the test is skipped with the reason. Missing in CI (CI=true): the test fails, and the
# session ends with the list of what was missing.
COMPONENTS: dict[str, Callable[[], str | None]] = {
    "sshd": _sshd,
    "postgres": _postgres,
    "netns": _netns,
    "arm-boards": _arm_boards,
    "mcu-emulator": _mcu,
    "tflite-toolchain": lambda: None if find_spec("litert_torch") and find_spec("tflite_micro")
    else "the controller's tflite extra is not installed (pip install -e '.[tflite]')",
    "tflite-runtime": lambda: None if find_spec("tflite_runtime")
    else "tflite-runtime is not installed (the dev extra)",
    "agent-np1": lambda: None if NP1_PYTHON.exists()
    else "no numpy<2 agent environment (scripts/install.sh makes .venv/agent-np1)",
    "python3.8": lambda: None if _python38() else "no Python 3.8 interpreter on this machine",
    "system-python": lambda: None if os.path.exists("/usr/bin/python3")
    else "no system Python (/usr/bin/python3) to provision",
    "fashion-mnist": lambda: None if Path("/usr/share/datasets/fashion-mnist").is_dir()
    else "Debian's Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
    "nb201-data": _files("nb201_master.csv"),
    "shared-data": _files("nb201_master.csv", "help_fbnet_latency.csv", "device_splits.json"),
    "root": lambda: None if os.geteuid() == 0 else "needs root (tmpfs mounts)",
    "chromium": lambda: None if shutil.which("chromium") and shutil.which("chromedriver")
    and find_spec("selenium") else "headless Chromium (apt-get install chromium chromium-driver) "
    "or selenium (the dev extra) is missing",
    "sudo": lambda: None if shutil.which("sudo") and shutil.which("unshare")
    and shutil.which("setpriv") else "sudo, unshare or setpriv is not installed",
}
MISSING: dict[str, str] = {}


@cache
def missing(component: str) -> str | None:
    return COMPONENTS[component]()


def need(component: str, why: str | None = None) -> None:
    """Skip (or, in CI, fail) the running test when ``component`` is missing."""
    why = why or missing(component)
    if why is None:
        return
    if IN_CI:
        MISSING[component] = why
        pytest.fail(f"required component missing in CI: {component}: {why}", pytrace=False)
    pytest.skip(f"{component}: {why}")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*components): components from conftest.COMPONENTS")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        for component in mark.args:
            need(component)


def pytest_terminal_summary(terminalreporter):
    if MISSING:
        terminalreporter.section("required components missing in CI")
        for component, why in sorted(MISSING.items()):
            terminalreporter.write_line(f"{component}: {why}")


# Short but real timing: enough for correct statistics, not for precise figures.
FAST = TimingSettings(warmup_runs=2, warmup_s=0.0, min_runs=8, min_s=0.004, max_s=0.03,
                      target_rel_ci=0.05, min_sample_s=0.0002, retries=0)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    # firmware builds take minutes: they stay in the user's cache (named by content hash)
    from lutfarm import environment
    os.environ.setdefault("LUTFARM_FIRMWARE_CACHE", str(environment.firmware_cache_dir()))
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
        summary = run_campaign(store, cifar, LOCAL, RuntimeConfig(), CampaignSettings(timing=FAST, cache=cache))
    assert summary.failed == [] and summary.measured == len(cifar.unique_cases()) + 1
    return path


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session (a test that kills it restarts it)."""
    need("postgres")
    from postgres import remove, start_postgres
    server = start_postgres()
    yield server
    remove(server)


@pytest.fixture
def pg_url(postgres_server, request) -> str:
    """A fresh, empty database on the session's server: its URL."""
    import re
    if postgres_server.proc.poll() is not None:
        postgres_server.start()
    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:50] + f"_{os.getpid()}"
    return postgres_server.create_database(name)
