"""lutfarm: measured latency LUTs for a device farm, and search that uses them.

The command line is a thin layer over these functions; a notebook can use them directly::

    from lutfarm import Store, get_layout, LOCAL, RuntimeConfig, run_campaign, build_lut
    store = Store("lutfarm.db")
    run_campaign(store, get_layout("fbnet", "cifar"), LOCAL, RuntimeConfig())
    table = LatencyTable(build_lut(store, "local", RuntimeConfig().key))
"""

from __future__ import annotations

import importlib

# name -> the module that defines it; loaded on first use, so that importing a bottom module
# (``lutfarm.errors``, ``lutfarm.spaces``) does not load the controller, paramiko and SSH
_EXPORTS = {
    "LUT": "lutfarm.lut", "LatencyTable": "lutfarm.lut", "build_lut": "lutfarm.lut",
    "import_hwnasbench": "lutfarm.lut", "load_lut": "lutfarm.lut", "save_lut": "lutfarm.lut",
    "CampaignSettings": "lutfarm.profiler.scheduling.campaign", "run_campaign": "lutfarm.profiler.scheduling.campaign",
    "run_farm": "lutfarm.profiler.scheduling.campaign",
    "LOCAL": "lutfarm.profiler.devices.record", "get_device": "lutfarm.profiler.devices.record",
    "RuntimeConfig": "lutfarm.profiler.runtime_config",
    "Store": "lutfarm.profiler.store",
    "get_layout": "lutfarm.spaces", "parse_arch": "lutfarm.spaces.fbnet",
    "TimingSettings": "lutfarm_agent.timing",
}

__version__ = "0.1.0"
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lutfarm' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value          # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
