"""Farm figures with real sshd servers on 127.0.0.1, each a ratio against a same-run baseline.

1. controller cost: 16 sshd hosts of one kind run the agent (onnxruntime) on the CIFAR
   layout's 113 cases; controller CPU seconds per measured case, and cases per second;
2. scaling: one LUT built by 1 host vs 3 and 16 hosts of one kind, with the `bench-sleep` runtime
   (NOT a real runtime: every model sleeps 2 ms, so the hosts do not compete for this
   machine's two cores and the figure measures the scheduler);
3. deployment: first vs second campaign on a fresh device, bytes uploaded and wall time.

Needs root-free sshd (Debian openssh-server) and ssh-keygen. Usage: python bench/bench_farm.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lutfarm.profiler.devices.lock import owner_info  # noqa: E402
from lutfarm.profiler.devices.transport import SSHTransport  # noqa: E402
from lutfarm.profiler.export.cache import ModelCache  # noqa: E402
from lutfarm.profiler.runtime_config import RuntimeConfig  # noqa: E402
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_farm  # noqa: E402
from lutfarm.profiler.store import Store  # noqa: E402
from lutfarm.spaces import get_layout  # noqa: E402
from lutfarm_agent.timing import TimingSettings  # noqa: E402
from sshd import keygen, start_host  # noqa: E402

LAYOUT = get_layout("fbnet", "cifar")
QUICK = TimingSettings(warmup_runs=1, warmup_s=0.0, min_runs=5, min_s=0.005, max_s=0.01,
                       target_rel_ci=0.05, retries=0)


def campaign(tmp: Path, name: str, devices, runtime, timing, cache, layout=LAYOUT):
    with Store(tmp / f"{name}.db") as store:
        c0, t0 = time.process_time(), time.perf_counter()
        (s,) = run_farm(store, layout, devices, runtime, CampaignSettings(timing=timing, cache=cache))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    assert not s.failed, s.failed[:3]
    return s, cpu, wall


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key = tmp / "id"
        pub = keygen(key)
        cache = ModelCache(tmp / "cache")
        for c in LAYOUT.unique_cases() + [LAYOUT.overhead_case()]:
            cache.get(c)                               # export outside every measurement
        hosts = [start_host(tmp / f"h{i}", f"h{i}", pub, key) for i in range(16)]
        try:
            # 3. deployment on a fresh device
            dev = hosts[0].device(workdir=str(tmp / "fresh"))
            first, _, w1 = campaign(tmp, "deploy1", [dev], RuntimeConfig(), QUICK, cache)
            dev2 = replace(dev, kind="fresh-again")      # same board, new LUT identity
            second, _, w2 = campaign(tmp, "deploy2", [dev2], RuntimeConfig(), QUICK, cache)
            # 1. controller cost with 16 hosts
            devs = [h.device(workdir=str(tmp / f"w{h.name}")) for h in hosts]
            s16, cpu16, wall16 = campaign(tmp, "sixteen", devs, RuntimeConfig(), QUICK, cache)
            # the same farm again under a new LUT identity, every model put on every device
            # beforehand (outside the timed part): what is left is the cost of jobs themselves
            models = [cache.get(c) for c in LAYOUT.unique_cases() + [LAYOUT.overhead_case()]]
            for d in devs:
                t = SSHTransport(d)
                t.open(owner_info("pre-upload"))
                t.prepare(models)
                t.close()
            warm_devs = [replace(d, kind="testbox-again") for d in devs]
            warm, cpu_w, wall_w = campaign(tmp, "sixteen-warm", warm_devs, RuntimeConfig(),
                                           QUICK, cache)
            # 2. scaling with the sleep stand-in
            sleep = RuntimeConfig(name="bench-sleep")
            paced = TimingSettings(warmup_runs=1, warmup_s=0.0, min_runs=10, min_s=0.05,
                                   max_s=0.05, target_rel_ci=0.0, retries=0)
            one = [hosts[0].device(kind="s1", workdir=str(tmp / "s1"))]
            three = [h.device(kind="s3", workdir=str(tmp / f"s3{h.name}")) for h in hosts[:3]]
            all16 = [h.device(kind="s16", workdir=str(tmp / f"s16{h.name}")) for h in hosts]
            s1, _, wall1 = campaign(tmp, "scale1", one, sleep, paced, cache)
            s3, _, wall3 = campaign(tmp, "scale3", three, sleep, paced, cache)
            s16b, _, wall16b = campaign(tmp, "scale16", all16, sleep, paced, cache)
        finally:
            for h in hosts:
                h.stop()
    print(f"controller cost, 16 sshd hosts, {s16.measured} cases, first campaign (agent and "
          f"{s16.uploaded_bytes / 1e6:.1f} MB of models uploaded): "
          f"{cpu16 / s16.measured * 1000:.2f} ms controller CPU per case, "
          f"{s16.measured / wall16:.1f} cases/s")
    print(f"controller cost, same farm, second campaign (every model already on every device): "
          f"{cpu_w / warm.measured * 1000:.2f} ms controller CPU per case (goal <= 5 ms), "
          f"{warm.measured / wall_w:.1f} cases/s; cases per device "
          f"{sorted(warm.per_device.values())}")
    print(f"scaling (bench-sleep stand-in, 50 ms per case): 1 host {wall1:.1f} s, 3 hosts "
          f"{wall3:.1f} s = {wall1 / wall3:.2f}x faster; split {sorted(s3.per_device.values())}; "
          f"16 hosts {wall16b:.1f} s = {wall1 / wall16b:.2f}x faster (this machine's 2 cores "
          f"run every sshd and agent, and the controller's SFTP uploads share one GIL)")
    print(f"deployment: first campaign {first.uploaded_bytes / 1e6:.2f} MB in {w1:.1f} s, "
          f"second {second.uploaded_bytes} bytes in {w2:.1f} s")


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
