"""How many CPU threads a command may use: never more than the cores this process may run on.

More ONNX Runtime threads than cores only makes them wait for each other (500 threads on 2 cores
took 348 s for 14 images and starved the machine), so --threads is capped with a one-line warning.
"""

from __future__ import annotations

import os
import sys


def available_cores() -> int:
    """Cores this process may run on (taskset, cgroup cpusets), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def cap_threads(requested: int, option: str = "--threads") -> int:
    """`requested` (0: ONNX Runtime's default, one per core), at most the available cores."""
    cores = available_cores()
    if requested > cores:
        print(f"warning: {option} {requested} is more than the {cores} core(s) available; using {cores}", file=sys.stderr)
        return cores
    return requested
