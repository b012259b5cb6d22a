"""Check 6: training on CUDA. edge-small generator + discriminator steps with AMP on and off
(s/step, finite losses, the grad scaler's scale): training/train.py's own `train_step` with the
trainer's optimizers (`make_optimizers`) on a synthetic batch, so what is timed is the trainer's step,
not a copy; then paper-ade20k forward/backward of the generator losses at B = 2 for peak memory.
VGG losses off (no VGG weights on the machine). NEVER RUN: written for the first GPU run (no GPU
where train_step was factored out either; its CPU path is what tests/test_train.py runs bit-exactly).
"""

from __future__ import annotations

import time

from mclrt.tools.gpu_checks import FAIL, PASS

STEPS = 4


def _batch(torch, cfg, batch_size: int):
    from mclrt.training.objective import Batch

    generator = torch.Generator(device="cuda").manual_seed(0)
    size = cfg.image_size

    def image():
        return torch.rand(batch_size, 3, size, size, device="cuda", generator=generator) * 2 - 1

    if cfg.condition_kind == "label":
        labels = torch.randint(0, cfg.label_nc, (2, batch_size, size, size), device="cuda", generator=generator)
        one_hot = [torch.nn.functional.one_hot(l, cfg.label_nc).permute(0, 3, 1, 2).float() for l in labels]
        condition, exemplar_condition, label, exemplar_label = one_hot[0], one_hot[1], labels[0], labels[1]
    else:
        condition = torch.rand(batch_size, cfg.label_nc, size, size, device="cuda", generator=generator)
        exemplar_condition = torch.rand(batch_size, cfg.label_nc, size, size, device="cuda", generator=generator)
        label = exemplar_label = None
    pseudo = torch.zeros(batch_size, dtype=torch.bool, device="cuda")
    return Batch(condition, image(), image(), exemplar_condition, pseudo, label, exemplar_label)


def _setup(torch, preset: str):
    from mclrt.training.networks import build_networks
    from mclrt.training.objective import GeneratorSide, Objective
    from mclrt.training.options import load_train_config

    config = load_train_config(None, [f"model.preset={preset}", "schedule.steps=10"])
    config.vgg.network = "off"
    cfg = config.model_config()
    nets = {name: net.cuda() for name, net in build_networks(cfg, seed=0).items()}
    objective = Objective(config, cfg, vgg=None)
    heads = nets["heads"] if objective.uses_heads else None
    side = GeneratorSide(nets["model"], heads)
    return config, cfg, nets, objective, side


def _steps(torch, preset: str, amp: bool, batch_size: int, steps: int) -> dict:
    from mclrt.training.train import make_optimizers, train_step

    config, cfg, nets, objective, side = _setup(torch, preset)
    model, discriminator, heads = nets["model"], nets["discriminator"], nets["heads"]
    opt_g, opt_d = make_optimizers(config, model, discriminator, heads if objective.uses_heads else None)
    scaler_g = torch.amp.GradScaler("cuda", enabled=amp)
    scaler_d = torch.amp.GradScaler("cuda", enabled=amp)
    batch = _batch(torch, cfg, batch_size)
    losses, times = [], []
    torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        # The trainer's own step (one D step per G step, as train.d_steps_per_g defaults to).
        step = train_step(
            objective, batch, model=model, heads=heads, discriminator=discriminator, generator_side=side,
            opt_g=opt_g, opt_d=opt_d, scaler_g=scaler_g, scaler_d=scaler_d, amp=amp, d_steps=1,
        )
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        losses.append((step.g_total.item(), step.d_total.item()))
    finite = all(map(lambda pair: all(map(lambda x: x == x and abs(x) != float("inf"), pair)), losses))
    return {
        "preset": preset,
        "B": batch_size,
        "amp": amp,
        "s_per_step": sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else times[0],  # first step warms up
        "g_total_last": losses[-1][0],
        "d_total_last": losses[-1][1],
        "grad_scale": scaler_g.get_scale() if amp else None,
        "peak_MiB": torch.cuda.max_memory_allocated() / 2**20,
        "finite": finite,
    }


def _paper_memory(torch) -> dict:
    config, cfg, nets, objective, side = _setup(torch, "paper-ade20k")
    batch = _batch(torch, cfg, 2)
    torch.cuda.reset_peak_memory_stats()
    nets["discriminator"].requires_grad_(False)
    outputs = objective.run_generator(side, batch)
    g_losses = objective.generator_losses(outputs, batch, nets["discriminator"], nets["heads"], nets["model"].corr.values(batch.exemplar))
    total = torch.stack(list(g_losses.values())).sum()
    total.backward()
    torch.cuda.synchronize()
    return {"preset": "paper-ade20k", "B": 2, "amp": False, "g_total_last": total.item(), "peak_MiB": torch.cuda.max_memory_allocated() / 2**20, "finite": bool(torch.isfinite(total))}


def run(ctx) -> dict:
    import torch

    rows = [_steps(torch, "edge-small", amp, 2, STEPS) for amp in (False, True)]
    torch.cuda.empty_cache()
    rows.append(_paper_memory(torch))
    bad = [f"{r['preset']} amp={r['amp']}" for r in rows if not r["finite"]]
    return {"status": FAIL if bad else PASS, "reason": f"non-finite losses: {', '.join(bad)}" if bad else "", "runs": rows}
