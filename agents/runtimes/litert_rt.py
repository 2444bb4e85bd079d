"""LiteRT (``ai-edge-litert``, the successor of TensorFlow Lite); XNNPACK on/off by setting."""

from __future__ import annotations

from ai_edge_litert import interpreter

from lutfarm_agent.runtimes import package_version
from lutfarm_agent.runtimes.tflite_common import load_tflite


def info(settings: dict) -> dict:
    return {"name": "litert", "version": package_version("ai-edge-litert"),
            "provider": settings.get("provider") or "xnnpack",
            "threads": int(settings.get("threads") or 1)}


def load(path: str, settings: dict):
    return load_tflite(interpreter, path, settings)
