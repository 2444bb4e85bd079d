"""lutfarm's TFLite-Micro firmware, built with the real arm-none-eabi toolchain and run on
EMULATED Cortex-M boards (qemu-system-arm, -icount: timers count instructions, not cycles):
the protocol and every error code, the op resolver against lutfarm's int8 exports, campaigns
on the emulated M4 and M55, determinism, faults, and the STM32F746 build against its limits."""

from __future__ import annotations

import collections
import zlib

import pytest
from model_files import tflite_with_op

from conftest import FAST
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_campaign
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm.spaces.cases import BlockCase
from mcu import emulated_device, firmware

pytestmark = pytest.mark.needs("mcu-emulator", "tflite-toolchain")

PL = BlockCase.from_key("PointLinear_H12_W12_Cin16_Cout8")
MB = BlockCase.from_key("MBConv_H6_W6_Cin40_Cout40_exp3_kernel3_stride1_se1")
CN = BlockCase.from_key("ConvNormR6_H3_W3_Cin160_Cout384_kernel1_stride1")
INT8 = RuntimeConfig("tflm", 1, "int8")


@pytest.fixture(scope="module")
def m4():
    return firmware("mps2-an386")


@pytest.fixture(scope="module")
def m55():
    return firmware("mps3-an547")


@pytest.fixture(scope="module")
def models(cache):
    return {c.key: cache.get(c, "tflite", "int8") for c in (PL, MB, CN)}


def _board(fw, timeout: float = 30.0):
    from lutfarm_agent.mcu.harness import Board
    b = Board({"emulator": "qemu", "qemu_machine": fw.board.qemu_machine,
               "firmware": str(fw.elf), "serial_timeout": timeout})
    b.hello()
    return b


def test_the_build_is_cached_by_content_and_names_its_sizes(m4):
    again = firmware("mps2-an386")
    assert again.cached and again.sha256 == m4.sha256 and again.elf == m4.elf
    s = m4.sizes
    assert 50_000 < s.text < m4.board.flash_bytes and s.model_buffer > 0 and s.arena > 0
    assert m4.tflm_version != "unknown"     # from the tree's PROVENANCE


def test_stm32f746_build_fits_mcunets_board():
    """Built, never run (no silicon here): code in 1 MB of flash, the firmware's RAM plus its
    model buffer and arena in 320 KB of SRAM."""
    from lutfarm.profiler.devices.firmware import check_fits
    fw = firmware("stm32f746g-disco")
    assert fw.board.core == "cortex-m7" and not fw.board.qemu_machine
    assert check_fits(fw) == []
    assert fw.sizes.flash <= 1 << 20
    assert fw.sizes.ram + fw.sizes.model_buffer + fw.sizes.arena <= 320 << 10


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_protocol_and_error_codes_on_the_emulated_board(board, m4, m55, models):
    fw = {"mps2-an386": m4, "mps3-an547": m55}[board]
    b = _board(fw)
    try:
        info = b.info
        assert info["board"] == board and info["core"] == fw.board.core
        assert info["kernels"] == "cmsis-nn" and info["timer"] == "systick"
        assert info["timer_hz"] == fw.board.clock_hz and info["emulated"] is True
        assert info["fw_text"] == fw.sizes.text            # the firmware reports its own build
        assert "CONV_2D" in b.ops() and "DEPTHWISE_CONV_2D" in b.ops()
        from lutfarm_agent.mcu.harness import BoardError
        with pytest.raises(BoardError, match="CMD"):
            b.command("BOGUS")
        with pytest.raises(BoardError, match="NOMODEL"):
            b.command("RUN 1")
        data = models[MB.key].path.read_bytes()
        with pytest.raises(BoardError, match="CRC"):
            b.command(f"LOAD {len(data)} {(zlib.crc32(data) ^ 1) & 0xFFFFFFFF:08x}", data)
        with pytest.raises(BoardError, match="MODEL"):
            junk = bytes(range(256)) * 4
            b.command(f"LOAD {len(junk)} {zlib.crc32(junk):08x}", junk)
        assert info["hostfs"] == 1                 # emulated: models may come as host files
        crc = f"{zlib.crc32(data):08x}"
        assert b.command(f"LOAD {len(data)} {crc}", data) == [str(len(data))]   # the UART path
        with pytest.raises(BoardError, match="CRC"):
            b.command(f"LOADF {len(data)} {(zlib.crc32(data) ^ 1) & 0xFFFFFFFF:08x} "
                      f"{models[MB.key].path}")
        with pytest.raises(BoardError, match="LOAD the host file /nonexistent/m cannot"):
            b.command(f"LOADF {len(data)} {crc} /nonexistent/m")
        b.load(data)                               # LOADF, as campaigns on emulators load
        with pytest.raises(BoardError, match="ARENA"):
            b.arena(64)
        used = b.arena(200_000)
        assert 0 < used < 200_000
        first = [b.run(1) for _ in range(3)]
        assert min(first) > 0 and max(first) - min(first) <= 2 / fw.board.clock_hz   # ±1 tick
    finally:
        b.close()


