"""The compiled forms of the kernel -- cubin (machine code for one architecture) and PTX (for the
driver to JIT) -- read from bytes, and the choice of which one a device loads.

No CUDA and no Triton: the launcher asks `choose_image` what to load, `compile_kernels` and the
tests use `cubin_arch` / `ptx_version` to check what was written.

The rule (CUDA's binary compatibility): a cubin for sm_XY runs on a device sm_XZ with Z >= Y of the
same major version, except the arch-specific "a" cubins (sm_90a, sm_100a, ...), which run only on
exactly that architecture; Triton compiles sm_90 and later as "a" targets. PTX is JIT-compiled by
the driver for any device at least as new as its `.target`, if the driver reads its `.version`.
Where both could run, the cubin wins: nothing to JIT, and no dependence on the driver's PTX ISA.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Literal

from mclrt.runtime.kernels.ptx_isa import format_isa

ELF_MAGIC = b"\x7fELF"
EM_CUDA = 190  # e_machine of NVIDIA cubins
# e_ident[EI_OSABI]: 0x33 for the ELF layout of ptxas <= 12.x, 0x41 for CUDA 13's, which moved the
# SM number from e_flags bits 0-7 to bits 8-15.
OSABI_CUDA = 0x33
OSABI_CUDA_V2 = 0x41

Kind = Literal["cubin", "ptx"]


@dataclass(frozen=True)
class KernelImage:
    """One loadable form of one kernel specialization."""

    kind: Kind
    arch: int  # the SM it was built for (90 for sm_90a)
    arch_specific: bool  # an "a" target: runs on exactly `arch`
    data: bytes
    origin: str  # a file path, or "triton <version>" for an in-process compile
    ptx_isa: int | None = None  # PTX only: its `.version` as 10 * major + minor
    # Cubin only: the CUDA major version of the ptxas that assembled it (None: unknown). A driver loads
    # machine code from its own CUDA major or an older one (minor-version compatibility), never a newer:
    # a cubin from Triton 3.7+'s CUDA 13 ptxas fails on an r570 (CUDA 12.8) driver.
    ptxas_major: int | None = None

    def describe(self) -> str:
        target = f"sm_{self.arch}{'a' if self.arch_specific else ''}"
        version = f", PTX ISA {format_isa(self.ptx_isa)}" if self.ptx_isa is not None else ""
        if self.ptxas_major is not None:
            version += f", CUDA {self.ptxas_major} ptxas"
        return f"{self.kind} {target}{version} from {self.origin}"


def ptx_version(ptx: str) -> int:
    """The `.version` of a PTX text as 10 * major + minor (8.5 -> 85)."""
    found = re.search(r"^\s*\.version\s+(\d+)\.(\d+)", ptx, re.MULTILINE)
    if found is None:
        raise ValueError("no .version line in the PTX")
    return int(found.group(1)) * 10 + int(found.group(2))


def ptx_target(ptx: str) -> tuple[int, bool]:
    """The `.target` of a PTX text as (sm number, arch-specific): 'sm_90a' -> (90, True)."""
    found = re.search(r"^\s*\.target\s+sm_(\d+)(a?)", ptx, re.MULTILINE)
    if found is None:
        raise ValueError("no .target sm_XX line in the PTX")
    return int(found.group(1)), found.group(2) == "a"


def cubin_arch(cubin: bytes) -> int:
    """The SM number a cubin was assembled for, read from its ELF header; ValueError if the bytes
    are not a 64-bit little-endian CUDA ELF."""
    if len(cubin) < 64 or cubin[:4] != ELF_MAGIC:
        raise ValueError("not an ELF file")
    if cubin[4] != 2 or cubin[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF")
    (machine,) = struct.unpack_from("<H", cubin, 18)
    if machine != EM_CUDA:
        raise ValueError(f"ELF e_machine is {machine}, not CUDA ({EM_CUDA})")
    (flags,) = struct.unpack_from("<I", cubin, 48)
    osabi = cubin[7]
    if osabi == OSABI_CUDA_V2:
        return (flags >> 8) & 0xFF
    if osabi == OSABI_CUDA:
        return flags & 0xFF
    raise ValueError(f"unknown CUDA ELF OS/ABI 0x{osabi:x}")


def cubin_image(data: bytes, origin: str, arch_specific: bool, ptxas_major: int | None = None) -> KernelImage:
    return KernelImage("cubin", cubin_arch(data), arch_specific, bytes(data), origin, ptxas_major=ptxas_major)


def ptx_image(text: str, origin: str) -> KernelImage:
    arch, arch_specific = ptx_target(text)
    return KernelImage("ptx", arch, arch_specific, text.encode(), origin, ptx_isa=ptx_version(text))


def cubin_runs_on(image: KernelImage, device_arch: int, driver_major: int | None = None) -> bool:
    if driver_major is not None and image.ptxas_major is not None and image.ptxas_major > driver_major:
        return False
    if image.arch_specific:
        return image.arch == device_arch
    return image.arch // 10 == device_arch // 10 and image.arch <= device_arch


def ptx_runs_on(image: KernelImage, device_arch: int, driver_isa: int) -> bool:
    if image.ptx_isa is None or image.ptx_isa > driver_isa:
        return False
    if image.arch_specific:
        return image.arch == device_arch
    return image.arch <= device_arch


def choose_image(
    images: list[KernelImage], device_arch: int, driver_isa: int, prefer: Kind = "cubin", driver_major: int | None = None
) -> KernelImage:
    """The image to load on a device of compute capability `device_arch` whose driver reads PTX up
    to ISA `driver_isa`: the newest matching cubin, else the newest PTX the driver can JIT.
    `driver_major` (the driver's CUDA major version) rules out cubins from a newer CUDA's ptxas.
    `prefer="ptx"` reverses the order (to exercise the JIT path on purpose). ValueError, naming
    what there is and why none fits, when nothing can run."""
    cubins = sorted((i for i in images if i.kind == "cubin" and cubin_runs_on(i, device_arch, driver_major)), key=lambda i: i.arch)
    ptxs = sorted(
        (i for i in images if i.kind == "ptx" and ptx_runs_on(i, device_arch, driver_isa)), key=lambda i: i.arch
    )
    order = (cubins, ptxs) if prefer == "cubin" else (ptxs, cubins)
    for candidates in order:
        if candidates:
            return candidates[-1]
    have = "; ".join(image.describe() for image in images) or "no kernel images"
    raise ValueError(
        f"no kernel image runs on sm_{device_arch} with a driver reading PTX ISA <= {format_isa(driver_isa)} (have: {have})"
    )
