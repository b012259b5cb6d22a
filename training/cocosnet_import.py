"""`mclrt import cocosnet`: CoCosNet's released checkpoints (microsoft/CoCosNet) as an mclrt checkpoint.

Upstream's test path loads two files per dataset, `checkpoints/<name>/<epoch>_net_Corr.pth` (the
correspondence network, NoVGGCorrespondence) and `<epoch>_net_G.pth` (the SPADE generator), each
`torch.save(net.state_dict())` of a flat `OrderedDict[str, Tensor]`. Their 385 tensors map one to one
onto mclrt's MCLNet of the matching paper preset with `use_scm: false` (CoCosNet has no
self-correlation map) by renaming keys alone (`rename_key`); every shape is equal. The one numeric
difference, CoCosNet's unbiased positional-norm variance, is the preset's `pono: unbiased`.

What this module refuses, each as one line naming the file and the first offending key (exit 2,
nothing written): a file torch cannot read with `weights_only=True` (anything that is not a tensor
pickle: a pickle carrying code, a truncated or non-checkpoint file), a checkpoint that is not a flat
mapping of names to tensors, a missing or an extra key, a shape that differs (with the dataset the
file does fit, when it fits another preset), spectral norm saved by torch < 1.1 (`weight_orig` and
`weight_u` without `weight_v`), and NaN or Inf weights. Never upstream's silent partial load.

Output: a checkpoint folder `mclrt export` reads (model.safetensors + meta.json, training/checkpoint.py's
format) whose meta.json carries the provenance: the upstream files' names and SHA-256, the upstream
option set they correspond to, and the architecture "CoCosNet (no SCM, no MCL)".
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_directory, sha256_file

ARCHITECTURE = "CoCosNet (no SCM, no MCL)"
UPSTREAM = "microsoft/CoCosNet"

# The README's test commands: the options each released checkpoint was trained and is tested with
# (all: ngf 64, match_kernel 3, warp_stride 4, CBN_intype warp_mask, norm_G spectralspadesyncbatch3x3,
# norm_E spectralinstance, temperature 0.01). `semantic_nc` is label_nc + dontcare.
UPSTREAM_OPTIONS: dict[str, dict[str, Any]] = {
    "paper-ade20k": {
        "name": "ade20k",
        "dataset_mode": "ade20k",
        "command": "--use_attention --maskmix --warp_mask_losstype direct --PONO --PONO_C",
        "semantic_nc": 151,
        "adaptor_kernel": 3,
        "maskmix": True,
        "warp_bilinear": False,
        "warp_patch": False,
    },
    "paper-celebahq-edge": {
        "name": "celebahqedge",
        "dataset_mode": "celebahqedge",
        "command": "--use_attention --maskmix --PONO --PONO_C --warp_bilinear --adaptor_kernel 4",
        "semantic_nc": 15,
        "adaptor_kernel": 4,
        "maskmix": True,
        "warp_bilinear": True,
        "warp_patch": False,
    },
    "paper-deepfashion": {
        "name": "deepfashion",
        "dataset_mode": "deepfashion",
        "command": "--use_attention --PONO --PONO_C --warp_bilinear --no_flip --warp_patch --video_like --adaptor_kernel 4",
        "semantic_nc": 20,
        "adaptor_kernel": 4,
        "maskmix": False,
        "warp_bilinear": True,
        "warp_patch": True,
    },
}
_COMMON_OPTIONS = {
    "ngf": 64, "match_kernel": 3, "warp_stride": 4, "CBN_intype": "warp_mask", "use_attention": True,
    "PONO": True, "PONO_C": True, "norm_G": "spectralspadesyncbatch3x3", "norm_E": "spectralinstance",
    "temperature": 0.01,
}
PRESETS = tuple(UPSTREAM_OPTIONS)


def model_config(preset: str, overrides: dict[str, Any] | None = None):
    """The mclrt ModelConfig CoCosNet's checkpoint of `preset` corresponds to: the paper preset with
    no self-correlation map and CoCosNet's unbiased positional norm. `overrides` (tests: a smaller
    ngf and image size) are applied on top."""
    from mclrt.training.config import load_model_config

    if preset not in UPSTREAM_OPTIONS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    return load_model_config(preset, {"use_scm": False, "pono": "unbiased", **(overrides or {})})


# --- key renaming --------------------------------------------------------------------------------------

_SN = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u", "weight_v": "parametrizations.weight.0._v"}
# In mclrt the SPADE blocks' convolutions and modulation heads sit in a Sequential after a reflection pad.
_PADDED = re.compile(r"\.(conv_0|conv_1|mlp_gamma|mlp_beta)\.")


def rename_key(network: str, key: str) -> str:
    """Upstream state-dict key of netCorr (`network="Corr"`) or netG (`"G"`) → mclrt MCLNet key."""
    if network == "Corr":
        key = re.sub(r"^adaptive_model_seg\.", "adaptor_cond.", key)
        key = re.sub(r"^adaptive_model_img\.", "adaptor_image.", key)
        key = re.sub(r"^layer\.(\d+)\.(conv1|conv2)\.", r"trunk.\1.\2.1.", key)
        key = re.sub(r"^layer\.(\d+)\.prelu\.", r"trunk.\1.prelu.", key)
        prefix = "corr."
    elif network == "G":
        prefix = "generator."
    else:
        raise ValueError(network)
    key = _PADDED.sub(lambda m: f".{m.group(1)}.1.", key)
    head, _, last = key.rpartition(".")
    if last in _SN:
        key = f"{head}.{_SN[last]}"
    return prefix + key


# --- reading upstream files ------------------------------------------------------------------------------


def read_state_dict(path: Path) -> "OrderedDict[str, torch.Tensor]":
    """A flat name → tensor mapping from an upstream .pth, read with `weights_only=True` only."""
    if not path.is_file():
        raise UserError("no such file" if not path.exists() else "not a file", path)
    # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 would make torch.load unpickle anything: never here.
    forced = os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any failure to read is the file's problem; say which
        reason = str(err).strip().splitlines()
        first = next((line for line in reason if line.strip()), type(err).__name__)
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "Weights only load failed" in str(err):
            first = "holds more than tensors (a pickle that would run code); refused to unpickle it"
        raise UserError(f"not a readable PyTorch checkpoint: {first[:200]}", path) from err
    finally:
        if forced is not None:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = forced
    if not isinstance(data, dict):
        raise UserError(f"not a state dict: torch.load gives a {type(data).__name__}, expected a flat mapping of names to tensors", path)
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            kind = type(value).__name__
            raise UserError(f"not a flat state dict: {key!r} holds {kind}, expected a tensor (a training-state file? upstream saves net.state_dict())", path)
    return OrderedDict(data)


def _check_spectral_norm_layout(state: dict[str, torch.Tensor], path: Path) -> None:
    """torch >= 1.1 saves weight_orig, weight_u, weight_v; torch < 1.1 saved weight_orig, weight_u and
    the normalized weight instead of weight_v, which would need solving for v: refused."""
    for key in state:
        if key.endswith(".weight_orig"):
            base = key[: -len("weight_orig")]
            if base + "weight_v" not in state:
                raise UserError(
                    f"{key}: spectral norm saved by PyTorch < 1.1 (weight_orig and weight_u without weight_v); "
                    "load and re-save it with PyTorch >= 1.1 in upstream's code first",
                    path,
                )


def _expected_layouts(preset: str, overrides: dict[str, Any] | None) -> dict[str, dict[str, tuple[int, ...]]]:
    """mclrt key → shape of MCLNet for `preset` (built on the meta device: no memory, no time)."""
    from mclrt.training.networks import MCLNet

    with torch.device("meta"):
        model = MCLNet(model_config(preset, overrides))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _other_dataset(network: str, state: dict[str, torch.Tensor], preset: str, overrides: dict[str, Any] | None) -> str | None:
    """The other paper preset whose shapes this file fits, if one does."""
    for other in PRESETS:
        if other == preset:
            continue
        expected = _expected_layouts(other, overrides)
        mapped = {rename_key(network, k): tuple(v.shape) for k, v in state.items()}
        relevant = {k: s for k, s in expected.items() if k.startswith("corr." if network == "Corr" else "generator.")}
        if mapped == relevant:
            return other
    return None


@dataclass(frozen=True)
class UpstreamFile:
    network: str  # "Corr" or "G"
    path: Path


def convert(files: list[UpstreamFile], preset: str, overrides: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Read, check and rename upstream netCorr + netG into one mclrt MCLNet state dict (strict)."""
    expected = _expected_layouts(preset, overrides)
    converted: dict[str, torch.Tensor] = {}
    for file in files:
        state = read_state_dict(file.path)
        _check_spectral_norm_layout(state, file.path)
        prefix = "corr." if file.network == "Corr" else "generator."
        wanted = {k: s for k, s in expected.items() if k.startswith(prefix)}
        names = {key: rename_key(file.network, key) for key in state}
        other = "G" if file.network == "Corr" else "Corr"
        for key, name in names.items():  # keys first: a wrong file is named as such, not as a shape
            if name not in wanted:
                hint = f" (this looks like net{other}'s file)" if _belongs_to_other(key, file.network, expected) else ""
                raise UserError(f"{key}: unexpected key for CoCosNet's net{file.network} of {preset}{hint}", file.path)
        missing = [k for k in wanted if k not in set(names.values())]
        if missing:
            raise UserError(f"{_upstream_name(file.network, missing[0])}: missing ({len(missing)} of net{file.network}'s {len(wanted)} tensors are absent)", file.path)
        for key, tensor in state.items():
            name = names[key]
            if tuple(tensor.shape) != wanted[name]:
                fitting = _other_dataset(file.network, state, preset, overrides)
                fits = f"; the file fits {fitting} (a checkpoint of another dataset)" if fitting else ""
                raise UserError(f"{key}: shape {tuple(tensor.shape)}, {preset} expects {wanted[name]}{fits}", file.path)
        for key, tensor in state.items():
            if not tensor.is_floating_point():
                raise UserError(f"{key}: holds {tensor.dtype} values, expected floating point", file.path)
            if not bool(torch.isfinite(tensor).all()):
                raise UserError(f"{key}: holds NaN or Inf values", file.path)
            converted[names[key]] = tensor.to(torch.float32).contiguous()
    return converted


