"""``lutfarm bench MODEL`` on files lutfarm did not make: TFLite-Micro's own person_detect.tflite
and a MobileNetV2 built here (random weights) exported to ONNX; on this machine, and on
EMULATED microcontrollers (qemu-system-arm, -icount: their times count instructions) through
lutfarm's firmware. The emulated ARM board's row beside the local one is in test_armboards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from model_files import export_onnx, tflite_with_op

from conftest import FAST, REPO
from lutfarm.profiler.export.model_file import ModelFileError, inspect_model, resolve_shapes
from lutfarm.profiler.store import Store

PERSON = REPO.parent / "shared" / "third_party" / "models" / "person_detect.tflite"
TIMING = ("--min-time", "0.02", "--max-time", "0.1", "--warmup", "0.01")


def lutfarm(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    return export_onnx(tmp_path_factory.mktemp("onnx") / "mobilenet_v2.onnx")


@pytest.fixture(scope="module")
def mobilenet_dynamic(tmp_path_factory):
    return export_onnx(tmp_path_factory.mktemp("onnx") / "mnv2_batch.onnx", dynamic_batch=True)


def _count(db) -> int:
    with Store(db) as store:
        return store.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def test_the_files_are_read_as_what_they_are(mobilenet, mobilenet_dynamic, tmp_path):
    person = inspect_model(PERSON)
    assert person.fmt == "tflite" and person.dtype == "int8"
    assert [(i.name, i.shape, i.dtype) for i in person.inputs] == [("input", (1, 96, 96, 1),
                                                                      "int8")]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"} <= set(person.ops)
    net = inspect_model(mobilenet)
    assert net.fmt == "onnx" and net.dtype == "fp32" and net.ops.count("Conv") == 52
    assert resolve_shapes(net, {}) == {}          # static: nothing to give
    dynamic = inspect_model(mobilenet_dynamic)
    assert dynamic.inputs[0].shape == (None, 3, 96, 96)
    with pytest.raises(ModelFileError, match=r"input 'image' .* dynamic shape \(\?x3x96x96\); "
                                             r"give it with --shape image:1x3x96x96"):
        resolve_shapes(dynamic, {})
    with pytest.raises(ModelFileError, match="does not fit input 'image'.*\\?x3x96x96"):
        resolve_shapes(dynamic, {"image": (1, 3, 64, 64)})
    with pytest.raises(ModelFileError, match="has no input 'x'"):
        resolve_shapes(dynamic, {"x": (1,)})
    assert dynamic.case(resolve_shapes(dynamic, {"image": (4, 3, 96, 96)})).key != \
        dynamic.case({"image": (2, 3, 96, 96)}).key != dynamic.case().key
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match="is not an ONNX or TFLite model"):
        inspect_model(text)


def test_bench_onnx_on_this_machine_with_its_op_profile(mobilenet, tmp_path, cache_dir):
    db = tmp_path / "b.db"
    p = lutfarm("bench", mobilenet, "--db", db, "--ops", "--json", *TIMING)
    assert p.returncode == 0, p.stderr[-1500:]
    result = json.loads(p.stdout)
    assert result["model"]["format"] == "onnx" and result["model"]["ops"] > 100
    (row,) = result["devices"]
    assert row["status"] == "ok" and row["device"] == "local" and not row["stored"]
    assert row["runtime"] == "onnxruntime-fp32-t1" and row["memory_method"] == "rss-growth"
    assert row["min_ms"] <= row["median_ms"] <= row["p99_ms"] and row["count"] >= 8
    assert row["init_ms"] > 0 and row["first_ms"] > 0 and row["ci_half_ms"] > 0
    nodes = row["ops"]["nodes"]
    assert row["ops"]["method"] == "onnxruntime profiler" and len(nodes) >= 50
    conv = sum(n["ms"] for n in nodes if n["op"] == "Conv") / sum(n["ms"] for n in nodes)
    assert conv > 0.5, conv              # a MobileNet's time is in its convolutions
    with Store(db) as store:             # stored as a model measurement, profile included
        (m,) = [m for m in store.iter_measurements("local") if m.case_key == row["case_key"]]
        assert m.median_ms == row["median_ms"] and len(m.ops["nodes"]) == len(nodes)
        assert store.conn.execute("SELECT layout FROM campaigns").fetchone()[0] is None
    # the same file again: the stored answer (nothing timed); --fresh times it again
    again = lutfarm("bench", mobilenet, "--db", db, *TIMING)
    assert again.returncode == 0 and "stored" in again.stdout and _count(db) == 1, again.stdout
    assert "median ms" in again.stdout and "p99" in again.stdout
    fresh = lutfarm("bench", mobilenet, "--db", db, "--fresh", "--json", *TIMING)
    assert fresh.returncode == 0 and _count(db) == 2
    timed = json.loads(fresh.stdout)["devices"][0]
    assert not timed["stored"] and timed["previous_ms"] == row["median_ms"]
    assert timed["drift"] == pytest.approx(timed["median_ms"] / row["median_ms"] - 1)
    # the drift guard: the stored median made twice this machine's (test data), timed again
    with Store(db) as store:
        store.conn.execute("UPDATE measurements SET median_ms = median_ms * 2")
        store.conn.commit()
    warned = lutfarm("bench", mobilenet, "--db", db, "--fresh", *TIMING)
    assert warned.returncode == 0 and "drift guard: local:" in warned.stderr
    assert "when last timed (-" in warned.stderr, warned.stderr


def test_a_dynamic_input_needs_its_shape(mobilenet_dynamic, tmp_path, cache_dir):
    db = tmp_path / "b.db"
    p = lutfarm("bench", mobilenet_dynamic, "--db", db, *TIMING)
    assert p.returncode == 2 and not db.exists() or _count(db) == 0
    (line,) = p.stderr.strip().splitlines()
    assert "dynamic shape" in line and "--shape image:1x3x96x96" in line
    p = lutfarm("bench", mobilenet_dynamic, "--db", db, "--shape", "image:2x3x96x96", "--json",
                *TIMING)
    assert p.returncode == 0, p.stderr[-800:]
    row = json.loads(p.stdout)["devices"][0]
    assert row["status"] == "ok" and "_S" in row["case_key"]
    with Store(db) as store:
        (m,) = list(store.iter_measurements("local"))
        assert m.extra["inputs"] == [{"name": "image", "shape": [2, 3, 96, 96],
                                      "dtype": "float32"}]
    bad = lutfarm("bench", mobilenet_dynamic, "--db", db, "--shape", "image:2x3")
    assert bad.returncode == 2 and "does not fit input 'image'" in bad.stderr


def test_a_file_that_is_not_a_model_is_one_line_and_the_store_keeps_what_it_had(
        mobilenet, tmp_path, cache_dir):
    db = tmp_path / "b.db"
    assert lutfarm("bench", mobilenet, "--db", db, *TIMING).returncode == 0
    junk = tmp_path / "weights.tflite"
    junk.write_bytes(b"\x00" * 64)
    for path in (junk, tmp_path / "missing.onnx"):
        p = lutfarm("bench", path, "--db", db)
        assert p.returncode == 2, p.stderr
        (line,) = p.stderr.strip().splitlines()
        assert line.startswith("error: ") and str(path) in line
    assert _count(db) == 1


@pytest.mark.needs("tflite-toolchain")
def test_litert_refuses_person_detect_in_one_line_and_the_host_tflm_runs_it(tmp_path, cache_dir):
    """TFLM's example model is older than LiteRT's quantization checks: LiteRT's refusal is
    one line that says so; TFLite-Micro's host interpreter times it, with its arena."""
    db = tmp_path / "b.db"
    p = lutfarm("bench", PERSON, "--db", db, *TIMING)
    assert p.returncode == 1
    assert "invalid quantization parameters" in p.stderr and "--runtime tflm" in p.stderr
    p = lutfarm("bench", PERSON, "--db", db, "--runtime", "tflm", "--json", *TIMING)
    assert p.returncode == 0, p.stderr[-800:]
    row = json.loads(p.stdout)["devices"][0]
    assert row["runtime"] == "tflm-int8-t1-reference" and row["memory_method"] == "tflm-arena"
    assert 40_000 < row["memory_bytes"] < 200_000     # person_detect's arena: tens of KB


