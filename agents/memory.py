"""Peak memory of loading and running one model: RSS growth, read from /proc on Linux.

The kernel's high-water mark (VmHWM) is reset before each model (``clear_refs`` 5), so the
peak of one model is not hidden behind an earlier, larger one in the same agent process, and
freed heap is returned to the OS first (else a model reusing the last one's pages shows no
growth at all). The first model an agent loads also pays the runtime's one-time set-up.
"""

from __future__ import annotations

import re


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            found = re.search(field + r":\s+(\d+) kB", f.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _release_free_memory() -> None:
    """Drop the previous model and hand freed heap pages back to the OS (glibc's
    malloc_trim), so this model's growth is not hidden in pages the last one left behind."""
    import gc

    gc.collect()
    # What survives is the runtime and the agent itself: set it aside, so the next case's
    # collection scans only what that case made (a full scan of onnxruntime + numpy is ~6 ms).
    if hasattr(gc, "freeze"):
        gc.freeze()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class RSSPeak:
    """``start()`` before loading a model, ``peak_growth()`` after running it (bytes)."""

    method = "rss-growth"

    def __init__(self) -> None:
        self.base_kb: int | None = None

    def start(self) -> None:
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base_kb = _status_kb("VmRSS")
        except OSError:          # not Linux, or a kernel without peak reset: no figure
            self.base_kb = None

    def peak_growth(self) -> int | None:
        hwm = _status_kb("VmHWM")
        if self.base_kb is None or hwm is None:
            return None
        return max(hwm - self.base_kb, 0) * 1024
