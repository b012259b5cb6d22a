"""Training checkpoints: safetensors files plus a JSON of counters and configs, written atomically.

One checkpoint is a folder `<run>/checkpoints/<step:08d>/`:

    model.safetensors                 MCLNet (correspondence + generator) state dict
    discriminator.safetensors
    heads.safetensors                 MCL projection heads
    ema.safetensors                   EMA of the MCLNet weights (only when EMA is on)
    optimizer_generator.safetensors   optimizer tensors; the non-tensor structure (param groups,
    optimizer_discriminator.safetensors   step counts' layout, betas) as JSON in the file's metadata
    rng.safetensors                   every rank's torch (and CUDA) generator state
    meta.json                         format, counters (step, epoch, samples seen), every rank's python
                                      and numpy RNG state, AMP grad-scaler states, the model config,
                                      the training config, and the sha256 of every file above

Nothing is pickled: tensors go through safetensors, everything else through JSON, so loading a
checkpoint never runs code from the file.

Writing is atomic at the folder level: the files go into `checkpoints/.tmp-<step>-<pid>/`, each is
fsynced, the folder is fsynced and renamed to `<step:08d>`, the parent is fsynced, and only then is
the `latest` symlink replaced (a rename, so it too is atomic). A process killed at any moment leaves
either the previous checkpoint or the new one as the newest `<step>` folder, never a half-written
one (`latest_checkpoint` goes by the folders, not the link); leftover `.tmp-*` folders are removed by
the next save. The oldest checkpoints beyond `keep_last` are deleted.

Testing knob: `MCLRT_TEST_CHECKPOINT_PAUSE=<seconds>` makes `save_checkpoint` print
"mclrt: checkpoint write paused (pid N)" to stderr and sleep that long after writing the tensor files and
before meta.json and the rename, so a test can SIGKILL the process in the middle of a write
(tests/test_checkpoint.py, and tests/test_multinode.py under torchrun). It does nothing else and is never set in normal use.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file
from mclrt.training.config import ModelConfig, model_config_from_dict

FORMAT = "mclrt-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest"
PAUSE_ENV = "MCLRT_TEST_CHECKPOINT_PAUSE"
_STRUCTURE_KEY = "structure"  # safetensors metadata key holding an optimizer's non-tensor structure

Tensors = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    """Everything needed to continue a run bit-exactly, as plain tensors and JSON values."""

    step: int  # optimizer steps completed
    epoch: int  # the epoch the next step belongs to
    samples_seen: int  # over all ranks
    model: Tensors
    discriminator: Tensors
    heads: Tensors
    optimizers: dict[str, dict[str, Any]]  # name -> torch optimizer state_dict
    rng: list[dict[str, Any]]  # one `capture_rng_state()` per rank, in rank order
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    ema: Tensors | None = None
    grad_scalers: dict[str, dict[str, Any]] = field(default_factory=dict)  # AMP scaler state_dicts
    info: dict[str, Any] = field(default_factory=dict)  # e.g. what the dataset decided (face contours used)


# --- RNG states -----------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) generator states."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- optimizer state <-> tensors + JSON ---------------------------------------------------------------


def flatten_state(state: Any) -> tuple[Tensors, Any]:
    """Split a nested state (dicts with int or str keys, lists, tuples, tensors, JSON scalars) into
    named tensors and a JSON-able skeleton that names them. `unflatten_state` inverts it exactly."""
    tensors: Tensors = {}

    def encode(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(value, dict):
            return {"__dict__": [[key, encode(item, f"{path}/{key}")] for key, item in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [encode(item, f"{path}/{i}") for i, item in enumerate(value)]}
        if isinstance(value, list):
            return [encode(item, f"{path}/{i}") for i, item in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store {type(value).__name__} at {path} in a checkpoint")

    return tensors, encode(state, "")


def unflatten_state(tensors: Tensors, skeleton: Any) -> Any:
    if isinstance(skeleton, list):
        return [unflatten_state(tensors, item) for item in skeleton]
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(tensors, item) for item in skeleton["__tuple__"])
        return {key: unflatten_state(tensors, item) for key, item in skeleton["__dict__"]}
    return skeleton


# --- writing --------------------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable (POSIX: fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_tensors(path: Path, tensors: Tensors, metadata: dict[str, str] | None = None) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    _fsync_file(path)


def _step_dirs(checkpoints: Path) -> list[Path]:
    """Complete checkpoints (renamed into place, so complete by construction), oldest first."""
    if not checkpoints.is_dir():
        return []
    return sorted(p for p in checkpoints.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit())


def _remove_dir(path: Path) -> None:
    """Rename out of the way first, so a half-deleted folder never looks like a checkpoint."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.rename(path, trash)
    shutil.rmtree(trash)


