"""The training loop, read top to bottom: setup, data, networks, resume, then the flat loop.

One step (CoCosNet's order), `train_step`: a generator step -- correspondence + generator forward,
every weighted loss of `Objective.generator_losses`, one Adam step for generator, correspondence and
MCL heads -- then a discriminator step on the detached output. The loop adds the optional EMA update
and the learning rate of the next step; logging, image grids and checkpoints happen between steps.
Continuing a run loads its checkpoint through `checkpoint.restore_training`.

Single process: `mclrt train --config FILE`. Several GPUs or machines (or CPU processes, with gloo):
`torchrun ... -m mclrt.runtime.cli train --config FILE` (what `make train GPUS=N [NODES=M ...]` runs);
each rank takes batch_size / world size samples per step and DDP averages the gradients, so the
global batch, the steps per epoch and the learning-rate schedule are the same for any world size.

A run folder that already holds a checkpoint is continued (`run_folder`: `--fresh` refuses instead,
`--resume` also accepts a changed config). Continuing is bit-exact on the same hardware and number
of ranks: weights, optimizer moments, every rank's RNG, the data order (the epoch's shuffle is
re-created and the samples already seen are skipped) and the learning-rate schedule all come back.
That is also how a torchrun restart (`--max-restarts K`, after a worker died) carries on: the new
group finds the latest complete checkpoint and continues from it. Verified on the CPU; on CUDA,
bit-exactness additionally needs deterministic kernels, which this loop does not force.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_write_bytes
from mclrt.training import distributed as D
from mclrt.training.checkpoint import (
    Checkpoint,
    capture_rng_state,
    latest_checkpoint,
    restore_training,
    save_checkpoint,
)
from mclrt.training.data import DATASET_KINDS, build_dataset
from mclrt.training.networks import build_networks
from mclrt.training.objective import Batch, GeneratorSide, Objective
from mclrt.training.options import TrainConfig, uses_vgg, write_yaml
from mclrt.training.previews import preview_grid
from mclrt.training.run_folder import StartMode, checkpoint_to_start_from


def load_vgg(config: TrainConfig) -> tuple[torch.nn.Module | None, str | None]:
    """The frozen VGG of the VGG losses (None when they are off, explicitly, or all weighted 0) and a
    note for the log saying why there is none."""
    if config.vgg.network == "off":
        return None, "VGG losses are OFF (vgg.network: off): no perceptual, contextual or VGG feature-matching loss"
    if not uses_vgg(config):
        return None, "every VGG-based loss has weight 0: VGG is not loaded"
    from mclrt.training.vgg import VGG16, VGG19, load_vgg_features

    arch = VGG19 if config.vgg.network == "vgg19" else VGG16
    # Without weights this raises a one-line UserError saying where to put the file.
    return load_vgg_features(arch, config.vgg.path, sha256=config.vgg.sha256), None


def lr_factor(step: int, total_steps: int, decay_start: int) -> float:
    """Constant, then linear to 0 at total_steps (CoCosNet's niter + niter_decay, per step)."""
    if step < decay_start:
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - decay_start))


