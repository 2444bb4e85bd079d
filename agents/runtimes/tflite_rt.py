"""``tflite-runtime``: the fallback for old boards that LiteRT has no wheel for.

Its last release (2.14) was built against numpy 1.x and crashes deep inside the interpreter
under numpy 2, so that combination is refused up front with the two ways out.
"""

from __future__ import annotations

import numpy as np

from lutfarm_agent.runtimes import RuntimeUnavailable, package_version
from lutfarm_agent.runtimes.tflite_common import load_tflite


def _check_numpy() -> None:
    if int(np.__version__.split(".")[0]) >= 2:
        raise RuntimeUnavailable(
            f"tflite-runtime {package_version('tflite-runtime')} was built for numpy 1.x but "
            f"this device has numpy {np.__version__}; install 'numpy<2' in the agent's "
            "environment (pip install 'numpy<2') or use the litert runtime "
            "(pip install ai-edge-litert)")


_check_numpy()
from tflite_runtime import interpreter  # noqa: E402 - only after the numpy check


def info(settings: dict) -> dict:
    return {"name": "tflite", "version": package_version("tflite-runtime"), "numpy": np.__version__,
            "provider": settings.get("provider") or "xnnpack",
            "threads": int(settings.get("threads") or 1)}


def load(path: str, settings: dict):
    return load_tflite(interpreter, path, settings)
