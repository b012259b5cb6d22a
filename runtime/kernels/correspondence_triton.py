"""The Triton kernel of `mclrt::CorrespondenceSoftmax`: softmax(scale * q k^T) v without the N x M matrix.

    out[b, n] = sum_m softmax_m(scale * s[b, n, m]) * v[b, m]
    s = q k^T                (mask_negative=False)
    s = relu(q k^T)          (mask_negative=True: MATEBIT's mask, applied before the scale)

exactly as `mclrt.training.correspondence.correspondence_softmax` defines it.

Why a kernel of our own: at the paper presets the descriptors are C = 2560 wide and N = M = 4096, so
the similarity matrix is 64 MiB per image in FP32, and TensorRT's attention fusion has to build it at
this head width. This kernel is flash-attention's recipe (online softmax over key tiles) with the
wide feature axis walked in BLOCK_C chunks to form each q k^T tile:

- one program owns BLOCK_N query rows of one batch item and keeps, in registers, their running max
  `m`, running denominator `l` and FP32 accumulator `acc` [BLOCK_N, BLOCK_CV];
- for every tile of BLOCK_M keys it accumulates the [BLOCK_N, BLOCK_M] similarity tile over C in
  BLOCK_C chunks, rescales `acc` and `l` by exp(m_old - m_new) and adds the tile's contribution;
- memory beyond the inputs and output is O(BLOCK_N * (BLOCK_M + BLOCK_CV)) per program: peak memory
  stays O(N * C) for any N, M.

At scale 100 the logits span +-100, so subtracting the running max is what keeps exp() finite.
Everything is accumulated in FP32; FP16 inputs give an FP16 output (the accumulator is rounded once).
Value widths that are not powers of two (3 for RGB, 48 for 4x4 RGB patches, 154 for label+RGB) are
padded to one in registers and masked on load and store. `tl.dot` needs every dimension >= 16 on a
GPU, so value blocks narrower than that (RGB) use a broadcast-multiply-and-sum instead.

This module imports Triton; the rest of the runtime imports it only when a kernel is needed.
`compile_ptx` compiles for a named GPU architecture without a GPU (the AOT path of the TensorRT
plugin and `python -m mclrt.tools.compile_kernels`): PTX written at the ISA of the oldest driver line
we target (`ptx_isa.target_ptx_isa`: 8.5, i.e. CUDA 12.6 / JetPack 6), and a cubin assembled from
that same PTX by Triton's bundled ptxas. `mclrt.tools.kernel_interpret` runs the same kernel under
TRITON_INTERPRET=1 on the CPU (the tests); `correspondence_launch` loads the cubin (or, where none
fits the device, the PTX) and launches it on a CUDA stream from raw device pointers.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget

from mclrt.runtime.kernels import kernel_images, ptx_isa
from mclrt.runtime.kernels.specs import (  # noqa: F401  (re-exported: the kernel's public names)
    MIN_DOT_WIDTH,
    Dtype,
    KernelSpec,
    TileConfig,
    gpu_tile_config,
    grid,
    value_block,
)


KERNEL_NAME = "correspondence_softmax_kernel"
LOG2E = tl.constexpr(1.4426950408889634)  # exp(x) = exp2(x * log2 e); exp2 is the GPU's native instruction
# Device pointers handed to a TensorRT plugin are at least 256-byte aligned; 16 is what Triton needs
# to emit vectorized loads.
POINTER_ALIGNMENT = 16
# The kernel's parameters in order, as the PTX entry declares them once the shapes are constexpr:
# inputs, then outputs -- the calling convention of TensorRT's AOT plugins (inputs, extra scalars, outputs).
AOT_PARAMS = ("q_ptr", "k_ptr", "v_ptr", "out_ptr")
# The oldest Triton this module is tested against (pyproject's `kernels` extra says the same; a test
# checks that they agree). 3.5 is also the first with `profile_scratch_size` in the metadata.
TRITON_FLOOR = (3, 5)


class ArchNotSupported(ValueError):
    """The installed Triton cannot compile for this GPU architecture (its ptxas is too old)."""


def triton_version() -> tuple[int, int]:
    major, minor = triton.__version__.split(".")[:2]
    return int(major), int(minor)


def check_triton_floor() -> None:
    if triton_version() < TRITON_FLOOR:
        raise RuntimeError(
            f"Triton {triton.__version__} is older than {TRITON_FLOOR[0]}.{TRITON_FLOOR[1]}, the oldest this kernel "
            "supports: pip install 'triton>=3.5'"
        )


@triton.jit
def correspondence_softmax_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    out_ptr,
    N,
    M,
    stride_qb,
    stride_qn,
    stride_qc,
    stride_kb,
    stride_km,
    stride_kc,
    stride_vb,
    stride_vm,
    stride_vc,
    stride_ob,
    stride_on,
    stride_oc,
    C: tl.constexpr,
    CV: tl.constexpr,
    SCALE: tl.constexpr,
    MASK_NEGATIVE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_CV: tl.constexpr,
):
    # Grid: (cdiv(N, BLOCK_N), B). int64 batch offsets: B * N * C passes 2^31 at batch ~200 (paper sizes).
    pid_n = tl.program_id(0)
    batch = tl.program_id(1).to(tl.int64)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    feats = tl.arange(0, BLOCK_C)
    vcols = tl.arange(0, BLOCK_CV)
    vcol_ok = vcols < CV
    q_rows = q_ptr + batch * stride_qb + rows[:, None] * stride_qn
    k_base = k_ptr + batch * stride_kb
    v_base = v_ptr + batch * stride_vb

    tl.static_assert(SCALE > 0, "the running max assumes a positive scale")
    running_max = tl.full([BLOCK_N], float("-inf"), tl.float32)  # max similarity seen so far
    denominator = tl.zeros([BLOCK_N], tl.float32)
    acc = tl.zeros([BLOCK_N, BLOCK_CV], tl.float32)

    for m0 in range(0, M, BLOCK_M):
        keys = m0 + tl.arange(0, BLOCK_M)
        key_ok = keys < M
        # --- similarity tile [BLOCK_N, BLOCK_M], accumulated over the wide feature axis
        sim = tl.zeros([BLOCK_N, BLOCK_M], tl.float32)
        for c0 in range(0, C, BLOCK_C):
            f = c0 + feats
            f_ok = f < C
            q = tl.load(q_rows + f[None, :] * stride_qc, mask=row_ok[:, None] & f_ok[None, :], other=0.0)
            k_t = tl.load(
                k_base + keys[None, :] * stride_km + f[:, None] * stride_kc,
                mask=key_ok[None, :] & f_ok[:, None],
                other=0.0,
            )
            # "ieee": FP32 inputs must not be rounded to TF32 (10-bit mantissa): at scale 100 that
            # alone moves logits by ~0.05. FP16 inputs multiply exactly into the FP32 accumulator.
            sim = tl.dot(q, k_t, sim, input_precision="ieee")
        if MASK_NEGATIVE:
            sim = tl.maximum(sim, 0.0)
        # Keys past M get -inf so they weigh exactly 0; every tile has at least one real key
        # (m0 < M), so the running max is finite after the first tile and no inf - inf occurs.
        sim = tl.where(key_ok[None, :], sim, float("-inf"))

        # --- online softmax: rescale what was accumulated under the old max. The max is kept in
        # similarity units and subtracted *before* scaling: scaled logits near 100 carry an FP32
        # rounding of ~4e-6, while the difference of two similarities in [-1, 1] is nearly exact.
        new_max = tl.maximum(running_max, tl.max(sim, axis=1))
        correction = tl.exp2((running_max - new_max) * (SCALE * LOG2E))
        p = tl.exp2((sim - new_max[:, None]) * (SCALE * LOG2E))
        denominator = denominator * correction + tl.sum(p, axis=1)
        v = tl.load(
            v_base + keys[:, None] * stride_vm + vcols[None, :] * stride_vc,
            mask=key_ok[:, None] & vcol_ok[None, :],
            other=0.0,
        )
        acc = acc * correction[:, None]
        if BLOCK_CV >= 16:  # MIN_DOT_WIDTH (a jit function reads only constexpr globals)
            # FP16 values: p is rounded to FP16 for the tensor cores (relative 2^-11, well inside the
            # FP16 tolerance); FP32 values: p stays FP32 and the product is exact IEEE.
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
        else:
            acc += tl.sum(p[:, :, None] * v.to(tl.float32)[None, :, :], axis=1)
        running_max = new_max

    out = acc / denominator[:, None]
    tl.store(
        out_ptr + batch * stride_ob + rows[:, None] * stride_on + vcols[None, :] * stride_oc,
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None] & vcol_ok[None, :],
    )


def interpreter_tile_config(positions: int, exemplar_positions: int, descriptor_width: int) -> TileConfig:
    """Tiles for TRITON_INTERPRET=1: the interpreter's cost is per program and per loop step (each
    a numpy call), so big tiles are fast -- but never so big that one tile covers all keys, or the
    online rescaling would go untested."""
    return TileConfig(
        block_n=min(256, max(MIN_DOT_WIDTH, triton.next_power_of_2(positions))),
        block_m=min(256, max(MIN_DOT_WIDTH, triton.next_power_of_2(exemplar_positions) // 2)),
        block_c=min(512, max(MIN_DOT_WIDTH, triton.next_power_of_2(descriptor_width) // 2)),
        num_warps=4,
        num_stages=1,
    )


@dataclass(frozen=True)
class CompiledKernel:
    """One kernel compiled for one GPU architecture, with what a launcher needs to run it."""

    arch: int  # compute capability as an int: 86, 87, 89, 90, 110
    spec: KernelSpec
    name: str  # the PTX entry point
    ptx: str
    shared_mem: int  # dynamic shared memory bytes to pass at launch
    num_warps: int
    params: tuple[str, ...]  # the entry's parameters in order
    cubin: bytes = b""  # `ptx` assembled for sm_<arch> by Triton's ptxas; empty if not assembled
    ptxas: str = ""  # the CUDA release of that ptxas, e.g. "12.9"

    @property
    def threads_per_block(self) -> int:
        return self.num_warps * 32

    def grid(self, batch: int) -> tuple[int, int, int]:
        return grid(batch, self.spec.positions, self.spec.tiles)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description (written next to each PTX file by compile_kernels)."""
        spec = dataclasses.asdict(self.spec)
        return {
            "kernel": self.name,
            "arch": f"sm_{self.arch}",
            "spec": spec,
            "params": list(self.params),
            "shared_mem": self.shared_mem,
            "num_warps": self.num_warps,
            "block": [self.threads_per_block, 1, 1],
            "grid": ["ceil(positions / block_n)", "batch", 1],
            "triton": triton.__version__,
            "ptx_isa": ptx_isa.format_isa(kernel_images.ptx_version(self.ptx)),
            "ptxas": self.ptxas,
        }


