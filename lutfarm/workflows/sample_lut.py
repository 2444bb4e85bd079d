"""A LUT measured where it matters and predicted where not (``profile --sample N``).

A space like MCUNet has hundreds of inverted-residual cases per resolution and TFLite export
costs seconds each. The fixed layers (stem, first block, head, overhead) are always measured;
of the inverted residuals, ``n`` are: a random start, then nn-Meter's adaptive loop (fit the
block predictor, find the held-out cases it misses by more than 10 %, measure unmeasured cases
of the space next to them). The predictor, refitted on everything measured, prices the rest;
the predictions and the held-out figures of the last round are stored as a report, and
``build_lut`` fills the LUT's gaps from it, each such entry marked ``predicted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from lutfarm.lut.metrics import latency_metrics
from lutfarm.lut.table import PREDICTIONS_REPORT
from lutfarm.predictors.block_latency import BlockLatencyPredictor
from lutfarm.predictors.persistence import PredictorError


def _distance(a, b) -> float:
    return (abs(np.log(a.cin / b.cin)) + abs(np.log(a.cout / b.cout))
            + abs(a.exp - b.exp) / 3 + abs(a.kernel - b.kernel) / 4)


def near(bad, pool: list, k: int) -> list:
    """The ``k`` unmeasured cases of the space closest to ``bad``: same resolution, stride and
    SE, nearest in channels, expansion and kernel."""
    same = [c for c in pool if (c.h, c.stride, c.se) == (bad.h, bad.stride, bad.se)]
    return sorted(same, key=lambda c: _distance(c, bad))[:k]


def adaptive_choice(blocks: list, fixed: list, measure: Callable[[list], dict[str, float]],
                    n: int, seed: int = 0, rounds: int = 2, device: str = "",
                    runtime: str = "") -> tuple[BlockLatencyPredictor, dict, list[dict]]:
    """Choose and measure ``n`` of ``blocks`` (and all of ``fixed``) the adaptive way; returns
    the predictor refitted on every measured block, what was measured (key -> ms) and the
    held-out figures per round."""
    if n < 20 or n >= len(blocks):
        raise PredictorError(f"--sample {n}: give between 20 and {len(blocks) - 1} of the "
                             f"{len(blocks)} blocks (all of them: leave --sample out)")
    rng = np.random.default_rng(seed)
    order = [blocks[i] for i in rng.permutation(len(blocks))]
    n_val = max(5, n // 5)
    start = max(10, (n - n_val) // (rounds + 1))
    validation, train = order[:n_val], order[n_val:n_val + start]
    pool = order[n_val + start:]
    known = measure(fixed + validation + train)
    history = []
    for round_ in range(rounds + 1):
        train = [c for c in train if c.key in known]
        val = [c for c in validation if c.key in known]
        if len(train) < 10 or len(val) < 3:
            raise PredictorError(f"only {len(train)} training and {len(val)} held-out blocks "
                                 f"could be measured; see the campaign's failures")
        y_val = np.array([known[c.key] for c in val])
        model = BlockLatencyPredictor(device, runtime).fit(train,
                                                           [known[c.key] for c in train])
        pred = model.predict(val)
        history.append({"round": round_, "train": len(train), **latency_metrics(pred, y_val)})
        budget = n - len(train) - len(validation)
        if round_ == rounds or budget <= 0:
            break
        per_round = max(1, budget // (rounds - round_))
        fresh: dict[str, object] = {}
        for i in np.argsort(-np.abs(pred / y_val - 1)):   # the worst first
            for c in near(val[i], pool, 2):
                fresh.setdefault(c.key, c)
            if len(fresh) >= per_round:
                break
        fresh_cases = list(fresh.values())[:per_round]
        pool = [c for c in pool if c.key not in fresh]
        known.update(measure(fresh_cases))
        train += fresh_cases
    measured = [c for c in blocks if c.key in known]
    final = BlockLatencyPredictor(device, runtime).fit(measured,
                                                       [known[c.key] for c in measured])
    return final, known, history


def sample_and_predict(store, layout, devices, runtime, n: int, settings=None, seed: int = 0,
                       rounds: int = 2) -> dict:
    """Measure the fixed cases and ``n`` inverted residuals, predict the others; returns (and
    stores) the report ``build_lut`` reads."""
    from lutfarm.profiler.scheduling.campaign import CampaignSettings, plan_cases, run_farm

    settings = settings or CampaignSettings()
    cases = plan_cases(layout)
    blocks = [c for c in cases if c.kind in ("MBConv", "ConvBlock")]
    fixed = [c for c in cases if c not in blocks]
    target = devices[0].kind
    key = devices[0].resolve(runtime).key      # what the device stores (an MCU's kernels)

    def measure(todo: list) -> dict[str, float]:
        summaries = run_farm(store, layout, devices, runtime, replace(settings, cases=list(todo)))
        errors = [why for s in summaries for why in s.device_errors.values()]
        if errors and all(s.measured == 0 for s in summaries):
            raise PredictorError(f"no device measured anything: {errors[0]}")
        found = store.latest(target, key)
        return {k: m.median_ms for k, m in found.items() if m.median_ms}

    final, known, history = adaptive_choice(blocks, fixed, measure, n, seed, rounds, target,
                                            key)
    unmeasured = [c for c in blocks if c.key not in known]
    predicted = dict(zip([c.key for c in unmeasured], map(float, final.predict(unmeasured))))
    report = {"space": layout.space, "layout": layout.name,
              "resolutions": list(getattr(layout, "resolutions", ())),
              "measured": len(blocks) - len(unmeasured), "predicted": len(predicted),
              "held_out": history[-1], "history": history, "latency_ms": predicted}
    found = store.latest(target, key)
    mem = {c: found[c.key].peak_mem_bytes for c in blocks
           if c.key in found and found[c.key].peak_mem_bytes}
    if mem:    # predicted entries carry a memory figure too, and its held-out error
        from lutfarm.predictors.block_memory import predict_memory
        report["peak_mem_bytes"], report["memory_held_out"] = predict_memory(mem, unmeasured)
        report["memory_method"] = next(found[c.key].mem_method for c in mem)
    size = {c: found[c.key].model_bytes for c in blocks
            if c.key in found and found[c.key].model_bytes}
    if size:   # and a model size (its flash on a microcontroller)
        from lutfarm.predictors.block_memory import predict_memory, weight_features
        report["model_bytes"], report["flash_held_out"] = predict_memory(
            size, unmeasured, features=weight_features)
    kept = {c: found[c.key].persistent_bytes for c in blocks
            if c.key in found and found[c.key].persistent_bytes}
    if kept:   # the arena's persistent part: per-op data grows with the channels, like weights
        from lutfarm.predictors.block_memory import predict_memory, weight_features
        report["persistent_bytes"], report["persistent_held_out"] = predict_memory(
            kept, unmeasured, features=weight_features)
    store.add_report(target, key, PREDICTIONS_REPORT, report)
    return report
