"""Search spaces: the bottom of lutfarm's dependency graph (no torch needed here).

A *layout* is a space at one macro configuration (input size, strides, classes); everything
above this package (export, LUT, predictors, search) asks ``get_layout`` for one, and the
``Space`` record for its family and pieces. A space's own names (FBNet's ``OPS``, MCUNet's
``MCUNetArch``) are imported from its module, not from this face.
"""

from __future__ import annotations

from lutfarm.spaces import fbnet, mcunet, nb201  # noqa: F401  (each registers itself)
from lutfarm.spaces.cases import KIND_FIELDS, BlockCase, CaseKeyError, ModelFileCase, PairCase
from lutfarm.spaces.registry import (
    ArchError,
    Space,
    UnknownSpaceError,
    get_layout,
    get_space,
    list_spaces,
    register_space,
)


def parse_case_key(key: str):
    """Any case key -> its case: blocks, block pairs, whole networks of any space. A model
    file's key names content that only the file has: it cannot be made from the key."""
    if ModelFileCase.is_key(key):
        raise CaseKeyError(f"{key} is a model file's measurement (lutfarm bench); only its file "
                           "makes it again")
    if key.startswith(PairCase.PREFIX + "__"):
        return PairCase.from_key(key)
    for name in list_spaces():
        network = get_space(name).network_case
        if key.startswith(network.PREFIX + "_"):
            return network.from_key(key)
    return BlockCase.from_key(key)


__all__ = ["KIND_FIELDS", "ArchError", "BlockCase", "CaseKeyError", "ModelFileCase", "PairCase", "Space",
           "UnknownSpaceError", "get_layout", "get_space", "list_spaces", "parse_case_key",
           "register_space"]
