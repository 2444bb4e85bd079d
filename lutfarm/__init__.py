"""lutfarm: measured latency LUTs for a device farm, and search that uses them.

The command line is a thin layer over these functions; a notebook can use them directly::

    from lutfarm import Store, get_layout, LOCAL, RuntimeConfig, run_campaign, build_lut
    store = Store("lutfarm.db")
    run_campaign(store, get_layout("fbnet", "cifar"), LOCAL, RuntimeConfig())
    table = LatencyTable(build_lut(store, "local", RuntimeConfig().key))
"""

from lutfarm.lut import LUT, LatencyTable, build_lut, import_hwnasbench, load_lut, save_lut
from lutfarm.profiler.campaign import CampaignSettings, run_campaign, run_farm
from lutfarm.profiler.devices import LOCAL, get_device
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout, parse_arch
from lutfarm_agent.timing import TimingSettings

__version__ = "0.1.0"
__all__ = ["LOCAL", "LUT", "CampaignSettings", "LatencyTable", "RuntimeConfig", "Store",
           "TimingSettings", "run_farm",
           "build_lut", "get_device", "get_layout", "import_hwnasbench", "load_lut",
           "parse_arch", "run_campaign", "save_lut"]