def schedule_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total steps, step at which the decay starts)."""
    s = config.schedule
    if s.steps is not None:
        return s.steps + s.decay_steps, s.steps
    return (s.epochs + s.decay_epochs) * steps_per_epoch, s.epochs * steps_per_epoch


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    with torch.no_grad():
        for ema_p, p in zip(ema.parameters(), model.parameters()):
            ema_p.lerp_(p, 1.0 - beta)
        for ema_b, b in zip(ema.buffers(), model.buffers()):
            ema_b.copy_(b)  # spectral-norm vectors follow the live model


def make_optimizers(
    config: TrainConfig, model: torch.nn.Module, discriminator: torch.nn.Module, heads: torch.nn.Module | None
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """The generator's Adam (generator; correspondence + MCL heads, when they train) and the
    discriminator's, with `config.optim`'s learning rates, betas and eps."""
    o = config.optim
    betas = (float(o.beta1), float(o.beta2))
    trained_heads = list(heads.parameters()) if heads is not None else []
    opt_g = torch.optim.Adam(
        [
            {"params": list(model.generator.parameters()), "lr": o.lr_generator},
            {"params": list(model.corr.parameters()) + trained_heads, "lr": o.lr_correspondence},
        ],
        betas=betas,
        eps=o.generator_eps,
    )
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=o.lr_discriminator, betas=betas, eps=o.discriminator_eps)
    return opt_g, opt_d


@dataclass
class StepLosses:
    """What one `train_step` hands back: the losses (not detached) and the generator's outputs."""

    outputs: dict[str, torch.Tensor]  # run_generator's tensors: "fake", "warped", ... (previews read them)
    generator: dict[str, torch.Tensor]  # every weighted generator loss, by name
    g_total: torch.Tensor
    discriminator: dict[str, torch.Tensor]  # d_real, d_fake of the last D step; empty when D does not train

    @property
    def d_total(self) -> torch.Tensor | None:
        return self.discriminator["d_real"] + self.discriminator["d_fake"] if self.discriminator else None


def train_step(
    objective: Objective,
    batch: Batch,
    *,
    model: torch.nn.Module,
    heads: torch.nn.Module,
    discriminator: torch.nn.Module,
    generator_side: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    scaler_g: torch.amp.GradScaler,
    scaler_d: torch.amp.GradScaler,
    amp: bool,
    d_steps: int = 1,
    discriminator_forward: torch.nn.Module | None = None,
) -> StepLosses:
    """One training step, CoCosNet's order: a generator step, then `d_steps` discriminator steps.

    The loop of `train` calls it once per batch, and so does the GPU check
    (tools/gpu_checks/training_steps.py), which times this very function. The learning rates, the
    EMA update and everything that is logged stay with the caller.

    model, heads, discriminator: the bare modules (the generator losses read the discriminator's
    features and the correspondence's values through them). generator_side (a `GeneratorSide`) and
    discriminator_forward (default: discriminator) are what the forward passes that train go
    through: the DistributedDataParallel wrappers in a multi-process run, the bare modules
    otherwise, so the step itself knows nothing of DDP.
    amp: float16 autocast on CUDA with the given grad scalers (scalers made with enabled=False
    are plain backward + step; that is the float32 path).
    """
    autocast = (lambda: torch.autocast(device_type="cuda", dtype=torch.float16)) if amp else contextlib.nullcontext
    discriminator_forward = discriminator if discriminator_forward is None else discriminator_forward

    # generator step: D's weights frozen, gradients flow through it to the output
    discriminator.requires_grad_(False)
    with autocast():
        outputs = objective.run_generator(generator_side, batch)
        g_losses = objective.generator_losses(outputs, batch, discriminator, heads, model.corr.values(batch.exemplar))
        g_total = torch.stack(list(g_losses.values())).sum()
    opt_g.zero_grad(set_to_none=True)
    scaler_g.scale(g_total).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    discriminator.requires_grad_(True)

    # discriminator step (hinge) on the detached output
    d_losses: dict[str, torch.Tensor] = {}
    for _ in range(d_steps):
        with autocast():
            d_losses = objective.discriminator_losses(discriminator_forward, batch, outputs["fake"])
            d_total = d_losses["d_real"] + d_losses["d_fake"]
        opt_d.zero_grad(set_to_none=True)
        scaler_d.scale(d_total).backward()
        scaler_d.step(opt_d)
        scaler_d.update()
    return StepLosses(outputs, g_losses, g_total, d_losses)


