"""What one compiled CorrespondenceSoftmax kernel is specialized on: shapes, attributes and tiles.

Triton-free, so that the launcher can find and launch precompiled kernels (cubin / PTX files written
by `python -m mclrt.tools.compile_kernels`) on a machine without Triton, e.g. a Jetson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Dtype = Literal["fp32", "fp16"]

# tl.dot has a 16-element minimum per dimension on NVIDIA GPUs; narrower value blocks use a reduction.
MIN_DOT_WIDTH = 16


def next_power_of_2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


@dataclass(frozen=True)
class TileConfig:
    """How the work is cut: rows per program, keys and features per step, and GPU launch shape."""

    block_n: int = 64
    block_m: int = 64
    block_c: int = 64
    num_warps: int = 4
    num_stages: int = 2

    def __post_init__(self) -> None:
        for name in ("block_n", "block_m", "block_c"):
            value = getattr(self, name)
            if value < MIN_DOT_WIDTH or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= {MIN_DOT_WIDTH}, got {value}")


def value_block(value_width: int) -> int:
    """The value width padded to a power of two (3 -> 4, 48 -> 64, 154 -> 256)."""
    if value_width < 1:
        raise ValueError(f"value width must be >= 1, got {value_width}")
    return next_power_of_2(value_width)


def gpu_tile_config(dtype: Dtype, value_width: int) -> TileConfig:
    """Tiles for a real GPU (sm_86 .. sm_110). Chosen so every preset fits in 48 KiB of shared
    memory (no opt-in attribute needed at launch: TensorRT's AOT launch sets none) and a sane
    register budget. Never timed on a GPU here: these are starting points, not tuned values."""
    wide_values = value_block(value_width) >= 128
    block_c = 64 if dtype == "fp16" else 32  # FP32 tiles are twice the bytes
    # 64 keys x 256 FP32 value channels alone is 64 KiB of staged values: halve the key tile.
    block_m = 32 if (wide_values and dtype == "fp32") else 64
    # A 256-wide FP32 accumulator is 128 registers a thread at 4 warps; spread it over 8.
    num_warps = 8 if wide_values else 4
    return TileConfig(block_n=64, block_m=block_m, block_c=block_c, num_warps=num_warps, num_stages=2)


def grid(batch: int, positions: int, tiles: TileConfig) -> tuple[int, int, int]:
    """Programs to launch: one per BLOCK_N query rows per batch item."""
    return (math.ceil(positions / tiles.block_n), batch, 1)


@dataclass(frozen=True)
class KernelSpec:
    """Everything one compiled kernel is specialized on. The shapes are constexpr in the AOT build:
    the model has a fixed spatial size and only the batch varies (it is the grid's y extent), and
    TensorRT does not serialize plugin attributes for AOT plugins, so scale and mask live in the code."""

    dtype: Dtype
    positions: int  # N, query positions
    exemplar_positions: int  # M, key positions
    descriptor_width: int  # C
    value_width: int  # Cv
    scale: float = 100.0
    mask_negative: bool = False
    tiles: TileConfig | None = None  # None: gpu_tile_config(dtype, value_width)

    def __post_init__(self) -> None:
        if self.dtype not in ("fp32", "fp16"):
            raise ValueError(f"dtype must be 'fp32' or 'fp16', got {self.dtype!r}")
        for name in ("positions", "exemplar_positions", "descriptor_width", "value_width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tiles is None:
            object.__setattr__(self, "tiles", gpu_tile_config(self.dtype, self.value_width))

    @property
    def stem(self) -> str:
        """A file name for this specialization."""
        mask = "_relu" if self.mask_negative else ""
        return (
            f"correspondence_{self.dtype}_n{self.positions}_m{self.exemplar_positions}"
            f"_c{self.descriptor_width}_cv{self.value_width}_s{self.scale:g}{mask}"
        )

    def constexprs(self) -> dict[str, Any]:
        """Shapes, contiguous row-major strides, attributes and tiles, as the kernel's constexprs."""
        n, m, c, cv = self.positions, self.exemplar_positions, self.descriptor_width, self.value_width
        t = self.tiles
        return {
            "N": n,
            "M": m,
            "stride_qb": n * c,
            "stride_qn": c,
            "stride_qc": 1,
            "stride_kb": m * c,
            "stride_km": c,
            "stride_kc": 1,
            "stride_vb": m * cv,
            "stride_vm": cv,
            "stride_vc": 1,
            "stride_ob": n * cv,
            "stride_on": cv,
            "stride_oc": 1,
            "C": c,
            "CV": cv,
            "SCALE": float(self.scale),
            "MASK_NEGATIVE": bool(self.mask_negative),
            "BLOCK_N": t.block_n,
            "BLOCK_M": t.block_m,
            "BLOCK_C": t.block_c,
            "BLOCK_CV": value_block(cv),
        }
