"""The timeline's arithmetic: shares of wall time per phase and board, idle time as what no
span covers, scheduling efficiency as busy (job) time over boards x wall."""

from __future__ import annotations

import time

import pytest

from lutfarm.profiler.devices.timeline import CONTROLLER, Timeline, summarise
from lutfarm.profiler.store import Span, Store


def spans() -> list[Span]:
    # board a: connect 0-1, job 1-9, prefetch 2-3 (beside the job), teardown 9-10
    # board b: connect 0-2, job 4-8 of which the agent worked 3 s (the controller read its
    # last event a second late), idle 2-4 and 8-10; the controller exported before
    return [Span(CONTROLLER, "export", -5, 0), Span("a", "connect", 0, 1), Span("a", "job", 1, 9),
            Span("a", "prefetch", 2, 3), Span("a", "teardown", 9, 10), Span("b", "connect", 0, 2),
            Span("b", "job", 4, 8, {"board_s": 3.0})]


def test_shares_idle_and_efficiency():
    s = summarise(spans())
    assert s.wall_s == 10 and s.boards == ["a", "b"] and s.jobs == 2
    assert s.efficiency == pytest.approx((8 + 3) / (2 * 10))
    assert s.share["job"] == pytest.approx((0.8 + 0.4) / 2)     # the spans, as the controller saw
    assert s.per_board["a"] == pytest.approx({"connect": 0.1, "job": 0.8, "prefetch": 0.1,
                                              "teardown": 0.1})
    assert s.idle("a") == pytest.approx(0.0)          # the prefetch is inside the job
    assert s.idle("b") == pytest.approx(0.4)
    assert s.idle() == pytest.approx(0.2)
    assert s.share["connect"] == pytest.approx((0.1 + 0.2) / 2)
    assert "export" not in s.share                    # the controller's, not a board's
    assert s.startup_s == {"a": 1, "b": 4}
    assert s.steady == pytest.approx((8 + 3) / ((10 - 1) + (10 - 4)))
    text = "\n".join(s.lines())
    assert "scheduling efficiency (busy board time / boards x wall) 0.550" in text
    assert "  b: connect 20%, job 40%, idle 40%" in text


def test_a_window_clips_the_spans():
    s = summarise(spans(), began=2, ended=6)
    assert s.per_board["a"]["job"] == pytest.approx(1.0)
    assert s.per_board["b"]["job"] == pytest.approx(0.5)
    assert s.per_board["b"].get("connect", 0) == 0 and s.idle("b") == pytest.approx(0.5)


def test_a_failed_block_leaves_its_span_and_a_silent_timeline_keeps_nothing():
    t = Timeline()
    with pytest.raises(ValueError):
        with t.span("a", "upload", models=3) as detail:
            detail["sent"] = 1
            raise ValueError("disk full")
    (sp,) = t.spans()
    assert sp.phase == "upload" and sp.detail == {"models": 3, "sent": 1, "failed": "ValueError"}
    off = Timeline(record=False)
    with off.span("a", "job"):
        pass
    assert off.spans() == []


def test_spans_round_trip_through_the_store(tmp_path):
    with Store(tmp_path / "s.db") as store:
        cid = store.start_campaign("k", "rt")
        now = time.time()
        store.add_spans(cid, [Span("a", "job", now, now + 1, {"cases": 2}),
                              Span("a", "connect", now - 1, now)])
        assert store.last_timeline_campaign() == cid
        got = store.timeline(cid)
    assert [(s.phase, s.detail) for s in got] == [("connect", None), ("job", {"cases": 2})]
    assert got[1].seconds == pytest.approx(1.0)
