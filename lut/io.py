"""LUT files: CSV (a header line of JSON metadata, rows, an end marker) and JSON.

CSV layout::

    # lutfarm-lut v1 {"space": "fbnet", "layout": "cifar", "classes": 100, "device": …}
    key,latency_ms,std_ms,ci_lo_ms,ci_hi_ms,count,cv
    ConvBlock_H32_W32_Cin16_Cout16_exp1_kernel3_stride1_group1,0.0412,…
    # end rows=113

The end marker makes a truncated copy detectable; pandas reads the rows with ``comment='#'``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from lutfarm.errors import LutfarmError
from lutfarm.lut.table import EXTRA_COLUMNS, LUT
from lutfarm.spaces import UnknownSpaceError

MAGIC = "lutfarm-lut"
FORMAT_VERSION = 1


class LUTFileError(LutfarmError, ValueError):
    """A LUT file that is missing, truncated, malformed or for something else."""


def lut_text(lut: LUT, fmt: str) -> str:
    """The file contents of ``lut`` as ``.csv`` or ``.json`` (what ``save_lut`` writes)."""
    if fmt == ".csv":
        return _to_csv(lut)
    if fmt == ".json":
        return json.dumps({"format": MAGIC, "version": FORMAT_VERSION, **lut.header,
                           "latency_ms": lut.latency_ms, "extra": lut.extra}, indent=1)
    raise LUTFileError(f"a LUT file is .csv or .json, not {fmt!r}")


def save_lut(lut: LUT, path: str | os.PathLike) -> Path:
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".csv", ".json"):
        raise LUTFileError(f"cannot write {path}: a LUT file ends in .csv or .json")
    text = lut_text(lut, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _to_csv(lut: LUT) -> str:
    buf = io.StringIO()
    buf.write(f"# {MAGIC} v{FORMAT_VERSION} {json.dumps(lut.header, sort_keys=True)}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "latency_ms", *EXTRA_COLUMNS])
    for key, value in lut.latency_ms.items():
        extra = lut.extra.get(key, {})
        w.writerow([key, repr(float(value)), *(_cell(extra.get(c)) for c in EXTRA_COLUMNS)])
    buf.write(f"# end rows={len(lut.latency_ms)}\n")
    return buf.getvalue()


def _cell(v) -> str:
    return "" if v is None else repr(v)


def load_lut(path: str | os.PathLike) -> LUT:
    path = Path(path)
    if not path.exists():
        raise LUTFileError(f"LUT file {path} does not exist; export one with "
                           f"'lutfarm lut export -o {path}'")
    text = path.read_text()
    if not text.strip():
        raise LUTFileError(f"LUT file {path} is empty; export one with "
                           f"'lutfarm lut export -o {path}'")
    if path.suffix.lower() == ".json":
        lut = _from_json(path, text)
    else:
        lut = _from_csv(path, text)
    try:
        lut.layout  # noqa: B018 - validates space/layout names
    except UnknownSpaceError as exc:
        raise LUTFileError(f"{path}: {exc}") from None
    return lut


def _header_lut(path: Path, header: dict, latency: dict, extra: dict) -> LUT:
    try:
        meta = {k: v for k, v in header.items()
                if k not in ("space", "layout", "classes", "device", "runtime", "statistic")}
        return LUT(space=header["space"], layout_name=header["layout"],
                   classes=int(header["classes"]), device=header["device"],
                   runtime=header["runtime"], statistic=header.get("statistic", "median"),
                   latency_ms=latency, extra=extra, meta=meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise LUTFileError(f"{path}: LUT header lacks {exc}; re-export the LUT") from None


def _from_json(path: Path, text: str) -> LUT:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LUTFileError(f"{path} is truncated or not JSON ({exc.msg} at line {exc.lineno}); "
                           f"re-export the LUT") from None
    if not isinstance(obj, dict) or obj.get("format") != MAGIC:
        raise LUTFileError(f"{path} is not a lutfarm LUT (no \"format\": \"{MAGIC}\"); "
                           f"for HW-NAS-Bench's table use 'lutfarm lut import-hwnasbench'")
    try:
        latency = {k: float(v) for k, v in obj.get("latency_ms", {}).items()}
    except (TypeError, ValueError):
        raise LUTFileError(f"{path}: a latency is not a number; re-export the LUT") from None
    for key, value in latency.items():
        _check_latency(path, key, value, "latency_ms")
    header = {k: v for k, v in obj.items()
              if k not in ("format", "version", "latency_ms", "extra")}
    return _header_lut(path, header, latency, obj.get("extra") or {})


def _from_csv(path: Path, text: str) -> LUT:
    lines = text.splitlines()
    if not lines or not lines[0].startswith(f"# {MAGIC} "):
        hint = (" (this looks like HW-NAS-Bench's table: use 'lutfarm lut import-hwnasbench')"
                if lines and lines[0].startswith("key,type,") else "")
        raise LUTFileError(f"{path} is not a lutfarm LUT file{hint}")
    try:
        header = json.loads(lines[0].split(" ", 3)[3])
    except (IndexError, json.JSONDecodeError):
        raise LUTFileError(f"{path}: unreadable LUT header line; re-export the LUT") from None
    end = [ln for ln in lines if ln.startswith("# end rows=")]
    rows = list(csv.reader(ln for ln in lines[1:] if not ln.startswith("#")))
    if not end:
        raise LUTFileError(f"{path} is truncated (no end marker after {max(len(rows) - 1, 0)} "
                           f"rows); re-export or copy the LUT again")
    if not rows or rows[0][:2] != ["key", "latency_ms"]:
        raise LUTFileError(f"{path}: the column line must start with key,latency_ms")
    columns, body = rows[0], rows[1:]
    if len(body) != int(end[-1].split("=", 1)[1]):
        raise LUTFileError(f"{path} is truncated: {len(body)} rows, the end marker says "
                           f"{end[-1].split('=', 1)[1]}; re-export or copy the LUT again")
    latency, extra = {}, {}
    for n, row in enumerate(body, start=3):
        if len(row) != len(columns):
            raise LUTFileError(f"{path}: line {n} has {len(row)} fields, expected {len(columns)}")
        try:
            latency[row[0]] = float(row[1])
            extra[row[0]] = {c: _number(v) for c, v in zip(columns[2:], row[2:]) if v != ""}
        except ValueError:
            raise LUTFileError(f"{path}: line {n} has a value that is not a number") from None
        _check_latency(path, row[0], latency[row[0]], f"line {n}")
    return _header_lut(path, header, latency, {k: v for k, v in extra.items() if v})


def _check_latency(path: Path, key: str, value: float, where: str) -> None:
    """A LUT's latencies are measured times: a NaN, infinite or negative one would make every
    sum and statistic over it wrong without a word."""
    if not math.isfinite(value) or value < 0:
        raise LUTFileError(f"{path}: {where} gives {key} the latency {value!r}, which no "
                           f"measurement gives; fix or remove that row, or re-export the LUT")


def _number(v: str) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() and "." not in v and "e" not in v and not math.isinf(f) else f

