"""One controller process for the shared-store tests: a campaign on local stand-in boards of one
kind, into the store given, its summary printed as JSON. The boards run ``bench-sleep`` (NOT a
real runtime: each call sleeps 2 ms), which keeps two controllers on a 2-core machine from
competing for CPU; what is tested is the queue.

usage: python tests/controller.py STORE_URL BOARD[,BOARD] WORKROOT [LEASE_S] [PRIORITY] [THREADS]
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, FarmSettings, run_farm
from lutfarm.profiler.store import Store
from lutfarm.spaces import get_layout
from lutfarm_agent.timing import TimingSettings

PACED = TimingSettings(warmup_runs=1, warmup_s=0.0, min_runs=5, min_s=0.1, max_s=0.1,
                       target_rel_ci=0.0, retries=0)


def main() -> None:
    url, boards, root = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    lease = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    priority = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else 1     # another runtime configuration
    devices = [Device(b, kind="box", workdir=f"{root}/{b}") for b in boards]
    layout = get_layout("fbnet", "cifar")
    with Store(url) as store:
        (summary,) = run_farm(store, layout, devices, RuntimeConfig("bench-sleep", threads),
                              CampaignSettings(timing=PACED, priority=priority,
                                               farm=FarmSettings(lease_s=lease)))
    print(json.dumps(asdict(summary)))


if __name__ == "__main__":
    main()
