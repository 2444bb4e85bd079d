"""The registry of search spaces: each space's module registers itself here (name, layouts,
whole-network case), so every command takes ``--space NAME`` and the contract test in
``tests/test_spaces.py`` runs every registered space through the same checks.

What a layout offers (the plug-in contract; FBNetLayout and MCUNetLayout implement it):
``name``, ``space``, ``classes``, ``input_size``, ``with_classes(n)``; ``unique_cases()``
(everything a campaign measures) and ``overhead_case()``; ``arch_cases(arch)`` (one network's
cases in execution order); ``sample_archs(n, seed)``, ``parse_arch(text)``,
``arch_to_text(arch)``, ``encode(archs)`` / ``decode(row)``; ``macs``, ``params`` and
``peak_activation`` of an arch; ``network_case(arch)`` (the whole network as a case). A
"cell" family's layout also gives ``gene_sizes`` (how many ops each gene chooses from): that is
all the LUT sum and the search above need, so a new cell space is one module. The layers above
ask the ``Space`` record for their pieces (``Space.piece``: the LUT table, the validation
workflow, the supernet), named as strings so that this bottom layer imports none of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from lutfarm.errors import LutfarmError


class ArchError(LutfarmError, ValueError):
    """An architecture that does not fit the space (every space raises this one)."""


class UnknownSpaceError(LutfarmError, ValueError):
    """A space or layout name lutfarm does not know."""


class ArchCosts:
    """What every layout derives from ``arch_cases`` alone: an arch's MACs, weights and
    largest activation (a layout whose network holds more at once overrides the last)."""

    def macs(self, arch) -> int:
        return sum(c.macs for c in self.arch_cases(arch))

    def params(self, arch) -> int:
        return sum(c.params for c in self.arch_cases(arch))

    def peak_activation(self, arch) -> int:
        return max(c.activation_peak for c in self.arch_cases(arch))


@dataclass(frozen=True)
class Space:
    name: str
    description: str
    layouts: dict                  # layout name -> layout
    default_layout: str
    network_case: type             # its whole-network case (``PREFIX``, ``from_key``)
    block_kind: str | None = None  # the searchable block the block predictor models, if any
    # how an arch is built, which says how every layer above prices and searches it:
    # "chain" (one choice per layer: FBNet), "elastic" (subnets of a supernet: MCUNet),
    # "cell" (a few genes, each an op index, ``layout.gene_sizes``: NB201)
    family: str = "chain"
    # the space's own pieces in the layers above, as "module:attribute" (loaded on first use,
    # so this bottom layer imports none of them); a family's default fills what is not here
    pieces: dict = field(default_factory=dict)

    def piece(self, kind: str):
        """What a layer above uses for this space (``PIECES``), or None if it has none."""
        where = self.pieces.get(kind, FAMILY_PIECES[self.family].get(kind))
        if where is None:
            return None
        module, _, attr = where.partition(":")
        return getattr(importlib.import_module(module), attr)


_SPACES: dict[str, Space] = {}


FAMILIES = ("chain", "elastic", "cell")
# What a layer above asks a space for, instead of its name or family:
#   table     lut: the vectorised LUT sum, ``table(lut)`` (``latency(archs)``)
#   validate  workflows: ``validate(store, lut, settings, runtime, campaign)`` measures the
#             space's networks, writes the plot and table: -> (report, png, csv, skipped cases)
#   supernet  search: the space's one-shot supernet class, ``cls(layout, classes)``
PIECES = ("table", "validate", "supernet")
FAMILY_PIECES = {
    "chain": {"table": "lutfarm.lut.query:LatencyTable",
              "validate": "lutfarm.workflows.validate_networks:validate"},
    "elastic": {"table": "lutfarm.lut.subnets:SubnetTable",
                "validate": "lutfarm.workflows.validate_subnets:validate"},
    "cell": {"table": "lutfarm.lut.cells:CellTable"},
}


def register_space(space: Space) -> Space:
    if space.family not in FAMILIES:
        raise ValueError(f"space {space.name}: family {space.family!r} is not one of "
                         f"{', '.join(FAMILIES)}")
    unknown = set(space.pieces) - set(PIECES)
    if unknown:
        raise ValueError(f"space {space.name}: unknown pieces {sorted(unknown)}; a space "
                         f"names {', '.join(PIECES)}")
    if space.default_layout not in space.layouts:
        raise ValueError(f"space {space.name}: default layout {space.default_layout!r} missing")
    _SPACES[space.name] = space
    return space


def list_spaces() -> list[str]:
    return list(_SPACES)


def get_space(name: str) -> Space:
    try:
        return _SPACES[name]
    except KeyError:
        raise UnknownSpaceError(f"unknown space {name!r}; known spaces: "
                                f"{', '.join(_SPACES)}") from None


def family_of(space: str) -> str:
    """The family of a registered space: what the layers above ask instead of its name."""
    return get_space(space).family


def get_layout(space: str, layout: str | None = None, classes: int | None = None):
    """Look a layout up by name (``None``: the space's default); ``classes`` overrides the
    classifier width."""
    entry = get_space(space)
    name = layout or entry.default_layout
    if name not in entry.layouts:
        raise UnknownSpaceError(f"unknown layout {name!r} for space {space!r}; "
                                f"choose one of: {', '.join(entry.layouts)}")
    found = entry.layouts[name]
    return found.with_classes(classes) if classes is not None else found
