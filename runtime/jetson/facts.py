"""What Jetson this is, read from the files and tools JetPack provides -- `mclrt doctor`'s Jetson rows.

Sources, all plain text (formats in tests/fixtures/jetson/README.md, with where each was copied from):
- /proc/device-tree/model           the board name, NUL-terminated ("NVIDIA Jetson AGX Orin Developer Kit")
- /proc/device-tree/compatible      NUL-separated; the module part number ("nvidia,p3767-0003" = Orin Nano 8GB)
- /etc/nv_tegra_release             "# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, EABI: aarch64, ..."
- /var/lib/dpkg/status              versions of nvidia-l4t-core, nvidia-jetpack, tensorrt, cuda-cudart-X-Y
- /usr/local/cuda/version.json      the CUDA toolkit version where dpkg does not know it
- /proc/meminfo                     RAM and swap (unified memory: the GPU allocates from the same RAM)
- `nvpmodel -q`                     "NV Power Mode: MAXN" then the mode id
- `jetson_clocks --show`            CPU/GPU/EMC clocks and one "DLAn_CORE:" line per DLA core (needs root)

`read_facts(root)` reads them below `root` ("/" on a device; a fixture tree in tests). Tool outputs come
from running the tools when root is "/", and from `root/commands/<tool>.txt` otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# JetPack line per L4T major release (Jetson Linux release notes): R35 = JetPack 5, R36 = 6, R38/R39 = 7.
JETPACK_LINE = {35: "5", 36: "6", 38: "7", 39: "7"}
# Exact JetPack per L4T release where nvidia-jetpack is not installed (JetPack archive pages).
JETPACK_BY_L4T = {
    "R36.3": "6.0", "R36.4.0": "6.1", "R36.4.2": "6.1", "R36.4.3": "6.2", "R36.4.4": "6.2.1", "R36.4.7": "6.2.1",
    "R36.5": "6.2.2", "R38.2": "7.0", "R38.4": "7.1", "R39.2": "7.2",
}
# DLA cores per module (P-number from the device tree): the Jetson Orin and Thor module data sheets.
# Orin Nano has none; Orin NX 8GB has one, 16GB two; AGX Orin two; Thor none.
DLA_CORES_BY_MODULE = {
    "p3767-0000": 2, "p3767-0001": 1,  # Orin NX 16GB / 8GB
    "p3767-0003": 0, "p3767-0004": 0, "p3767-0005": 0,  # Orin Nano 8GB / 4GB / devkit module
    "p3701-0000": 2, "p3701-0004": 2, "p3701-0005": 2, "p3701-0008": 2,  # AGX Orin 32GB / 64GB / Industrial
    "p3834-0008": 0, "p3834-0000": 0,  # AGX Thor
}
COMMANDS = {"nvpmodel": ("nvpmodel", "-q"), "jetson_clocks": ("jetson_clocks", "--show")}

CommandRunner = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Clock:
    name: str  # "GPU", "EMC", "DLA0_CORE", ...
    min_hz: int
    max_hz: int
    current_hz: int


@dataclass(frozen=True)
class Clocks:
    """`jetson_clocks --show`: clocks pinned to their maximum (jetson_clocks ran) or scaling."""

    cpus_online: int
    cpu_max_khz: int | None
    units: dict[str, Clock] = field(default_factory=dict)
    dla_cores: int = 0

    @property
    def pinned(self) -> bool:
        """True when GPU and EMC run at their maximum as their minimum (what `sudo jetson_clocks` sets)."""
        checked = [self.units[name] for name in ("GPU", "EMC") if name in self.units]
        return bool(checked) and all(c.min_hz == c.max_hz for c in checked)


@dataclass(frozen=True)
class Memory:
    total_bytes: int
    available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int


@dataclass(frozen=True)
class JetsonFacts:
    """None means "not found on this machine"; `is_jetson` is False on any other computer."""

    model: str | None
    module: str | None  # P-number, e.g. "p3767-0003"
    soc: str | None  # "tegra234" (Orin), "tegra264" (Thor)
    l4t: str | None  # "R36.4.3"
    l4t_core_package: str | None  # nvidia-l4t-core's version, e.g. "36.4.3-20250107174145"
    jetpack: str | None  # "6.2" (from nvidia-jetpack, else the L4T table)
    jetpack_line: str | None  # "6" or "7": which install recipe and wheels apply
    tensorrt: str | None
    cuda: str | None
    dla_cores: int | None  # None: unknown module and no jetson_clocks output
    power_mode: str | None
    power_mode_id: int | None
    clocks: Clocks | None
    memory: Memory | None

    @property
    def is_jetson(self) -> bool:
        return self.l4t is not None or (self.soc or "").startswith("tegra")


# --- parsers, one per source ------------------------------------------------------------------------


def parse_tegra_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.3, ...' -> 'R36.4.3'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{match.group(1)}.{match.group(2)}" if match else None


def parse_device_tree_strings(data: bytes) -> list[str]:
    """Device-tree string properties are NUL-terminated (lists: NUL-separated)."""
    return [part.decode(errors="replace").strip() for part in data.split(b"\0") if part.strip()]


def parse_dpkg_status(text: str, wanted: Callable[[str], bool]) -> dict[str, str]:
    """Package -> Version for installed packages in a dpkg status file (RFC 822 stanzas)."""
    versions = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, flags=re.MULTILINE))
        name = fields.get("Package")
        if name and wanted(name) and "installed" in fields.get("Status", "").split() and "Version" in fields:
            versions[name] = fields["Version"]
    return versions


def parse_meminfo(text: str) -> Memory | None:
    values = {key: int(kb) * 1024 for key, kb in re.findall(r"^(\w+):\s+(\d+) kB$", text, flags=re.MULTILINE)}
    if "MemTotal" not in values:
        return None
    return Memory(values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0)), values.get("SwapTotal", 0), values.get("SwapFree", 0))


def parse_nvpmodel(text: str) -> tuple[str | None, int | None]:
    """'NV Power Mode: MAXN\\n0' -> ('MAXN', 0); warnings ("NVPM WARN: ...") may come first."""
    match = re.search(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)?", text + "\n")
    if match is None:
        return None, None
    return match.group(1), int(match.group(2)) if match.group(2) else None


_CLOCK = re.compile(r"^\s*(?P<name>GPU|EMC|DLA\d_CORE|DLA\d_FALCON|PVA\d_\w+):?\s+(?:Online=\d\s+)?MinFreq=(?P<min>\d+) MaxFreq=(?P<max>\d+) CurrentFreq=(?P<cur>\d+)", re.MULTILINE)
_CPU = re.compile(r"^\s*cpu\d+:\s+(?:Online=(?P<online>\d)\s+)?Governor=\S+ MinFreq=\d+ MaxFreq=(?P<max>\d+)", re.MULTILINE)


def parse_jetson_clocks(text: str) -> Clocks | None:
    """`jetson_clocks --show` (JetPack 6 and 7 formats; older ones lack `Online=` on CPU lines)."""
    cpus = [m for m in _CPU.finditer(text)]
    units = {m.group("name"): Clock(m.group("name"), int(m.group("min")), int(m.group("max")), int(m.group("cur"))) for m in _CLOCK.finditer(text)}
    if not cpus and not units:
        return None
    online = [m for m in cpus if m.group("online") != "0"]
    return Clocks(
        cpus_online=len(online),
        cpu_max_khz=max((int(m.group("max")) for m in online), default=None),
        units=units,
        dla_cores=sum(1 for name in units if re.fullmatch(r"DLA\d_CORE", name)),
    )


def parse_cuda_version_json(text: str) -> str | None:
    try:
        return json.loads(text)["cuda"]["version"]
    except (ValueError, KeyError, TypeError):
        return None


# --- reading a root folder ------------------------------------------------------------------------


def command_runner(root: Path) -> CommandRunner:
    """The tools themselves on a live system ("/"); their recorded outputs under root/commands/ otherwise."""
    if Path(root).resolve() == Path("/"):
        return run_tool
    return lambda name: _read_text(Path(root) / "commands" / f"{name}.txt")


def run_tool(name: str) -> str | None:
    """Output of a JetPack tool, or None where it is missing or refuses (jetson_clocks --show needs root)."""
    argv = COMMANDS[name]
    tool = shutil.which(argv[0])
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, *argv[1:]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _upstream_version(debian_version: str | None) -> str | None:
    """'10.3.0.30-1+cuda12.5' -> '10.3.0.30'; '36.4.3-20250107174145' stays whole (its date is the build)."""
    return None if debian_version is None else debian_version.split("-")[0].split("+")[0]


def read_facts(root: Path = Path("/"), run: CommandRunner | None = None) -> JetsonFacts:
    root = Path(root)
    run = run or command_runner(root)
    model_bytes = _read_bytes(root / "proc/device-tree/model")
    model = (parse_device_tree_strings(model_bytes) or [None])[0] if model_bytes else None
    compatible = parse_device_tree_strings(_read_bytes(root / "proc/device-tree/compatible") or b"")
    module = next((m.group(1) for c in compatible if (m := re.fullmatch(r"nvidia,(p\d{4}-\d{4})", c))), None)
    soc = next((c.split(",", 1)[1] for c in compatible if re.fullmatch(r"nvidia,tegra\d+", c)), None)
    l4t = parse_tegra_release(_read_text(root / "etc/nv_tegra_release") or "")

    packages = parse_dpkg_status(
        _read_text(root / "var/lib/dpkg/status") or "",
        lambda name: name in ("nvidia-l4t-core", "nvidia-jetpack", "tensorrt", "libnvinfer10", "libnvinfer8") or name.startswith("cuda-cudart-"),
    )
    tensorrt = _upstream_version(packages.get("tensorrt") or packages.get("libnvinfer10") or packages.get("libnvinfer8"))
    cudart = sorted(name for name in packages if name.startswith("cuda-cudart-") and not name.startswith("cuda-cudart-dev"))
    cuda = _upstream_version(packages[cudart[-1]]) if cudart else parse_cuda_version_json(_read_text(root / "usr/local/cuda/version.json") or "")

    jetpack = _upstream_version(packages.get("nvidia-jetpack"))
    if jetpack is None and l4t is not None:
        jetpack = JETPACK_BY_L4T.get(l4t) or JETPACK_BY_L4T.get(".".join(l4t.split(".")[:2]))
    line = JETPACK_LINE.get(int(l4t[1:].split(".")[0])) if l4t else None

    is_jetson = l4t is not None or (soc or "").startswith("tegra")
    power_mode = power_mode_id = None
    clocks = None
    if is_jetson:  # never run Jetson tools elsewhere
        power_mode, power_mode_id = parse_nvpmodel(run("nvpmodel") or "")
        clocks = parse_jetson_clocks(run("jetson_clocks") or "")
    # The board's own clock table counts its DLA cores; without it (no root), the module's data sheet does.
    dla = clocks.dla_cores if clocks is not None else DLA_CORES_BY_MODULE.get(module or "")
    return JetsonFacts(
        model=model,
        module=module,
        soc=soc,
        l4t=l4t,
        l4t_core_package=packages.get("nvidia-l4t-core"),
        jetpack=jetpack,
        jetpack_line=line,
        tensorrt=tensorrt,
        cuda=cuda,
        dla_cores=dla if is_jetson else None,
        power_mode=power_mode,
        power_mode_id=power_mode_id,
        clocks=clocks,
        memory=parse_meminfo(_read_text(root / "proc/meminfo") or ""),
    )


def is_jetson(root: Path = Path("/")) -> bool:
    """The cheap test (no tools run): JetPack's L4T release file exists."""
    return (Path(root) / "etc/nv_tegra_release").is_file()