def test_the_op_resolver_covers_every_op_of_the_int8_exports(m4, cache):
    """One block per structural variant (kind, stride, SE, residual, groups, expansion 1) of
    every registered space, exported int8: each op it uses is one the firmware says (OPS) it has."""
    from ai_edge_litert import schema_py_generated as schema

    from lutfarm.spaces.registry import list_spaces
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    reps = {}
    for space in list_spaces():
        groups = collections.defaultdict(list)
        for c in get_layout(space).unique_cases():
            groups[(space, c.kind, c.stride, c.se, c.cin == c.cout, (c.group or 1) > 1,
                    c.exp == 1)].append(c)
        for cs in groups.values():
            c = min(cs, key=lambda c: (c.macs, c.key))
            reps[c.key] = c
    got = cache.get_many(reps, "tflite", "int8")
    used = collections.defaultdict(set)
    for key, m in got.items():
        if not hasattr(m, "path"):      # an export lutfarm refuses (its int8 disagrees with torch)
            continue
        model = schema.ModelT.InitFromPackedBuf(m.path.read_bytes(), 0)
        for oc in model.operatorCodes:
            used[names[max(oc.builtinCode, oc.deprecatedBuiltinCode)]].add(key)
    assert len(used) >= 8 and sum(hasattr(m, "path") for m in got.values()) >= len(reps) - 3
    b = _board(m4)
    try:
        have = set(b.ops())
    finally:
        b.close()
    missing = {op: sorted(keys)[:2] for op, keys in used.items() if op not in have}
    assert not missing, f"the firmware lacks ops lutfarm's exports use: {missing}"


def _campaign(tmp_path, device, cases, db="mcu.db", **kw):
    store = Store(tmp_path / db)
    summary = run_campaign(store, get_layout("mcunet"), device, INT8,
                           CampaignSettings(cases=list(cases), timing=FAST, **kw))
    return store, summary


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_a_campaign_on_an_emulated_mcu_stores_labelled_deterministic_results(board, m4, m55,
                                                                            models, tmp_path):
    fw = {"mps2-an386": m4, "mps3-an547": m55}[board]
    device = emulated_device(f"emu-{board}", board, fw=fw)
    store, summary = _campaign(tmp_path, device, [PL, MB])
    assert summary.measured == 2 and not summary.failed, summary
    frame = store.measurements(device=device.name)
    assert set(frame["case_key"]) == {PL.key, MB.key}
    assert (frame["runtime"] == "tflm-int8-t1-cmsis-nn").all()    # the key names the kernels
    assert (frame["mem_method"] == "mcu-arena").all() and (frame["peak_mem_bytes"] > 0).all()
    why = store.emulated(device.name, "tflm-int8-t1-cmsis-nn")     # never passes for hardware
    assert why and board in why and "instructions" in why
    ctx = store.context(int(frame["context_id"].iloc[0]))["runtime"]
    assert ctx["board"] == board and ctx["core"] == fw.board.core and ctx["timer"] == "systick"
    # the same case measured again gives the same number: the emulated timer is deterministic
    _, again = _campaign(tmp_path, device, [MB], fresh=True)
    frame = store.measurements(device=device.name)
    medians = frame[frame["case_key"] == MB.key]["median_ms"].tolist()
    assert len(medians) == 2 and medians[0] == pytest.approx(medians[1], rel=1e-6, abs=1e-4)


