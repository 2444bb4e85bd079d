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


def test_profile_and_build_lut_from_a_notebook_equal_the_cli(tmp_path, cache_dir):
    """A notebook profiles (resumably) and builds the LUT through the same settings the CLI
    parses into; the CLI's ``lut export`` of that store writes the same LUT."""
    from conftest import FAST
    from lutfarm.api import LUTSettings, ProfileSettings, build_lut, profile
    from lutfarm.lut import load_lut
    from lutfarm.spaces import get_layout

    db, layout = tmp_path / "nb.db", get_layout("nb201")
    first = profile(ProfileSettings(layout, db=db, timing=FAST, cache=cache_dir))
    (summary,) = first.summaries
    assert summary.measured == len(layout.unique_cases()) + 1 and not first.failed
    assert first.to_frame()["measured"][0] == summary.measured
    again = profile(ProfileSettings(layout, db=db, timing=FAST, cache=cache_dir))
    assert again.summaries[0].measured == 0 and again.to_dict()["skipped"] == summary.measured
    with pytest.raises(SettingsError, match="--widths is for fbnet"):
        profile(ProfileSettings(layout, db=db, widths=(0.5, 1.0)))
    built = build_lut(LUTSettings(db=db, output=tmp_path / "api.csv"))
    assert built.path.exists() and len(built.to_frame()) == len(built.lut)
    cli = subprocess.run([sys.executable, "-m", "lutfarm", "lut", "export", "--db", str(db),
                          "-o", str(tmp_path / "cli.csv")], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr[-1500:]
    assert load_lut(tmp_path / "cli.csv").latency_ms == built.lut.latency_ms
    assert load_lut(built.path).latency_ms == built.lut.latency_ms


def test_the_readmes_notebook_run_works_as_written(tmp_path, monkeypatch, cache_dir):
    """README's Python API section shows a notebook run from measuring to a search; it runs
    here verbatim (in a temporary folder), so it cannot drift from the API."""
    import re

    from conftest import REPO
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Python API"):text.index("### How it works")]
    block = next(b for b in re.findall(r"```python\n(.*?)```", section, re.S)
                 if "ProfileSettings" in b)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.print", lambda *a, **k: None)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert (tmp_path / "notebook.db").exists() and (tmp_path / "nb201.csv").exists()
    best, budget, lut = scope["best"], scope["budget"], scope["lut"]
    assert best["latency_ms"] <= budget and best.family == "cell"
    assert best["latency_ms"] == pytest.approx(
        sum(lut.latency_ms[c.key] for c in scope["layout"].arch_cases(tuple(best["arch"]))))
