"""FBNet-style per-device LUTs: build from the store, save/load, vectorised queries."""

from lut.build import build_lut
from lut.hwnasbench import import_hwnasbench
from lut.io import LUTFileError, load_lut, save_lut
from lut.query import LatencyTable
from lut.table import LUT, LUTError

__all__ = ["LUT", "LUTError", "LUTFileError", "LatencyTable", "build_lut", "import_hwnasbench",
           "load_lut", "save_lut"]
