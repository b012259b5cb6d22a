"""Run the CorrespondenceSoftmax Triton kernel on the CPU with Triton's interpreter (TRITON_INTERPRET=1).

This is how the kernel is checked on a machine without a GPU: the interpreter executes the very
same `@triton.jit` function, block by block, with numpy. Two constraints shape this module:

- `@triton.jit` decides at decoration time whether it returns a GPU kernel or an interpreted one, so
  TRITON_INTERPRET=1 must be in the environment before `correspondence_triton` is first imported
  (in practice: before the process imports anything Triton); `interpret` refuses to run otherwise.
- Triton's interpreter reads and writes *torch* CPU tensors (it needs `untyped_storage()`), so
  torch is imported inside `interpret`. Nothing at module level imports torch or Triton, and the
  runtime proper (the TensorRT plugin, `correspondence_launch`) never calls this: it is for tests
  and for developers.
"""

from __future__ import annotations

import os

import numpy as np


def interpret(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    scale: float = 100.0,
    mask_negative: bool = False,
    tiles=None,
) -> np.ndarray:
    """softmax(scale * q k^T [relu first when mask_negative]) v by the Triton kernel, interpreted.

    q [B,N,C], k [B,M,C], v [B,M,Cv]: all float32 or all float16, any non-negative strides (rows
    and features need not be contiguous). Returns [B,N,Cv] in the input dtype. `tiles` is a
    `correspondence_triton.TileConfig`; default: `interpreter_tile_config` (big tiles, fast).
    """
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("set TRITON_INTERPRET=1 in the environment before Triton is imported")
    import torch  # the interpreter's tensor type; see the module docstring
    from triton.runtime.interpreter import InterpretedFunction

    from mclrt.runtime.kernels import correspondence_triton as ct

    kernel = ct.correspondence_softmax_kernel
    if not isinstance(kernel, InterpretedFunction):
        raise RuntimeError(
            "correspondence_triton was imported before TRITON_INTERPRET=1 was set, so its kernel is "
            "a GPU kernel; set the variable before the first import (e.g. in a fresh process)"
        )
    batch, positions, width = _check_shapes(q, k, v)
    exemplar_positions, value_width = v.shape[1], v.shape[2]
    if tiles is None:
        tiles = ct.interpreter_tile_config(positions, exemplar_positions, width)

    tensors = [torch.from_numpy(a) for a in (q, k, v)]
    out = torch.empty((batch, positions, value_width), dtype=tensors[0].dtype)
    strides = [s for t in (*tensors, out) for s in t.stride()]
    kernel[ct.grid(batch, positions, tiles)](
        *tensors,
        out,
        positions,
        exemplar_positions,
        *strides,
        C=width,
        CV=value_width,
        SCALE=float(scale),
        MASK_NEGATIVE=bool(mask_negative),
        BLOCK_N=tiles.block_n,
        BLOCK_M=tiles.block_m,
        BLOCK_C=tiles.block_c,
        BLOCK_CV=ct.value_block(value_width),
    )
    return out.numpy()


def _check_shapes(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[int, int, int]:
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3:
        raise ValueError(f"expected q [B,N,C], k [B,M,C], v [B,M,Cv]; got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[2] != k.shape[2] or k.shape[1] != v.shape[1] or not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"shape mismatch: q {q.shape}, k {k.shape}, v {v.shape}")
    dtypes = {q.dtype, k.dtype, v.dtype}
    if len(dtypes) != 1 or q.dtype not in (np.float32, np.float16):
        raise ValueError(f"q, k, v must all be float32 or all float16; got {q.dtype}, {k.dtype}, {v.dtype}")
    if any(s < 0 for a in (q, k, v) for s in a.strides):
        raise ValueError("negative strides are not supported; pass np.ascontiguousarray(...)")
    return q.shape[0], q.shape[1], q.shape[2]
