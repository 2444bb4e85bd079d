"""One export process: reads case keys from stdin, exports each into the cache given on the
command line, answers one JSON line per key ({"key", "error", "type"}). Started by
``ModelCache.get_many``; a line per key keeps the parent's progress bar live."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    root, fmt, dtype = argv or sys.argv[1:]
    answers = os.fdopen(os.dup(1), "w")     # exporters that print to stdout cannot garble it
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import torch

    from lutfarm.profiler.export.cache import ExporterMissing, ExportError, ModelCache
    from lutfarm.spaces import parse_case_key

    torch.set_num_threads(1)     # one process per CPU: each keeps to its own
    cache = ModelCache(Path(root))
    for line in sys.stdin:
        key = line.strip()
        if not key:
            continue
        answer = {"key": key, "error": None, "type": None}
        try:
            cache.get(parse_case_key(key), fmt, dtype)
        except (ExportError, ExporterMissing) as exc:
            answer.update(error=str(exc), type=type(exc).__name__)
        except Exception as exc:   # a case that breaks the exporter fails alone, named
            answer.update(error=f"{type(exc).__name__}: {exc}", type="ExportError")
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
