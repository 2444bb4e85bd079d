import csv

import pytest

from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.spaces import BlockCase, CaseKeyError

HW_ROWS = list(csv.DictReader(open(BUNDLED)))


@pytest.mark.parametrize("row", HW_ROWS, ids=[r["key"] for r in HW_ROWS])
def test_hwnasbench_keys_round_trip_with_their_fields(row):
    case = BlockCase.from_key(row["key"])
    assert case.key == row["key"]
    assert case.kind == row["type"]
    for column, attr in [("H", "h"), ("W", "w"), ("cin", "cin"), ("cout", "cout"), ("exp", "exp"),
                         ("kernel", "kernel"), ("stride", "stride"), ("group", "group")]:
        expected = int(row[column]) if row[column] else None
        assert getattr(case, attr) == expected, column


@pytest.mark.parametrize("bad", [
    "ConvBlock_H32_W32_Cin16_Cout16_exp1_kernel3_stride1",   # group missing
    "Conv_H32", "ConvBlock_H32_W32_Cin16_Cout16_exp1_kernel3_stride1_groupX",
    "", "FC_Cin10_Cout10_extra1",
])
def test_malformed_keys_are_rejected_with_the_expected_form(bad):
    with pytest.raises(CaseKeyError, match="not a case key"):
        BlockCase.from_key(bad)


def test_a_case_rejects_fields_its_kind_does_not_have():
    with pytest.raises(CaseKeyError, match="FC has no field h"):
        BlockCase("FC", 10, 10, h=3)
    with pytest.raises(CaseKeyError, match="needs an integer stride"):
        BlockCase("Skip", 16, 16, h=8, w=8)


def test_identity_skips_are_recognised():
    assert BlockCase.from_key("Skip_H8_W8_Cin64_Cout64_stride1").is_identity
    assert not BlockCase.from_key("Skip_H8_W8_Cin64_Cout112_stride1").is_identity
    assert not BlockCase.from_key("Skip_H32_W32_Cin24_Cout32_stride2").is_identity
