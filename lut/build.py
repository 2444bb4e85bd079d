"""Build a LUT from the measurement store (median of the newest good measurement by default)."""

from __future__ import annotations

import time

from lutfarm.lut.table import EXTRA_COLUMNS, LUT, PREDICTIONS_REPORT, LUTError
from lutfarm.lut.validation_report import stored_validation
from lutfarm.profiler.mcu_target import board_target
from lutfarm.profiler.store import Measurement, Store
from lutfarm.spaces import BlockCase, CaseKeyError, get_layout
from lutfarm.spaces.registry import family_of

STATISTICS = ("median", "mean", "min", "p90")


def build_lut(store: Store, device: str, runtime: str, space: str | None = None,
              layout: str | None = None, classes: int | None = None,
              statistic: str = "median") -> LUT:
    """The LUT of one (device, runtime) for a layout; the layout defaults to the one profiled."""
    if statistic not in STATISTICS:
        raise LUTError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    found = store.latest(device, runtime)
    if not found:
        known = ", ".join(f"--device {d} --runtime {r}" for d, r, _ in store.configurations())
        raise LUTError(f"the store {store.location} has no measurements for device {device!r} with "
                       f"runtime {runtime!r}" + (f"; it has: {known}" if known else
                                                 "; run 'lutfarm profile' first"))
    if layout is None:
        last = store.last_campaign_layout(device, runtime)
        space, layout, classes = last if last else ("fbnet", "cifar", classes)
    lay = get_layout(space or "fbnet", layout, classes)
    elastic = family_of(lay.space) == "elastic"
    if elastic:      # a LUT covers the resolutions it has measured
        lay = lay.with_resolutions(measured_resolutions(lay, found) or lay.resolutions)
    keys = [lay.overhead_case().key] + [c.key for c in lay.unique_cases()]
    rows: dict[str, Measurement] = {k: found[k] for k in keys if k in found}
    # other blocks measured on this configuration (e.g. width variants) belong in the LUT too;
    # whole networks and block pairs do not: they are validation data
    rows.update({k: m for k, m in found.items() if k not in rows and _is_block(k)})
    if not rows:
        raise LUTError(f"no measured case of layout {lay.space}/{lay.name} for device {device!r} "
                       f"with {runtime!r}; profile it with --layout {lay.name}")
    contexts = sorted({m.context_id for m in rows.values() if m.context_id is not None})
    context = store.context(contexts[-1]) if contexts else {}
    meta = {"source": f"lutfarm store {store.location}", "created": time.time(),
            **({"resolutions": list(lay.resolutions)} if elastic else {}),
            "overhead_case": lay.overhead_case().key,
            "context": context,
            "missing": [k for k in keys if k not in rows],
            "memory_method": next((m.mem_method for m in rows.values() if m.mem_method), None)}
    delegated = [(m.extra or {}).get("details", {}).get("delegated") for m in rows.values()]
    if any(d is not None for d in delegated):   # did the delegate (XNNPACK) really run them?
        meta["delegated_cases"] = {"yes": delegated.count(True), "no": delegated.count(False)}
    flagged = sorted(k for k, m in rows.items() if (m.extra or {}).get("check"))
    if flagged:   # timed by older versions, though the runtime computes them unlike torch
        meta["check_failed"] = flagged
    target = board_target(context.get("runtime"))
    if target:      # a microcontroller: which board, core, kernels, timer and firmware
        meta["target"] = target
    emulated = [store.context(c).get("emulated") for c in contexts]
    if any(emulated):   # never let emulated timings pass for a board's
        meta["emulated"] = next(e for e in emulated if e)
    report = stored_validation(store, device, runtime)
    if report and report.layout == lay.name:
        # every exported LUT says how accurate its sums are (the per-arch points stay stored)
        meta["validation"] = report.to_dict(points=False)
    latency = {k: getattr(m, f"{statistic}_ms") for k, m in rows.items()}
    # a column the measurement lacks stays out, as a file read back leaves it
    extra = {k: {c: v for c in EXTRA_COLUMNS if (v := getattr(m, c, None)) is not None}
             for k, m in rows.items()}
    predicted = store.latest_report(device, runtime, PREDICTIONS_REPORT)
    if predicted and (predicted["space"], predicted["layout"]) == (lay.space, lay.name):
        filled = {k: v for k, v in predicted["latency_ms"].items()
                  if k in meta["missing"] and k not in latency}
        latency.update(filled)
        mem = predicted.get("peak_mem_bytes") or {}
        sizes = {c: predicted.get(c) or {} for c in ("model_bytes", "persistent_bytes")}
        extra.update({k: {"predicted": 1, **({"peak_mem_bytes": mem[k]} if k in mem else {}),
                          **{c: v[k] for c, v in sizes.items() if k in v}}
                      for k in filled})
        meta["missing"] = [k for k in meta["missing"] if k not in filled]
        meta["predicted"] = {"cases": len(filled), "measured_blocks": predicted["measured"],
                             "held_out": predicted["held_out"],
                             **{k: predicted[k] for k in ("memory_held_out", "flash_held_out")
                                if predicted.get(k)}}
    return LUT(space=lay.space, layout_name=lay.name, classes=lay.classes, device=device,
               runtime=runtime, statistic=statistic, latency_ms=latency, extra=extra, meta=meta)


def stored_runtime(store: Store, device: str, config) -> str:
    """The stored key a runtime configuration means on ``device``: its own, or, when its
    provider is only the runtime's default, the one other provider the device was measured
    with (an MCU's firmware names its kernels: ``tflm-int8-t1-cmsis-nn``)."""
    if not config.provider_defaulted or store.measured_keys(device, config.key):
        return config.key
    base = config.key[:-len(config.provider) - 1]
    variants = [r for d, r, _ in store.configurations()
                if d == device and r.startswith(base + "-")]
    return variants[0] if len(variants) == 1 else config.key


def measured_resolutions(layout, found) -> list[int]:
    """Resolutions of an elastic-resolution layout with at least one measured case of their own
    (one no other resolution has: 112 and 128 px share their 4x4 head, every resolution its
    classifier)."""
    keys = {r: {c.key for c in layout.resolution_cases(r)} | {layout.overhead_case(r).key}
            for r in layout.resolutions}
    own = {r: keys[r] - set().union(*(keys[o] for o in keys if o != r)) for r in keys}
    return [r for r in layout.resolutions if own[r] & set(found)]


def _is_block(key: str) -> bool:
    try:
        BlockCase.from_key(key)
        return True
    except CaseKeyError:
        return False