def compile_ptx(
    arch: int,
    dtype: Dtype = "fp32",
    Cv: int = 3,
    C: int = 2560,
    N: int = 4096,
    M: int | None = None,
    scale: float = 100.0,
    mask_negative: bool = False,
    tiles: TileConfig | None = None,
) -> CompiledKernel:
    """Compile the kernel to PTX for `sm_<arch>` -- no GPU needed, only Triton and its bundled ptxas.

    N and M are the query and key positions (M defaults to N), C the descriptor width, Cv the
    value width. `tiles` defaults to `gpu_tile_config(dtype, Cv)`.

    The returned PTX's entry takes exactly (q, k, v, out) device pointers: shapes, strides, scale
    and mask are compiled in, and Triton's two hidden scratch-pointer parameters (Triton >= 3.3;
    unused by this kernel, which needs no global scratch) are removed, so TensorRT's AOT plugin
    launch and `correspondence_launch.launch` pass the same four pointers.
    """
    spec = KernelSpec(
        dtype=dtype,
        positions=N,
        exemplar_positions=N if M is None else M,
        descriptor_width=C,
        value_width=Cv,
        scale=scale,
        mask_negative=mask_negative,
        tiles=tiles,
    )
    return compile_spec(arch, spec)


def triton_label() -> str:
    return f"triton {triton.__version__}"


