"""`mclrt::CorrespondenceSoftmax` as an ahead-of-time Quickly Deployable Plugin (enterprise TensorRT >= 10.9).

UNVERIFIED: written against the documented `tensorrt.plugin` API (`register`, `autotune`,
`aot_impl`, `KernelLaunchParams`, `SymIntExprs`; NVIDIA's samples/python/quickly_deployable_plugins
and the tensorrt.plugin API reference). It has never been imported with enterprise TensorRT: that
cannot be installed on the development machine (only TensorRT-RTX, which has no `tensorrt.plugin`),
and no GPU was available. `qdp_available()` says whether it can work in this process.

What it gives: the kernel inside the plan, as PTX, so the engine runs under the plain C++ runtime
(trtexec, a C++ service, a Jetson without Triton) -- no Python at inference time. At build time
`aot_impl` compiles `correspondence_triton`'s kernel for the build GPU's architecture with every
shape, the scale and the mask compiled in (TensorRT does not serialize plugin attributes for AOT
plugins); the entry takes exactly (q, k, v, out), TensorRT's AOT calling convention with no extra
scalar arguments, and the grid's y extent is the symbolic batch size.

The parser selects this implementation for a node `CorrespondenceSoftmax` with
`plugin_namespace="mclrt"` when the node also carries the attribute `aot=1`; without `aot` the
JIT/class plugin (`mclrt.runtime.trt.plugin`) is used. Where neither exists (TensorRT 10.3 on
JetPack 6), the engine builder inlines the node's ONNX function instead.
"""

# No `from __future__ import annotations` here: tensorrt.plugin reads the decorated functions'
# annotations with plain inspect.signature and calls issubclass(annotation, TensorDesc), so they
# must be real classes when `@trtp.register` runs, not strings (tests/test_gpu_path_defects.py).
import importlib.util

from mclrt.runtime.trt import compat

PLUGIN_ID = "mclrt::CorrespondenceSoftmax"
# Node attribute the ONNX parser reads to pick a QDP's AOT implementation over its JIT one.
AOT_NODE_ATTRIBUTE = "aot"

_registered = False


def qdp_available() -> bool:
    """True when enterprise TensorRT with AOT plugins (>= 10.9), its `tensorrt.plugin` module and
    Triton (to compile the kernel at build time) can all be imported here."""
    installed = compat.detect(prefer=(compat.Flavour.ENTERPRISE,))
    if installed is None or not installed.caps.qdp_aot:
        return False
    return importlib.util.find_spec("tensorrt.plugin") is not None and importlib.util.find_spec("triton") is not None


def register_qdp() -> None:
    """Define the QDP (description, autotune, AOT implementation) once per process.

    Call before parsing an ONNX model whose node should become the AOT plugin. Plans built with it
    carry the kernel and need nothing from this module to run.
    """
    global _registered
    if _registered:
        return
    if not qdp_available():
        raise RuntimeError(f"{PLUGIN_ID} AOT plugin needs enterprise TensorRT >= 10.9 with tensorrt.plugin, and Triton")

    from typing import List, Tuple, Union

    import tensorrt as trt
    import tensorrt.plugin as trtp

    from mclrt.runtime.kernels import correspondence_launch, correspondence_triton

    @trtp.register(PLUGIN_ID)
    def _describe(
        q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, scale: float, mask_negative: int
    ) -> trtp.TensorDesc:
        # [B, N, C] x [B, M, C] x [B, M, Cv] -> [B, N, Cv], in the inputs' type.
        return trtp.from_shape_expr((q.shape_expr[0], q.shape_expr[1], v.shape_expr[2]), dtype=q.dtype)

    @trtp.autotune(PLUGIN_ID)
    def _autotune(
        q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, outputs: Tuple[trtp.TensorDesc]
    ) -> List[trtp.AutoTuneCombination]:
        # All four tensors FP32, or all four FP16; row-major only (the kernel's strides assume it).
        return [trtp.AutoTuneCombination("FP32|FP16, FP32|FP16, FP32|FP16, FP32|FP16", "LINEAR")]

    @trtp.aot_impl(PLUGIN_ID)
    def _aot_impl(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        scale: float,
        mask_negative: int,
        outputs: Tuple[trtp.TensorDesc],
        tactic: int,
    ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymExprs]:
        spec = correspondence_triton.KernelSpec(
            dtype="fp16" if q.dtype == trt.float16 else "fp32",
            positions=_constant(q.shape_expr[1], "q positions"),
            exemplar_positions=_constant(k.shape_expr[1], "k positions"),
            descriptor_width=_constant(q.shape_expr[2], "descriptor width"),
            value_width=_constant(v.shape_expr[2], "value width"),
            scale=float(scale),
            mask_negative=bool(mask_negative),
        )
        # The plan is built on (and for) the GPU it will run on, so compile for that GPU.
        kernel = correspondence_triton.compile_spec(correspondence_launch.current_device_arch(), spec, cubin=False)
        grid_x, _, _ = kernel.grid(1)
        params = trtp.KernelLaunchParams()
        params.grid_x = grid_x
        params.grid_y = q.shape_expr[0]  # the batch: symbolic, resolved per execution
        params.block_x = kernel.threads_per_block
        params.shared_mem = kernel.shared_mem
        no_scalars = trtp.SymIntExprs(0)  # everything but the pointers is compiled in
        return kernel.name.encode(), kernel.ptx.encode(), params, no_scalars

    _registered = True


def _constant(expr, what: str) -> int:
    """The AOT kernel is specialized on every dimension but the batch; a dynamic one cannot be."""
    if not expr.is_constant:
        raise ValueError(f"{PLUGIN_ID} AOT: the {what} must be fixed at build time (only the batch may vary)")
    return int(expr.constant_value())
