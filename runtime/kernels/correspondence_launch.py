"""Launch the CorrespondenceSoftmax kernel on a CUDA stream from raw device pointers, without torch.

NEVER RUN: this project has had no GPU. The code follows the documented CUDA driver API of
cuda-python (`cuda.bindings.driver`: cuModuleLoadData, cuModuleGetFunction, cuFuncSetAttribute,
cuLaunchKernel with a `void**` argument array) and has not launched a kernel anywhere yet.

Why not Triton's own launcher: in Triton 3.7, `kernel[grid](...)` does take any object with
`.data_ptr()` and `.dtype` as a pointer argument, but it gets the device and the stream from torch
(`triton.runtime.driver` builds its CUDA driver with `import torch`, and `stream=` is rejected), and
the runtime never imports torch. A TensorRT plugin's `enqueue` hands over plain integers -- device
pointers and a cudaStream_t -- so this module compiles the kernel to PTX for the current device's
architecture (`correspondence_triton.compile_spec`, once per shape per context), lets the driver
load it, and launches it with cuLaunchKernel: the same PTX and the same four-pointer entry
(q, k, v, out) that TensorRT's AOT plugin launches, so there is one kernel ABI, not two.

Triton and cuda-python are imported inside the functions, so importing this module needs neither.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

# Kernels needing more dynamic shared memory than this must opt in per function (CUDA rule).
DEFAULT_SHARED_MEM_LIMIT = 48 * 1024


@dataclass(frozen=True)
class _LoadedKernel:
    compiled: Any  # correspondence_triton.CompiledKernel
    module: Any  # CUmodule; kept so the function stays valid
    function: Any  # CUfunction


_loaded: dict[tuple[int, Any], _LoadedKernel] = {}
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
) -> None:
    """Enqueue out[B,N,Cv] = softmax(scale * q k^T) v on `stream` (asynchronous, like any CUDA launch).

    q_ptr [B,N,C], k_ptr [B,M,C], v_ptr [B,M,Cv], out_ptr [B,N,Cv]: contiguous row-major device
    buffers of `dtype` ("fp32" or "fp16"), 16-byte aligned. `stream` is a CUstream/cudaStream_t
    handle as an int (0 = legacy default stream). A CUDA context must be current on the calling
    thread, as it is inside TensorRT's enqueue. Unverified on a GPU (see the module docstring).
    """
    if B == 0:
        return
    from cuda.bindings import driver as cu

    from mclrt.runtime.kernels.correspondence_triton import KernelSpec

    spec = KernelSpec(
        dtype=dtype,
        positions=N,
        exemplar_positions=M,
        descriptor_width=C,
        value_width=Cv,
        scale=float(scale),
        mask_negative=bool(mask_negative),
    )
    kernel = _load(spec)
    grid_x, grid_y, grid_z = kernel.compiled.grid(B)
    # cuLaunchKernel reads `void** kernelParams`: an array of addresses, each pointing at one argument.
    values = np.array([q_ptr, k_ptr, v_ptr, out_ptr], dtype=np.uint64)
    addresses = np.array([values.ctypes.data + i * values.itemsize for i in range(values.size)], dtype=np.uint64)
    _check(
        cu.cuLaunchKernel(
            kernel.function,
            grid_x,
            grid_y,
            grid_z,
            kernel.compiled.threads_per_block,
            1,
            1,
            kernel.compiled.shared_mem,
            cu.CUstream(stream),
            addresses.ctypes.data,
            0,
        ),
        "cuLaunchKernel",
    )


def current_device_arch() -> int:
    """Compute capability of the current context's device as an int (8.6 -> 86, 11.0 -> 110)."""
    from cuda.bindings import driver as cu

    device = _check(cu.cuCtxGetDevice(), "cuCtxGetDevice (is a CUDA context current?)")
    attr = cu.CUdevice_attribute
    major = _check(cu.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute")
    minor = _check(cu.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute")
    return int(major) * 10 + int(minor)


def _load(spec) -> _LoadedKernel:
    """Compile (once per context and spec) and load the PTX into the current context."""
    from cuda.bindings import driver as cu

    from mclrt.runtime.kernels.correspondence_triton import compile_spec

    context = int(_check(cu.cuCtxGetCurrent(), "cuCtxGetCurrent"))
    if context == 0:
        raise RuntimeError("no current CUDA context on this thread")
    key = (context, spec)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        compiled = compile_spec(current_device_arch(), spec)
        image = np.frombuffer(compiled.ptx.encode() + b"\0", dtype=np.uint8)  # the driver wants a C string
        module = _check(cu.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
        function = _check(cu.cuModuleGetFunction(module, compiled.name.encode()), "cuModuleGetFunction")
        if compiled.shared_mem > DEFAULT_SHARED_MEM_LIMIT:
            _check(
                cu.cuFuncSetAttribute(
                    function,
                    cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    compiled.shared_mem,
                ),
                "cuFuncSetAttribute",
            )
        loaded = _LoadedKernel(compiled=compiled, module=module, function=function)
        _loaded[key] = loaded
        return loaded


def _check(result: tuple, call: str) -> Any:
    """cuda-python returns (CUresult, *values); raise on an error, return the value(s)."""
    from cuda.bindings import driver as cu

    err, *values = result
    if err != cu.CUresult.CUDA_SUCCESS:
        _, name = cu.cuGetErrorName(err)
        raise RuntimeError(f"{call} failed: {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)
