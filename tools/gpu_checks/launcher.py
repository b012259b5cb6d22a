"""Check 1: the torch-free launcher (correspondence_launch) on raw device pointers and a non-default
stream, loading the cubin and the PTX, against a float64 reference over odd shapes.

NEVER RUN: written for the first GPU run.
"""

from __future__ import annotations

import numpy as np

from mclrt.tools.gpu_checks import FAIL, PASS
from mclrt.tools.gpu_checks.common import Buffers, features, reference, tolerance

SCALE = 100.0
# (B, N, M, C, Cv, dtype, mask_negative): N != M everywhere, widths that are not tile multiples.
CASES = (
    (2, 200, 136, 64, 3, "fp32", False),
    (2, 333, 517, 96, 48, "fp16", True),
    (3, 128, 250, 160, 154, "fp32", True),
    (1, 77, 1000, 64, 154, "fp16", False),
    (2, 1024, 768, 256, 48, "fp32", False),
    (1, 300, 299, 640, 3, "fp16", True),
)


def launch_case(buffers: Buffers, case, prefer: str, kernel_dir=None, seed: int = 0) -> dict:
    """One launch on a fresh non-default stream; returns the row for the report."""
    from mclrt.runtime.kernels.correspondence_launch import launch

    b, n, m, c, cv, dtype, mask = case
    q, k, v = features(np.random.default_rng(seed), b, n, m, c, cv, dtype)
    dq, dk, dv = (buffers.to_device(a) for a in (q, k, v))
    out = buffers.empty((b, n, cv), dtype)
    buffers.synchronize()  # the inputs were written on the default stream
    stream = buffers.new_stream()
    image = launch(
        buffers.pointer(dq), buffers.pointer(dk), buffers.pointer(dv), buffers.pointer(out),
        b, n, m, c, cv, SCALE, mask, dtype, buffers.stream_handle(stream), prefer=prefer, kernel_dir=kernel_dir,
    )
    stream.synchronize()
    got = buffers.to_host(out).astype(np.float64)
    error = float(np.abs(got - reference(q, k, v, SCALE, mask)).max()) if np.isfinite(got).all() else float("inf")
    return {
        "shape": f"B{b} N{n} M{m} C{c} Cv{cv}",
        "dtype": dtype,
        "mask": mask,
        "asked": prefer,
        "loaded": image.describe() if image is not None else "nothing",
        "kind": image.kind if image is not None else "",
        "max_abs_err": error,
        "ok": bool(error <= tolerance(dtype) and image is not None and image.kind == prefer),
    }


def run(ctx) -> dict:
    buffers = Buffers("torch")
    rows = [launch_case(buffers, case, prefer, seed=i) for i, case in enumerate(CASES) for prefer in ("cubin", "ptx")]

    # The files compile_kernels writes (what a Jetson ships), loaded through MCLRT_KERNEL_DIR's path.
    from mclrt.runtime.kernels.correspondence_launch import current_device_arch
    from mclrt.tools.compile_kernels import Geometry, compile_all

    b, n, m, c, cv, dtype, mask = 2, 256, 256, 64, 3, "fp16", False
    folder = ctx.work / "kernels"
    compile_all([current_device_arch()], [dtype], {Geometry(n, c, cv, SCALE, mask): ["gpu_check"]}, folder)
    for prefer in ("cubin", "ptx"):
        row = launch_case(buffers, (b, n, m, c, cv, dtype, mask), prefer, kernel_dir=folder, seed=99)
        row["shape"] += " (compile_kernels files)"
        row["ok"] = row["ok"] and str(folder) in row["loaded"]
        rows.append(row)
    failed = [row for row in rows if not row["ok"]]
    return {
        "status": FAIL if failed else PASS,
        "reason": f"{len(failed)} of {len(rows)} launches off (error above tolerance, or not the form asked for)" if failed else "",
        "buffers": buffers.kind,
        "device_arch": f"sm_{current_device_arch()}",
        "launches": rows,
    }
