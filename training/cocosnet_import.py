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

Optionally upstream's discriminator, `<epoch>_net_D.pth` where present (`convert_discriminator`): its
MultiscaleDiscriminator is mclrt's layer for layer; CoCosNet's extra heads are dropped and named,
mclrt parameters it lacks start fresh and are named, and it is refused on the same grounds as the two
networks above. It becomes discriminator.safetensors, which `mclrt train --init-from` loads.

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
    return prefix + _rename_spectral_norm(key)


def _rename_spectral_norm(key: str) -> str:
    """Old-style spectral norm's `weight_orig/_u/_v` → the parametrization's `original/_u/_v`."""
    head, _, last = key.rpartition(".")
    return f"{head}.{_SN[last]}" if last in _SN else key


# --- the discriminator (optional) ------------------------------------------------------------------------
#
# Upstream's MultiscaleDiscriminator (--netD multiscale, --num_D 2, --n_layers_D 4, --ndf 64,
# --norm_D spectralinstance, --use_attention in all three README training commands) is mclrt's
# MultiscaleDiscriminator layer for layer: per scale `discriminator_<i>.model0` (plain conv),
# `model1..model<n-1>` (spectral-norm conv + instance norm), `attn` (applied before model<n-1>),
# `model<n>` (plain conv to the logits). What upstream has beyond that are CoCosNet's heads: `dec`,
# a segmentation decoder that every upstream NLayerDiscriminator builds but whose forward never calls
# (861,422 parameters at ADE20K), and with --D_cam > 0 the CAM head `gap_fc/gmp_fc/conv1x1` (not in the
# README's commands). Those are dropped and named; any other key is refused.

D_HEADS = {"dec": "segmentation decoder, unused by upstream's forward", "gap_fc": "--D_cam head", "gmp_fc": "--D_cam head", "conv1x1": "--D_cam head"}
_D_KEY = re.compile(r"^discriminator_(\d+)\.(.+)$")


def rename_d_key(key: str, n_layers_d: int, use_attention: bool) -> str | None:
    """Upstream netD key → mclrt MultiscaleDiscriminator key; None for CoCosNet's heads (dropped). A key
    of no known form comes back unchanged (and then is no key of mclrt's: refused as unexpected)."""
    match = _D_KEY.match(key)
    if match is None:
        return key
    scale, rest = match.groups()
    module = rest.split(".", 1)[0]
    if module in D_HEADS:
        return None
    last_mid = n_layers_d - 1  # the SN conv that attention precedes
    if module == "attn":
        rest = f"layers.{last_mid}.0." + rest.split(".", 1)[1]
    elif (layer := re.match(r"^model(\d+)\.(.+)$", rest)) is not None:
        k, tail = int(layer.group(1)), layer.group(2)
        if k == 0:
            rest = f"layers.0.{tail}"  # model0.0.weight → layers.0.0.weight
        elif k < n_layers_d and tail.startswith("0.0."):
            rest = f"layers.{k}.{1 if (use_attention and k == last_mid) else 0}.{tail[4:]}"
        elif k == n_layers_d and tail.startswith("0."):
            rest = f"layers.{k}.{tail[2:]}"
        else:
            return key
    else:
        return key
    return _rename_spectral_norm(f"scales.{scale}.{rest}")


@dataclass(frozen=True)
class DiscriminatorImport:
    state: dict[str, torch.Tensor]  # mclrt keys → tensors (what maps)
    dropped: list[str]  # upstream keys with no mclrt counterpart (CoCosNet's heads)
    dropped_parameters: int
    fresh: list[str]  # mclrt discriminator parameters upstream does not have (start from their initialization)
    fresh_parameters: int
    mapped_parameters: int


def _expected_d_layout(preset: str, overrides: dict[str, Any] | None) -> dict[str, tuple[int, ...]]:
    from mclrt.training.networks import MultiscaleDiscriminator

    with torch.device("meta"):
        disc = MultiscaleDiscriminator(model_config(preset, overrides))
    return {k: tuple(v.shape) for k, v in disc.state_dict().items()}


