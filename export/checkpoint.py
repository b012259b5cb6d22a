"""The generator an export starts from: a trained checkpoint, or a freshly initialized preset.

A checkpoint is what `mclrt train` writes (training/checkpoint.py): a folder `<run>/checkpoints/<step>/`
holding `model.safetensors` (the MCLNet state dict, spectral norm still parametrized), optionally
`ema.safetensors` (the EMA of those weights) and `meta.json` (model and training config, step, the
sha256 of every file). Export needs only those three files, so it reads them directly instead of
loading the discriminator, optimizer and RNG state too.

Either way the model comes back in eval mode with spectral norm folded into plain weights, which is
the form every exported graph is traced from.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.nn.utils import parametrize

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file, shareable_json
from mclrt.training.checkpoint import read_meta, resolve_checkpoint
from mclrt.training.config import ModelConfig, load_model_config, model_config_from_dict
from mclrt.training.networks import MCLNet, build_networks, remove_spectral_norm

MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"


@dataclass(frozen=True)
class SourceModel:
    """An inference-ready MCLNet and where its weights came from (the manifest's `provenance`)."""

    model: MCLNet
    config: ModelConfig
    provenance: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] | None = None  # the checkpoint's meta.json; None for a fresh init


def prepare_for_export(model: MCLNet) -> MCLNet:
    """Eval mode, then fold spectral norm. The order matters: in train mode reading a spectral-norm
    weight runs a power iteration and changes u, v; in eval mode it uses the stored ones, so the
    folded weights are exactly what the trained model computes at inference."""
    model.eval()
    remove_spectral_norm(model)
    leftover = [name for name, module in model.named_modules() if parametrize.is_parametrized(module)]
    if leftover:
        raise RuntimeError(f"parametrizations remain after folding spectral norm: {', '.join(leftover[:5])}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def init_model(preset: str, seed: int = 0) -> SourceModel:
    """A freshly initialized preset, seeded: the same generator weights `mclrt train` starts from."""
    config = load_model_config(preset)
    model = build_networks(config, seed=seed)["model"]
    return SourceModel(
        prepare_for_export(model),
        config,
        {"init": preset, "seed": seed, "model_config": config.to_dict()},
    )


def load_checkpoint_model(path: str | os.PathLike, ema: bool = False) -> tuple[MCLNet, dict[str, Any]]:
    """(MCLNet ready for export, the checkpoint's meta.json) from a checkpoint.

    `path` may be a checkpoint folder, `checkpoints/latest`, a run folder (its latest checkpoint), or a
    `model.safetensors` with `meta.json` beside it. With `ema`, the EMA weights in `ema.safetensors`
    replace the trained ones. Missing or malformed files raise UserError naming the file.
    """
    source = load_checkpoint_source(path, ema=ema)
    return source.model, source.meta


def locate_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint folder, its model.safetensors) from any form `load_checkpoint_model` accepts."""
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        return path.parent, path
    directory = resolve_checkpoint(path)
    return directory, directory / MODEL_FILE


def run_name(checkpoint_dir: Path) -> str | None:
    """The run a checkpoint folder belongs to (`<run>/checkpoints/<step>/`: the run folder's name), or None."""
    resolved = checkpoint_dir.resolve()
    return resolved.parent.parent.name if resolved.parent.name == "checkpoints" else None


def load_checkpoint_source(path: str | os.PathLike, ema: bool = False) -> SourceModel:
    """`load_checkpoint_model` plus the provenance block the manifest records."""
    directory, model_file = locate_checkpoint(path)
    meta = read_meta(directory)
    config = _model_config(meta, directory / "meta.json")
    # Files first: a truncated or tampered file should fail before seconds of network construction.
    state = _load_state(model_file, meta)
    weights = "model"
    ema_state: dict[str, torch.Tensor] = {}
    if ema:
        ema_file = directory / EMA_FILE
        if not ema_file.is_file():
            raise UserError(f"--ema asked for the EMA weights, but the checkpoint has no {EMA_FILE} (was EMA on in training?)", directory)
        ema_state = _load_state(ema_file, meta)
        weights = "ema"

    model = MCLNet(config)
    _check_keys(model, state, model_file, require_all=True)
    if ema:
        # The EMA may cover every tensor or only the trainable ones; what it has replaces the trained value.
        _check_keys(model, ema_state, directory / EMA_FILE, require_all=False)
        state.update(ema_state)
    model.load_state_dict(state, strict=True)

    # Where the checkpoint lay is the exporting machine's business: the manifest names the run and
    # the checkpoint folder and pins the weights by hash (`mclrt compare --backends torch --checkpoint`
    # checks it), and no absolute path of that machine goes into a file meant to be shared.
    provenance: dict[str, Any] = {
        "run": run_name(directory),
        "checkpoint_folder": directory.name,
        "weights": weights,
        "model_sha256": sha256_file(model_file),
        "step": meta.get("step"),
        "model_config": config.to_dict(),
        "train_config": shareable_json(meta.get("train_config", {})),
    }
    imported = meta.get("imported_from")
    if isinstance(imported, dict):  # `mclrt import cocosnet`: say what the model is, in every manifest
        provenance["architecture"] = imported.get("architecture")
        provenance["imported_from"] = imported
    if ema:
        provenance["ema_sha256"] = sha256_file(directory / EMA_FILE)
    return SourceModel(prepare_for_export(model), config, provenance, meta)


def _model_config(meta: dict[str, Any], meta_path: Path) -> ModelConfig:
    data = meta.get("model_config")
    if not isinstance(data, dict):
        raise UserError("has no 'model_config' object", meta_path)
    required = {f.name for f in dataclasses.fields(ModelConfig) if f.default is dataclasses.MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise UserError(f"model_config lacks {', '.join(missing)}", meta_path)
    try:
        return model_config_from_dict(data)
    except (TypeError, ValueError) as err:
        raise UserError(f"model_config is not valid: {err}", meta_path) from err


def _load_state(file: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise UserError("no such file", file)
    expected = meta.get("files", {}).get(file.name)
    if expected is not None and sha256_file(file) != expected:
        raise UserError("sha256 differs from meta.json (the file was changed or is corrupt)", file)
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise UserError(f"not a readable safetensors file ({err})", file) from err
    # Exported graphs are fp32 (precision is lowered later, per backend), whatever training stored.
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def _check_keys(model: MCLNet, state: dict[str, torch.Tensor], file: Path, require_all: bool) -> None:
    """Name the first few mismatches: a checkpoint of another preset or width is a user mistake."""
    expected = model.state_dict()
    unknown = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state)) if require_all else []
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unexpected tensor(s) (e.g. {', '.join(unknown[:3])})")
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {', '.join(missing[:3])})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})")
    if problems:
        raise UserError("does not match the model in meta.json: " + "; ".join(problems), file)
