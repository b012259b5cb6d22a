"""`mclrt train`: train MCL-Net from a YAML config (torch is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def train_command(
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Config overrides section.key=value, e.g. train.batch_size=8 vgg.network=off model.ngf=8."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Training YAML (training/configs/*.yaml). With --resume it defaults to the run's own config."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: log.out of the config)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its latest checkpoint, bit-exactly, even with a changed config "
        "(without --config: the run's own). Default without --resume or --fresh: a run folder that holds a "
        "checkpoint of the same config is continued (so a torchrun restart carries on), an empty one starts a run.",
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start a new run; refuse a run folder that already holds checkpoints (never overwritten)."
    ),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1, help="Stop after this many steps in total (the learning-rate schedule is unchanged)."
    ),
    init_from: Optional[Path] = typer.Option(
        None, "--init-from", help="Start from this checkpoint's weights (e.g. `mclrt import cocosnet`'s): fresh optimizers, step 0. "
        "The model config must be the checkpoint's, except that model.use_scm may be turned on (its layer then starts fresh)."
    ),
    json_output: bool = typer.Option(False, "--json", help="At the end, print the run folder, last step and checkpoint as one JSON object."),
) -> None:
    """Train MCL-Net (single process, or one rank of torchrun: `make train GPUS=N [NODES=M ...]`)."""
    from mclrt.runtime.errors import UserError
    from mclrt.training.options import config_from_dict, load_train_config

    if init_from is not None and resume:
        raise UserError("--init-from starts a new run from other weights; --resume continues this run's own: give one of them")
    if init_from is not None:
        from mclrt.training.checkpoint import resolve_checkpoint

        resolve_checkpoint(init_from)  # before any data is read: a wrong folder is a one-line error
    if resume and fresh:
        raise UserError("--resume and --fresh contradict each other: give one of them (or neither)")
    if config is None and not resume:
        raise UserError("give --config FILE (training/configs/demo.yaml for the CPU demo), or --resume with --out")
    if config is not None:
        train_config = load_train_config(config, overrides or [])
    else:
        # Resuming without --config: the run's own config, as its latest checkpoint recorded it.
        from mclrt.training.checkpoint import read_meta, resolve_checkpoint
        from mclrt.training.options import apply_overrides

        if out is None:
            raise UserError("--resume without --config needs --out (the run folder to continue)")
        checkpoint = resolve_checkpoint(out)
        recorded = read_meta(checkpoint)["train_config"]
        train_config = config_from_dict(apply_overrides(recorded, overrides or []), checkpoint / "meta.json")

    from mclrt.training.train import train

    run = train(train_config, out=out, resume=True if resume else False if fresh else None, max_steps=max_steps, init_from=init_from)
    if json_output:
        import json

        print(json.dumps({"run": str(run.out_dir), "step": run.step, "checkpoint": str(Path(run.out_dir) / "checkpoints" / "latest")}))
