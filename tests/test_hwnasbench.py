"""Importing HW-NAS-Bench's FBNet LUT reproduces the sums its official notebook prints."""

import json

import pytest

from conftest import FIXTURES
from lutfarm.lut import LatencyTable, import_hwnasbench
from lutfarm.lut.hwnasbench import BUNDLED, DEVICES
from lutfarm.lut.io import LUTFileError

REFERENCE = json.loads((FIXTURES / "hwnasbench_reference_values.json").read_text())["fbnet"]
CASES = [(arch, dataset, device) for arch in REFERENCE for dataset in REFERENCE[arch]
         for device in DEVICES]


@pytest.mark.parametrize("arch, dataset, device", CASES)
def test_published_sums_are_reproduced(arch, dataset, device):
    layout = "cifar" if dataset == "cifar100" else "imagenet"
    table = LatencyTable(import_hwnasbench(BUNDLED, device, layout))
    got = float(table.latency([[int(ch) for ch in arch]])[0])
    assert got == pytest.approx(REFERENCE[arch][dataset][f"{device}_latency"], rel=1e-9)


def test_classes_change_the_classifier_case():
    lut10 = import_hwnasbench(BUNDLED, "raspi4", "cifar", classes=10)
    assert "FC_Cin1504_Cout10" in lut10.latency_ms and lut10.classes == 10


def test_bad_inputs(tmp_path):
    with pytest.raises(LUTFileError, match="no device 'jetson'"):
        import_hwnasbench(BUNDLED, "jetson")
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(BUNDLED.read_text().splitlines()[:50]))
    with pytest.raises(LUTFileError, match="lacks case"):
        import_hwnasbench(cut, "raspi4")
    with pytest.raises(LUTFileError, match="does not exist"):
        import_hwnasbench(tmp_path / "nope.csv", "raspi4")
