"""What a LUT says about the microcontroller it was measured on: the board's HELLO reduced to
its target record (board, core, clock, kernels, timer, firmware sizes, limits), one line that
describes it, and the flash the firmware itself takes. Plain data, so the store, LUTs and the
dashboard read it without the firmware builder."""

from __future__ import annotations

TARGET_FIELDS = ("board", "core", "clock_hz", "kernels", "timer", "timer_hz", "emulated",
                 "emulator", "fw_text", "fw_data", "fw_bss", "fw_stack", "max_model",
                 "max_arena")


def board_target(runtime_info: dict | None) -> dict | None:
    """The MCU a measurement context ran on (its runtime info is the board's HELLO), or None
    for a runtime that is not a microcontroller's firmware."""
    info = runtime_info or {}
    if not info.get("board") or not info.get("core"):
        return None
    return {k: info[k] for k in TARGET_FIELDS if info.get(k) is not None}


def describe_target(target: dict | None) -> str:
    """One line: board, core and clock, kernels, timer, the firmware's own flash."""
    if not target:
        return ""
    parts = [f"{target['board']} ({target['core']}"
             + (f" @ {target['clock_hz'] / 1e6:g} MHz)" if target.get("clock_hz") else ")")]
    if target.get("kernels"):
        parts.append(f"{target['kernels']} kernels")
    if target.get("timer"):
        parts.append(f"{target['timer']} timer")
    if target.get("fw_text") is not None:
        parts.append(f"firmware {firmware_flash(target) / 1024:.0f} KiB flash")
    if target.get("emulated"):
        parts.append(f"EMULATED under {target.get('emulator') or 'an emulator'}")
    return ", ".join(parts)


def firmware_flash(target: dict | None) -> int:
    """Bytes of flash the firmware itself takes (code + initialised data), 0 when unknown."""
    target = target or {}
    return int(target.get("fw_text") or 0) + int(target.get("fw_data") or 0)
