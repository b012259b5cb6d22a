"""One frame on its way through the pipeline, and the timing it collects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class Frame:
    index: int  # position in the source, counting frames that could not be read
    started: float  # time.perf_counter() when reading it began: per-frame latency counts from here
    rgb: np.ndarray | None = None  # uint8 [H, W, 3] as read; None when it could not be read
    problem: str | None = None  # why it could not be read (then it is counted as failed)
    condition: np.ndarray | None = None  # float32 [L, H, W] in [0, 1], the translator's input
    image: np.ndarray | None = None  # float32 [3, H, W] in [-1, 1], the translator's output
    seconds: dict[str, float] = field(default_factory=dict)  # time spent inside each stage (queue waits excluded)

    @property
    def compute_seconds(self) -> float:
        """What this frame cost the stages, without the time it waited in queues."""
        return sum(self.seconds.values())
