import csv

import numpy as np
import pytest

from lutfarm.lut.hwnasbench import BUNDLED
from lutfarm.spaces import ArchError, UnknownSpaceError, get_layout
from lutfarm.spaces.fbnet import parse_arch, validate_archs

HW_KEYS = {r["key"] for r in csv.DictReader(open(BUNDLED))}


@pytest.mark.parametrize("name, classes, sizes, fc", [
    ("cifar", 100, (32, 16, 8, 4), "FC_Cin1504_Cout100"),
    ("imagenet", 1000, (224, 112, 56, 28, 14, 7), "FC_Cin1984_Cout1000")])
def test_unique_cases_are_exactly_hwnasbenchs(name, classes, sizes, fc):
    layout = get_layout("fbnet", name)
    keys = [c.key for c in layout.unique_cases()]
    assert len(keys) == len(set(keys)) == 112
    # HW-NAS-Bench's table holds both layouts: pick one layout's share by resolution
    theirs = {k for k in HW_KEYS if any(f"_H{h}_" in k for h in sizes)} | {fc}
    assert set(keys) == theirs
    assert layout.classes == classes


def test_cifar_stage_resolutions_and_strides():
    layout = get_layout("fbnet", "cifar")
    slots = layout.layer_slots()
    first_of_stage = [s for s in slots if s.index in (0, 1, 5, 9, 13, 17, 21)]
    assert [s.stride for s in first_of_stage] == [1, 1, 2, 2, 1, 2, 1]
    assert [s.h // s.stride for s in first_of_stage] == [32, 32, 16, 8, 8, 4, 4]
    assert len(slots) == 22 and [s.cout for s in slots][-1] == 352


def test_layers_with_identical_shapes_share_one_case():
    layout = get_layout("fbnet", "imagenet")
    cases = layout.choice_cases()
    assert cases[2] == cases[3] == cases[4]       # stage 2, layers 2-4
    assert cases[1] != cases[2]                    # stride-2 entry layer differs


def test_classes_changes_the_classifier_everywhere():
    layout = get_layout("fbnet", "cifar", classes=10)
    assert layout.fixed_cases()[-1].key == "FC_Cin1504_Cout10"
    assert "FC_Cin1504_Cout10" in {c.key for c in layout.unique_cases()}


def test_arch_cases_follow_the_network():
    layout = get_layout("fbnet", "cifar")
    cases = layout.arch_cases([8] * 22)
    assert cases[0].kind == "ConvNorm" and cases[-1].kind == "FC"
    assert len(cases) == 26 and all(c.kind == "Skip" for c in cases[1:23])


@pytest.mark.parametrize("space, layout, message", [
    ("ofa", "cifar", "unknown space 'ofa'"), ("fbnet", "mnist", "unknown layout 'mnist'")])
def test_unknown_space_or_layout(space, layout, message):
    with pytest.raises(UnknownSpaceError, match=message):
        get_layout(space, layout)


def test_arch_validation_names_the_problem():
    with pytest.raises(ArchError, match="has 22 op indices, got 21"):
        validate_archs([0] * 21)
    with pytest.raises(ArchError, match="op index 9 at layer 3"):
        validate_archs([0, 0, 0, 9] + [0] * 18)
    with pytest.raises(ArchError, match="op index -1"):
        validate_archs(np.array([[0] * 22, [-1] + [0] * 21]))
    assert parse_arch("0" * 21 + "1") == [0] * 21 + [1]
    assert parse_arch(" 1, 2,3 " + ",0" * 19) == [1, 2, 3] + [0] * 19
    with pytest.raises(ArchError, match="cannot read arch"):
        parse_arch("a,b")
