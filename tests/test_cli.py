"""The ``lutfarm`` command as a user runs it: real processes, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

from conftest import REPO


def lutfarm(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_profile_export_query_round_trip(tmp_path, cache_dir):
    db = tmp_path / "cli.db"
    p = lutfarm("profile", "--db", db, "--only", "ConvBlock_H4_*", "--min-time", "0.01",
                "--max-time", "0.05", "--json")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["measured"] == summary["planned"] > 0 and summary["failed"] == 0
    assert lutfarm("lut", "list", "--db", db).stdout.split("\t")[:2] == ["local",
                                                                         "onnxruntime-fp32-t1"]
    for suffix in ("csv", "json"):
        out = tmp_path / f"lut.{suffix}"
        e = lutfarm("lut", "export", "--db", db, "-o", out)
        assert e.returncode == 0 and out.exists(), e.stderr
        assert "cases of the layout are not measured yet" in e.stderr
    arch = ",".join(["0"] * 21 + ["3"])
    q = lutfarm("lut", "query", "--lut", tmp_path / "lut.csv", "--arch", arch)
    assert q.returncode == 2
    assert q.stderr.startswith("error: the LUT lacks fixed case ConvNorm_H32_W32_Cin3_Cout16")
    assert "lutfarm profile --only" in q.stderr


def test_import_and_query_hwnasbench_reproduces_the_paper(tmp_path):
    out = tmp_path / "raspi4.csv"
    assert lutfarm("lut", "import-hwnasbench", "--device", "raspi4", "--layout", "cifar",
                   "-o", out).returncode == 0
    archs = tmp_path / "archs.txt"
    archs.write_text("# two archs\n" + "0" * 22 + "\n" + ",".join(["0"] * 21 + ["1"]) + "\n")
    q = lutfarm("lut", "query", "--lut", out, "--archs-file", archs, "--json", "--breakdown")
    res = json.loads(q.stdout)
    assert [round(a["latency_ms"], 4) for a in res["archs"]] == [17.6186, 17.5053]
    assert len(res["archs"][0]["layers"]) == 26
    show = lutfarm("lut", "show", "--lut", out)
    assert "arch fastest" in show.stdout and show.returncode == 0


@pytest.mark.parametrize("args, message", [
    (["profile", "--space", "ofa"], "Invalid value for '--space': 'ofa' is not one of 'fbnet', 'mcunet', 'nb201'"),
    (["profile", "--space", "mcunet", "--resolutions", "16"], "resolutions must be whole numbers of at least 32"),
    (["profile", "--resolutions", "96"], "--resolutions is for mcunet"),
    (["profile", "--layout", "mnist"], "unknown layout 'mnist'"),
    (["profile", "--runtime", "tvm"], "Invalid value for '--runtime': 'tvm' is not one of"),
    (["profile", "--device", "pi4"], "unknown device 'pi4'"),
    (["profile", "--threads", "0"], "--threads must be at least 1"),
    (["profile", "--affinity", "x"], "Invalid value for '--affinity'"),
    (["lut", "query", "--arch", "0"], "Missing option '--lut'"),
    (["lut", "query", "--lut", "{lut}", "--arch", "0,0,0"], "has 22 op indices, got 3"),
    (["lut", "query", "--lut", "{lut}", "--arch", ",".join(["9"] * 22)], "op index 9 at layer 0"),
    (["lut", "query", "--lut", "missing.csv", "--arch", "0"], "does not exist"),
    (["lut", "export", "--db", "{notdb}", "-o", "x.csv"], "is not a lutfarm database"),
    (["lut", "export", "--db", "{empty}", "-o", "x.csv", "--device", "pi4"],
     "no measurements for device 'pi4'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    lut = tmp_path / "lut.csv"
    lutfarm("lut", "import-hwnasbench", "--device", "pixel3", "-o", lut)
    notdb = tmp_path / "notes.db"
    notdb.write_text("not a database\n" * 50)
    fill = {"{lut}": lut, "{notdb}": notdb, "{empty}": tmp_path / "empty.db"}
    p = lutfarm(*[fill.get(a, a) for a in args], cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], p.stderr
    assert notdb.read_text() == "not a database\n" * 50
