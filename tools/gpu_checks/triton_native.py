"""Check 3: the same @triton.jit kernel through Triton's own launcher (torch tensors), against the
reference and the torch-free launcher; then compute-sanitizer memcheck on a small launcher case.

NEVER RUN: written for the first GPU run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from mclrt.tools.gpu_checks import FAIL, PASS
from mclrt.tools.gpu_checks.common import Buffers, features, reference, tolerance

SCALE = 100.0
CASES = ((2, 300, 257, 96, 48, "fp16", False), (2, 200, 136, 64, 3, "fp32", True), (1, 130, 190, 160, 154, "fp32", False))
SANITIZER_FOLDERS = ("/usr/local/cuda/bin", "/opt/nvidia/compute-sanitizer")


def triton_launch(case, seed: int) -> dict:
    import torch

    from mclrt.runtime.kernels.correspondence_triton import correspondence_softmax_kernel, gpu_tile_config, grid, value_block
    from mclrt.tools.gpu_checks.launcher import launch_case

    b, n, m, c, cv, dtype, mask = case
    q, k, v = features(np.random.default_rng(seed), b, n, m, c, cv, dtype)
    tq, tk, tv = (torch.from_numpy(a).cuda() for a in (q, k, v))
    out = torch.full((b, n, cv), float("nan"), dtype=tq.dtype, device="cuda")
    tiles = gpu_tile_config(dtype, cv)
    correspondence_softmax_kernel[grid(b, n, tiles)](
        tq, tk, tv, out, n, m, *tq.stride(), *tk.stride(), *tv.stride(), *out.stride(),
        C=c, CV=cv, SCALE=SCALE, MASK_NEGATIVE=mask,
        BLOCK_N=tiles.block_n, BLOCK_M=tiles.block_m, BLOCK_C=tiles.block_c, BLOCK_CV=value_block(cv),
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )
    torch.cuda.synchronize()
    got = out.cpu().numpy().astype(np.float64)
    error = float(np.abs(got - reference(q, k, v, SCALE, mask)).max())
    ours = launch_case(Buffers("torch"), case, "cubin", seed=seed)  # same inputs (same seed)
    return {
        "shape": f"B{b} N{n} M{m} C{c} Cv{cv}",
        "dtype": dtype,
        "mask": mask,
        "triton_max_abs_err": error,
        "launcher_max_abs_err": ours["max_abs_err"],
        "ok": bool(error <= tolerance(dtype) and ours["ok"]),
    }


def find_sanitizer() -> str | None:
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for folder in SANITIZER_FOLDERS:
        if (Path(folder) / "compute-sanitizer").exists():
            return str(Path(folder) / "compute-sanitizer")
    return None


def sanitize(ctx, timeout_s: float) -> dict:
    tool = find_sanitizer()
    if tool is None:
        return {"sanitizer": "not found (compute-sanitizer is not on PATH): not run"}
    command = [tool, "--tool", "memcheck", "--error-exitcode", "3", sys.executable, "-m", "mclrt.tools.gpu_checks.sanitized_case"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=ctx.child_env)
    except subprocess.TimeoutExpired:
        return {"sanitizer": f"timed out after {timeout_s:.0f} s", "sanitizer_ok": False}
    summary = re.search(r"ERROR SUMMARY: (\d+) error", done.stdout + done.stderr)
    errors = int(summary.group(1)) if summary else None
    return {
        "sanitizer": f"memcheck exit {done.returncode}, errors: {errors if errors is not None else 'no summary'}",
        "sanitizer_tail": (done.stdout + done.stderr).strip().splitlines()[-3:],
        "sanitizer_ok": done.returncode == 0 and errors == 0,
    }


def run(ctx) -> dict:
    rows = [triton_launch(case, seed=i) for i, case in enumerate(CASES)]
    sanitizer = sanitize(ctx, min(150.0, max(ctx.seconds_left - 30, 30)))
    ok = all(row["ok"] for row in rows) and sanitizer.get("sanitizer_ok", True)
    return {"status": PASS if ok else FAIL, "reason": "" if ok else "a launch off, or memcheck reported errors", "launches": rows, **sanitizer}