def state_sha256(module_states: dict[str, dict[str, torch.Tensor]], optimizer_states: dict[str, dict]) -> str:
    """One digest of every weight, buffer and optimizer tensor: equal on all ranks unless DDP diverged.

    Takes state dicts, so a saved checkpoint can be hashed the same way as live networks.
    """
    digest = hashlib.sha256()
    tensors = [(f"{n}.{k}", t) for n, state in module_states.items() for k, t in state.items()]
    for name, state in optimizer_states.items():
        for pid, slots in state["state"].items():
            tensors += [(f"{name}.{pid}.{k}", t) for k, t in slots.items() if isinstance(t, torch.Tensor)]
    for key, tensor in sorted(tensors, key=lambda item: item[0]):  # safetensors files come back key-sorted
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TrainedRun:
    """What `train` hands back to a caller in the same process: the run folder and this rank's networks."""

    out_dir: Path
    step: int
    model: torch.nn.Module
    discriminator: torch.nn.Module
    heads: torch.nn.Module
    ema: torch.nn.Module | None


def train(
    config: TrainConfig,
    *,
    out: str | Path | None = None,
    resume: bool | None = None,
    max_steps: int | None = None,
    init_from: str | Path | None = None,
) -> TrainedRun:
    """Run (or continue) a training run. Call once per process (torchrun starts one per rank).

    init_from: a checkpoint folder whose weights a new run starts from (training/init_from.py).

    resume: None continues the run in `out` if it holds a checkpoint of this config and starts one
    otherwise; True must continue (`--resume`); False must start a new run (`--fresh`).
    """
    mode = StartMode.AUTO if resume is None else StartMode.RESUME if resume else StartMode.FRESH
    info = D.init_distributed(config.train.device)
    threads = torch.get_num_threads()
    try:
        return _train(config, info, Path(out or config.log.out), mode, max_steps, Path(init_from) if init_from is not None else None)
    finally:
        torch.set_num_threads(threads)  # train.threads is for this run, not for whatever the process does next
        D.shutdown()


