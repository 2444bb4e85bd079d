"""``lutfarm serve`` in a real headless Chromium (selenium + Debian's chromium-driver): every page
of a seeded store loads and shows its boards, campaigns and LUTs; a screenshot of each page is
written under test-artifacts/dashboard/ (or $LUTFARM_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import REPO
from lutfarm.profiler.store import Measurement, Store
from sshd import free_port

pytestmark = pytest.mark.needs("chromium")
RT = "onnxruntime-fp32-t1"
ARTIFACTS = Path(os.environ.get("LUTFARM_TEST_ARTIFACTS") or REPO / "test-artifacts") / "dashboard"


def seed(path: Path, measured_db: Path) -> None:
    """The real measured CIFAR campaign of the session, plus (test data, labelled as such) a
    second board of another kind with temperatures and clocks, a running campaign with a
    failure, a leased case, and a validation report with its points."""
    shutil.copy(measured_db, path)
    with Store(path) as store:
        local = store.latest("local", RT)
        ctx = store.add_context("pi-1", {"cpu_model": "Cortex-A72 (test data)", "emulated": None,
                                         "temp_c": {"cpu": 48.5}, "freq_khz": {"cpu0": 1500000}})
        cid = store.start_campaign("rpi4", RT, "fbnet", "cifar", 100,
                                   {"planned": len(local), "to_measure": len(local)},
                                   owner="ada@lab", priority=5)
        for i, (key, m) in enumerate(sorted(local.items())):
            if i == 3:
                store.add(Measurement("pi-1", RT, key, "failed", error="agent died (test data)",
                                      kind="rpi4", campaign_id=cid, created=time.time()))
                continue
            store.add(Measurement("pi-1", RT, key, "ok", kind="rpi4", campaign_id=cid,
                                  context_id=ctx, created=time.time(),
                                  median_ms=3 * m.median_ms))
        store.db.execute("INSERT INTO case_queue (target, runtime, case_key, campaign_id, "
                         "priority, state, holder, lease_until, updated) VALUES (?, ?, ?, ?, ?, "
                         "'leased', ?, ?, ?)", ("rpi4", RT, "some_case", cid, 5,
                                                "ada@lab:123/abcd", time.time() + 600,
                                                time.time()))
        points = [{"arch": str(i), "split": "test", "measured_ms": 10.0 + i,
                   "plain_ms": 9.0 + i, "overhead_ms": 9.5 + i, "corrected_ms": 10.1 + i}
                  for i in range(8)]
        metrics = {"within_5pct": 0.5, "within_10pct": 1.0, "mape": 0.05, "spearman": 1.0,
                   "kendall": 1.0}
        store.add_report("local", RT, "validation", {"n": 8, "n_train": 8, "layout": "cifar",
                                                     "plain": metrics, "overhead": metrics,
                                                     "corrected": metrics, "points": points})


class Server:
    def __init__(self, db, *args, token: str | None = None):
        self.port = free_port()
        env = {**os.environ, **({"LUTFARM_TOKEN": token} if token else {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "lutfarm", "serve", "--db", str(db),
                                      "--port", str(self.port), *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/boards" + (f"?token={token}" if token else ""),
                                       timeout=5)
                return
            except urllib.error.HTTPError:
                return                               # it answers (401 without the token)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self.proc.stderr.read()) from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, measured_db) -> Path:
    path = tmp_path_factory.mktemp("dash") / "seeded.db"
    seed(path, measured_db)
    return path


def visit(browser, url: str, shot: str) -> str:
    from selenium.webdriver.common.by import By
    browser.get(url)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    assert (ARTIFACTS / f"{shot}.png").stat().st_size > 10_000
    return browser.find_element(By.TAG_NAME, "body").text


def test_every_page_shows_the_seeded_store_in_a_real_browser(browser, seeded):
    from selenium.webdriver.common.by import By
    server = Server(seeded)
    try:
        base = server.base
        text = visit(browser, base + "/", "overview")
        assert "pi-1" in text and "local" in text and "ada@lab" in text
        text = visit(browser, base + "/boards", "boards")
        rows = {r.get_attribute("data-name"): r.text
                for r in browser.find_elements(By.CSS_SELECTOR, "tr.board")}
        assert set(rows) == {"local", "pi-1"}
        assert "48.5 °C" in rows["pi-1"] and "1500 MHz" in rows["pi-1"]
        assert "ada@lab:123/abcd (1 cases)" in rows["pi-1"] and "degraded" in rows["pi-1"]
        text = visit(browser, base + "/campaigns", "campaigns")
        running = browser.find_element(By.CSS_SELECTOR, "tr.campaign").text
        assert "running" in running and f"{112} / 113" in running and "ada@lab" in running
        assert browser.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")  # live
        browser.find_element(By.CSS_SELECTOR, "tr.campaign a").click()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "campaign.png"))
        assert "agent died (test data)" in browser.find_element(By.ID, "failures").text
        assert "no timeline recorded yet" in browser.find_element(By.ID, "efficiency").text
        # the session's real campaign recorded where its board's time went: a Gantt chart
        visit(browser, base + "/campaigns", "campaigns")
        real = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tr.campaign")
                    if "ada@lab" not in r.text)
        real.find_element(By.CSS_SELECTOR, "a").click()
        browser.save_screenshot(str(ARTIFACTS / "campaign-timeline.png"))
        gantt = browser.find_element(By.CSS_SELECTOR, "#fig-gantt svg")
        assert gantt.size["width"] > 300 and gantt.size["height"] > 80
        efficiency = browser.find_element(By.ID, "efficiency").text
        assert "1 board(s)" in efficiency and "scheduling efficiency" in efficiency
        phases = {c.text for c in browser.find_elements(By.CSS_SELECTOR, "#phases th")}
        assert {"job", "lock", "agent start", "teardown", "idle"} <= phases, phases
        text = visit(browser, base + "/luts", "luts")
        assert {e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.lut td:first-child a")
                } == {"local", "rpi4"}
        text = visit(browser, f"{base}/lut?target=local&runtime={RT}", "lut")
        for fig in ("heatmap", "distribution", "validation"):
            svg = browser.find_element(By.CSS_SELECTOR, f"#fig-{fig} svg")
            assert svg.size["width"] > 200 and svg.size["height"] > 150, fig
        assert "113 entries" in text and "corrected" in browser.find_element(
            By.ID, "validation").text
        text = visit(browser, f"{base}/compare?a={quote('local|' + RT)}&b={quote('rpi4|' + RT)}",
                     "compare")
        summary = browser.find_element(By.ID, "compare-summary").text
        assert "112 shared cases" in summary
        assert "quartiles 3.000 · 3.000 · 3.000" in summary     # pi-1 was seeded at 3x local
        text = visit(browser, base + "/reports", "reports")
        assert "validation" in text
        # the CSV download is the LUT file lutfarm writes
        csv = urllib.request.urlopen(f"{base}/lut/download?target=local&runtime={RT}&format=csv"
                                     ).read().decode()
        assert csv.startswith("# lutfarm-lut") and csv.count("\n") == 113 + 3
        lut_json = json.loads(urllib.request.urlopen(
            f"{base}/lut/download?target=rpi4&runtime={RT}&format=json").read())
        assert lut_json["device"] == "rpi4" and len(lut_json["latency_ms"]) == 112
        # read-only: nothing but GET
        post = urllib.request.Request(base + "/boards", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(post)
        assert info.value.code == 405
    finally:
        server.stop()


def test_the_dashboard_of_a_postgres_store(browser, seeded, pg_url):
    from lutfarm.profiler.store.copy import copy_store
    with Store(seeded) as src, Store(pg_url) as dst:
        copy_store(src, dst)
    server = Server(pg_url)
    try:
        text = visit(browser, server.base + "/boards", "boards-postgres")
        assert "pi-1" in text and "local@" in text          # global names in a shared store
        from selenium.webdriver.common.by import By
        visit(browser, server.base + "/campaigns", "campaigns-postgres")
        browser.find_element(By.CSS_SELECTOR, "tr.campaign a").click()
        assert "agent died (test data)" in browser.find_element(By.ID, "failures").text
        assert "no timeline recorded yet" in browser.find_element(By.ID, "efficiency").text
        # the real campaign's timeline came with it (db copy): its Gantt chart
        visit(browser, server.base + "/campaigns", "campaigns-postgres")
        real = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tr.campaign")
                    if "ada@lab" not in r.text)
        real.find_element(By.CSS_SELECTOR, "a").click()
        assert browser.find_element(By.CSS_SELECTOR, "#fig-gantt svg").size["width"] > 300
        assert "local@" in browser.find_element(By.ID, "phases").text
        text = visit(browser, f"{server.base}/lut?target=rpi4&runtime={RT}", "lut-postgres")
        assert "112 entries" in text
    finally:
        server.stop()


def test_a_token_guards_the_dashboard_and_other_addresses_need_one(browser, seeded):
    r = subprocess.run([sys.executable, "-m", "lutfarm", "serve", "--db", str(seeded),
                        "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "LUTFARM_TOKEN"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--token" in r.stderr
    server = Server(seeded, token="t0ken")
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.base + "/boards")
        assert info.value.code == 401
        visit(browser, server.base + "/boards?token=t0ken", "token")
        text = visit(browser, server.base + "/luts", "token-cookie")   # the cookie carries it
        assert "rpi4" in text
    finally:
        server.stop()


@pytest.mark.needs("tflite-toolchain")
def test_model_files_and_their_op_profiles(browser, tmp_path, cache_dir):
    """Real ``lutfarm bench`` results (a MobileNetV2 with its ONNX Runtime profile, and
    person_detect.tflite, which LiteRT refuses) on the models page and a model's page."""
    from model_files import export_onnx
    from selenium.webdriver.common.by import By

    from conftest import FAST
    from lutfarm.api import BenchSettings, bench
    db = tmp_path / "models.db"
    net = export_onnx(tmp_path / "mobilenet_v2.onnx")
    (ok,) = bench(BenchSettings(net, db=db, ops=True, timing=FAST)).rows
    person = REPO.parent / "shared" / "third_party" / "models" / "person_detect.tflite"
    (refused,) = bench(BenchSettings(person, db=db, timing=FAST)).rows
    assert ok.status == "ok" and refused.status == "failed"
    server = Server(db)
    try:
        visit(browser, server.base + "/models", "models")
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tr.model")]
        assert len(rows) == 2 and "person_detect.tflite" in rows[0]
        assert "invalid quantization parameters" in rows[0]
        assert "mobilenet_v2.onnx" in rows[1] and "nodes" in rows[1]
        browser.find_elements(By.CSS_SELECTOR, "tr.model a")[-1].click()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "model.png"))
        svg = browser.find_element(By.CSS_SELECTOR, "#fig-ops svg")
        assert svg.size["width"] > 200 and svg.size["height"] > 100
        ops = browser.find_element(By.ID, "ops").text
        assert ops.splitlines()[1].startswith("Conv 52 ")      # the slowest type, 52 nodes
        assert len(browser.find_elements(By.CSS_SELECTOR, "#nodes tr")) == 21
        figures = browser.find_element(By.ID, "model-figures").text
        assert f"{ok.median_ms:.4g}" in figures
    finally:
        server.stop()
