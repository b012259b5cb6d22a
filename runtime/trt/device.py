"""What GPU, driver and CUDA this machine has -- the load-time half of the engine cache key, and `doctor`.

The device facts come from the CUDA driver library itself (libcuda, through ctypes): it is what
decides whether a GPU exists, it is present wherever a plan can run, and asking it needs neither
cuda-python nor TensorRT -- so `mclrt doctor` can say "no CUDA device" on a machine with neither.
The CUDA runtime version comes from cuda-python when installed. On Jetson, the L4T release
(/etc/nv_tegra_release) and the nvpmodel power mode are part of the picture too: a plan built under
one power mode or JetPack may be slower or invalid under another.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mclrt.runtime.errors import UserError

_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory_bytes: int

    @property
    def sm(self) -> str:
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class CudaInfo:
    """None fields mean "not available here" (no driver, no cuda-python, not a Jetson)."""

    driver_version: str | None
    runtime_version: str | None
    gpus: tuple[GpuInfo, ...]
    problem: str | None  # why there is no usable device, in words
    l4t_release: str | None
    power_mode: str | None

    @property
    def has_device(self) -> bool:
        return bool(self.gpus)


def _version_text(value: int) -> str:
    """CUDA encodes versions as 1000 * major + 10 * minor (12060 -> '12.6')."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def _driver_facts() -> tuple[str | None, tuple[GpuInfo, ...], str | None]:
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None, (), "no CUDA device: the NVIDIA driver (libcuda.so.1) is not installed"
    version = ctypes.c_int(0)
    driver_version = _version_text(version.value) if driver.cuDriverGetVersion(ctypes.byref(version)) == 0 else None
    status = driver.cuInit(0)
    if status != 0:
        return driver_version, (), f"no CUDA device: cuInit failed with CUresult {status}"
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return driver_version, (), "no CUDA device: the driver reports no GPU"
    gpus = []
    for index in range(count.value):
        device = ctypes.c_int(0)
        if driver.cuDeviceGet(ctypes.byref(device), index) != 0:
            continue
        name = ctypes.create_string_buffer(256)
        driver.cuDeviceGetName(name, 256, device)
        major, minor, memory = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_size_t(0)
        driver.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
        driver.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
        driver.cuDeviceTotalMem_v2(ctypes.byref(memory), device)
        gpus.append(GpuInfo(index, name.value.decode(errors="replace"), (major.value, minor.value), memory.value))
    return driver_version, tuple(gpus), None


def _runtime_version() -> str | None:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None
    error, version = cudart.cudaRuntimeGetVersion()
    return _version_text(version) if int(error) == 0 else None


def l4t_release(path: Path = TEGRA_RELEASE) -> str | None:
    """'R36 (release), REVISION: 4.3, ...' -> 'R36.4.3' on Jetson; None elsewhere."""
    if not path.is_file():
        return None
    first = path.read_text(errors="replace").splitlines()[0] if path.stat().st_size else ""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    return f"R{match.group(1)}.{match.group(2)}" if match else first.strip() or None


def power_mode() -> str | None:
    """The Jetson nvpmodel mode (e.g. 'MAXN'), or None where nvpmodel does not exist."""
    tool = shutil.which("nvpmodel")
    if tool is None:
        return None
    try:
        output = subprocess.run([tool, "-q"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"NV Power Mode:\s*(\S+)", output)
    return match.group(1) if match else None


def probe() -> CudaInfo:
    driver_version, gpus, problem = _driver_facts()
    return CudaInfo(
        driver_version=driver_version,
        runtime_version=_runtime_version(),
        gpus=gpus,
        problem=problem,
        l4t_release=l4t_release(),
        power_mode=power_mode(),
    )


def require_device(info: CudaInfo | None = None) -> GpuInfo:
    """The first GPU, or a UserError that says there is none (exit code 2, no traceback)."""
    info = info or probe()
    if not info.gpus:
        raise UserError(info.problem or "no CUDA device")
    return info.gpus[0]
