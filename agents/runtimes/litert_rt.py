"""LiteRT (``ai-edge-litert``, the successor of TensorFlow Lite); XNNPACK on/off by setting."""

from __future__ import annotations

from ai_edge_litert import interpreter

from agents.runtimes.tflite_common import load_tflite


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:
        return "unknown"


def info(settings: dict) -> dict:
    return {"name": "litert", "version": _version(),
            "provider": settings.get("provider") or "xnnpack",
            "threads": int(settings.get("threads") or 1)}


def load(path: str, settings: dict):
    return load_tflite(interpreter, path, settings)