def _belongs_to_other(key: str, network: str, expected: dict[str, tuple[int, ...]]) -> bool:
    other = "G" if network == "Corr" else "Corr"
    return rename_key(other, key) in expected


def _upstream_name(network: str, mclrt_key: str) -> str:
    """Inverse of rename_key for messages (missing keys are named as upstream names them)."""
    key = mclrt_key.split(".", 1)[1]
    for upstream, ours in _SN.items():
        key = key.replace(ours, upstream)
    key = re.sub(r"\.(conv_0|conv_1|mlp_gamma|mlp_beta)\.1\.", r".\1.", key)
    if network == "Corr":
        key = re.sub(r"^adaptor_cond\.", "adaptive_model_seg.", key)
        key = re.sub(r"^adaptor_image\.", "adaptive_model_img.", key)
        key = re.sub(r"^trunk\.(\d+)\.(conv1|conv2)\.1\.", r"layer.\1.\2.", key)
        key = re.sub(r"^trunk\.", "layer.", key)
    return key


# --- the command's work ---------------------------------------------------------------------------------


def upstream_files(ckpt_dir: Path | None, corr: Path | None, generator: Path | None, epoch: str = "latest") -> list[UpstreamFile]:
    """netCorr and netG files: --corr/--generator where given, else `<dir>/<epoch>_net_Corr.pth` and `_G.pth`."""
    if ckpt_dir is not None and not ckpt_dir.is_dir():
        raise UserError("no such folder" if not ckpt_dir.exists() else "not a folder (give the folder holding latest_net_Corr.pth and latest_net_G.pth)", ckpt_dir)
    found = []
    for network, given in (("Corr", corr), ("G", generator)):
        if given is None:
            if ckpt_dir is None:
                raise UserError(f"give CKPT_DIR, or both --corr and --generator (net{network} has no file)")
            given = ckpt_dir / f"{epoch}_net_{network}.pth"
        if not given.is_file():
            raise UserError("no such file" if not given.exists() else "not a file", given)
        found.append(UpstreamFile(network, given))
    return found


