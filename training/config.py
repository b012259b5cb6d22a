"""Model presets as dataclasses.

One `ModelConfig` describes the networks; the networks are built from it and nothing else.
Every width follows `ngf` (CoCosNet hard-codes three of them -- adaptor feature width 64, matching
width 256, SPADE hidden 128 -- which is why its small configurations crash); with ngf = 64 the
paper presets reproduce the reference widths exactly.

A YAML file may override any field: `load_model_config("paper-ade20k", {"ngf": 32})` or, from a
training config, a `model:` mapping with `preset:` plus overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

ConditionKind = Literal["edge", "label", "pose", "celeba-edge"]
WarpMode = Literal["nearest", "bilinear", "patch"]
MaskmixDownsample = Literal["nearest", "area"]
PonoVariance = Literal["biased", "unbiased"]


@dataclass(frozen=True)
class ModelConfig:
    preset: str
    # --- data -------------------------------------------------------------------------------
    condition_kind: ConditionKind
    label_nc: int  # channels of the condition map
    image_size: int  # square images; 256 for the paper presets
    extract: str | None = None  # how the runtime makes a condition from a photo ("canny", "face", "pose")
    # --- widths (everything scales with ngf / ndf) -----------------------------------------
    ngf: int = 64
    ndf: int = 64
    # --- correspondence network ---------------------------------------------------------------
    corr_stride: int = 4  # correspondence at image_size / 4 (64x64 for 256 images)
    adaptor_kernel: int = 3  # 3 for ADE20k, 4 for CelebA / DeepFashion (released checkpoints)
    maskmix: bool = False  # concatenate the (downsampled) label map to the adaptor features
    # How maskmix brings the label map down to the correspondence resolution. CoCosNet samples it
    # (nearest), right for one-hot segmentation maps; a 1-px Canny map sampled 1-in-16 keeps almost no
    # edges, so edge presets can average it instead (each cell's edge density).
    maskmix_downsample: MaskmixDownsample = "nearest"
    trunk_blocks: int = 4  # shared residual blocks after the adaptors
    match_kernel: int = 3  # 3x3 unfolded descriptors (2304-d at ngf 64)
    center: Literal["position", "spatial"] = "position"  # PONO_C: centre each descriptor over its own dims
    use_scm: bool = True  # MCL-Net's self-correlation map (paper eq. 2)
    corr_scale: float = 100.0  # 1 / temperature 0.01
    mask_negative: bool = False  # MATEBIT's ReLU mask on the similarities (off for MCL-Net)
    warp: WarpMode = "nearest"
    # --- generator / discriminator -----------------------------------------------------------
    # The variance of every SPADE block's positional normalization: "unbiased" divides by C - 1 as
    # CoCosNet (and the PONO paper's code, `x.var(dim=1)`) does, which its released weights need;
    # "biased" divides by C. The default is "biased" because a checkpoint or mclrt.json written
    # before this field existed lacks it and was trained that way (model_config_from_dict fills the
    # default); the paper presets and `mclrt import cocosnet` say "unbiased".
    pono: PonoVariance = "biased"
    use_attention: bool = True  # SAGAN attention in G (at image_size/2) and D (before the 4th conv)
    num_d: int = 2
    n_layers_d: int = 4
    init_gain: float = 0.02  # xavier_normal gain

    # Derived widths ----------------------------------------------------------------------------
    @property
    def feature_nc(self) -> int:
        """Adaptor output and matching width: 256 at ngf 64."""
        return 4 * self.ngf

    @property
    def spade_hidden(self) -> int:
        """Hidden width of every SPADE modulation MLP: 128 at ngf 64."""
        return 2 * self.ngf

    @property
    def scm_dim(self) -> int:
        """Width of the SCM projection (paper: 4096 -> 256)."""
        return 4 * self.ngf if self.use_scm else 0

    @property
    def corr_size(self) -> int:
        return self.image_size // self.corr_stride

    @property
    def positions(self) -> int:
        return self.corr_size**2

    @property
    def descriptor_width(self) -> int:
        return self.match_kernel**2 * self.feature_nc + self.scm_dim

    @property
    def value_width(self) -> int:
        """Channels per warped position: RGB, or a whole 4x4 RGB patch for the DeepFashion warp."""
        return 3 * self.corr_stride**2 if self.warp == "patch" else 3

    @property
    def generator_latent(self) -> int:
        """Side of the generator's first feature map (5 upsamplings)."""
        return self.image_size // 32

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, ModelConfig] = {
    # ADE20k: 150 classes + "unknown"; maskmix; adaptor kernel 3; nearest warp.
    "paper-ade20k": ModelConfig(
        preset="paper-ade20k", condition_kind="label", label_nc=151, image_size=256, maskmix=True, adaptor_kernel=3, pono="unbiased"
    ),
    # CelebA-HQ edges: 15-channel CoCosNet edge maps; maskmix; kernel 4; bilinear warp.
    "paper-celebahq-edge": ModelConfig(
        preset="paper-celebahq-edge",
        condition_kind="celeba-edge",
        label_nc=15,
        image_size=256,
        maskmix=True,
        adaptor_kernel=4,
        warp="bilinear",
        pono="unbiased",
    ),
    # DeepFashion: 20-channel pose maps; kernel 4; 4x4-patch warp; no maskmix.
    "paper-deepfashion": ModelConfig(
        preset="paper-deepfashion",
        condition_kind="pose",
        label_nc=20,
        image_size=256,
        adaptor_kernel=4,
        warp="patch",
        extract="pose",
        pono="unbiased",
    ),
    # Real-time edge->photo for Jetson: the same structure at a quarter of the width.
    "edge-small": ModelConfig(
        preset="edge-small", condition_kind="edge", label_nc=1, image_size=256, ngf=16, ndf=32, extract="canny"
    ),
    # Tests and the CPU demo: 128x128 images, correspondence at 32x32.
    "nano": ModelConfig(
        preset="nano", condition_kind="edge", label_nc=1, image_size=128, ngf=16, ndf=16, extract="canny"
    ),
}


def load_model_config(preset: str, overrides: dict[str, Any] | None = None) -> ModelConfig:
    """A preset with any fields overridden; unknown preset or field names are errors."""
    from mclrt.runtime.errors import UserError

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    overrides = dict(overrides or {})
    overrides.pop("preset", None)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(f"unknown model field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for field, allowed in _CHOICES.items():
        if field in overrides and overrides[field] not in allowed:
            raise UserError(f"model.{field} must be one of {', '.join(allowed)}, not {overrides[field]!r}")
    return PRESETS[preset].replace(**overrides)


# Fields with a closed set of values (the Literal types above), checked where a YAML can set them.
_CHOICES: dict[str, tuple[str, ...]] = {
    "warp": WarpMode.__args__,
    "maskmix_downsample": MaskmixDownsample.__args__,
    "pono": PonoVariance.__args__,
}


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config saved with `to_dict()` (checkpoints, mclrt.json)."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    return ModelConfig(**{k: v for k, v in data.items() if k in known})


__all__ = ["ModelConfig", "PRESETS", "load_model_config", "model_config_from_dict"]
