"""FBNet-style per-device LUTs: build from the store, save/load, vectorised queries."""

from lutfarm.lut.build import build_lut
from lutfarm.lut.hwnasbench import import_hwnasbench
from lutfarm.lut.io import LUTFileError, load_lut, save_lut
from lutfarm.lut.query import LatencyTable
from lutfarm.lut.table import LUT, LUTError

__all__ = ["LUT", "LUTError", "LUTFileError", "LatencyTable", "build_lut", "import_hwnasbench",
           "load_lut", "save_lut"]
