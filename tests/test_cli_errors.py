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
    (["profile", "--inventory", "{missing}"], "missing.toml"),
    (["profile", "--inventory", "{bad_inventory}"], "bad.toml has 3 problem(s)"),
    (["profile", "--only", "NoSuchBlock_*", "--db", "{db}"], "NoSuchBlock_*"),
    (["profile", "--db", "{notdb}"], "is not a lutfarm database"),
    # lut
    (["lut", "list", "--db", "{notdb}"], "is not a lutfarm database"),
    (["lut", "export", "--db", "{db}", "-o", "x.csv", "--runtime", "litert"],
     "no measurements for device 'local'"),
    (["lut", "show", "--lut", "{empty}"], "empty"),
    (["lut", "show", "--lut", "{not_a_lut}"], "not_a_lut.csv"),
    (["lut", "query", "--lut", "{lut}", "--arch", "a,b"], "arch"),
    (["lut", "query", "--lut", "{lut}", "--archs-file", "{missing}"], "missing.toml"),
    (["lut", "query", "--lut", "{lut}", "--archs-file", "{empty}"], "give at least one --arch"),
    (["lut", "import-hwnasbench", "--device", "tpu", "-o", "x.csv"], "tpu"),
    (["lut", "import-hwnasbench", "{not_a_lut}", "--device", "raspi4", "-o", "x.csv"],
     "not_a_lut.csv"),
    (["lut", "compare", "{lut}", "{missing}"], "missing.toml"),
    (["lut", "compare", "{lut}", "{imagenet_lut}"], "layout"),
    (["lut", "validate", "--archs", "3", "--db", "{db}"], "--archs 6 or more"),
    (["lut", "validate", "--db", "{db}", "--device", "pi9"], "pi9"),
    (["lut", "repeat", "--db", "{db}", "--layout", "mnist"], "unknown layout 'mnist'"),
    # search
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "fast"], "Invalid value"),
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "0.001"], "budget"),
    (["search", "evolve", "--lut", "{empty}", "--budget-ms", "20"], "empty"),
    (["search", "evolve", "--lut", "{lut}", "--budget-ms", "20", "--max-memory-kb", "100"],
     "peak memory"),
    (["search", "target", "--lut", "{lut}"], "give at least two --lut"),
    (["search", "dnas", "--lut", "{lut}", "--data", "{missing}"], "missing.toml"),
    (["search", "dnas", "--lut", "{lut}", "--epochs", "-1"], "epochs"),
    (["search", "bench-nb201", "--device", "raspi4", "--budget-ms", "20", "--nb201",
      "{missing}"], "missing.toml"),
    (["search", "bench-nb201", "--device", "raspi4", "--budget-ms", "20", "--nb201",
      "{not_a_lut}"], "not NAS-Bench-201's table"),
    # predict
    (["predict", "train", "--db", "{db}", "-o", "m.json"], "0 ConvBlock cases (fbnet) measured"),
    (["predict", "query", "--model", "{missing}", "--case", "x"], "missing.toml"),
    (["predict", "query", "--model", "{not_a_lut}", "--case", "x"], "not_a_lut.csv"),
    (["predict", "eval", "arch", "--db", "{db}"], "no measurements"),
    (["predict", "eval", "fewshot", "--data", "{tmp}"], "help_fbnet_latency.csv"),
    (["predict", "eval", "accuracy", "--data", "{tmp}"], "nb201_master.csv"),
    # devices
    (["devices", "list", "--inventory", "{bad_inventory}"], "bad.toml has 3 problem(s)"),
    (["devices", "check", "--inventory", "{missing}"], "missing.toml"),
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
    assert message in lines[0], err
    assert files["{notdb}"].read_text() == "not a database\n" * 50