def _agent_job(fw, models: list, **settings) -> list[dict]:
    import json
    import os
    import subprocess
    import sys

    from conftest import agent_root
    from lutfarm_agent.protocol import events_in
    runtime = {"name": "tflm", "threads": 1, "dtype": "int8", "provider": fw.kernels,
               "emulator": "qemu", "qemu_machine": fw.board.qemu_machine,
               "firmware": str(fw.elf), **settings}
    job = {"job_id": "t", "runtime": runtime, "timing": FAST.to_dict(),
           "cases": [{"key": m.case_key, "model": str(m.path), "sha256": m.sha256}
                     for m in models]}
    proc = subprocess.run([sys.executable, "-m", "lutfarm_agent"], input=json.dumps(job),
                          capture_output=True, text=True, cwd=agent_root(), timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(agent_root())))
    return events_in(proc.stdout)


def test_a_hung_firmware_fails_its_case_and_the_emulator_is_restarted(models, cache):
    """A firmware built to fault on one model (LUTFARM_HANG_ON_CRC: a bus fault, HardFault,
    silence) and with a 50 kB model buffer: the hang is a timeout that fails that case and
    restarts QEMU, the too-big model is the firmware's ERR SIZE with both sizes, the cases
    after both are measured."""
    extra = cache.get(BlockCase.from_key("PointLinear_H6_W6_Cin16_Cout8"), "tflite", "int8")
    hang = models[MB.key].path.read_bytes()
    fw = firmware("mps2-an386", LUTFARM_HANG_ON_CRC=f"0x{zlib.crc32(hang):08x}u",
                  LUTFARM_MAX_MODEL=50000)
    big = models[CN.key]
    assert big.path.stat().st_size > 50000
    events = _agent_job(fw, [models[PL.key], models[MB.key], big, extra], serial_timeout=5)
    got = {e["key"]: e for e in events if e["event"] == "result"}
    assert got[PL.key]["status"] == "ok" and got[extra.case_key]["status"] == "ok", got
    assert "stopped answering" in got[MB.key]["error"] and "restarted" in got[MB.key]["error"]
    assert f"{big.path.stat().st_size} bytes" in got[CN.key]["error"]
    assert "holds at most 50000" in got[CN.key]["error"]


def test_an_op_the_firmware_lacks_fails_that_case_by_name(m4, models, tmp_path):
    from lutfarm.profiler.export.cache import ExportedModel
    data = tflite_with_op("EXP")
    path = tmp_path / "exp.tflite"
    path.write_bytes(data)
    import hashlib
    exp = ExportedModel("Exp_probe", path, hashlib.sha256(data).hexdigest(), "tflite")
    events = _agent_job(m4, [exp, models[PL.key]])
    got = {e["key"]: e for e in events if e["event"] == "result"}
    assert got["Exp_probe"]["status"] == "failed" and "EXP" in got["Exp_probe"]["error"]
    assert "unsupported op" in got["Exp_probe"]["error"]
    assert got[PL.key]["status"] == "ok"


def test_a_missing_toolchain_or_emulator_is_one_line_naming_what_to_install(monkeypatch, m4):
    from lutfarm.profiler.devices.firmware import FirmwareError, build
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FirmwareError, match="apt-get install .*gcc-arm-none-eabi"):
        build("mps2-an386")
    events = _agent_job(m4, [])
    assert events[-1]["event"] == "fatal" and "apt-get install qemu-system-arm" in events[-1]["error"]


def _emulator_pids(elf) -> list[int]:
    """QEMU processes running this firmware (from /proc: no psutil needed)."""
    import os
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"qemu-system-arm") and str(elf).encode() in cmd:
            pids.append(int(pid))
    return pids


