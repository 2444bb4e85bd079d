"""A discrete-event model of a device farm under lutfarm's scheduler (SimPy), to ask what a
farm larger than any test can start would do: where scheduling efficiency falls below 0.9, and
which resource is saturated there.

What is modelled (the costs come from ``bench/bench_farm_scale.py`` runs, see ``FarmCosts``):
- every board starts (connect, lock, deploy, agent start: ``board_start_s``, of which
  ``board_start_cpu_s`` is the board's own CPU) and costs its controller
  ``controller_cpu_per_board_s``;
- one queue of cases shared by every board (and every controller: a shared store's queue),
  chunked as ``device_worker.KindWork.chunk_size`` chunks them (the first job
  ``FIRST_CHUNK`` cases, then ~4 jobs per board over what is pending, at most 16), the next
  chunk claimed and uploaded beside the running job while more cases are pending than boards;
- a job: ``job_overhead_s`` on the board, then its cases one after another (durations given);
- each result is handled by its board's thread in order: controller CPU
  ``controller_cpu_per_case_s`` (one CPU per controller process: Python's GIL), then a commit
  on the controller's one store connection (``commit_s``; with a shared store every claim takes
  ``claim_s`` on it too) served by the store (``store_cores`` commits at a time, all
  controllers together); a job ends when the board has run it *and* its results are handled;
- ``shared_board_cpu``: the boards' own CPU work (start-up, ``board_cpu_per_case_s``) runs on
  one CPU that every board shares, as this machine's emulated boards do; a real farm has one
  CPU per board (False).

Not modelled: failures and retries, drift guards, priorities and hand-overs, network bandwidth
limits other than the controller's CPU (uploads are in its per-case CPU), lease renewals.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import simpy

from lutfarm.profiler.scheduling.device_worker import FIRST_CHUNK

MAX_CHUNK = 16


@dataclass
class FarmCosts:
    """Seconds each step costs; ``bench/bench_farm_scale.py --simulate`` measures them."""

    controller_cpu_per_case_s: float     # reading, recording a result (uploads included)
    commit_s: float                      # one result's commit, the store connection held
    board_start_s: float                 # a board alone: its first span to its first job
    controller_cpu_per_board_s: float = 0.0   # connect and deploy on the controller's CPU
    board_start_cpu_s: float = 0.0       # of board_start_s, the board's own CPU
    board_cpu_per_case_s: float = 0.0    # the board's CPU per case beside its (sleeping) work
    job_overhead_s: float = 0.0          # per job on the board: job message, models loaded
    claim_s: float = 0.0                 # a shared queue's claim of a chunk (0: in memory)
    store_cores: int = 1                 # commits the store serves at once


@dataclass
class FarmScenario:
    boards: int
    case_s: Sequence[float]              # every case's duration on a board, in queue order
    controllers: int = 1
    shared_board_cpu: bool = False       # emulated boards sharing one CPU (this machine)


@dataclass
class FarmOutcome:
    wall_s: float
    efficiency: float                    # Σ the boards' time on jobs / (boards x wall)
    cases_per_s: float
    utilisation: dict[str, float]        # resource -> busy share of the wall (max over copies)
    busy_s: float = 0.0
    started_s: list[float] = field(default_factory=list)   # each board's start-up

    @property
    def bottleneck(self) -> str:
        """The most utilised resource, where one is nearly saturated (>= 0.8); otherwise the
        loss is latency (start-up, the queue's tail), not a resource."""
        name, use = max(self.utilisation.items(), key=lambda kv: kv[1])
        return name if use >= 0.8 else "none saturated (start-up and tail latency)"


class _Meter:
    """A SimPy resource that adds up the time it is held."""

    def __init__(self, env: simpy.Environment, capacity: int = 1):
        self.env, self.resource, self.capacity, self.busy = env, simpy.Resource(env, capacity), \
            capacity, 0.0

    def use(self, seconds: float):
        if seconds <= 0:
            return
        with self.resource.request() as req:
            yield req
            yield self.env.timeout(seconds)
            self.busy += seconds


def simulate(costs: FarmCosts, scenario: FarmScenario) -> FarmOutcome:
    """Run the model once (deterministic: the durations are given)."""
    env = simpy.Environment()
    n, c = scenario.boards, max(1, min(scenario.controllers, scenario.boards))
    cpus = [_Meter(env) for _ in range(c)]
    connections = [_Meter(env) for _ in range(c)]
    store = _Meter(env, costs.store_cores)
    host = _Meter(env) if scenario.shared_board_cpu else None
    pending = deque(range(len(scenario.case_s)))
    busy, ends, started = [0.0], [0.0], []
    # chunks are sized over all the campaign's boards (a shared queue's controllers say how
    # many boards each brings)
    alive = [n] * c

    def board_cpu(seconds: float):
        if host is not None:
            yield from host.use(seconds)
        else:
            yield env.timeout(seconds)

    def chunk_size(k: int, first: bool) -> int:
        size = max(1, min(MAX_CHUNK, math.ceil(len(pending) / (4 * alive[k]))))
        return min(size, FIRST_CHUNK) if first else size

    def take(k: int, size: int):
        if costs.claim_s:
            yield from connections[k].use(costs.claim_s)
        return [pending.popleft() for _ in range(min(size, len(pending)))]

    def prefetch(k: int, ahead: dict):
        ahead["chunk"] = yield from take(k, chunk_size(k, False))

    def handle(k: int, results: simpy.Store, count: int, finished: simpy.Event):
        for _ in range(count):
            yield results.get()
            yield from cpus[k].use(costs.controller_cpu_per_case_s)
            with connections[k].resource.request() as req:   # the commit holds the connection
                yield req
                t0 = env.now
                yield from store.use(costs.commit_s)
                connections[k].busy += env.now - t0
        finished.succeed()

    def board(i: int):
        k = i % c
        t0 = env.now
        yield from cpus[k].use(costs.controller_cpu_per_board_s)
        yield from board_cpu(costs.board_start_cpu_s)
        yield env.timeout(max(0.0, costs.board_start_s - costs.board_start_cpu_s))
        started.append(env.now - t0)
        chunk = yield from take(k, chunk_size(k, True))
        while chunk:
            began = env.now
            ahead: dict = {}
            if len(pending) > alive[k]:           # the next chunk, claimed beside the job
                ahead["process"] = env.process(prefetch(k, ahead))
            results, finished = simpy.Store(env), env.event()
            env.process(handle(k, results, len(chunk), finished))
            yield env.timeout(costs.job_overhead_s)
            for case in chunk:
                yield env.timeout(scenario.case_s[case])
                yield from board_cpu(costs.board_cpu_per_case_s)
                results.put(case)
            busy[0] += env.now - began          # the board's own time on the job
            yield finished                      # the job ends once its results are handled
            if "process" in ahead:
                yield ahead["process"]
            chunk = ahead.get("chunk") or (yield from take(k, chunk_size(k, False)))
        ends.append(env.now)

    for i in range(n):
        env.process(board(i))
    env.run()
    wall = max(ends)
    use = {"controller CPU": max(m.busy for m in cpus) / wall,
           "store connection": max(m.busy for m in connections) / wall,
           "store": store.busy / (wall * store.capacity)}
    if host is not None:
        use["boards' shared CPU"] = host.busy / wall
    return FarmOutcome(wall, busy[0] / (n * wall), len(scenario.case_s) / wall, use, busy[0],
                       started)
