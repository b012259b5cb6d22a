"""Cubin and PTX per architecture: what compile_kernels writes, and which one the launcher loads.

Real compiles (Triton + its bundled ptxas, no GPU): the cubins are checked in their ELF header
(CUDA machine, SM number), the PTX in its `.version` against the driver line it must load on, and
the launcher's choice (`kernel_images.choose_image`, the function `correspondence_launch` calls) is
run on the compiled files for several devices and drivers. Whether a GPU then runs them is not
checked here (there is none): that is `python -m mclrt.tools.gpu_check`.
"""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("triton")

STEM = "correspondence_fp16_n1024_m1024_c640_cv3_s100"  # the nano preset's geometry


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from mclrt.tools.compile_kernels import main

    out = tmp_path_factory.mktemp("kernels")
    assert main(["--arch", "87", "90", "--preset", "nano", "--dtype", "fp16", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("arch", [87, 90])
def test_cubin_is_a_cuda_elf_for_its_sm(compiled, arch):
    from mclrt.runtime.kernels.kernel_images import EM_CUDA, cubin_arch

    cubin = (compiled / f"sm_{arch}" / f"{STEM}.cubin").read_bytes()
    assert cubin[:4] == b"\x7fELF" and cubin[4] == 2  # 64-bit ELF
    assert struct.unpack_from("<H", cubin, 18)[0] == EM_CUDA == 190
    assert cubin_arch(cubin) == arch
    # The cubin holds the four-pointer entry the launcher calls.
    assert b"correspondence_softmax_kernel" in cubin


@pytest.mark.parametrize("arch, target", [(87, "sm_87"), (90, "sm_90a")])
def test_ptx_loads_on_a_cuda_12_6_driver(compiled, arch, target):
    import json

    from mclrt.runtime.kernels.kernel_images import ptx_target, ptx_version
    from mclrt.runtime.kernels.ptx_isa import ptx_isa_of_cuda

    ptx = (compiled / f"sm_{arch}" / f"{STEM}.ptx").read_text()
    jetpack6 = ptx_isa_of_cuda(12, 6)
    assert jetpack6 == 85
    assert ptx_version(ptx) <= jetpack6  # Triton's default (its ptxas's newest ISA) would be 8.7+
    assert f".target {target}" in ptx and ptx_target(ptx)[0] == arch
    meta = json.loads((compiled / f"sm_{arch}" / f"{STEM}.json").read_text())
    assert meta["cubin"] == f"{STEM}.cubin" and meta["ptx_isa"] == "8.5"


def test_launcher_prefers_the_matching_cubin_and_falls_back_to_ptx(compiled):
    from mclrt.runtime.kernels.correspondence_launch import images_in_folder
    from mclrt.runtime.kernels.kernel_images import choose_image

    found = images_in_folder(compiled, STEM)
    images = [image for image, _ in found]
    assert sorted((i.kind, i.arch) for i in images) == [("cubin", 87), ("cubin", 90), ("ptx", 87), ("ptx", 90)]

    def pick(device, driver_isa, prefer="cubin"):
        image = choose_image(images, device, driver_isa, prefer)
        return image.kind, image.arch

    assert pick(87, 85) == ("cubin", 87)  # Orin on JetPack 6
    assert pick(90, 90) == ("cubin", 90)  # H100/H200
    assert pick(89, 85) == ("cubin", 87)  # same major, newer minor: sm_87 machine code runs
    assert pick(90, 85, prefer="ptx") == ("ptx", 90)  # the JIT path on request
    # sm_100: the sm_90a cubin and PTX are Hopper-only, the sm_87 cubin is another major: JIT sm_87's PTX.
    assert pick(100, 87) == ("ptx", 87)
    with pytest.raises(ValueError, match="PTX ISA <= 8.4"):
        choose_image(images, 100, 84)  # a driver too old for the PTX, and no cubin for the device
    with pytest.raises(ValueError, match="sm_80"):
        choose_image(images, 80, 90)  # older than every image

    shapes = {image.kind + str(image.arch): shape for image, shape in found}
    assert shapes["cubin90"].name == "correspondence_softmax_kernel" and shapes["cubin90"].threads_per_block == 128


def test_cubin_reader_refuses_what_is_not_a_cuda_elf(compiled):
    from mclrt.runtime.kernels.kernel_images import cubin_arch

    with pytest.raises(ValueError, match="not an ELF"):
        cubin_arch((compiled / "sm_87" / f"{STEM}.ptx").read_bytes())
    elf = bytearray((compiled / "sm_87" / f"{STEM}.cubin").read_bytes())
    elf[18:20] = struct.pack("<H", 62)  # x86-64
    with pytest.raises(ValueError, match="not CUDA"):
        cubin_arch(bytes(elf))


def test_architectures_are_gated_by_the_installed_triton():
    import triton

    from mclrt.runtime.kernels import ptx_isa
    from mclrt.runtime.kernels.correspondence_triton import ArchNotSupported, compile_ptx, unsupported_reason
    from mclrt.tools.compile_kernels import supported_archs

    # Triton 3.6 bundles ptxas 12.8, which has no sm_110 (CUDA 13.0); the PTX ISA follows each arch.
    assert "needs CUDA 13.0" in ptx_isa.unsupported_reason(110, (12, 8))
    assert ptx_isa.unsupported_reason(110, (13, 0)) is None
    assert ptx_isa.target_ptx_isa(87, (12, 9)) == 85 and ptx_isa.target_ptx_isa(110, (13, 4)) == 90
    assert ptx_isa.ptx_isa_of_cuda(12, 8) == 87 and ptx_isa.ptx_isa_of_cuda(13, 1) == 91
    # The installed Triton: an arch it cannot do is skipped with its reason, never a crash.
    archs, skipped = supported_archs([87, 110, 130])
    assert 87 in archs and "not a GPU architecture" in skipped[130]
    assert (110 in archs) == (unsupported_reason(110) is None), triton.__version__
    with pytest.raises(ArchNotSupported, match="sm_130"):
        compile_ptx(130, "fp16", Cv=3, C=64, N=64)


def test_cubins_come_from_the_oldest_bundled_ptxas_that_can_assemble_them():
    """A driver loads machine code only from its own CUDA major or an older one. Triton >= 3.7
    assembles sm_90+ with a CUDA 13 ptxas by default; its bundled CUDA 12 ptxas also knows sm_90a,
    and a cubin from it loads on CUDA 12.x drivers (r570 and friends) as well as on 13.x."""
    from triton import knobs

    from mclrt.runtime.kernels import ptx_isa
    from mclrt.runtime.kernels.correspondence_triton import ptxas_for

    bundled = {}
    for name in ("ptxas", "ptxas_blackwell"):
        tool = getattr(knobs.nvidia, name, None)
        if tool is not None and tool.path:
            bundled[tool.path] = ptx_isa.parse_cuda_version(tool.version)
    for arch in (87, 90):
        path, cuda = ptxas_for(arch)
        able = [v for v in bundled.values() if ptx_isa.unsupported_reason(arch, v) is None]
        assert cuda == min(able), (arch, path, bundled)


def test_launcher_skips_a_cubin_from_a_newer_cuda_than_the_driver(compiled):
    from mclrt.runtime.kernels.correspondence_launch import images_in_folder
    from mclrt.runtime.kernels.kernel_images import choose_image, cubin_image

    found = [image for image, _ in images_in_folder(compiled, STEM)]
    cubin90 = next(i for i in found if i.kind == "cubin" and i.arch == 90)
    assert cubin90.ptxas_major is not None  # read from the sidecar compile_kernels wrote
    # The same machine code, as a CUDA 13 ptxas would have made it.
    from_cuda13 = cubin_image(cubin90.data, "ptxas 13.4", cubin90.arch_specific, ptxas_major=13)
    images = [from_cuda13, *(i for i in found if i.kind == "ptx")]
    assert choose_image(images, 90, 90, driver_major=13) is from_cuda13  # a CUDA 13 driver loads it
    fallback = choose_image(images, 90, 87, driver_major=12)  # an r570 (CUDA 12.8) driver cannot
    assert (fallback.kind, fallback.arch) == ("ptx", 90)
    assert "CUDA 13 ptxas" in from_cuda13.describe()