def test_an_emulator_killed_mid_campaign_is_restarted_and_a_rerun_measures_only_the_rest(
        m4, cache, tmp_path):
    """SIGKILL to QEMU while a campaign runs: the case in flight fails naming the board, the
    harness starts a new emulator and the campaign goes on; run again, lutfarm measures only
    what the first run lacks."""
    import os
    import signal
    import threading
    import time
    layout = get_layout("mcunet").with_resolutions([96])
    cases = sorted((c for c in layout.unique_cases() if c.kind == "MBConv"),
                   key=lambda c: (c.macs, c.key))[:10]
    cache.get_many({c.key: c for c in cases}, "tflite", "int8")
    device = emulated_device("emu-kill", "mps2-an386", fw=m4)
    store = Store(tmp_path / "kill.db")
    done = {}
    run = threading.Thread(target=lambda: done.setdefault("summary", run_campaign(
        store, layout, device, INT8, CampaignSettings(cases=cases, timing=FAST))))
    run.start()
    deadline, killed = time.monotonic() + 300, []
    while not killed and run.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        if len(store.measured_keys(device.name, "tflm-int8-t1-cmsis-nn")) >= 2:
            killed = _emulator_pids(m4.elf)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
    run.join(600)
    first = done["summary"]
    assert killed, "the campaign ended before two cases were stored"
    assert first.measured + len(first.failed) == len(cases)
    assert first.failed, "a case was in flight when QEMU died"
    for _key, why in first.failed:
        assert "stopped answering" in why and "restarted" in why, why
    assert first.measured > 2          # cases after the kill ran on a new emulator
    again = run_campaign(store, layout, device, INT8, CampaignSettings(cases=cases, timing=FAST))
    assert again.skipped == first.measured and again.measured == len(first.failed)
    assert not again.failed
    assert len(store.measured_keys(device.name, "tflm-int8-t1-cmsis-nn")) == len(cases)


