"""Check 5: PyTorch CUDA inference of every preset (paper presets and edge-small at 256x256, nano at
128x128), B = 1 and 8, in fp32, TF32, fp16 and bf16 autocast: ms/image (CUDA events), peak memory,
PSNR of the output vs fp32, and agreement of the warp's argmax (best-matching exemplar position per
query) with fp32's. Random-initialized weights (seed 0) and random inputs: the numbers measure the
precision modes, not image quality. PASS = every output finite.

NEVER RUN: written for the first GPU run.
"""

from __future__ import annotations

import contextlib
import math

from mclrt.tools.gpu_checks import FAIL, PASS
from mclrt.tools.gpu_checks.common import cuda_ms

MODES = ("fp32", "tf32", "fp16", "bf16")
BATCHES = (1, 8)


def _inputs(torch, cfg, batch: int, seed: int):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    size = cfg.image_size
    condition = torch.rand(batch, cfg.label_nc, size, size, device="cuda", generator=generator)
    exemplar = torch.rand(batch, 3, size, size, device="cuda", generator=generator) * 2 - 1
    exemplar_condition = torch.rand(batch, cfg.label_nc, size, size, device="cuda", generator=generator) if cfg.maskmix else None
    return condition, exemplar, exemplar_condition


def _mode(torch, mode: str):
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    if mode in ("fp16", "bf16"):
        return torch.autocast("cuda", dtype=torch.float16 if mode == "fp16" else torch.bfloat16)
    return contextlib.nullcontext()


def run(ctx) -> dict:
    import torch

    from mclrt.training.config import PRESETS
    from mclrt.training.networks import build_networks

    rows = []
    for name, cfg in PRESETS.items():
        model = build_networks(cfg, seed=0)["model"].eval().cuda()
        for batch in BATCHES:
            inputs = _inputs(torch, cfg, batch, seed=1)
            reference_image = reference_argmax = None
            for mode in MODES:
                with torch.no_grad(), _mode(torch, mode):
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    ms = cuda_ms(lambda: model(*inputs), warmup=1, repeat=3)
                    peak = torch.cuda.max_memory_allocated()
                    image, _ = model(*inputs)
                    corr = model.corr(*inputs)
                    argmax = torch.bmm(corr.q.float(), corr.k.float().transpose(1, 2)).argmax(dim=-1)
                image = image.float()
                finite = bool(torch.isfinite(image).all())
                if mode == "fp32":
                    reference_image, reference_argmax = image, argmax
                mse = torch.mean((image - reference_image) ** 2).item()
                rows.append(
                    {
                        "preset": name,
                        "size": cfg.image_size,
                        "B": batch,
                        "mode": mode,
                        "ms_per_image": ms / batch,
                        "peak_MiB": peak / 2**20,
                        "psnr_vs_fp32_dB": math.inf if mse == 0 else 10 * math.log10(4.0 / mse),  # range [-1, 1]
                        "argmax_agreement": (argmax == reference_argmax).float().mean().item(),
                        "finite": finite,
                    }
                )
        model = inputs = None  # free this preset before the next
        torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    bad = [f"{r['preset']} B{r['B']} {r['mode']}" for r in rows if not r["finite"]]
    return {"status": FAIL if bad else PASS, "reason": f"non-finite output: {', '.join(bad)}" if bad else "", "runs": rows}
