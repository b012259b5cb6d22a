"""Helpers the GPU checks share: device buffers (torch or cupy), the float64 reference, CUDA-event timing.

NEVER RUN: written for the first GPU run; nothing here has executed on a GPU yet.
"""

from __future__ import annotations

import statistics

import numpy as np

from mclrt.runtime.kernels.reference import correspondence_reference

FP32_TOLERANCE = 2e-4  # max abs error vs float64 at scale 100 (the CPU interpreter tests hold 1e-5)
FP16_TOLERANCE = 1e-2  # vs float64 on the FP16-rounded inputs


def features(rng: np.random.Generator, b: int, n: int, m: int, c: int, cv: int, dtype: str):
    """Unit-norm q [B,N,C], k [B,M,C] and values v [B,M,Cv], as numpy in the kernel's dtype."""
    np_dtype = np.float16 if dtype == "fp16" else np.float32
    q = rng.standard_normal((b, n, c))
    k = rng.standard_normal((b, m, c))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.uniform(-1, 1, (b, m, cv))
    return q.astype(np_dtype), k.astype(np_dtype), v.astype(np_dtype)


reference = correspondence_reference  # the float64 NumPy correspondence every implementation is held to


def tolerance(dtype: str) -> float:
    return FP16_TOLERANCE if dtype == "fp16" else FP32_TOLERANCE


class Buffers:
    """Device arrays and a non-default stream from torch if it has CUDA, else cupy."""

    def __init__(self, prefer: str = "torch"):
        self.kind = None
        order = ("torch", "cupy") if prefer == "torch" else ("cupy", "torch")
        for kind in order:
            try:
                if kind == "torch":
                    import torch

                    if torch.cuda.is_available():
                        self.torch, self.kind = torch, "torch"
                        break
                else:
                    import cupy

                    self.cupy, self.kind = cupy, "cupy"
                    break
            except ImportError:
                continue
        if self.kind is None:
            raise RuntimeError("neither torch with CUDA nor cupy is usable")

    def to_device(self, array: np.ndarray):
        if self.kind == "torch":
            return self.torch.from_numpy(np.ascontiguousarray(array)).cuda()
        return self.cupy.asarray(np.ascontiguousarray(array))

    def empty(self, shape, dtype: str):
        if self.kind == "torch":
            return self.torch.full(shape, float("nan"), dtype=self.torch.float16 if dtype == "fp16" else self.torch.float32, device="cuda")
        return self.cupy.full(shape, np.nan, dtype=np.float16 if dtype == "fp16" else np.float32)

    def pointer(self, array) -> int:
        return int(array.data_ptr()) if self.kind == "torch" else int(array.data.ptr)

    def to_host(self, array) -> np.ndarray:
        return array.cpu().numpy() if self.kind == "torch" else self.cupy.asnumpy(array)

    def new_stream(self):
        return self.torch.cuda.Stream() if self.kind == "torch" else self.cupy.cuda.Stream(non_blocking=True)

    def stream_handle(self, stream) -> int:
        return int(stream.cuda_stream) if self.kind == "torch" else int(stream.ptr)

    def synchronize(self) -> None:
        if self.kind == "torch":
            self.torch.cuda.synchronize()
        else:
            self.cupy.cuda.Device().synchronize()


def cuda_ms(fn, warmup: int = 2, repeat: int = 5) -> float:
    """Median milliseconds of fn() on the current torch stream, by CUDA events."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
