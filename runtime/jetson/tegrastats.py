"""`tegrastats` lines -> numbers: power rails, GPU load and clocks, temperatures, RAM.

The line format differs between releases (tests/fixtures/jetson/*/tegrastats*.txt hold real lines):
- JetPack 6 Orin Nano/NX: `GR3D_FREQ 1%` (load only), rails `VDD_IN 3913mW/3922mW` (instant/average).
- JetPack 6 AGX Orin: `GR3D_FREQ 0%@[0,0]` (load @ per-GPC MHz), rails VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0.
- JetPack 7 Thor (R38): `GR3D_FREQ @[0,0,0]` (no load figure at all), rails VDD_GPU, VDD_CPU_SOC_MSS,
  VIN_SYS_5V0 and on some boards VIN; R39.2 writes `4925mW/4925mW/4925mW` (instant/average/max) and
  temperatures as `cpu@34.843C/34.843C` (current/max).

Which rail is the board's input power differs too; `input_power_mw` says which it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_GR3D = re.compile(r"\bGR3D_FREQ (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)mW/(\d+)mW(?:/(\d+)mW)?")
# The rail that measures the whole module's input, per board family, in order of preference.
INPUT_RAILS = ("VDD_IN", "VIN")


@dataclass(frozen=True)
class Rail:
    name: str
    instant_mw: int
    average_mw: int


@dataclass(frozen=True)
class TegraSample:
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    gpu_load_percent: int | None = None  # None on Thor: its tegrastats reports clocks only
    gpu_mhz: tuple[int, ...] = ()
    temperatures_c: dict[str, float] = field(default_factory=dict)
    rails: dict[str, Rail] = field(default_factory=dict)

    def input_power_mw(self) -> tuple[int | None, str]:
        """(instant input power, how it was obtained): the input rail where the board has one, else the rails' sum."""
        for name in INPUT_RAILS:
            if name in self.rails:
                return self.rails[name].instant_mw, name
        if not self.rails:
            return None, "no power rails"
        return sum(r.instant_mw for r in self.rails.values()), "sum of " + "+".join(self.rails)


def parse_line(line: str) -> TegraSample | None:
    """One tegrastats line; None for a line that is not one (empty, or a tool message)."""
    ram = _RAM.search(line)
    rails = {m.group(1): Rail(m.group(1), int(m.group(2)), int(m.group(3))) for m in _RAIL.finditer(line)}
    if ram is None and not rails:
        return None
    swap = _SWAP.search(line)
    gr3d = _GR3D.search(line)
    load = int(gr3d.group(1)) if gr3d and gr3d.group(1) is not None else None
    mhz = tuple(int(v) for v in gr3d.group(2).split(",") if v) if gr3d and gr3d.group(2) else ()
    # Temperatures are `name@value C`; CPU clocks (`14%@2188`) and the GPU field never end in C.
    temps = {m.group(1): float(m.group(2)) for m in _TEMP.finditer(line)}
    return TegraSample(
        ram_used_mb=int(ram.group(1)) if ram else None,
        ram_total_mb=int(ram.group(2)) if ram else None,
        swap_used_mb=int(swap.group(1)) if swap else None,
        swap_total_mb=int(swap.group(2)) if swap else None,
        gpu_load_percent=load,
        gpu_mhz=mhz,
        temperatures_c=temps,
        rails=rails,
    )


@dataclass(frozen=True)
class TegraSummary:
    """Averages over the samples taken while something ran."""

    samples: int
    input_power_w: float | None
    input_power_source: str
    rails_w: dict[str, float]
    gpu_load_percent: float | None
    max_temperatures_c: dict[str, float]

    def to_json(self) -> dict:
        return {
            "samples": self.samples,
            "input_power_w": self.input_power_w,
            "input_power_source": self.input_power_source,
            "rails_w": self.rails_w,
            "gpu_load_percent": self.gpu_load_percent,
            "max_temperatures_c": self.max_temperatures_c,
        }


def summarize(samples: list[TegraSample]) -> TegraSummary | None:
    if not samples:
        return None
    powers = [s.input_power_mw() for s in samples]
    known = [mw for mw, _ in powers if mw is not None]
    rails: dict[str, list[int]] = {}
    for sample in samples:
        for rail in sample.rails.values():
            rails.setdefault(rail.name, []).append(rail.instant_mw)
    loads = [s.gpu_load_percent for s in samples if s.gpu_load_percent is not None]
    temps: dict[str, float] = {}
    for sample in samples:
        for name, value in sample.temperatures_c.items():
            temps[name] = max(value, temps.get(name, value))
    return TegraSummary(
        samples=len(samples),
        input_power_w=round(sum(known) / len(known) / 1000, 3) if known else None,
        input_power_source=powers[-1][1],
        rails_w={name: round(sum(v) / len(v) / 1000, 3) for name, v in rails.items()},
        gpu_load_percent=round(sum(loads) / len(loads), 1) if loads else None,
        max_temperatures_c=temps,
    )
