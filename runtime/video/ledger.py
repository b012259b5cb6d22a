"""Frame accounting: every frame the source gave ends up written, dropped or failed -- exactly once.

Stages run in their own threads, so the counters sit behind one lock. Latencies are kept as plain
float arrays (8 bytes a frame: an hour of 25 fps video is 720 kB), so the p95 is exact, not sampled.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mclrt.runtime.video.frames import Frame

STAGES = ("decode", "extract", "infer", "encode")
# Failures beyond this many are counted but not listed in the report (a camera with a loose cable
# would otherwise grow the list without bound).
MAX_LISTED_FAILURES = 1000


class AccountingError(RuntimeError):
    """read != written + dropped + failed: a frame was lost or counted twice -- a bug in mclrt."""


@dataclass(frozen=True)
class Failure:
    index: int
    stage: str
    problem: str


@dataclass(frozen=True)
class LatencySummary:
    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "LatencySummary":
        if len(seconds) == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ms = np.asarray(seconds, np.float64) * 1e3
        return cls(len(ms), float(ms.mean()), float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.max()))


class FrameLedger:
    def __init__(self, on_failure: Callable[[Failure], None] | None = None):
        self._lock = threading.Lock()
        self._on_failure = on_failure
        self.read = 0
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.failures: list[Failure] = []
        self.dropped_indices = array("q")
        self.stage_seconds = {stage: array("d") for stage in STAGES}  # one entry per stage run
        self.batch_sizes = array("q")  # frames per translator run, beside stage_seconds["infer"]
        self.written_indices = array("q")
        self.frame_latency = array("d")  # per written frame: read -> written, queue waits included
        self.frame_compute = array("d")  # per written frame: its stage times only

    def count_read(self) -> None:
        with self._lock:
            self.read += 1

    def count_dropped(self, frame: Frame) -> None:
        with self._lock:
            self.dropped += 1
            self.dropped_indices.append(frame.index)

    def count_failed(self, index: int, stage: str, problem: str) -> None:
        failure = Failure(index, stage, problem)
        with self._lock:
            self.failed += 1
            if len(self.failures) < MAX_LISTED_FAILURES:
                self.failures.append(failure)
        if self._on_failure is not None:
            self._on_failure(failure)

    def count_written(self, frame: Frame, now: float) -> None:
        with self._lock:
            self.written += 1
            self.written_indices.append(frame.index)
            self.frame_latency.append(now - frame.started)
            self.frame_compute.append(frame.compute_seconds)

    def record_stage(self, stage: str, seconds: float, frames: int = 1) -> None:
        with self._lock:
            self.stage_seconds[stage].append(seconds)
            if stage == "infer":
                self.batch_sizes.append(frames)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self.read - self.written - self.dropped - self.failed

    def check_balanced(self) -> None:
        """Once the pipeline has drained: frames read = written + dropped + failed, or a bug."""
        with self._lock:
            if self.read != self.written + self.dropped + self.failed:
                raise AccountingError(
                    f"frame accounting is off: read {self.read} != written {self.written} + dropped "
                    f"{self.dropped} + failed {self.failed}"
                )
