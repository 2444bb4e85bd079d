"""Search spaces: the bottom of lutfarm's dependency graph (no torch needed here).

A *layout* is a space at one macro configuration (input size, strides, classes); everything
above this package (export, LUT, predictors, search) asks ``get_layout`` for one.
"""

from __future__ import annotations

from lutfarm.errors import LutfarmError
from lutfarm.spaces.cases import KIND_FIELDS, BlockCase, CaseKeyError, PairCase
from lutfarm.spaces.fbnet import LAYOUTS as FBNET_LAYOUTS
from lutfarm.spaces.fbnet import (
    NUM_OPS,
    OPS,
    ArchError,
    FBNetLayout,
    NetworkCase,
    parse_arch,
    validate_archs,
)

SPACES: dict[str, dict[str, FBNetLayout]] = {"fbnet": FBNET_LAYOUTS}


class UnknownSpaceError(LutfarmError, ValueError):
    """A space or layout name lutfarm does not know."""


def get_layout(space: str, layout: str, classes: int | None = None) -> FBNetLayout:
    """Look a layout up by name; ``classes`` overrides the classifier width."""
    if space not in SPACES:
        raise UnknownSpaceError(f"unknown space {space!r}; known spaces: {', '.join(SPACES)}")
    layouts = SPACES[space]
    if layout not in layouts:
        raise UnknownSpaceError(f"unknown layout {layout!r} for space {space!r}; "
                                f"choose one of: {', '.join(layouts)}")
    found = layouts[layout]
    return found.with_classes(classes) if classes is not None else found


def parse_case_key(key: str) -> BlockCase | PairCase | NetworkCase:
    """Any case key -> its case: blocks, block pairs, whole networks."""
    if key.startswith(PairCase.PREFIX + "__"):
        return PairCase.from_key(key)
    if key.startswith(NetworkCase.PREFIX + "_"):
        return NetworkCase.from_key(key)
    return BlockCase.from_key(key)


__all__ = ["KIND_FIELDS", "NetworkCase", "PairCase", "parse_case_key", "NUM_OPS", "OPS", "SPACES", "ArchError", "BlockCase", "CaseKeyError",
           "FBNetLayout", "UnknownSpaceError", "get_layout", "parse_arch", "validate_archs"]
