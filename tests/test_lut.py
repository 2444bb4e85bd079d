"""LUTs built from a real measured store: files, vectorised queries, and clear refusals."""

import json

import numpy as np
import pytest

from lutfarm.lut import LatencyTable, LUTError, LUTFileError, build_lut, load_lut, save_lut
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store
from lutfarm.spaces import ArchError
from lutfarm.spaces.fbnet import OPS

RT = RuntimeConfig().key


@pytest.fixture(scope="module")
def lut(measured_db):
    with Store(measured_db) as store:
        return build_lut(store, "local", RT)


def test_lut_covers_the_layout_and_knows_its_identity(lut, cifar):
    assert lut.missing_cases() == []
    assert (lut.space, lut.layout_name, lut.classes, lut.device) == ("fbnet", "cifar", 100, "local")
    assert 0 < lut.overhead_ms < min(v for k, v in lut.latency_ms.items()
                                     if k.startswith("ConvBlock"))
    assert lut.meta["context"]["runtime"]["name"] == "onnxruntime"


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_files_round_trip_exactly(lut, tmp_path, suffix):
    path = save_lut(lut, tmp_path / f"lut{suffix}")
    back = load_lut(path)
    assert back.latency_ms == lut.latency_ms
    assert back.extra == lut.extra
    assert back.header == json.loads(json.dumps(lut.header))


