"""Checkpoints of freshly initialized models, written exactly as the trainer writes them.

`write_fresh_checkpoint` builds a preset's networks with `build_networks(config, seed)` -- what
`mclrt train` starts from -- and saves them with `training.checkpoint.save_checkpoint`, so the
export's checkpoint reader is tested against the real format, not an imitation of it.
"""

from __future__ import annotations

from pathlib import Path

from mclrt.training.checkpoint import Checkpoint, capture_rng_state, save_checkpoint
from mclrt.training.config import load_model_config
from mclrt.training.networks import build_networks

STEP = 7
TRAIN_CONFIG = {"note": "written by the export tests"}
EMA_FACTOR = 0.5  # the stand-in EMA weights are the trained ones times this, so they are recognizable


def write_fresh_checkpoint(run: Path, preset: str = "nano", overrides: dict | None = None, seed: int = 0, with_ema: bool = False) -> Path:
    """`run/checkpoints/<step>/` (and the `latest` link) holding untrained weights; returns the folder."""
    config = load_model_config(preset, overrides)
    nets = build_networks(config, seed=seed)
    model_state = nets["model"].state_dict()
    ema = None
    if with_ema:  # an EMA of the trainable tensors (spectral norm's u, v are buffers, not averaged)
        ema = {k: v * EMA_FACTOR for k, v in model_state.items() if not k.endswith(("_u", "_v"))}
    checkpoint = Checkpoint(
        step=STEP,
        epoch=0,
        samples_seen=2 * STEP,
        model=model_state,
        discriminator=nets["discriminator"].state_dict(),
        heads=nets["heads"].state_dict(),
        optimizers={},
        rng=[capture_rng_state()],
        model_config=config.to_dict(),
        train_config=TRAIN_CONFIG,
        ema=ema,
    )
    return save_checkpoint(run / "checkpoints", checkpoint)
