"""Which PTX ISA and which CUDA release each GPU architecture needs, and which a driver accepts.

Pure tables and arithmetic (no CUDA, no Triton): used when compiling the kernel (pick the PTX ISA
to write, refuse architectures the installed Triton's ptxas cannot assemble) and when loading it
(can this driver JIT that PTX?). Sources: NVIDIA's PTX ISA release notes ("PTX ISA version" table
per CUDA release, and the minimum ISA of each `.target`).
"""

from __future__ import annotations

# The oldest driver line the written PTX must load on: CUDA 12.6 (driver r560), which is also
# JetPack 6's CUDA. Its PTX ISA is 8.5, so PTX written at 8.5 JIT-compiles on any driver since then.
# (Triton's own choice follows its bundled ptxas: 8.7 with Triton 3.6, 8.8 / 9.x with later ones,
# which a JetPack 6 or r560 driver refuses.)
DRIVER_FLOOR = (12, 6)

# Per compute capability: (first CUDA release whose ptxas assembles it, lowest PTX ISA of its
# `.target`). sm_90 and later are compiled by Triton as the arch-specific "a" targets (sm_90a ...).
ARCHS: dict[int, tuple[tuple[int, int], int]] = {
    75: ((10, 0), 63),
    80: ((11, 0), 70),
    86: ((11, 1), 71),
    87: ((11, 4), 74),
    89: ((11, 8), 78),
    90: ((12, 0), 80),
    100: ((12, 8), 86),
    103: ((12, 9), 88),
    110: ((13, 0), 90),  # was sm_101 in CUDA 12.8/12.9 (Jetson Thor)
    120: ((12, 8), 87),
    121: ((12, 9), 88),
}


def ptx_isa_of_cuda(major: int, minor: int) -> int:
    """The newest PTX ISA (as 10 * major + minor: 8.5 -> 85) that CUDA `major.minor` (a ptxas, or a
    driver's CUDA version) accepts. CUDA 12.0-12.5 -> 8.0-8.5, 12.6 -> 8.5, 12.8 -> 8.7, 12.9 -> 8.8,
    13.x -> 9.x (12.7 was never released)."""
    if major >= 13:
        return 90 + (major - 13) * 10 + minor
    if major == 12:
        return 80 + minor if minor < 6 else 79 + minor
    if major == 11:
        return 70 + minor
    raise ValueError(f"CUDA {major}.{minor} is older than anything this kernel supports")


def driver_cuda_version(version: int) -> tuple[int, int]:
    """cuDriverGetVersion's int (12060) as (12, 6)."""
    return version // 1000, (version % 1000) // 10


def parse_cuda_version(text: str) -> tuple[int, int]:
    """'12.8' or '13.4.59' -> (12, 8)."""
    major, minor = text.strip().split(".")[:2]
    return int(major), int(minor)


def unsupported_reason(arch: int, ptxas_cuda: tuple[int, int], ptxas_label: str = "ptxas") -> str | None:
    """Why `ptxas_cuda`'s ptxas cannot assemble sm_<arch>, or None when it can."""
    if arch not in ARCHS:
        return f"sm_{arch} is not a GPU architecture this kernel knows ({', '.join(f'sm_{a}' for a in ARCHS)})"
    needs, isa = ARCHS[arch]
    if ptxas_cuda < needs:
        return (
            f"{ptxas_label} is CUDA {ptxas_cuda[0]}.{ptxas_cuda[1]}; sm_{arch} needs CUDA {needs[0]}.{needs[1]} or newer"
        )
    if isa > ptx_isa_of_cuda(*ptxas_cuda):
        return f"{ptxas_label} (CUDA {ptxas_cuda[0]}.{ptxas_cuda[1]}) cannot read PTX ISA {isa // 10}.{isa % 10}"
    return None


def target_ptx_isa(arch: int, ptxas_cuda: tuple[int, int]) -> int:
    """The PTX ISA to write for sm_<arch>: the driver floor's (8.5), raised to what the architecture
    needs (sm_110: 9.0), never above what the ptxas that assembles the cubin reads."""
    reason = unsupported_reason(arch, ptxas_cuda)
    if reason is not None:
        raise ValueError(reason)
    return min(max(ptx_isa_of_cuda(*DRIVER_FLOOR), ARCHS[arch][1]), ptx_isa_of_cuda(*ptxas_cuda))


def format_isa(isa: int) -> str:
    return f"{isa // 10}.{isa % 10}"