@pytest.mark.parametrize("bad", ["nan", "-0.25", "inf"])
def test_a_lut_with_an_impossible_latency_is_refused_naming_its_row(lut, tmp_path, bad):
    """``lut show`` printed statistics over a NaN or negative latency without a word."""
    import subprocess
    import sys
    path = save_lut(lut, tmp_path / "l.csv")
    lines = path.read_text().splitlines()
    n, row = next((i, ln) for i, ln in enumerate(lines) if ln.startswith("ConvBlock"))
    key, _, rest = row.split(",", 2)
    lines[n] = f"{key},{bad},{rest}"
    path.write_text("\n".join(lines) + "\n")
    show = subprocess.run([sys.executable, "-m", "lutfarm", "lut", "show", "--lut", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode != 0 and "Traceback" not in show.stderr, show.stderr[-1500:]
    line = show.stderr.strip().splitlines()[-1]
    assert f"line {n + 1} gives {key} the latency {float(bad)!r}" in line, line
    as_json = json.loads(save_lut(lut, tmp_path / "l.json").read_text())
    as_json["latency_ms"][key] = float(bad)
    (tmp_path / "bad.json").write_text(json.dumps(as_json))
    with pytest.raises(LUTFileError, match=f"gives {key} the latency"):
        load_lut(tmp_path / "bad.json")


def test_vectorised_query_equals_a_plain_loop(lut, cifar):
    archs = np.random.default_rng(5).integers(0, 9, size=(300, 22))
    fast = LatencyTable(lut).latency(archs)
    slow = [sum(lut.latency_ms[c.key] for c in cifar.arch_cases(a)) for a in archs]
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_extremes_bound_every_arch(lut):
    table = LatencyTable(lut)
    ext = table.extremes()
    lo, hi = table.latency([ext["fastest"], ext["slowest"]])
    sample = table.latency(np.random.default_rng(0).integers(0, 9, size=(1000, 22)))
    assert lo <= sample.min() and sample.max() <= hi


def test_missing_case_is_named(lut, cifar):
    key = cifar.layer_slots()[7].case(6).key
    partial = type(lut)(**{**lut.__dict__, "latency_ms": {k: v for k, v in lut.latency_ms.items()
                                                          if k != key}})
    table = LatencyTable(partial)
    zeros = [[0] * 22]                             # archs that do not need it still work
    assert table.latency(zeros)[0] == pytest.approx(
        sum(partial.latency_ms[c.key] for c in cifar.arch_cases(zeros[0])))
    arch = [0] * 22
    arch[7] = 6
    with pytest.raises(LUTError, match=f"lacks case {key} \\(layer 7, op 6=k5_e3\\)"):
        table.latency([[0] * 22, arch])


def test_bad_archs_are_refused(lut):
    table = LatencyTable(lut)
    with pytest.raises(ArchError, match="got 21"):
        table.latency([[0] * 21])
    with pytest.raises(ArchError, match="op index 9"):
        table.latency([[9] * 22])


def test_truncated_and_foreign_files_are_refused(lut, tmp_path):
    csv_path = save_lut(lut, tmp_path / "l.csv")
    text = csv_path.read_text()
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(LUTFileError, match="truncated"):
        load_lut(cut)
    rows_dropped = tmp_path / "dropped.csv"
    lines = text.splitlines()
    rows_dropped.write_text("\n".join(lines[:5] + lines[-1:]) + "\n")
    with pytest.raises(LUTFileError, match="truncated: 3 rows"):
        load_lut(rows_dropped)
    json_path = save_lut(lut, tmp_path / "l.json")
    cut_json = tmp_path / "cut.json"
    cut_json.write_text(json_path.read_text()[:500])
    with pytest.raises(LUTFileError, match="truncated or not JSON"):
        load_lut(cut_json)
    other = tmp_path / "other.csv"
    other.write_text(text.replace('"space": "fbnet"', '"space": "ofa"'))
    with pytest.raises(LUTFileError, match="unknown space 'ofa'"):
        load_lut(other)
    with pytest.raises(LUTFileError, match="does not exist"):
        load_lut(tmp_path / "nope.csv")


def test_build_names_what_the_store_has(measured_db):
    with Store(measured_db) as store, pytest.raises(LUTError, match="it has: --device local"):
        build_lut(store, "pi4", RT)


def test_compare_two_luts_finds_ratios_and_reranked_layers(lut, tmp_path):
    """Our measured LUT against HW-NAS-Bench's raspi4 table of the same layout (CLI too)."""
    import json

    from click.testing import CliRunner

    from lutfarm.cli import cli
    from lutfarm.lut import import_hwnasbench
    from lutfarm.lut.compare import compare_luts
    from lutfarm.lut.hwnasbench import BUNDLED

    raspi = import_hwnasbench(BUNDLED, "raspi4", "cifar")
    cmp = compare_luts(lut, raspi)
    shared = set(lut.latency_ms) & set(raspi.latency_ms)
    assert set(cmp.ratios) == {k for k in shared if lut.latency_ms[k] > 0 and raspi.latency_ms[k] > 0}
    key = next(iter(cmp.ratios))
    assert cmp.ratios[key] == pytest.approx(raspi.latency_ms[key] / lut.latency_ms[key])
    # the rank agreement, recomputed (Pearson of average ranks); both are CPUs timing the
    # same blocks, so bigger blocks are slower on both
    from scipy.stats import rankdata
    keys = sorted(cmp.ratios)
    ranks = [rankdata([side.latency_ms[k] for k in keys]) for side in (lut, raspi)]
    assert cmp.spearman == pytest.approx(float(np.corrcoef(*ranks)[0, 1]), abs=1e-9)
    assert len(cmp.layers) == 22 and cmp.spearman > 0.5
    for lr in cmp.layers:   # each order is the ops sorted by that side's latency
        for side, order in ((lut, lr.order_a), (raspi, lr.order_b)):
            t = {OPS[j].name: side.latency_ms[c.key]
                 for j, c in enumerate(lut.layout.choice_cases()[lr.layer])}
            assert [t[name] for name in order] == sorted(t.values())
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    save_lut(lut, a)
    save_lut(raspi, b)
    res = CliRunner().invoke(cli, ["lut", "compare", str(a), str(b), "--json",
                                   "--plot", str(tmp_path / "cmp.png")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["spearman"] == pytest.approx(cmp.spearman)
    assert d["layers_fastest_differs"] == [lr.layer for lr in cmp.layers if lr.fastest_differs]
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    res = CliRunner().invoke(cli, ["lut", "compare", str(a), str(b)])
    assert res.exit_code == 0 and "layers whose fastest op differs" in res.output


def test_compare_refuses_luts_of_different_layouts(lut):
    from lutfarm.lut import import_hwnasbench
    from lutfarm.lut.compare import compare_luts
    from lutfarm.lut.hwnasbench import BUNDLED

    with pytest.raises(LUTError, match="different layouts"):
        compare_luts(lut, import_hwnasbench(BUNDLED, "raspi4", "imagenet"))


def test_peak_memory_column_round_trips(lut, tmp_path):
    assert lut.meta["memory_method"] == "rss-growth"
    mem = lut.peak_mem_bytes()
    assert mem and all(v >= 0 for v in mem.values())
    path = save_lut(lut, tmp_path / "m.csv")
    assert "peak_mem_bytes" in path.read_text().splitlines()[1]
    assert load_lut(path).peak_mem_bytes() == mem


def test_emulated_measurements_say_so_in_the_lut_and_in_list_and_show(tmp_path, measured_db):
    """Contexts rewritten as an emulated board's agent writes them (qemu-user: an aarch64
    interpreter on an x86 CPU); the real boards' path is in tests/test_armboards.py."""
    import json
    import subprocess
    import sys

    from conftest import REPO
    from lutfarm.profiler.store import Store
    db = tmp_path / "emu.db"
    db.write_bytes(measured_db.read_bytes())
    why = "aarch64 interpreter on an x86 CPU (qemu-user)"
    with Store(db) as store:
        for cid, text in store.conn.execute("SELECT id, fingerprint FROM contexts").fetchall():
            store.conn.execute("UPDATE contexts SET fingerprint = ? WHERE id = ?",
                               (json.dumps({**json.loads(text), "emulated": why}), cid))
        store.conn.commit()
        assert build_lut(store, "local", RT).meta["emulated"] == why

    def run(*args):
        return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    listed = run("lut", "list", "--db", db)
    assert f"EMULATED, not hardware timings ({why})" in listed.stdout
    assert run("lut", "export", "--db", db, "-o", tmp_path / "emu.csv").returncode == 0
    shown = run("lut", "show", "--lut", tmp_path / "emu.csv")
    assert "EMULATED" in shown.stdout and "not hardware timings" in shown.stdout


def test_a_validation_report_is_a_versioned_record_that_reads_the_old_dicts():
    """Six readers once took an undeclared dict of two shapes; the record names them, reads
    what older lutfarm stored and refuses what a newer one wrote."""
    from lutfarm.lut.validation_report import VALIDATION_VERSION, LUTValidation

    metrics = {"mean_ratio": 0.9}
    chain = LUTValidation.from_dict({"n": 6, "n_train": 6, "layout": "cifar", "plain": metrics,
                                     "overhead": metrics, "corrected": metrics},
                                    device="d", runtime="rt")
    assert (chain.family, chain.device, chain.n_train, chain.safe_margin) == ("chain", "d", 6, 0.9)
    elastic = LUTValidation.from_dict({"device": "m", "runtime": "tflm", "layout": "mcu",
                                       "space": "mcunet", "per_resolution": {"96": {}},
                                       "plain": metrics, "overhead": metrics, "n": 30})
    assert elastic.family == "elastic" and elastic.resolutions == []
    again = LUTValidation.from_dict(elastic.to_dict())
    assert again == elastic and again.to_dict()["version"] == VALIDATION_VERSION
    with pytest.raises(LUTError, match="newer than this lutfarm"):
        LUTValidation.from_dict({**again.to_dict(), "version": VALIDATION_VERSION + 1})
    with pytest.raises(LUTError, match="lacks plain, overhead"):
        LUTValidation.from_dict({"device": "d", "runtime": "r", "layout": "cifar"})