def provenance(files: list[UpstreamFile], preset: str) -> dict[str, Any]:
    options = {**_COMMON_OPTIONS, **UPSTREAM_OPTIONS[preset]}
    return {
        "architecture": ARCHITECTURE,
        "upstream": UPSTREAM,
        "files": {f"net{f.network}": {"file": f.path.name, "sha256": sha256_file(f.path), "bytes": f.path.stat().st_size} for f in files},
        "upstream_options": options,
        "note": "CoCosNet's correspondence network and generator; no self-correlation map (use_scm: false), "
        "not trained with the marginal contrastive loss; positional norm with CoCosNet's unbiased variance",
    }


def import_cocosnet(
    files: list[UpstreamFile],
    preset: str,
    out: Path,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the checkpoint folder `out` (model.safetensors + meta.json), atomically; all checks first."""
    from safetensors.torch import save_file

    from mclrt.training.checkpoint import FORMAT, FORMAT_VERSION

    config = model_config(preset, overrides)
    state = convert(files, preset, overrides)
    source = provenance(files, preset)
    with atomic_directory(out, overwrite=overwrite) as building:
        model_file = building / "model.safetensors"
        save_file(state, str(model_file), metadata={"architecture": ARCHITECTURE})
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "step": 0,
            "epoch": 0,
            "samples_seen": 0,
            "files": {"model.safetensors": sha256_file(model_file)},
            "rng": [],
            "grad_scalers": {},
            "model_config": config.to_dict(),
            "train_config": {},
            "info": {},
            "imported_from": source,
            "versions": {"torch": torch.__version__},
        }
        (building / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out


def parameter_count(state: dict[str, torch.Tensor]) -> int:
    """Parameters (spectral norm's u, v are buffers, not counted)."""
    return sum(math.prod(v.shape) for k, v in state.items() if not k.endswith(("._u", "._v")))


__all__ = ["ARCHITECTURE", "PRESETS", "UPSTREAM_OPTIONS", "rename_key", "read_state_dict", "convert", "upstream_files", "import_cocosnet", "model_config"]
