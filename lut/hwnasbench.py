"""Import HW-NAS-Bench's published FBNet LUT (one CSV, five devices, both layouts).

HW-NAS-Bench's keys are lutfarm's case keys, so importing is selecting one device's latency
column for the cases of one layout. The CIFAR layout's classifier defaults to 100 classes, as
in HW-NAS-Bench's CIFAR-100 figures.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lutfarm.lut.io import LUTFileError
from lutfarm.lut.table import LUT
from lutfarm.spaces import get_layout

BUNDLED = Path(__file__).parent / "data" / "hwnasbench_fbnet_lut.csv"
DEVICES = ("edgegpu", "raspi4", "pixel3", "eyeriss", "fpga")


def import_hwnasbench(path: str | os.PathLike, device: str, layout: str = "cifar",
                      classes: int | None = None) -> LUT:
    path = Path(path)
    if device not in DEVICES:
        raise LUTFileError(f"HW-NAS-Bench has no device {device!r}; choose one of "
                           f"{', '.join(DEVICES)}")
    lay = get_layout("fbnet", layout, classes)
    if not path.exists():
        raise LUTFileError(f"{path} does not exist; give the path of hwnasbench_fbnet_lut.csv "
                           f"(a copy ships with lutfarm: {BUNDLED})")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        column = f"{device}_latency"
        if not reader.fieldnames or "key" not in reader.fieldnames or column not in reader.fieldnames:
            raise LUTFileError(f"{path} is not HW-NAS-Bench's FBNet LUT (needs columns key and "
                               f"{column})")
        table = {row["key"]: row[column] for row in reader}
    latency = {}
    for case in lay.unique_cases():
        value = table.get(case.key)
        if value in (None, ""):
            raise LUTFileError(f"{path} lacks case {case.key} of layout {layout} "
                               f"(truncated file, or another layout's table)")
        latency[case.key] = float(value)
    return LUT(space="fbnet", layout_name=lay.name, classes=lay.classes, device=device,
               runtime="hwnasbench", latency_ms=latency,
               meta={"source": f"HW-NAS-Bench ({path.name}), MIT licence"})
