"""Check 2: the correspondence at paper size (B 1 and 4, N = M = 4096, C = 2560, Cv = 3): the
kernel's error vs float64, and its time against torch explicit (TF32 off/on), chunked and SDPA.

NEVER RUN: written for the first GPU run.
"""

from __future__ import annotations

from mclrt.tools.gpu_checks import FAIL, PASS
from mclrt.tools.gpu_checks.common import cuda_ms, tolerance

N = M = 4096
C = 2560
CV = 3
SCALE = 100.0


def run(ctx) -> dict:
    import torch
    import torch.nn.functional as F

    from mclrt.runtime.kernels.correspondence_launch import launch
    from mclrt.training.correspondence import correspondence_chunked, correspondence_explicit

    rows, errors = [], []
    generator = torch.Generator(device="cuda").manual_seed(0)
    for batch in (1, 4):
        q = F.normalize(torch.randn(batch, N, C, device="cuda", generator=generator), dim=-1)
        k = F.normalize(torch.randn(batch, M, C, device="cuda", generator=generator), dim=-1)
        v = torch.rand(batch, M, CV, device="cuda", generator=generator) * 2 - 1

        def reference(q, k, v):
            return torch.bmm(torch.softmax(SCALE * torch.bmm(q.double(), k.double().transpose(1, 2)), dim=-1), v.double())

        stream = torch.cuda.current_stream().cuda_stream
        for dtype, torch_dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            qd, kd, vd = (t.to(torch_dtype).contiguous() for t in (q, k, v))
            out = torch.empty(batch, N, CV, dtype=torch_dtype, device="cuda")

            def kernel():
                launch(qd.data_ptr(), kd.data_ptr(), vd.data_ptr(), out.data_ptr(), batch, N, M, C, CV, SCALE, False, dtype, stream)

            ms = cuda_ms(kernel)
            error = (out.double() - reference(qd, kd, vd)).abs().max().item()
            ok = error <= tolerance(dtype)
            errors.append(ok)
            rows.append({"B": batch, "path": f"kernel {dtype}", "ms": ms, "max_abs_err": error, "ok": ok})

        ref = reference(q, k, v)
        for label, tf32, fn in (
            ("torch explicit fp32", False, lambda: correspondence_explicit(q, k, v, SCALE)),
            ("torch explicit TF32", True, lambda: correspondence_explicit(q, k, v, SCALE)),
            ("torch chunked fp32", False, lambda: correspondence_chunked(q, k, v, SCALE, chunk_size=1024)),
            ("SDPA fp32", False, lambda: F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=SCALE)[:, 0]),
        ):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                with torch.no_grad():
                    ms = cuda_ms(fn)
                    error = (fn().double() - ref).abs().max().item()
                rows.append({"B": batch, "path": label, "ms": ms, "max_abs_err": error})
            except RuntimeError as err:  # e.g. no SDPA backend for head width 2560
                rows.append({"B": batch, "path": label, "ms": None, "max_abs_err": None, "note": str(err).splitlines()[0][:160]})
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
        q = k = v = ref = None  # free the B=1 tensors before B=4
        torch.cuda.empty_cache()
    return {
        "status": PASS if all(errors) else FAIL,
        "reason": "" if all(errors) else "kernel error above tolerance (fp32 2e-4, fp16 1e-2)",
        "features": "random unit vectors (not trained descriptors)",
        "timings": rows,
    }
