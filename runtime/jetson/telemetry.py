"""Power, GPU load and temperatures while something runs: `tegrastats` in the background.

`Telemetry()` is a context manager around a benchmark or a video run. On a Jetson it starts
`tegrastats --interval <ms>`, parses each line as it comes (mclrt.runtime.jetson.tegrastats) and
summarizes them at the end; on any other machine (no tegrastats on PATH) it records nothing and
`summary()` is None, so callers add nothing to their output. Replayed against recorded lines in the
tests; never run against a real tegrastats by this project.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Sequence

from mclrt.runtime.jetson.tegrastats import TegraSample, TegraSummary, parse_line, summarize


def tegrastats_command(interval_ms: int) -> list[str] | None:
    tool = shutil.which("tegrastats")
    return None if tool is None else [tool, "--interval", str(int(interval_ms))]


class Telemetry:
    def __init__(self, interval_ms: int = 500, command: Sequence[str] | None = None):
        self.command = list(command) if command is not None else tegrastats_command(interval_ms)
        self.interval_s = interval_ms / 1000
        self.samples: list[TegraSample] = []
        self._first = threading.Event()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.command is not None

    def __enter__(self) -> "Telemetry":
        if self.command is not None:
            self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._reader = threading.Thread(target=self._read, name="tegrastats", daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            sample = parse_line(line)
            if sample is not None:
                self.samples.append(sample)
                self._first.set()

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            # A run shorter than one interval still gets the sample tegrastats takes at its end.
            self._first.wait(timeout=self.interval_s + 1.0)
            if self._process.poll() is None:
                self._process.terminate()
            self._process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)

    def summary(self) -> TegraSummary | None:
        return summarize(self.samples)


def report(summary: TegraSummary | None, frames_per_second: float | None) -> dict | None:
    """The `jetson` block of a JSON report: the summary plus frames per second per watt of input power."""
    if summary is None:
        return None
    document = summary.to_json()
    if frames_per_second is not None and summary.input_power_w:
        document["fps_per_watt"] = round(frames_per_second / summary.input_power_w, 3)
    return document


def summary_line(document: dict) -> str:
    """One human line from `report()`'s block: input power, GPU load, hottest sensor, fps per watt."""
    parts = [f"power: {document['input_power_w']:.2f} W ({document['input_power_source']})" if document.get("input_power_w") is not None else "power: no rails"]
    if document.get("gpu_load_percent") is not None:
        parts.append(f"GPU load {document['gpu_load_percent']:.0f}%")
    temps = document.get("max_temperatures_c") or {}
    if temps:
        name = max(temps, key=temps.get)
        parts.append(f"max {name} {temps[name]:.1f} C")
    if document.get("fps_per_watt") is not None:
        parts.append(f"{document['fps_per_watt']:.2f} fps/W")
    return ", ".join(parts) + f" ({document['samples']} tegrastats samples)"
