"""Every command, given bad values (wrong types, missing or empty files, files of the wrong
kind, unknown identities): one line on stderr naming the problem, exit status 2, no
traceback, and nothing already stored is touched."""

from __future__ import annotations

import sys

import pytest

from lutfarm.cli import main
from lutfarm.lut import import_hwnasbench, save_lut
from lutfarm.lut.hwnasbench import BUNDLED

ARCH = ",".join(["0"] * 22)
NOT_A_LUT = "key,latency_ms\nConvBlock,abc\n"
BAD_INVENTORY = "[[devices]]\nname = 'pi'\nhost = 3\n"

CASES = [
    # profile
    (["profile", "--layout", "mnist"], "unknown layout 'mnist'"),
    (["profile", "--threads", "two"], "Invalid value for '--threads'"),
    (["profile", "--dtype", "int4"], "Invalid value for '--dtype'"),
    (["profile", "--runtime", "onnxruntime", "--dtype", "int8"], "not supported for onnxruntime"),
    (["profile", "--runtime", "litert", "--provider", "gpu"], "is not a litert provider"),
    (["profile", "--inventory", "{missing}"], "missing.toml does not exist"),
    (["profile", "--inventory", "{bad_inventory}"], "bad.toml has 3 problem(s)"),
    (["profile", "--only", "NoSuchBlock_*", "--db", "{db}"], "matches none of the layout's"),
    (["profile", "--db", "{notdb}"], "is not a lutfarm database"),
    # lut
    (["lut", "list", "--db", "{notdb}"], "is not a lutfarm database"),
    (["lut", "export", "--db", "{db}", "-o", "x.csv", "--runtime", "litert"],
     "no measurements for device 'local'"),
    (["lut", "show", "--lut", "{empty}"], "empty.csv is empty; export one"),
    (["lut", "show", "--lut", "{not_a_lut}"], "not_a_lut.csv is not a lutfarm LUT file"),
    (["lut", "query", "--lut", "{lut}", "--arch", "a,b"], "give 22 comma-separated op indices"),
    (["lut", "query", "--lut", "{lut}", "--archs-file", "{missing}"],
     "missing.toml' does not exist"),
    (["lut", "query", "--lut", "{lut}", "--archs-file", "{empty}"], "give at least one --arch"),
    (["lut", "import-hwnasbench", "--device", "tpu", "-o", "x.csv"], "'tpu' is not one of"),
    (["lut", "import-hwnasbench", "{not_a_lut}", "--device", "raspi4", "-o", "x.csv"],
     "is not HW-NAS-Bench's FBNet LUT (needs columns key and raspi4_latency)"),
    (["lut", "compare", "{lut}", "{missing}"], "missing.toml does not exist"),
    (["lut", "compare", "{lut}", "{imagenet_lut}"],
     "different layouts (fbnet/cifar vs fbnet/imagenet)"),
    (["lut", "validate", "--archs", "3", "--db", "{db}"], "--archs 6 or more"),
    (["lut", "validate", "--db", "{db}", "--device", "pi9"], "unknown device 'pi9'"),
    (["lut", "repeat", "--db", "{db}", "--layout", "mnist"], "unknown layout 'mnist'"),
    # search
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "fast"],
     "'fast' is not a valid float"),
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "0.001"],
     "found only 0 of 100 architectures that meet the constraints"),
    (["search", "evolve", "--lut", "{empty}", "--budget-ms", "20"], "empty.csv is empty"),
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "20", "--max-memory-kb", "100"],
     "the LUT has no peak memory for 202 cases"),
    (["search", "target", "--lut", "{lut}"], "give at least two --lut"),
    (["search", "dnas", "--lut", "{lut}", "--data", "{missing}"],
     "image folder {missing} does not exist"),
    (["search", "dnas", "--lut", "{lut}", "--epochs", "-1"], "-1 is not in the range x>=1"),
    (["search", "bench-nb201", "--device", "raspi4", "--budget-ms", "20", "--nb201",
      "{missing}"], "NB201 table {missing} not found"),
    (["search", "bench-nb201", "--device", "raspi4", "--budget-ms", "20", "--nb201",
      "{not_a_lut}"], "not NAS-Bench-201's table"),
    # predict
    (["predict", "train", "--db", "{db}", "-o", "m.json"], "0 ConvBlock cases (fbnet) measured"),
    (["predict", "query", "--model", "{missing}", "--case", "x"],
     "predictor file {missing} does not exist"),
    (["predict", "query", "--model", "{not_a_lut}", "--case", "x"],
     "not_a_lut.csv is not a lutfarm"),
    (["predict", "eval", "arch", "--db", "{db}"], "has no measurements for device 'local'"),
    (["predict", "eval", "fewshot", "--data", "{tmp}"],
     "device_splits.json, help_fbnet_latency.csv not in"),
    (["predict", "eval", "accuracy", "--data", "{tmp}"], "nb201_master.csv not found"),
    # devices
    (["devices", "list", "--inventory", "{bad_inventory}"], "bad.toml has 3 problem(s)"),
    (["devices", "check", "--inventory", "{missing}"], "missing.toml does not exist"),
    (["devices", "provision"], "needs --inventory"),
    # demo
    (["demo", "--db", "{notdb}"], "is not a lutfarm database"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-input")
    (d / "empty.csv").write_text("")
    (d / "not_a_lut.csv").write_text(NOT_A_LUT)
    (d / "notes.db").write_text("not a database\n" * 50)
    (d / "bad.toml").write_text(BAD_INVENTORY)
    save_lut(import_hwnasbench(BUNDLED, "raspi4"), d / "lut.csv")
    save_lut(import_hwnasbench(BUNDLED, "raspi4", layout="imagenet"), d / "imagenet.csv")
    return {"{empty}": d / "empty.csv", "{not_a_lut}": d / "not_a_lut.csv",
            "{notdb}": d / "notes.db", "{bad_inventory}": d / "bad.toml",
            "{missing}": d / "missing.toml", "{lut}": d / "lut.csv",
            "{imagenet_lut}": d / "imagenet.csv", "{db}": d / "empty.db", "{tmp}": d}


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:3]) + f" #{i}"
                                                      for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_no_traceback(args, message, files, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lutfarm", *[str(files.get(a, a)) for a in args]])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.replace("{missing}", str(files["{missing}"])) in lines[0], err
    assert files["{notdb}"].read_text() == "not a database\n" * 50


SUBPROCESS = [0, 8, 11, 21, 33]      # one per layer the message comes from


@pytest.mark.parametrize("i", SUBPROCESS, ids=[" ".join(CASES[i][0][:3]) for i in SUBPROCESS])
def test_bad_input_as_a_user_runs_it(i, files, tmp_path):
    """The same, through the installed entry point in a fresh process: what reaches a
    terminal (no logging noise, no warnings, one line)."""
    import subprocess
    args, message = CASES[i]
    run = subprocess.run([sys.executable, "-m", "lutfarm", *[str(files.get(a, a)) for a in args]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr[-1500:]
    assert message.replace("{missing}", str(files["{missing}"])) in " ".join(lines[0].split())