def convert_discriminator(path: Path, preset: str, overrides: dict[str, Any] | None = None) -> DiscriminatorImport:
    """Read and check upstream's netD file and map it onto mclrt's discriminator as far as it maps:
    heads dropped (named), missing mclrt parameters fresh (named); anything else wrong is refused."""
    cfg = model_config(preset, overrides)
    expected = _expected_d_layout(preset, overrides)
    state = read_state_dict(path)
    _check_spectral_norm_layout(state, path)
    names = {key: rename_d_key(key, cfg.n_layers_d, cfg.use_attention) for key in state}
    for key, name in names.items():
        if name is not None and name not in expected:
            others = [n for n in ("Corr", "G") if rename_key(n, key) in _expected_layouts(preset, overrides)]
            hint = f" (this looks like net{others[0]}'s file)" if others else ""
            raise UserError(f"{key}: unexpected key for CoCosNet's netD of {preset}{hint}", path)
    mapped = {name: key for key, name in names.items() if name is not None}
    if not mapped:
        raise UserError(f"holds no tensor of CoCosNet's netD (only {len(state)} head tensors)" if state else "holds no tensors", path)
    for name, key in mapped.items():
        if tuple(state[key].shape) != expected[name]:
            fitting = next((p for p in PRESETS if p != preset and all(
                tuple(state[k].shape) == _expected_d_layout(p, overrides).get(n) for n, k in mapped.items())), None)
            fits = f"; the file fits {fitting} (a discriminator of another dataset)" if fitting else ""
            raise UserError(f"{key}: shape {tuple(state[key].shape)}, {preset} expects {expected[name]}{fits}", path)
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise UserError(f"{key}: holds {tensor.dtype} values, expected floating point", path)
        if not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{key}: holds NaN or Inf values", path)
    converted = {name: state[key].to(torch.float32).contiguous() for name, key in mapped.items()}
    dropped = [key for key, name in names.items() if name is None]
    fresh = [k for k in expected if k not in converted and not k.endswith(("._u", "._v"))]
    return DiscriminatorImport(
        state=converted,
        dropped=dropped,
        dropped_parameters=sum(math.prod(state[k].shape) for k in dropped if not k.endswith(("weight_u", "weight_v"))),
        fresh=fresh,
        fresh_parameters=sum(math.prod(expected[k]) for k in fresh),
        mapped_parameters=parameter_count(converted),
    )


def d_heads_summary(dropped: list[str]) -> str:
    """`discriminator_0.dec.*, discriminator_1.dec.*`: the dropped keys by module, for one line."""
    modules: dict[str, None] = {}
    for key in dropped:
        match = _D_KEY.match(key)
        modules[f"discriminator_{match.group(1)}.{match.group(2).split('.', 1)[0]}.*" if match else key] = None
    return ", ".join(modules)


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


def discriminator_file(ckpt_dir: Path | None, given: Path | None, epoch: str = "latest") -> Path | None:
    """netD: --discriminator where given (it must exist), else `<dir>/<epoch>_net_D.pth` where present
    (optional: the released checkpoints of the README ship only Corr and G), else None."""
    if given is not None:
        if not given.is_file():
            raise UserError("no such file" if not given.exists() else "not a file", given)
        return given
    if ckpt_dir is None:
        return None
    found = ckpt_dir / f"{epoch}_net_D.pth"
    return found if found.is_file() else None


def provenance(files: list[UpstreamFile], preset: str, discriminator: tuple[Path, DiscriminatorImport] | None = None) -> dict[str, Any]:
    options = {**_COMMON_OPTIONS, **UPSTREAM_OPTIONS[preset]}
    source: dict[str, Any] = {
        "architecture": ARCHITECTURE,
        "upstream": UPSTREAM,
        "files": {f"net{f.network}": {"file": f.path.name, "sha256": sha256_file(f.path), "bytes": f.path.stat().st_size} for f in files},
        "upstream_options": options,
        "note": "CoCosNet's correspondence network and generator; no self-correlation map (use_scm: false), "
        "not trained with the marginal contrastive loss; positional norm with CoCosNet's unbiased variance",
    }
    if discriminator is not None:  # training only: not part of the exported model, so not in "files"
        path, d = discriminator
        source["discriminator"] = {
            "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "mapped_tensors": len(d.state), "mapped_parameters": d.mapped_parameters,
            "dropped": d_heads_summary(d.dropped), "dropped_tensors": len(d.dropped), "dropped_parameters": d.dropped_parameters,
            "fresh": d.fresh, "fresh_parameters": d.fresh_parameters,
        }
    return source


def import_cocosnet(
    files: list[UpstreamFile],
    preset: str,
    out: Path,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
    discriminator: Path | None = None,
) -> Path:
    """Write the checkpoint folder `out` (model.safetensors + meta.json, and discriminator.safetensors
    from upstream's netD file `discriminator` where given), atomically; all checks first."""
    from safetensors.torch import save_file

    from mclrt.training.checkpoint import FORMAT, FORMAT_VERSION

    config = model_config(preset, overrides)
    # netD first: it is the small file (27 MB against netCorr + netG's 600 MB at ADE20K), so a wrong one fails fast
    d_import = convert_discriminator(discriminator, preset, overrides) if discriminator is not None else None
    state = convert(files, preset, overrides)
    source = provenance(files, preset, (discriminator, d_import) if d_import is not None else None)
    with atomic_directory(out, overwrite=overwrite) as building:
        model_file = building / "model.safetensors"
        save_file(state, str(model_file), metadata={"architecture": ARCHITECTURE})
        written = {"model.safetensors": sha256_file(model_file)}
        if d_import is not None:
            # the mapped tensors only, in MultiscaleDiscriminator's layout: `--init-from` loads them and
            # names the parameters the file lacks (they start fresh)
            d_file = building / "discriminator.safetensors"
            save_file(d_import.state, str(d_file), metadata={"architecture": ARCHITECTURE, "upstream_file": discriminator.name})
            written["discriminator.safetensors"] = sha256_file(d_file)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "step": 0,
            "epoch": 0,
            "samples_seen": 0,
            "files": written,
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


__all__ = [
    "ARCHITECTURE", "PRESETS", "UPSTREAM_OPTIONS", "rename_key", "rename_d_key", "read_state_dict", "convert", "convert_discriminator",
    "upstream_files", "discriminator_file", "import_cocosnet", "model_config",
]
