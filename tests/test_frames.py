"""The Python API hands out tables as pandas DataFrames where tables are natural."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lutfarm.lut import LatencyTable, build_lut, import_hwnasbench
from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.profiler.store import Store
from lutfarm.search.methods.evolution import random_search
from lutfarm.search.objectives.space import fbnet_space, lut_latency, macs
from lutfarm.spaces import get_layout


def test_store_measurements_as_a_frame(measured_db):
    with Store(measured_db) as store:
        frame = store.measurements(device="local")
        records = list(store.iter_measurements(device="local"))
        lut = build_lut(store, "local", "onnxruntime-fp32-t1")
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(records)
    assert list(frame["case_key"]) == [m.case_key for m in records]
    ok = frame[frame["status"] == "ok"]
    newest = ok.groupby("case_key")["median_ms"].last()
    assert newest.to_dict() == {k: v for k, v in lut.latency_ms.items() if k in newest}
    assert "samples" not in frame and frame["created"].dtype.kind == "M"


def test_lut_as_a_frame(measured_db):
    with Store(measured_db) as store:
        lut = build_lut(store, "local", "onnxruntime-fp32-t1")
    frame = lut.to_frame()
    assert frame.index.name == "key" and len(frame) == len(lut)
    assert frame["latency_ms"].to_dict() == lut.latency_ms
    key = next(iter(lut.extra))
    assert frame.loc[key, "cv"] == lut.extra[key]["cv"]


def test_search_result_as_a_frame():
    table = LatencyTable(import_hwnasbench(BUNDLED, "raspi4"))
    layout = get_layout("fbnet", "cifar")
    latency = lut_latency(table)
    r = random_search(fbnet_space(layout), macs(layout), 50, lambda a: latency(a) <= 30, seed=1)
    frame = r.to_frame()
    assert len(frame) == r.evaluations
    assert frame["best_so_far"].iloc[-1] == r.objective == frame["objective"].max()
    best = frame.loc[frame["objective"].idxmax(), "arch"]
    assert best == "".join(map(str, r.arch))
    assert np.isclose(macs(layout)(np.array([r.arch]))[0], r.objective)
