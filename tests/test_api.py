"""The library API a notebook uses is what the command line runs: same settings, same answer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lutfarm.api import EvolveSettings, SettingsError, evolve
from lutfarm.lut import import_hwnasbench, save_lut
from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.search.methods.registry import METHODS, method_names


def test_evolve_from_a_notebook_equals_the_cli(tmp_path):
    lut = save_lut(import_hwnasbench(BUNDLED, "raspi4"), tmp_path / "raspi4.csv")
    settings = EvolveSettings(lut=lut, budget_ms=20.0, population=20, generations=10, seed=4)
    r = evolve(settings)
    frame = r.to_frame()
    assert len(frame) == 1 and frame["arch_str"][0] == r["arch_str"]
    assert r["latency_ms"] <= 20.0 and r["evaluations"] == 200
    cli = subprocess.run([sys.executable, "-m", "lutfarm", "search", "evolve", "--lut", str(lut),
                          "--budget-ms", "20", "--population", "20", "--generations", "10",
                          "--seed", "4", "--json"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-1500:]
    got = json.loads(cli.stdout)
    same = {k: v for k, v in r.to_dict().items() if k not in ("wall_s", "evaluations_per_s")}
    assert {k: got[k] for k in same} == same


def test_settings_that_do_not_go_together_are_named(tmp_path):
    lut = save_lut(import_hwnasbench(BUNDLED, "raspi4"), tmp_path / "raspi4.csv")
    with pytest.raises(SettingsError, match="an fbnet search needs --lut and --budget-ms"):
        evolve(EvolveSettings(lut=lut))
    with pytest.raises(SettingsError, match="is for the fbnet space, not mcunet"):
        evolve(EvolveSettings(lut=lut, space="mcunet", budget_ms=20))
    with pytest.raises(SettingsError, match="search method 'bananas' is not for the fbnet "
                                            "space; choose one of constrained, regularized"):
        evolve(EvolveSettings(lut=lut, budget_ms=20, method="bananas"))


def test_one_method_registry_serves_every_search():
    """The CLI's --method choices, MCUNet's search and NB201's benchmark read one registry;
    the query-efficient methods are offered only where the space is small."""
    from lutfarm.cli.search import evolve_cmd
    from lutfarm.search.methods.nb201 import BENCH_METHODS
    choices = next(p for p in evolve_cmd.params if p.name == "method").type.choices
    assert list(choices) == list(METHODS) == method_names(small_space=True)
    assert method_names() == ["constrained", "regularized", "random"]
    assert set(BENCH_METHODS) <= set(METHODS) and "bananas" not in method_names()