def ptxas_for(arch: int) -> tuple[str, tuple[int, int]]:
    """(path, CUDA version) of the ptxas that assembles sm_<arch>: the *oldest* one bundled with
    Triton that can (Triton >= 3.6 bundles two -- `ptxas` and, for sm_90 and later, `ptxas-blackwell`;
    3.5 has one). Why the oldest: a driver loads a cubin from its own CUDA major version or an older
    one, so a sm_90 cubin from Triton 3.7+'s CUDA 13 ptxas-blackwell would not load on an r570 (CUDA
    12.8) driver, while the CUDA 12 ptxas's cubin loads on every driver since CUDA 12.0's. Where no
    bundled ptxas can, Triton's own choice is returned (and `unsupported_reason` says why)."""
    import inspect

    from triton.backends.nvidia.compiler import get_ptxas

    preferred = get_ptxas(int(arch)) if inspect.signature(get_ptxas).parameters else get_ptxas()
    tools = [(preferred.path, ptx_isa.parse_cuda_version(preferred.version))]
    try:
        from triton import knobs

        for name in ("ptxas", "ptxas_blackwell"):
            tool = getattr(knobs.nvidia, name, None)
            if tool is not None and tool.path and tool.path != preferred.path:
                tools.append((tool.path, ptx_isa.parse_cuda_version(tool.version)))
    except (ImportError, AttributeError, RuntimeError):  # Triton 3.3 has no knobs: its one ptxas
        pass
    able = [tool for tool in tools if ptx_isa.unsupported_reason(int(arch), tool[1]) is None]
    return min(able, key=lambda tool: tool[1]) if able else tools[0]


