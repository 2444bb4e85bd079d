"""Where each board's time goes in a campaign: spans recorded as the campaign runs, stored
with it (``Store.add_spans``), summarised as shares of wall time and drawn as a Gantt chart.

Phases (one list: the summary, the dashboard and the benchmarks read it):

- ``connect`` SSH connection and the work directory; ``lock`` taking the board's lock;
  ``deploy`` the agent bundle (or the check that this version is there);
- ``agent start`` from starting the agent process to its ``ready`` (it overlaps the first
  uploads: the interpreter loads while models go up);
- ``upload`` models sent and verified before a job; ``prefetch`` the next chunk's models sent
  *beside* a running job (overlaps ``job``);
- ``job`` one agent job, request to ``done`` (detail: cases, first and last result);
- ``drift guard`` timing the references again on resume; ``hand-over`` waiting while a
  higher-priority campaign has the board; ``wait`` waiting for the queue (a shared queue's
  claim); ``backoff`` the pause before a retry; ``teardown`` agent stopped, lock released.

A board is *busy* while it runs a job: scheduling efficiency = Σ busy time / (boards × wall).
A job's busy time is what the agent says the job took on the board (``board_s``); the span
itself ends when the controller has read the job's last event, later if the controller lags.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lutfarm.profiler.store import Span

PHASES = ("connect", "lock", "deploy", "agent start", "upload", "prefetch", "job",
          "drift guard", "hand-over", "wait", "backoff", "teardown", "export")
OVERLAPPING = ("agent start", "prefetch")   # run beside other phases of the same board
CONTROLLER = "controller"                   # the spans that are no board's (export)


class Timeline:
    """A campaign's spans, collected from every device thread (thread-safe). ``record=False``
    gives one that keeps nothing: a transport used outside a campaign."""

    def __init__(self, record: bool = True):
        self.record = record
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def add(self, device: str, phase: str, began: float, ended: float | None = None,
            **detail) -> None:
        if self.record:
            span = Span(device, phase, began, time.time() if ended is None else ended,
                        detail or None)
            with self._lock:
                self._spans.append(span)

    @contextlib.contextmanager
    def span(self, device: str, phase: str, **detail) -> Iterator[dict]:
        """Times the block as one span; the yielded dict's entries become its detail (set them
        inside). A block that raises still leaves its span, marked ``failed``."""
        began = time.time()
        try:
            yield detail
        except BaseException as exc:
            detail["failed"] = type(exc).__name__
            raise
        finally:
            self.add(device, phase, began, **detail)

    def spans(self) -> list[Span]:
        with self._lock:
            return sorted(self._spans, key=lambda s: s.began)


@dataclass
class TimelineSummary:
    """Shares of the boards' wall time per phase, per board and overall."""

    wall_s: float
    boards: list[str]
    share: dict[str, float]                     # phase -> Σ its time / (boards × wall)
    per_board: dict[str, dict[str, float]]      # board -> phase -> its time / wall
    jobs: int
    busy_s: float                               # Σ the boards' own time on jobs
    covered: dict[str, float]                   # board -> share of the wall in any phase
    startup_s: dict[str, float]                 # board -> its first span to its first job
    steady: float | None                        # efficiency once each board ran its first job

    @property
    def efficiency(self) -> float:
        """Σ busy board time / (boards × wall)."""
        return self.busy_s / (len(self.boards) * self.wall_s) if self.boards else 0.0

    def idle(self, board: str | None = None) -> float:
        """The part of the wall time in no phase (waiting on the controller between steps,
        or done before the others)."""
        if board:
            return 1.0 - self.covered[board]
        return 1.0 - sum(self.covered.values()) / max(1, len(self.covered))

    def lines(self) -> list[str]:
        """The text a person reads: overall shares, then each board's."""
        order = [p for p in PHASES if p in self.share]
        starts = sorted(self.startup_s.values())
        out = [f"{len(self.boards)} board(s), wall {self.wall_s:.1f} s, {self.jobs} jobs; "
               f"scheduling efficiency (busy board time / boards x wall) {self.efficiency:.3f}"
               + (f"; boards started (first span to first job) in {starts[0]:.2f}-"
                  f"{starts[-1]:.2f} s, efficiency after that {self.steady:.3f}"
                  if starts and self.steady is not None else ""),
               "share of the boards' wall time: " + ", ".join(
                   f"{p} {self.share[p]:.1%}" for p in order) + f", idle {self.idle():.1%}"
               + (f" ({', '.join(OVERLAPPING)} overlap other phases)" if any(
                   p in self.share for p in OVERLAPPING) else "")]
        for board in self.boards:
            shares = self.per_board[board]
            out.append(f"  {board}: " + ", ".join(f"{p} {shares[p]:.0%}" for p in PHASES
                                                 if shares.get(p)) + f", idle {self.idle(board):.0%}")
        return out


def summarise(spans: list[Span], began: float | None = None,
              ended: float | None = None) -> TimelineSummary:
    """Shares of wall time (from ``began`` to ``ended``; default the boards' first to last
    span) per phase; the controller's export is left out of the boards' wall."""
    board_spans = [s for s in spans if s.device != CONTROLLER]
    if not board_spans:
        return TimelineSummary(0.0, [], {}, {}, 0, 0.0, {}, {}, None)
    began = min(s.began for s in board_spans) if began is None else began
    ended = max(s.ended for s in board_spans) if ended is None else ended
    wall = max(ended - began, 1e-9)
    boards = sorted({s.device for s in board_spans})
    per_board: dict[str, dict[str, float]] = {b: {} for b in boards}
    for s in board_spans:
        seconds = max(0.0, min(s.ended, ended) - max(s.began, began))
        per_board[s.device][s.phase] = per_board[s.device].get(s.phase, 0.0) + seconds / wall
    share: dict[str, float] = {}
    for shares in per_board.values():
        for phase, v in shares.items():
            share[phase] = share.get(phase, 0.0) + v / len(boards)
    jobs = sum(s.phase == "job" for s in board_spans)
    covered = {b: _union([(max(s.began, began), min(s.ended, ended)) for s in board_spans
                          if s.device == b]) / wall for b in boards}
    startup, busy, window = {}, 0.0, 0.0
    for b in boards:
        mine = [s for s in board_spans if s.device == b]
        jobs_b = [s for s in mine if s.phase == "job"]
        if jobs_b:
            first_job = min(s.began for s in jobs_b)
            startup[b] = first_job - min(s.began for s in mine)
            busy += sum(busy_seconds(s, began, ended) for s in jobs_b)
            window += ended - first_job
    return TimelineSummary(wall, boards, share, per_board, jobs, busy, covered, startup,
                           busy / window if window > 0 else None)


def busy_seconds(job: Span, began: float = float("-inf"), ended: float = float("inf")) -> float:
    """The board's own time on a job (what its agent said, else the span), within the window."""
    seconds = max(0.0, min(job.ended, ended) - max(job.began, began))
    said = (job.detail or {}).get("board_s")
    return min(seconds, said) if said is not None else seconds


def _union(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
