"""`mclrt train --init-from DIR`: start a run (step 0, fresh optimizers) from another checkpoint's weights,
such as one `mclrt import cocosnet` wrote.

Weights only: the correspondence network and generator come from DIR's model.safetensors; the
discriminator from DIR's discriminator.safetensors where it has one (an import has one where upstream's
net_D.pth was present; parameters the file lacks start fresh, and a folder without one starts the whole
discriminator fresh, each said in one line); the MCL projection heads always start fresh. The run's model config must be
DIR's, except that `use_scm` may be switched on: CoCosNet has no self-correlation map, so its layer
(`corr.scm.*`) is new and starts from its initialization, named in one line. With `use_scm: false`
the step-0 model is exactly DIR's model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import torch

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file
from mclrt.training.checkpoint import read_meta, resolve_checkpoint
from mclrt.training.config import ModelConfig, model_config_from_dict

# Model fields that may differ from the checkpoint's: they add layers, never change existing ones.
ADDS_LAYERS = ("use_scm",)


def _load(file: Path, meta: dict) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    expected = meta.get("files", {}).get(file.name)
    if expected is not None and sha256_file(file) != expected:
        raise UserError("sha256 differs from meta.json (the file was changed or is corrupt)", file)
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise UserError(f"not a readable safetensors file ({err})", file) from err


def init_from_checkpoint(
    path: str | os.PathLike,
    model_cfg: ModelConfig,
    model: torch.nn.Module,
    discriminator: torch.nn.Module,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Load DIR's weights into `model` (and `discriminator` where DIR has them); returns the names of
    the model's parameters that DIR does not hold (they keep their initialization)."""
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    theirs = model_config_from_dict(meta.get("model_config") or {}) if isinstance(meta.get("model_config"), dict) else None
    if theirs is None:
        raise UserError("has no model_config", directory / "meta.json")
    differs = [
        f.name for f in dataclasses.fields(ModelConfig)
        if f.name not in ADDS_LAYERS + ("preset",) and getattr(theirs, f.name) != getattr(model_cfg, f.name)
    ]
    if differs:
        shown = ", ".join(f"{n} {getattr(model_cfg, n)!r} vs {getattr(theirs, n)!r}" for n in differs[:4])
        raise UserError(f"--init-from: the run's model differs from the checkpoint's ({shown}); set model: to the checkpoint's values", directory)
    if theirs.use_scm and not model_cfg.use_scm:
        raise UserError("--init-from: the checkpoint has a self-correlation map (use_scm: true) and the run turns it off", directory)

    state = _load(directory / "model.safetensors", meta)
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise UserError(f"--init-from: {unexpected[0]} is not a tensor of the run's model", directory / "model.safetensors")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise UserError(f"--init-from: {key} has shape {tuple(tensor.shape)}, the run's model {tuple(own[key].shape)}", directory / "model.safetensors")
    missing = model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False).missing_keys
    new = [k for k in missing if not k.endswith(("._u", "._v"))]  # spectral norm's u, v are buffers
    source = (meta.get("imported_from") or {}).get("architecture") or f"step {meta.get('step')}"
    say(f"initialized from {directory} ({source}): weights only, fresh optimizers, step 0")
    if new:
        count = sum(own[k].numel() for k in new if k in own)
        say(f"new parameters, starting from their initialization: {', '.join(new)} ({count:,} values)")
    d_file = directory / "discriminator.safetensors"
    if d_file.is_file():
        fresh = _load_discriminator(d_file, meta, discriminator)
        d_source = ((meta.get("imported_from") or {}).get("discriminator") or {}).get("file")
        said = f"discriminator: from the checkpoint{f' ({d_source})' if d_source else ''}"
        if fresh:
            own_d = discriminator.state_dict()
            said += f"; not in it, starting fresh: {', '.join(fresh)} ({sum(own_d[k].numel() for k in fresh):,} values)"
        say(said)
    else:
        say("discriminator: fresh (the checkpoint has none: it was imported without upstream's net_D.pth)")
    return new


def _load_discriminator(file: Path, meta: dict, discriminator: torch.nn.Module) -> list[str]:
    """Load what the file holds (shape-checked, no tensor of another network); returns the parameters it
    lacks, which keep their initialization (an import maps upstream's netD as far as it maps)."""
    state = _load(file, meta)
    own = discriminator.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise UserError(f"--init-from: {unexpected[0]} is not a tensor of the run's discriminator", file)
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise UserError(f"--init-from: {key} has shape {tuple(tensor.shape)}, the run's discriminator {tuple(own[key].shape)}", file)
    missing = discriminator.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False).missing_keys
    return [k for k in missing if not k.endswith(("._u", "._v"))]


__all__ = ["init_from_checkpoint"]