def read_memory(root: Path = Path("/")) -> Memory | None:
    return parse_meminfo(_read_text(Path(root) / "proc/meminfo") or "")


def _gib(value: int) -> str:
    return f"{value / 2**30:.1f} GiB"


def doctor_rows(facts: JetsonFacts) -> list[tuple[str, str]]:
    """(topic, finding) rows for `mclrt doctor`; none on a machine that is not a Jetson."""
    if not facts.is_jetson:
        return []
    rows = [("Jetson module", f"{facts.model or 'unknown model'} ({facts.module or 'module ?'}, {facts.soc or 'SoC ?'})")]
    rows.append(
        ("Jetson software", f"L4T {facts.l4t or '?'} (nvidia-l4t-core {facts.l4t_core_package or 'not installed'}), "
         f"JetPack {facts.jetpack or '?'} (line {facts.jetpack_line or '?'}), TensorRT {facts.tensorrt or 'not installed'}, CUDA {facts.cuda or 'not installed'}")
    )
    rows.append(("DLA cores", "unknown (run `sudo mclrt doctor` so jetson_clocks can list them)" if facts.dla_cores is None else str(facts.dla_cores)))
    mode = "unknown (nvpmodel not found)" if facts.power_mode is None else f"{facts.power_mode} (mode {facts.power_mode_id})"
    rows.append(("Power mode", mode))
    if facts.clocks is None:
        rows.append(("Clocks", "unknown (jetson_clocks --show needs root)"))
    else:
        c = facts.clocks
        parts = [f"{c.cpus_online} CPUs online" + (f" up to {c.cpu_max_khz / 1e6:.2f} GHz" if c.cpu_max_khz else "")]
        for name in ("GPU", "EMC"):
            if name in c.units:
                parts.append(f"{name} {c.units[name].current_hz / 1e6:.0f}/{c.units[name].max_hz / 1e6:.0f} MHz")
        parts.append("pinned at maximum (jetson_clocks)" if c.pinned else "scaling (run `sudo jetson_clocks` before benchmarks)")
        rows.append(("Clocks", ", ".join(parts)))
    if facts.memory is not None:
        m = facts.memory
        rows.append(("Memory (shared with the GPU)", f"{_gib(m.available_bytes)} available of {_gib(m.total_bytes)}, swap {_gib(m.swap_free_bytes)} free of {_gib(m.swap_total_bytes)}"))
    return rows
