"""Launch the CorrespondenceSoftmax kernel on a CUDA stream from raw device pointers, without torch.

NEVER RUN: this project has had no GPU. The code follows the documented CUDA driver and runtime
APIs of cuda-python (`cuda.bindings.driver`: cuModuleLoadData, cuModuleGetFunction,
cuFuncSetAttribute, cuLaunchKernel with a `void**` argument array; `cuda.bindings.runtime` for the
device and its primary context) and has not launched a kernel anywhere yet.

Why not Triton's own launcher: `kernel[grid](...)` gets the device and the stream from torch
(`triton.runtime.driver` builds its CUDA driver with `import torch`), and the runtime never imports
torch. A TensorRT plugin's `enqueue` hands over plain integers -- device pointers and a
cudaStream_t -- so this module loads the kernel's four-pointer entry (q, k, v, out), the same entry
TensorRT's AOT plugin launches, and launches it with cuLaunchKernel.

Which form is loaded (`kernel_images.choose_image`): a cubin for the device's architecture when
there is one, else PTX for the driver to JIT, if the driver reads its PTX ISA. The images come from
a folder written by `python -m mclrt.tools.compile_kernels` (`kernel_dir=`, or the environment
variable MCLRT_KERNEL_DIR: a Jetson without Triton), else from compiling with Triton in this process
for the current device (cubin and PTX). `loaded_kernels()` says what was loaded, and each load is
logged on the "mclrt.kernels" logger.

Triton and cuda-python are imported inside the functions, so importing this module needs neither.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mclrt.runtime.cuda_calls import check_driver, check_runtime
from mclrt.runtime.kernels import kernel_images
from mclrt.runtime.kernels.kernel_images import KernelImage, Kind
from mclrt.runtime.kernels.ptx_isa import driver_cuda_version, ptx_isa_of_cuda

# Kernels needing more dynamic shared memory than this must opt in per function (CUDA rule).
DEFAULT_SHARED_MEM_LIMIT = 48 * 1024
KERNEL_DIR_ENV = "MCLRT_KERNEL_DIR"

log = logging.getLogger("mclrt.kernels")


@dataclass(frozen=True)
class LaunchShape:
    """What cuLaunchKernel needs besides the pointers; fixed per compiled specialization."""

    name: str  # the entry point
    shared_mem: int  # dynamic shared memory bytes
    num_warps: int
    block_n: int  # query rows per program: grid x = ceil(N / block_n)

    @property
    def threads_per_block(self) -> int:
        return self.num_warps * 32


@dataclass(frozen=True)
class _LoadedKernel:
    image: KernelImage
    shape: LaunchShape
    module: Any  # CUmodule; kept so the function stays valid
    function: Any  # CUfunction


_loaded: dict[tuple, _LoadedKernel] = {}
_lock = threading.Lock()


def launch(
    q_ptr: int,
    k_ptr: int,
    v_ptr: int,
    out_ptr: int,
    B: int,
    N: int,
    M: int,
    C: int,
    Cv: int,
    scale: float,
    mask_negative: bool,
    dtype: str,
    stream: int,
    prefer: Kind = "cubin",
    kernel_dir: str | Path | None = None,
) -> KernelImage | None:
    """Enqueue out[B,N,Cv] = softmax(scale * q k^T) v on `stream` (asynchronous, like any CUDA launch).

    q_ptr [B,N,C], k_ptr [B,M,C], v_ptr [B,M,Cv], out_ptr [B,N,Cv]: contiguous row-major device
    buffers of `dtype` ("fp32" or "fp16"), 16-byte aligned. `stream` is a CUstream/cudaStream_t
    handle as an int (0 = legacy default stream). When no CUDA context is current on the thread,
    the current device's primary context is made current (as the CUDA runtime does). `prefer="ptx"`
    loads the PTX even where a cubin fits (to test the JIT path). Returns the image launched.
    Unverified on a GPU (see the module docstring).
    """
    if B == 0:
        return None
    from cuda.bindings import driver as cu

    spec = _spec(N, M, C, Cv, scale, mask_negative, dtype)
    kernel = _load(spec, prefer, kernel_dir if kernel_dir is not None else os.environ.get(KERNEL_DIR_ENV))
    grid_x = -(-N // kernel.shape.block_n)
    # cuLaunchKernel reads `void** kernelParams`: an array of addresses, each pointing at one argument.
    values = np.array([q_ptr, k_ptr, v_ptr, out_ptr], dtype=np.uint64)
    addresses = np.array([values.ctypes.data + i * values.itemsize for i in range(values.size)], dtype=np.uint64)
    check_driver(
        cu.cuLaunchKernel(
            kernel.function,
            grid_x,
            B,
            1,
            kernel.shape.threads_per_block,
            1,
            1,
            kernel.shape.shared_mem,
            cu.CUstream(stream),
            addresses.ctypes.data,
            0,
        ),
        "cuLaunchKernel",
    )
    return kernel.image


def loaded_kernels() -> list[str]:
    """What this process loaded, one line per (context, specialization, preference)."""
    with _lock:
        return [f"{key[1].stem}: {loaded.image.describe()}" for key, loaded in _loaded.items()]


def current_device_arch() -> int:
    """Compute capability of the current device as an int (8.6 -> 86, 11.0 -> 110).

    Through the runtime API, which needs no current driver context: TensorRT calls the AOT
    plugin's build callback (qdp_aot) where none may be current, and cuCtxGetDevice would fail there."""
    from cuda.bindings import runtime as rt

    device = check_runtime(rt.cudaGetDevice(), "cudaGetDevice")
    attr = rt.cudaDeviceAttr
    major = check_runtime(rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute")
    minor = check_runtime(rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute")
    return int(major) * 10 + int(minor)


def driver_cuda() -> tuple[int, int]:
    """The installed driver's CUDA version, e.g. (12, 6)."""
    from cuda.bindings import driver as cu

    return driver_cuda_version(int(check_driver(cu.cuDriverGetVersion(), "cuDriverGetVersion")))


def driver_ptx_isa() -> int:
    """The newest PTX ISA the installed driver JIT-compiles (CUDA 12.6 driver -> 85)."""
    from cuda.bindings import driver as cu

    version = check_driver(cu.cuDriverGetVersion(), "cuDriverGetVersion")
    return ptx_isa_of_cuda(*driver_cuda_version(int(version)))


def _spec(N: int, M: int, C: int, Cv: int, scale: float, mask_negative: bool, dtype: str):
    from mclrt.runtime.kernels.specs import KernelSpec

    return KernelSpec(
        dtype=dtype,
        positions=N,
        exemplar_positions=M,
        descriptor_width=C,
        value_width=Cv,
        scale=float(scale),
        mask_negative=bool(mask_negative),
    )


def _current_context() -> int:
    """The thread's current driver context, making the device's primary context current if none is."""
    from cuda.bindings import driver as cu
    from cuda.bindings import runtime as rt

    context = int(check_driver(cu.cuCtxGetCurrent(), "cuCtxGetCurrent"))
    if context == 0:
        # cudaFree(0) initializes the current device's primary context and makes it current.
        check_runtime(rt.cudaFree(0), "cudaFree(0)")
        context = int(check_driver(cu.cuCtxGetCurrent(), "cuCtxGetCurrent"))
    if context == 0:
        raise RuntimeError("no CUDA context could be made current on this thread")
    return context


def _load(spec, prefer: Kind, kernel_dir: str | Path | None) -> _LoadedKernel:
    """Choose (once per context, spec and preference) an image and load it into the current context."""
    from cuda.bindings import driver as cu

    key = (_current_context(), spec, prefer, str(kernel_dir or ""))
    with _lock:
        if key in _loaded:
            return _loaded[key]
        device_arch = current_device_arch()
        if kernel_dir:
            candidates = images_in_folder(Path(kernel_dir), spec.stem)
        else:
            candidates = images_from_triton(spec, device_arch)
        try:
            image = kernel_images.choose_image(
                [c[0] for c in candidates], device_arch, driver_ptx_isa(), prefer, driver_major=driver_cuda()[0]
            )
        except ValueError as err:
            raise RuntimeError(f"{spec.stem}: {err}") from None
        shape = next(s for i, s in candidates if i is image)
        data = image.data + b"\0" if image.kind == "ptx" else image.data  # PTX must be a C string
        buffer = np.frombuffer(data, dtype=np.uint8)
        module = check_driver(cu.cuModuleLoadData(buffer.ctypes.data), f"cuModuleLoadData ({image.describe()})")
        function = check_driver(cu.cuModuleGetFunction(module, shape.name.encode()), "cuModuleGetFunction")
        if shape.shared_mem > DEFAULT_SHARED_MEM_LIMIT:
            check_driver(
                cu.cuFuncSetAttribute(
                    function, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shape.shared_mem
                ),
                "cuFuncSetAttribute",
            )
        loaded = _LoadedKernel(image=image, shape=shape, module=module, function=function)
        _loaded[key] = loaded
        log.info("CorrespondenceSoftmax %s: loaded %s on sm_%d", spec.stem, image.describe(), device_arch)
        return loaded


def images_from_triton(spec, device_arch: int) -> list[tuple[KernelImage, LaunchShape]]:
    """Compile `spec` for `device_arch` with the installed Triton: its cubin and its PTX."""
    from mclrt.runtime.kernels.correspondence_triton import compile_spec, triton_label

    compiled = compile_spec(device_arch, spec)
    shape = LaunchShape(compiled.name, compiled.shared_mem, compiled.num_warps, spec.tiles.block_n)
    origin = triton_label()
    arch_specific = kernel_images.ptx_target(compiled.ptx)[1]
    return [
        (kernel_images.cubin_image(compiled.cubin, origin, arch_specific, _major(compiled.ptxas)), shape),
        (kernel_images.ptx_image(compiled.ptx, origin), shape),
    ]


def _major(version: str | None) -> int | None:
    """'12.9' -> 12 (the ptxas version a compile records); None when unknown."""
    try:
        return int(str(version).split(".")[0]) if version else None
    except ValueError:
        return None


def images_in_folder(folder: Path, stem: str) -> list[tuple[KernelImage, LaunchShape]]:
    """Every `sm_*/<stem>.cubin` and `.ptx` under a compile_kernels output folder, with the launch
    shape from the `.json` beside them."""
    found = []
    for meta_path in sorted(folder.glob(f"sm_*/{stem}.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        shape = LaunchShape(meta["kernel"], int(meta["shared_mem"]), int(meta["num_warps"]), int(meta["spec"]["tiles"]["block_n"]))
        ptx_path, cubin_path = meta_path.with_suffix(".ptx"), meta_path.with_suffix(".cubin")
        arch_specific = False
        if ptx_path.exists():
            ptx = kernel_images.ptx_image(ptx_path.read_text(encoding="utf-8"), str(ptx_path))
            arch_specific = ptx.arch_specific
            found.append((ptx, shape))
        if cubin_path.exists():
            major = _major(meta.get("ptxas"))
            found.append((kernel_images.cubin_image(cubin_path.read_bytes(), str(cubin_path), arch_specific, major), shape))
    if not found:
        raise RuntimeError(f"{folder}: no compiled kernel {stem} (run python -m mclrt.tools.compile_kernels)")
    return found