def _train(config: TrainConfig, info: D.DistInfo, out_dir: Path, mode: StartMode, max_steps: int | None, init_from: Path | None = None) -> TrainedRun:
    from rich.console import Console

    console = Console(stderr=True)

    def say(message: str) -> None:
        if info.is_main:
            console.print(message, highlight=False, markup=False, soft_wrap=True)

    # --- setup ---------------------------------------------------------------------------------
    checkpoints = out_dir / "checkpoints"
    # Rank 0 looks at the run folder and every rank follows its answer (one decision, no deadlock).
    existing = D.decide_on_main(lambda: checkpoint_to_start_from(checkpoints, mode, config.to_dict()))
    resume = existing is not None
    restarts = D.restart_count()
    if restarts:
        say(
            f"torchrun restart {restarts} of at most {D.max_restarts()}: a worker of the previous attempt "
            f"stopped; {f'continuing from {existing}' if resume else 'no checkpoint yet, starting again from step 0'}"
        )
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    # Xavier init with gain 0.02 makes activations and gradients tiny enough to go subnormal, and
    # subnormal arithmetic is ~20x slower on x86 CPUs (measured: 42 s vs 2 s per nano step). Flushing
    # them to zero changes nothing a float32 training run can represent usefully. GPUs flush anyway.
    torch.set_flush_denormal(True)
    if config.train.batch_size % info.world_size:
        raise UserError(f"train.batch_size {config.train.batch_size} is not divisible by the {info.world_size} processes")
    per_rank_batch = config.train.batch_size // info.world_size
    device = info.device
    amp = config.train.amp and device.type == "cuda"
    if config.train.amp and not amp:
        say("train.amp is on but this is not a CUDA device: training in float32")
    if resume:
        config = _keep_recorded_pono(config, existing, say)
    model_cfg = config.model_config()
    expected_kind = DATASET_KINDS[config.data.kind][2]
    if expected_kind != model_cfg.condition_kind:
        raise UserError(
            f"data.kind {config.data.kind!r} makes {expected_kind!r} conditions but the model "
            f"({model_cfg.preset}) expects {model_cfg.condition_kind!r}"
        )

    # VGG first: a missing weights file should stop the run before a large dataset is indexed.
    vgg, vgg_note = load_vgg(config)

    # --- data ----------------------------------------------------------------------------------
    dataset = build_dataset(config.data.kind, config.dataset_options())
    if dataset.num_channels != model_cfg.label_nc:
        raise UserError(f"the {config.data.kind} data has {dataset.num_channels} condition channels, the model expects {model_cfg.label_nc}")
    steps_per_epoch = D.ResumableSampler.steps_per_epoch(dataset, config.train.batch_size)  # any world size
    if steps_per_epoch < 1:
        raise UserError(f"the dataset has {len(dataset)} samples, fewer than one batch of {config.train.batch_size}")
    total_steps, decay_start = schedule_steps(config, steps_per_epoch)
    stop_step = min(total_steps, max_steps) if max_steps is not None else total_steps

    # --- networks, objective, optimizers -------------------------------------------------------------
    nets = build_networks(model_cfg, seed=config.train.seed)  # the same initial weights on every rank
    if init_from is not None and not resume:  # weights only; a resumed run continues its own weights
        from mclrt.training.init_from import init_from_checkpoint

        init_from_checkpoint(init_from, model_cfg, nets["model"], nets["discriminator"], say)
    elif init_from is not None:
        say(f"--init-from {init_from} is ignored: the run continues from its own checkpoint {existing}")
    model, discriminator, heads = (nets[k].to(device) for k in ("model", "discriminator", "heads"))
    model = D.maybe_sync_batchnorm(model, device)
    discriminator = D.maybe_sync_batchnorm(discriminator, device)
    if vgg is not None:
        vgg = vgg.to(device)
    if vgg_note:
        say(vgg_note)
    objective = Objective(config, model_cfg, vgg)
    opt_g, opt_d = make_optimizers(config, model, discriminator, heads if objective.uses_heads else None)
    base_lrs = [group["lr"] for group in opt_g.param_groups] + [group["lr"] for group in opt_d.param_groups]
    ema = copy.deepcopy(model).eval().requires_grad_(False) if config.train.ema else None
    scaler_g = torch.amp.GradScaler(device.type, enabled=amp)
    scaler_d = torch.amp.GradScaler(device.type, enabled=amp)
    d_steps = config.train.d_steps_per_g if config.loss.gan > 0 or config.loss.gan_feat > 0 else 0

    # --- resume ----------------------------------------------------------------------------------
    step, samples_seen = 0, 0
    if resume:
        D.check_visible_everywhere(existing / "meta.json", "the checkpoint to continue from")
        restored = restore_training(
            existing, model_config=model_cfg, model=model, discriminator=discriminator, heads=heads, ema=ema,
            optimizers={"generator": opt_g, "discriminator": opt_d},
            grad_scalers={"generator": scaler_g, "discriminator": scaler_d},
            rank=info.rank, world_size=info.world_size,
        )
        step, samples_seen = restored.step, restored.samples_seen
        if not restored.rng_restored:
            say(f"the checkpoint was written by {restored.ranks} processes, this run has {info.world_size}: "
                "random streams are re-seeded, so this continuation is not bit-exact")
            D.seed_rank(config.train.seed + step, info.rank)
        why = "" if mode is StartMode.RESUME else " (it was in the run folder; --fresh refuses such a folder instead)"
        say(f"continuing the run from {existing} at step {step}{why}")
    else:
        D.seed_rank(config.train.seed, info.rank)

    generator_side = D.wrap_ddp(GeneratorSide(model, heads if objective.uses_heads else None), info)
    discriminator_ddp = D.wrap_ddp(discriminator, info)
    for module in (model, discriminator, heads):
        module.train()

    # --- output folder (rank 0 writes) ------------------------------------------------------------
    writer = None
    metrics_path = out_dir / "metrics.jsonl"
    config_name = "config.yaml" if not resume else f"config-resume-{step:08d}.yaml"
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out_dir / config_name, write_yaml(config).encode("utf-8"), overwrite=True)
        # Steps logged after the checkpoint we continue from were undone (a worker died, the group
        # restarted): drop them, so the log has each step once, as TensorBoard's purge_step does.
        _drop_logged_steps_after(metrics_path, step)
        if config.log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=step + 1 if resume else None)
            if not resume:
                writer.add_text("config", "```\n" + write_yaml(config) + "\n```", 0)
    D.barrier()
    D.check_visible_everywhere(out_dir / config_name, "the run folder")
    run_info = {
        "data_kind": config.data.kind,
        "condition_kind": model_cfg.condition_kind,
        "face_contours_used": bool(getattr(dataset, "face_contours_used", False)),
        "vgg": config.vgg.network if vgg is not None or config.vgg.network == "off" else "unused (all VGG losses weigh 0)",
        "world_size": info.world_size,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "torchrun_restarts": restarts,
    }
    say(
        f"{model_cfg.preset} on {config.data.kind} ({len(dataset)} samples), {info.world_size} process(es) on {device}, "
        f"batch {config.train.batch_size}, {steps_per_epoch} steps/epoch, steps {step} -> {stop_step} of {total_steps}"
    )

    def write_checkpoint() -> None:
        rng = D.gather_objects(capture_rng_state())  # every rank's RNG, so every rank resumes exactly
        states = {"model": model.state_dict(), "discriminator": discriminator.state_dict(), "heads": heads.state_dict()}
        digests = D.gather_objects(state_sha256(states, {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()}))
        if info.is_main:
            if len(set(digests)) > 1:
                say(f"WARNING: the {info.world_size} processes hold different weights at step {step} (DDP diverged)")
            ckpt = Checkpoint(
                step=step,
                epoch=step // steps_per_epoch,
                samples_seen=samples_seen,
                model=model.state_dict(),
                discriminator=discriminator.state_dict(),
                heads=heads.state_dict(),
                ema=ema.state_dict() if ema is not None else None,
                optimizers={"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
                rng=rng,
                grad_scalers={"generator": scaler_g.state_dict(), "discriminator": scaler_d.state_dict()} if amp else {},
                model_config=model_cfg.to_dict(),
                train_config=config.to_dict(),
                info={**run_info, "rank_state_sha256": digests},
            )
            save_checkpoint(checkpoints, ckpt, keep_last=config.log.keep_last)
        D.barrier()

    # --- the loop ----------------------------------------------------------------------------------
    sums: dict[str, float] = {}
    counted, interval_start = 0, time.perf_counter()
    progress = _progress(console, info.is_main)
    with progress:
        task = progress.add_task("training", total=stop_step, completed=step)
        while step < stop_step:
            epoch = step // steps_per_epoch
            dataset.set_epoch(epoch)
            sampler = D.ResumableSampler(
                dataset, info, config.train.seed, epoch,
                skip=(step % steps_per_epoch) * per_rank_batch, length=steps_per_epoch * per_rank_batch,
            )
            loader = DataLoader(
                dataset,
                batch_size=per_rank_batch,
                sampler=sampler,
                num_workers=config.data.workers,
                drop_last=True,
                pin_memory=device.type == "cuda",
                # Its own generator: creating a loader must not draw from the global RNG, or a resumed
                # run (which creates it at another step) would diverge.
                generator=torch.Generator().manual_seed(config.train.seed * 100_003 + epoch),
            )
            for items in loader:
                batch = Batch.from_collated(items, device)
                factor = lr_factor(step, total_steps, decay_start)
                for group, base in zip(opt_g.param_groups + opt_d.param_groups, base_lrs):
                    group["lr"] = base * factor

                losses = train_step(
                    objective, batch, model=model, heads=heads, discriminator=discriminator,
                    generator_side=generator_side, discriminator_forward=discriminator_ddp,
                    opt_g=opt_g, opt_d=opt_d, scaler_g=scaler_g, scaler_d=scaler_d, amp=amp, d_steps=d_steps,
                )
                if ema is not None:
                    ema_update(ema, model, config.train.ema_beta)

                step += 1
                samples_seen += config.train.batch_size
                values = {f"loss/{k}": v.detach() for k, v in {**losses.generator, **losses.discriminator}.items()}
                values["loss/g_total"] = losses.g_total.detach()
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                counted += 1
                progress.update(task, completed=step)

                if step % config.log.log_every == 0 or step == stop_step:
                    seconds = (time.perf_counter() - interval_start) / counted
                    scalars = D.mean_over_ranks({k: v / counted for k, v in sums.items()}, device)
                    scalars["lr/generator"] = opt_g.param_groups[0]["lr"]
                    scalars["lr/discriminator"] = opt_d.param_groups[0]["lr"]
                    scalars["time/seconds_per_step"] = seconds
                    if info.is_main:
                        _log(writer, metrics_path, step, epoch, samples_seen, scalars)
                        losses_text = " ".join(f"{k[5:]}={v:.3g}" for k, v in scalars.items() if k.startswith("loss/"))
                        progress.console.print(
                            f"step {step}/{stop_step} {seconds:.2f}s/step {losses_text}", highlight=False, markup=False, soft_wrap=True
                        )
                    sums, counted, interval_start = {}, 0, time.perf_counter()
                if writer is not None and config.log.image_every and (step % config.log.image_every == 0 or step == stop_step):
                    grid = preview_grid(batch.condition, batch.exemplar, losses.outputs["warped"], losses.outputs["fake"], batch.image, model_cfg.condition_kind)
                    writer.add_image("samples/condition|exemplar|warped|output|ground_truth", grid, step)
                if step % config.log.checkpoint_every == 0 or step == stop_step:
                    write_checkpoint()
                if step >= stop_step:
                    break
    if writer is not None:
        writer.close()
    say(f"done at step {step}: {latest_checkpoint(checkpoints)}")
    return TrainedRun(out_dir, step, model, discriminator, heads, ema)


def _keep_recorded_pono(config: TrainConfig, checkpoint: Path, say) -> TrainConfig:
    """A checkpoint written before `model.pono` existed was trained with the biased variance (÷ C):
    continue it that way, even where its preset now says "unbiased" (the paper presets), unless the
    config names model.pono itself. Recorded in the run's config, so later resumes agree."""
    from mclrt.training.checkpoint import read_meta

    recorded = read_meta(checkpoint).get("model_config", {})
    if "pono" in recorded or "pono" in config.model:
        return config
    if config.model_config().pono != "biased":
        say("the checkpoint predates model.pono: continuing with its biased positional normalization (÷ C)")
    return dataclasses.replace(config, model={**config.model, "pono": "biased"})


def _log(writer, metrics_path: Path, step: int, epoch: int, samples: int, scalars: dict[str, float]) -> None:
    if writer is not None:
        for name, value in scalars.items():
            writer.add_scalar(name, value, step)
        writer.flush()
    line = json.dumps({"step": step, "epoch": epoch, "samples": samples, **scalars})
    with open(metrics_path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _drop_logged_steps_after(metrics_path: Path, step: int) -> None:
    """Rewrite metrics.jsonl (atomically) without the lines of steps after `step`, and without a
    last line torn by a kill in the middle of its write."""
    if not metrics_path.is_file():
        return

    def logged_step(line: str) -> int | None:
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            return None

    lines = metrics_path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and (logged := logged_step(line)) is not None and logged <= step]
    if len(kept) != len(lines):
        atomic_write_bytes(metrics_path, "".join(kept).encode("utf-8"), overwrite=True)


def _progress(console, enabled: bool):
    """A rich progress bar with ETA on rank 0 (other ranks get a silent one)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled or not console.is_terminal,
        transient=False,
    )