def unsupported_reason(arch: int) -> str | None:
    """Why the installed Triton cannot compile for sm_<arch> (None when it can); e.g. Triton 3.6's
    ptxas (CUDA 12.8) for sm_110, which needs CUDA 13.0."""
    _, cuda = ptxas_for(arch)
    return ptx_isa.unsupported_reason(int(arch), cuda, f"Triton {triton.__version__}'s ptxas")


def compile_spec(arch: int, spec: KernelSpec, cubin: bool = True) -> CompiledKernel:
    """Compile one specialization; see `compile_ptx`. `cubin=False` skips assembling the cubin
    (the TensorRT AOT plugin ships PTX only). ArchNotSupported when the installed Triton cannot
    compile for `arch`."""
    check_triton_floor()
    reason = unsupported_reason(arch)
    if reason is not None:
        raise ArchNotSupported(reason)
    ptxas_path, ptxas_cuda = ptxas_for(arch)
    kernel = _compilable_kernel()
    # Everything but the four pointers is a compile-time constant; the pointers carry an alignment hint.
    pointer = f"*{spec.dtype}"
    signature = {name: "constexpr" for name in kernel.arg_names}
    signature.update({name: pointer for name in AOT_PARAMS})
    aligned = [["tt.divisibility", POINTER_ALIGNMENT]]
    attrs = {(kernel.arg_names.index(name),): aligned for name in AOT_PARAMS}
    source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=spec.constexprs(), attrs=attrs)
    options = {
        "num_warps": spec.tiles.num_warps,
        "num_stages": spec.tiles.num_stages,
        # Triton writes the newest ISA its ptxas reads (8.7 with 3.6: needs a CUDA 12.8 driver); ask
        # for the oldest the architecture allows so the PTX also JITs on JetPack 6 / r560 drivers.
        "ptx_version": ptx_isa.target_ptx_isa(int(arch), ptxas_cuda),
    }
    compiled = triton.compile(source, target=GPUTarget("cuda", int(arch), 32), options=options)
    meta = compiled.metadata
    # global_scratch_size exists from Triton 3.3, profile_scratch_size from 3.5.
    scratch = {name: int(getattr(meta, name, 0) or 0) for name in ("global_scratch_size", "profile_scratch_size")}
    if any(scratch.values()):
        raise RuntimeError(
            f"{KERNEL_NAME}: Triton {triton.__version__} asks for scratch memory {scratch}, which the AOT launch does not provide"
        )
    ptx = strip_hidden_params(compiled.asm["ptx"], meta.name, keep=len(AOT_PARAMS))
    return CompiledKernel(
        arch=int(arch),
        spec=spec,
        name=meta.name,
        ptx=ptx,
        shared_mem=int(meta.shared),
        num_warps=int(meta.num_warps),
        params=AOT_PARAMS,
        cubin=assemble_cubin(ptx, ptxas_path, ptxas_cuda) if cubin else b"",
        ptxas=f"{ptxas_cuda[0]}.{ptxas_cuda[1]}",
    )