def test_the_library_call_returns_a_frame_per_device(mobilenet, tmp_path, cache_dir):
    from lutfarm.api import BenchSettings, bench
    result = bench(BenchSettings(mobilenet, db=tmp_path / "b.db", timing=FAST))
    frame = result.to_frame()
    assert list(frame["device"]) == ["local"] and frame.loc[0, "status"] == "ok"
    for column in ("count", "min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "init_ms",
                   "first_ms", "ci_half_ms", "memory_bytes"):
        assert frame.loc[0, column] > 0, column


@pytest.mark.needs("mcu-emulator", "tflite-toolchain")
def test_person_detect_on_emulated_microcontrollers_with_the_firmware_op_timer(tmp_path,
                                                                               cache_dir):
    """One call, four EMULATED boards: the M4 and the M55 time person_detect through the firmware
    (per-op profile from its op timer, summing to the invoke's time: -icount is
    deterministic); a board built with a 128 KiB model buffer names both sizes; the others'
    results stand. An op the firmware lacks is named."""
    from lutfarm.api import BenchSettings, bench
    from mcu import emulated_device, firmware
    m4, m55 = firmware("mps2-an386"), firmware("mps3-an547")
    small = firmware("mps2-an386", LUTFARM_MAX_MODEL=131072)
    devices = [emulated_device("m4", "mps2-an386", fw=m4),
               emulated_device("m55", "mps3-an547", fw=m55),
               emulated_device("small", "mps2-an386", fw=small)]
    result = bench(BenchSettings(PERSON, devices, db=tmp_path / "b.db", ops=True, timing=FAST))
    rows = {r.device: r for r in result.rows}
    for name in ("m4", "m55"):
        r = rows[name]
        assert r.status == "ok" and r.runtime == "tflm-int8-t1-cmsis-nn", r
        assert "icount" in r.emulated and r.memory_method == "mcu-arena"
        assert 40_000 < r.memory_bytes < 200_000
        nodes = r.ops["nodes"]
        assert len(nodes) == 31 and {n["op"] for n in nodes} >= {"CONV_2D", "DEPTHWISE_CONV_2D"}
        assert sum(n["ms"] for n in nodes) == pytest.approx(r.median_ms, rel=0.01)
    assert rows["m55"].median_ms < rows["m4"].median_ms     # Helium against the M4's DSP ops
    assert rows["small"].status == "failed"
    assert "300568 bytes" in rows["small"].error and "131072" in rows["small"].error
    exp = tmp_path / "exp.tflite"
    exp.write_bytes(tflite_with_op("EXP"))
    (row,) = bench(BenchSettings(exp, devices[:1], db=tmp_path / "b.db", timing=FAST)).rows
    assert row.status == "failed" and "unsupported op" in row.error and "EXP" in row.error