def _cli(*args, timeout=1200):
    import subprocess
    import sys

    from conftest import REPO
    return subprocess.run([sys.executable, "-m", "lutfarm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_the_seeds_workflow_on_an_emulated_mcu(board, m4, m55, tmp_path, cache_dir):
    """profile --space mcunet --resolutions 96 --runtime tflm --dtype int8 --sample 20 on an
    emulated board from an inventory, lut export, search evolve under MCUNet's 256 KB SRAM and
    1 MB flash, lut validate on subnets the board can load: every step through the CLI, every
    figure the Cortex-M build's, every output labelled emulated."""
    import json

    from lutfarm.lut import load_lut
    from lutfarm.profiler.mcu_target import firmware_flash
    fw = {"mps2-an386": m4, "mps3-an547": m55}[board]
    inventory = tmp_path / "farm.toml"
    inventory.write_text(f'[[devices]]\nname = "emu"\nkind = "emu"\ntransport = "local"\n'
                         f'runtimes = ["tflm"]\nmcu = "{board}"\nemulator = "qemu"\n')
    db, lut_path = tmp_path / "mcu.db", tmp_path / "mcu.csv"
    common = ("--runtime", "tflm", "--dtype", "int8", "--db", db)
    p = _cli("profile", "--space", "mcunet", "--resolutions", 96, "--sample", 20,
             "--inventory", inventory, "--device", "emu", "--min-time", 0.005,
             "--max-time", 0.02, "--json", *common)
    assert p.returncode == 0, p.stderr[-1500:]
    report = json.loads(p.stdout)
    assert report["measured"] == 20 and report["memory_method"] == "mcu-arena"
    assert report["flash_held_out"]["n"] >= 2 and report["memory_held_out"]["n"] >= 2
    e = _cli("lut", "export", "--device", "emu", "-o", lut_path, *common)
    assert e.returncode == 0, e.stderr[-800:]
    lut = load_lut(lut_path)
    assert lut.runtime == "tflm-int8-t1-cmsis-nn" and not lut.missing_cases()
    target = lut.target
    assert target["board"] == board and target["core"] == fw.board.core
    assert target["kernels"] == "cmsis-nn" and target["timer"] == "systick"
    assert target["fw_text"] == fw.sizes.text and target["emulated"] is True
    assert "EMULATED" in _cli("lut", "show", "--lut", lut_path).stdout
    listed = _cli("lut", "list", "--db", db).stdout
    assert f"{board} ({fw.board.core}" in listed and "cmsis-nn kernels" in listed

    s = _cli("search", "evolve", "--lut", lut_path, "--max-memory-kb", 256, "--max-flash-kb",
             1024, "--generations", 60, "--json")
    assert s.returncode == 0, s.stderr[-800:]
    won = json.loads(s.stdout)
    assert won["memory_method"] == "mcu-arena (persistent parts summed)"
    assert "firmware" in won["flash_method"]
    layout = lut.layout
    arch = layout.parse_arch(won["arch_str"])
    blocks = [c.key for c in layout.arch_cases(arch)]
    memory, size, kept = lut.peak_mem_bytes(), lut.model_bytes(), lut.persistent_bytes()
    # the winner's figures, recomputed block by block from the LUT file: per-op data adds up
    # over the blocks (less the empty model's, repeated in each), the activation plans do not
    base = kept[layout.overhead_case(96).key]
    arena = (sum(kept[k] - base for k in blocks) + base
             + max(memory[k] - kept[k] for k in blocks))
    assert won["peak_memory_kb"] == pytest.approx(arena / 1024)
    assert won["peak_memory_kb"] >= max(memory[k] for k in blocks) / 1024 - 1e-6
    assert won["peak_memory_kb"] <= 256 and won["flash_kb"] <= 1024
    empty = size[layout.overhead_case(96).key]
    flash = sum(size[k] - empty for k in blocks) + empty + firmware_flash(target)
    assert won["flash_kb"] == pytest.approx(flash / 1024)
    assert won["emulated"] and won["target"]["board"] == board

    v = _cli("lut", "validate", "--device", "emu", "--inventory", inventory, "--archs", 6,
             "--out", tmp_path, "--json", *common)
    assert v.returncode == 0, v.stderr[-1500:]
    val = json.loads(v.stdout)
    assert val["n"] >= 5 and val["resolutions"] == [96]
    rows = load_csv_rows(next(tmp_path.glob("validate_emu_*.csv")))
    assert all(float(r["arena_kb"]) > 0 for r in rows)     # each subnet's Cortex-M arena
    print(f"\n{board} cmsis-nn, {val['n']} subnets: LUT sum / measured: plain "
          f"{val['plain']['mean_ratio']:.3f} (MAPE {val['plain']['mape']:.3f}), overhead "
          f"{val['overhead']['mean_ratio']:.3f} (MAPE {val['overhead']['mape']:.3f})")


def load_csv_rows(path) -> list[dict]:
    import csv
    with open(path) as f:
        return list(csv.DictReader(f))


def test_repeatability_on_an_emulated_board_agrees_exactly(m4, cache, tmp_path):
    """Two campaigns of the same cases on a deterministic (emulated) clock agree to the timer's
    tick: the repeatability report compares the right measurements of the right cases, with
    none of the noise that makes the same check on a real CPU loose. (It found that ``lut
    repeat`` compared an MCU's runs under the unresolved runtime key and found none.)"""
    from lutfarm.profiler.scheduling.repeatability import run_repeatability
    layout = get_layout("mcunet").with_resolutions([96])
    only = "MBConv_H3_W3_Cin96_Cout96_*"
    device = emulated_device("emu-repeat", "mps2-an386", fw=m4)
    with Store(tmp_path / "r.db") as store:
        settings = CampaignSettings(timing=FAST, cache=cache, only=only)
        first = run_campaign(store, layout, device, INT8, settings)
        assert first.measured >= 3 and not first.failed
        r = run_repeatability(store, layout, [device], INT8, settings)
        assert r.cases == first.measured
        # agree to the timer's tick (SysTick at 25 MHz: ±1 tick of a block's ~10^4 is 10^-4)
        assert r.median_rel_diff < 1e-4 and r.p90_rel_diff < 1e-3, r
        assert r.spearman == pytest.approx(1.0) and not r.flagged and r.remeasured == 0