def save_checkpoint(checkpoints: str | os.PathLike, ckpt: Checkpoint, keep_last: int = 3) -> Path:
    """Write `ckpt` as `<checkpoints>/<step:08d>/`, point `latest` at it, keep the last `keep_last`."""
    checkpoints = Path(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    for stale in checkpoints.glob(".tmp-*"):  # a write that was killed; never a complete checkpoint
        shutil.rmtree(stale)
    for stale in checkpoints.glob(".trash-*"):
        shutil.rmtree(stale)
    final = checkpoints / f"{ckpt.step:08d}"
    if final.exists():
        raise FileExistsError(f"a checkpoint for step {ckpt.step} already exists: {final}")
    tmp = checkpoints / f".tmp-{ckpt.step:08d}-{os.getpid()}"
    tmp.mkdir()

    files: dict[str, Tensors | tuple[Tensors, dict[str, str]]] = {
        "model.safetensors": ckpt.model,
        "discriminator.safetensors": ckpt.discriminator,
        "heads.safetensors": ckpt.heads,
    }
    if ckpt.ema is not None:
        files["ema.safetensors"] = ckpt.ema
    for name, state in ckpt.optimizers.items():
        tensors, skeleton = flatten_state(state)
        files[f"optimizer_{name}.safetensors"] = (tensors, {_STRUCTURE_KEY: json.dumps(skeleton)})
    rng_tensors: Tensors = {}
    rng_json = []
    for rank, state in enumerate(ckpt.rng):
        rng_tensors[f"rank{rank}/torch"] = state["torch"]
        for device, cuda_state in enumerate(state["cuda"]):
            rng_tensors[f"rank{rank}/cuda{device}"] = cuda_state
        rng_json.append({"python": state["python"], "numpy": state["numpy"], "cuda_devices": len(state["cuda"])})
    files["rng.safetensors"] = rng_tensors

    for name, content in files.items():
        tensors, metadata = content if isinstance(content, tuple) else (content, None)
        _save_tensors(tmp / name, tensors, metadata)

    pause = os.environ.get(PAUSE_ENV)
    if pause:
        print(f"mclrt: checkpoint write paused (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(float(pause))

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": ckpt.step,
        "epoch": ckpt.epoch,
        "samples_seen": ckpt.samples_seen,
        "files": {name: sha256_file(tmp / name) for name in files},
        "rng": rng_json,
        "grad_scalers": ckpt.grad_scalers,
        "model_config": ckpt.model_config,
        "train_config": ckpt.train_config,
        "info": ckpt.info,
        "versions": {"torch": torch.__version__},
    }
    meta_path = tmp / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    _fsync_file(meta_path)
    _fsync_dir(tmp)
    os.rename(tmp, final)
    _fsync_dir(checkpoints)
    _point_latest(checkpoints, final.name)

    kept = _step_dirs(checkpoints)
    for old in kept[: max(0, len(kept) - keep_last)]:
        if old != final:
            _remove_dir(old)
    _fsync_dir(checkpoints)
    return final


def _point_latest(checkpoints: Path, target_name: str) -> None:
    link_tmp = checkpoints / f".tmp-latest-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(target_name, link_tmp)  # relative, so the run folder can be moved
    os.replace(link_tmp, checkpoints / LATEST)
    _fsync_dir(checkpoints)


# --- reading --------------------------------------------------------------------------------------


def latest_checkpoint(checkpoints: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None.

    That is the highest `<step>` folder: one is renamed into place only once complete. The `latest`
    link names the same folder, except after a kill between that rename and the link update, which
    leaves the link one checkpoint behind; trusting it then would make a restarted run redo a step
    whose checkpoint exists and fail to write it again. So the link is for people and tools, and
    the folders decide.
    """
    found = _step_dirs(Path(checkpoints))
    return found[-1] if found else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from any of: the folder itself, `checkpoints/latest`, `checkpoints/`, or the run folder."""
    path = Path(path)
    if not path.exists():
        raise UserError("no such checkpoint (or run) folder", path)
    if (path / "meta.json").is_file():
        return path.resolve() if path.is_symlink() else path
    for checkpoints in (path, path / "checkpoints"):
        found = latest_checkpoint(checkpoints)
        if found is not None:
            return found
    raise UserError("holds no checkpoint (expected meta.json, or checkpoints/<step>/meta.json)", path)


def read_meta(checkpoint_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(checkpoint_dir) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise UserError("no such file (not a checkpoint folder)", path) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"not valid JSON ({err})", path) from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"not an mclrt checkpoint (format is not {FORMAT!r})", path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"checkpoint format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})", path)
    return meta


def _load_tensors(path: Path) -> Tensors:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise UserError(f"not a readable safetensors file ({err})", path) from err


def load_checkpoint(path: str | os.PathLike, verify: bool = True) -> Checkpoint:
    """Read a checkpoint (any form `resolve_checkpoint` accepts), checking every file's sha256."""
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    if verify:
        for name, expected in meta["files"].items():
            file = directory / name
            if not file.is_file():
                raise UserError(f"missing {name} (listed in meta.json)", directory)
            if sha256_file(file) != expected:
                raise UserError("sha256 differs from meta.json (the file was changed or is corrupt)", file)
    optimizers = {}
    for name in meta["files"]:
        if name.startswith("optimizer_"):
            file = directory / name
            with safe_open(str(file), framework="pt") as handle:
                skeleton = json.loads(handle.metadata()[_STRUCTURE_KEY])
            optimizers[name.removeprefix("optimizer_").removesuffix(".safetensors")] = unflatten_state(_load_tensors(file), skeleton)
    rng_tensors = _load_tensors(directory / "rng.safetensors")
    rng = [
        {
            "python": state["python"],
            "numpy": state["numpy"],
            "torch": rng_tensors[f"rank{rank}/torch"],
            "cuda": [rng_tensors[f"rank{rank}/cuda{d}"] for d in range(state["cuda_devices"])],
        }
        for rank, state in enumerate(meta["rng"])
    ]
    return Checkpoint(
        step=meta["step"],
        epoch=meta["epoch"],
        samples_seen=meta["samples_seen"],
        model=_load_tensors(directory / "model.safetensors"),
        discriminator=_load_tensors(directory / "discriminator.safetensors"),
        heads=_load_tensors(directory / "heads.safetensors"),
        ema=_load_tensors(directory / "ema.safetensors") if "ema.safetensors" in meta["files"] else None,
        optimizers=optimizers,
        rng=rng,
        grad_scalers=meta.get("grad_scalers", {}),
        model_config=meta["model_config"],
        train_config=meta["train_config"],
        info=meta.get("info", {}),
    )


# --- continuing a training run ----------------------------------------------------------------------


@dataclass
class Restored:
    """Where a continued run stands after `restore_training`."""

    step: int
    samples_seen: int
    ranks: int  # how many processes wrote the checkpoint
    rng_restored: bool  # False when that differs from this run's world size: the caller re-seeds


def restore_training(
    directory: str | os.PathLike,
    *,
    model_config: ModelConfig,
    model: torch.nn.Module,
    discriminator: torch.nn.Module,
    heads: torch.nn.Module,
    ema: torch.nn.Module | None,
    optimizers: dict[str, torch.optim.Optimizer],
    grad_scalers: dict[str, torch.amp.GradScaler],
    rank: int = 0,
    world_size: int = 1,
) -> Restored:
    """Load a checkpoint back into the trainer's live networks, optimizers and AMP scalers, and this
    rank's RNG states: what `train` does before its loop when it continues a run.

    model_config: the run's `ModelConfig`; a checkpoint of another model is refused. The RNG states
    come back only when the checkpoint was written by `world_size` processes (then the continuation
    is bit-exact); otherwise `rng_restored` is False and the caller seeds the streams anew.
    """
    ckpt = load_checkpoint(directory)
    # Through model_config_from_dict: a checkpoint written before a model field existed holds that
    # field's default, and must still continue.
    unknown = set(ckpt.model_config) - set(model_config.to_dict())
    if unknown:
        names = ", ".join(sorted(unknown))
        raise UserError(f"the checkpoint's model config has fields this mclrt does not know ({names}); continue it with the mclrt that wrote it", directory)
    if model_config_from_dict(ckpt.model_config) != model_config:
        raise UserError("the model config differs from the checkpoint's; resume with the run's own config", directory)
    model.load_state_dict(ckpt.model)
    discriminator.load_state_dict(ckpt.discriminator)
    heads.load_state_dict(ckpt.heads)
    if ema is not None:
        ema.load_state_dict(ckpt.ema if ckpt.ema is not None else model.state_dict())
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(ckpt.optimizers[name])
    for name, scaler in grad_scalers.items():
        if name in ckpt.grad_scalers:  # only an AMP run writes scaler states
            scaler.load_state_dict(ckpt.grad_scalers[name])
    rng_restored = len(ckpt.rng) == world_size
    if rng_restored:
        restore_rng_state(ckpt.rng[rank])
    return Restored(ckpt.step, ckpt.samples_seen, len(ckpt.rng), rng_restored)


__all__ = [
    "Checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "flatten_state",
    "unflatten_state",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "resolve_checkpoint",
    "read_meta",
    "restore_training",
    "Restored",
    "PAUSE_ENV",
]