def test_ctrl_c_stops_a_bench_on_several_devices_and_lets_go_of_them(mobilenet, tmp_path,
                                                                     cache_dir):
    """Two devices timed at once (each its own campaign, in its own thread): Ctrl-C, which only
    the main thread sees, stops both; the process ends, and both boards' locks are released."""
    import os
    import signal
    import time
    inventory = tmp_path / "farm.toml"
    inventory.write_text('[[devices]]\nname = "here-1"\ntransport = "local"\nkind = "here"\n\n'
                         '[[devices]]\nname = "here-2"\ntransport = "local"\nkind = "here"\n')
    proc = subprocess.Popen([sys.executable, "-m", "lutfarm", "bench", str(mobilenet),
                             "--inventory", str(inventory), "--devices", "kind:here", "--db",
                             str(tmp_path / "b.db"), "--min-time", "30", "--max-time", "60",
                             "--target-ci", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    locks = [cache_dir / "devices" / name / "lutfarm.lock" for name in ("here-1", "here-2")]
    deadline = time.time() + 120
    while not all(lock.exists() for lock in locks) and time.time() < deadline:
        time.sleep(0.1)
    assert all(lock.exists() for lock in locks), "both devices were not taken"
    time.sleep(1.0)                                 # both agents are timing now
    started = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-800:]
    assert "interrupted: every measurement taken so far is stored" in err
    assert time.time() - started < 30               # not after the 30 s of sampling
    assert not any(lock.exists() for lock in locks), os.listdir(cache_dir / "devices")
