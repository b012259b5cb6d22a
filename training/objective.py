"""The MCL-Net objective (paper eq. 8): which networks run on a batch, and which weighted losses follow.

The loss formulas live in `mclrt.training.losses`; the weights in the training config; the loop in
`mclrt.training.train`. This module only wires them together, StyleGAN3's split:

- `GeneratorSide` is the trainable forward pass of one generator step (correspondence, generator, the
  image encoder on the ground truth). It is the module DDP wraps, so every trainable parameter is used
  inside one `forward` call.
- `Objective.generator_losses` runs the discriminator on (output, ground truth) with its weights frozen
  and returns every weighted generator loss by name; `discriminator_losses` the weighted hinge terms.

A loss whose weight is 0 is not computed at all (no wasted VGG passes, no unused parameters under DDP).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mclrt.training import losses as L
from mclrt.training.config import ModelConfig
from mclrt.training.networks import MCLNet, MultiscaleDiscriminator, ProjectionHeads
from mclrt.training.options import TrainConfig
from mclrt.training.vgg import VggFeatures

_LAYER_LEVEL = {"relu1_2": 0, "relu2_2": 1, "relu3_2": 2, "relu4_2": 3, "relu5_2": 4}
# F-LSeSim compares self-similarities of mid-level features; relu3 and relu4 of VGG keep structure
# while ignoring colour, which is what a structure loss against the ground truth should see.
_FSESIM_LEVELS = (2, 3)


@dataclass
class Batch:
    """One collated batch on the training device (see mclrt.training.data.paired for the fields)."""

    condition: torch.Tensor  # [B,L,H,W] in [0,1]
    image: torch.Tensor  # ground truth [B,3,H,W] in [-1,1]
    exemplar: torch.Tensor  # [B,3,H,W] in [-1,1]
    exemplar_condition: torch.Tensor  # [B,L,H,W]
    is_pseudo_pair: torch.Tensor  # [B] bool
    label: torch.Tensor | None = None  # [B,H,W] int64 class ids (label datasets)
    exemplar_label: torch.Tensor | None = None

    @classmethod
    def from_collated(cls, items: dict[str, Any], device: torch.device) -> "Batch":
        def move(key: str) -> torch.Tensor | None:
            value = items.get(key)
            return value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else None

        return cls(
            condition=move("condition"),
            image=move("image"),
            exemplar=move("exemplar"),
            exemplar_condition=move("exemplar_condition"),
            is_pseudo_pair=move("is_pseudo_pair"),
            label=move("label"),
            exemplar_label=move("exemplar_label"),
        )


class GeneratorSide(nn.Module):
    """Correspondence + generator (+ the MCL projection heads when they train): one generator step's
    trainable forward pass, returning every tensor the generator losses read."""

    def __init__(self, model: MCLNet, heads: ProjectionHeads | None):
        super().__init__()
        self.model = model
        self.heads = heads  # a submodule only when MCL uses them, so DDP sees no unused parameters

    def forward(
        self,
        condition: torch.Tensor,
        image: torch.Tensor,
        exemplar: torch.Tensor,
        exemplar_condition: torch.Tensor | None,
        extra_values: torch.Tensor | None,
        encode_ground_truth: bool,
    ) -> dict[str, torch.Tensor]:
        corr = self.model.corr(condition, exemplar, exemplar_condition, extra_values)
        out = {
            "fake": self.model.generator(condition, corr.warped),
            "warped": corr.warped,
            "warped_low": corr.warped_low,
            "cond_feat": corr.cond_feat,
            "q": corr.q,
            "k": corr.k,
        }
        if corr.extra_warped is not None:
            out["extra_warped"] = corr.extra_warped
        if encode_ground_truth:  # E_Z(Y), for L_fcst and L_mcl
            out["image_feat"] = self.model.corr.encode_image(image)
        return out


def mcl_settings(config: TrainConfig) -> L.MCLSettings:
    settings = L.MCLSettings.paper() if config.mcl.variant == "paper" else L.MCLSettings.reference_code()
    if config.mcl.num_positions is not None:
        settings = replace(settings, num_positions=config.mcl.num_positions)
    return settings


def _split_halves(outputs: list[list[torch.Tensor]]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Discriminator outputs of cat([a, b]) -> (outputs of a, outputs of b)."""
    first = [[t[: t.shape[0] // 2] for t in scale] for scale in outputs]
    second = [[t[t.shape[0] // 2 :] for t in scale] for scale in outputs]
    return first, second


class Objective:
    """Weighted MCL-Net losses for one batch. `vgg` is None when the VGG losses are off."""

    def __init__(self, config: TrainConfig, model_config: ModelConfig, vgg: VggFeatures | None):
        self.w = config.loss
        self.model_config = model_config
        self.vgg = vgg
        self.mcl = mcl_settings(config)
        self.uses_heads = self.w.mcl > 0 and self.mcl.use_projection_head
        self.needs_ground_truth_features = self.w.feature_consistency > 0 or self.w.mcl > 0
        self.uses_label_warp = self.w.warped_label > 0

    # --- generator -------------------------------------------------------------------------------

    def extra_values(self, batch: Batch) -> torch.Tensor | None:
        """The exemplar's one-hot labels at correspondence resolution, warped with the image (warped-label loss)."""
        if not self.uses_label_warp:
            return None
        size = self.model_config.corr_size
        low = F.interpolate(batch.exemplar_condition, size=(size, size), mode="nearest")
        return low.flatten(2).transpose(1, 2)

    def run_generator(self, generator_side: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.model_config
        return generator_side(
            batch.condition,
            batch.image,
            batch.exemplar,
            batch.exemplar_condition if cfg.maskmix else None,
            self.extra_values(batch),
            self.needs_ground_truth_features,
        )

    def generator_losses(
        self,
        out: dict[str, torch.Tensor],
        batch: Batch,
        discriminator: MultiscaleDiscriminator,
        heads: ProjectionHeads,
        exemplar_values: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Every weighted generator-side loss by name (their sum is the objective).

        `discriminator` is the plain module with requires_grad off: gradients reach the output through
        it, none reach its weights. `exemplar_values` is the pooled exemplar the warp moved (cycle loss).
        """
        w, cfg = self.w, self.model_config
        fake = out["fake"]
        result: dict[str, torch.Tensor] = {}

        if w.gan > 0 or w.gan_feat > 0:
            both = discriminator(torch.cat([batch.condition, batch.condition]), torch.cat([fake, batch.image]))
            fake_out, real_out = _split_halves(both)
            if w.gan > 0:
                result["gan"] = w.gan * L.hinge_generator_loss(fake_out)
            if w.gan_feat > 0:
                result["gan_feat"] = w.gan_feat * L.discriminator_feature_matching_loss(fake_out, real_out)

        if self.vgg is not None:
            fake_vgg = self.vgg(fake)
            with torch.no_grad():
                real_vgg = self.vgg(batch.image)
                exemplar_vgg = self.vgg(batch.exemplar) if w.vgg * w.contextual > 0 else None
            if w.vgg * w.fm_ratio > 0:
                result["vgg_fm"] = w.vgg * w.fm_ratio * L.vgg_feature_matching_loss(fake_vgg, real_vgg, batch.is_pseudo_pair)
            if w.perceptual > 0:
                level = _LAYER_LEVEL[w.perceptual_layer]
                result["perceptual"] = w.perceptual * L.perceptual_loss(fake_vgg[level], real_vgg[level], distance=w.perceptual_distance)
            if exemplar_vgg is not None:
                result["contextual"] = w.vgg * w.contextual * L.multilayer_contextual_loss(fake_vgg, exemplar_vgg)
            if w.fsesim > 0:
                result["fsesim"] = w.fsesim * sum(L.fsesim_structure_loss(real_vgg[i], fake_vgg[i]) for i in _FSESIM_LEVELS)

        if w.output_l1 > 0:
            # L1 of the output against the ground truth on pseudo pairs: the same masked mean as L_pse,
            # applied to the generator's output instead of the warp.
            result["output_l1"] = w.output_l1 * L.pseudo_pair_loss(fake, batch.image, batch.is_pseudo_pair)

        if w.feature_consistency > 0:
            result["feature_consistency"] = w.feature_consistency * L.feature_consistency_loss(out["cond_feat"], out["image_feat"])
        if w.mcl > 0:
            result["mcl"] = w.mcl * L.marginal_contrastive_loss(
                out["cond_feat"],
                out["image_feat"],
                head_x=heads.cond if self.uses_heads else None,
                head_y=heads.image if self.uses_heads else None,
                **self.mcl.loss_kwargs(),
            )
        if w.cycle > 0:
            warped_rows = out["warped_low"].flatten(2).transpose(1, 2)
            result["cycle"] = w.cycle * L.cycle_consistency_loss(
                out["q"], out["k"], warped_rows, exemplar_values, scale=cfg.corr_scale, mask_negative=cfg.mask_negative
            )
        if w.pseudo_pair > 0:
            result["pseudo_pair"] = w.pseudo_pair * L.pseudo_pair_loss(out["warped"], batch.image, batch.is_pseudo_pair)
        if w.warped_label > 0:
            size = cfg.corr_size
            warped_label = out["extra_warped"].transpose(1, 2).reshape(fake.shape[0], -1, size, size)
            result["warped_label"] = w.warped_label * L.warped_label_loss(warped_label, batch.label, batch.exemplar_label)
        return result

    # --- discriminator ---------------------------------------------------------------------------

    def discriminator_losses(self, discriminator: nn.Module, batch: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted hinge terms; one discriminator pass over cat([output (detached), ground truth])."""
        both = discriminator(torch.cat([batch.condition, batch.condition]), torch.cat([fake.detach(), batch.image]))
        fake_out, real_out = _split_halves(both)
        hinge = L.hinge_discriminator_loss(real_out, fake_out)
        # CoCosNet scales the discriminator's hinge terms by the same weight_gan as the generator's.
        scale = self.w.gan if self.w.gan > 0 else 1.0
        return {"d_real": scale * hinge.real, "d_fake": scale * hinge.fake}


__all__ = ["Batch", "GeneratorSide", "Objective", "mcl_settings"]