def assemble_cubin(ptx: str, ptxas_path: str, ptxas_cuda: tuple[int, int]) -> bytes:
    """Assemble the (four-parameter) PTX into a cubin for its own `.target` with `ptxas_path`.

    Not Triton's own cubin: that one was assembled before the hidden scratch parameters were
    stripped, so its entry takes six arguments; this keeps one ABI (q, k, v, out) for both forms."""
    target = re.search(r"^\s*\.target\s+(sm_\w+)", ptx, re.MULTILINE)
    if target is None:
        raise ValueError("no .target line in the PTX")
    with tempfile.TemporaryDirectory(prefix="mclrt-ptxas-") as folder:
        source, binary = Path(folder) / "kernel.ptx", Path(folder) / "kernel.cubin"
        source.write_text(ptx, encoding="utf-8")
        # --regAllocOptLevel=2: Triton passes it to every ptxas 13.x it runs, to avoid a register
        # allocation bug of that release.
        workaround = ["--regAllocOptLevel=2"] if ptxas_cuda >= (13, 0) else []
        done = subprocess.run(
            [ptxas_path, *workaround, f"--gpu-name={target.group(1)}", str(source), "-o", str(binary)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ptxas failed for {target.group(1)}: {done.stderr.strip()}")
        return binary.read_bytes()


def _compilable_kernel() -> triton.runtime.JITFunction:
    """The kernel as a JITFunction even when TRITON_INTERPRET=1 made `@triton.jit` return an
    interpreter wrapper (e.g. a test process): PTX compilation works the same either way."""
    kernel = correspondence_softmax_kernel
    if isinstance(kernel, triton.runtime.JITFunction):
        return kernel
    return triton.runtime.JITFunction(kernel.fn)


def strip_hidden_params(ptx: str, entry: str, keep: int) -> str:
    """Remove the parameters after the first `keep` from the `.entry` of `entry`.

    Triton >= 3.3 appends two pointers (global and profile scratch) to every kernel; its own
    launcher passes them, TensorRT's AOT launch (inputs, extra scalars, outputs) does not. When the
    kernel needs no scratch they are declared but never read; this checks that before removing them.
    """
    header = re.search(rf"\.entry\s+{re.escape(entry)}\s*\((?P<params>[^)]*)\)", ptx)
    if header is None:
        raise ValueError(f"no .entry {entry} in the PTX")
    params = [p.strip() for p in header.group("params").split(",") if p.strip()]
    names = [p.split()[-1] for p in params]
    if len(params) < keep:
        raise ValueError(f".entry {entry} has {len(params)} parameters, expected at least {keep}")
    body = ptx[header.end() :]
    for name in names[keep:]:
        if re.search(rf"\b{re.escape(name)}\b", body):
            raise ValueError(f"{entry}: hidden parameter {name} is used by the kernel; cannot drop it")
    new_params = ",\n".join(f"\t{p}" for p in params[:keep])
    return ptx[: header.start("params")] + "\n" + new_params + "\n" + ptx[header.end("params") :]


def entry_params(ptx: str, entry: str) -> list[str]:
    """The parameter declarations of `.entry entry(...)` (for checks and tests)."""
    header = re.search(rf"\.entry\s+{re.escape(entry)}\s*\((?P<params>[^)]*)\)", ptx)
    if header is None:
        raise ValueError(f"no .entry {entry} in the PTX")
    return [p.strip() for p in header.group("params").split(",") if p.strip()]
