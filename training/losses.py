"""The MCL-Net loss suite (paper eq. 1-8), each loss one small function of tensors.

Nothing here knows about the trainer, DDP or devices, and no loss carries its weight in the total
objective: every lambda lives in the training config. What stays here are the constants that *define*
a loss (the margin of MCL, the bandwidth of the contextual loss, CoCosNet's per-layer VGG weights),
as keyword defaults a config may override.

Correspondence network (features are torch tensors, NCHW unless stated):
- `marginal_contrastive_loss`   paper eq. 1 + Algorithm 1 (MCL), settings in `MCLSettings`
- `feature_consistency_loss`    eq. 3, CoCosNet's domain alignment
- `cycle_consistency_loss`      eq. 4, warp back with the transposed softmax
- `pseudo_pair_loss`            eq. 5, only on pseudo-pair samples
- `warped_label_loss`           CoCosNet's warped-mask loss for label datasets
Generation network (VGG features from `mclrt.training.vgg.VggFeatures`, a list of five levels):
- `perceptual_loss`             eq. 6
- `contextual_loss`, `multilayer_contextual_loss`   eq. 7 (CoCosNet's exact definition)
- `vgg_feature_matching_loss`   CoCosNet's `fm`, pseudo pairs only
- `hinge_generator_loss`, `hinge_discriminator_loss`, `discriminator_feature_matching_loss`
Optional:
- `fsesim_structure_loss`       F-LSeSim's fixed self-similarity (off by default in the configs)

Numerical safety: every cosine that feeds a square root is clamped, every normalization has an eps,
every log has a floor, and the softmax-like ratios are computed with softmax; identical, opposite and
all-zero feature vectors give finite values and finite gradients (tests/test_losses.py checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from mclrt.training.correspondence import correspondence_softmax

Tensor = torch.Tensor
Projection = Callable[[Tensor], Tensor]  # a projection head: [..., C] -> [..., D]
CorrespondenceFn = Callable[..., Tensor]  # correspondence_softmax(q, k, v, scale=, mask_negative=)

_NORMALIZE_EPS = 1e-7  # as the reference PatchSampleF; a zero vector stays zero instead of NaN


# --- marginal contrastive loss (paper §3.2) -------------------------------------------------------


@dataclass(frozen=True)
class MCLSettings:
    """How the marginal contrastive loss is computed (its weight in the objective is a config field).

    `paper()` follows the MCL-Net paper and supplement where they say something: margin m = 0.4 rad
    (paper §3.2), tau = 0.07 and a 2-layer MLP projection head (256 units) per domain (supplement),
    bidirectional L_xy + L_yx, gradients into both encoders. Two of its values are *ours*, not the paper's:
    - 256 sampled positions: the paper's eq. 1 sums over all N positions of the feature map; sampling
      256 per image is CUT's (PatchNCE's) default, which the supplement cites for the projection head.
      It keeps the S x S logits small (N = 4096 at the paper's 64x64 correspondence).
    - the term's weight 1.0 (`LossWeights.mcl`): the paper writes a lambda_3 for it (eq. 8) but publishes
      no value. The reference code (UNITE, `--nce_w 0.01`) computes the loss but never adds it to the
      generator objective, so 0.01 was never the weight of a trained term; MATEBIT, which does add it, is
      a different model.

    `reference_code()` reproduces that public code (`BidirectionalNCE1`, despite its name one
    direction only): 64 positions, m = 0.25, tau = 0.05, no projection head, the image branch detached.
    """

    num_positions: int = 256
    margin: float = 0.4
    tau: float = 0.07
    bidirectional: bool = True
    use_projection_head: bool = True  # read by whoever builds the networks; the loss takes the heads
    detach_y: bool = False

    @classmethod
    def paper(cls) -> MCLSettings:
        return cls()

    @classmethod
    def reference_code(cls) -> MCLSettings:
        return cls(num_positions=64, margin=0.25, tau=0.05, bidirectional=False, use_projection_head=False, detach_y=True)

    def loss_kwargs(self) -> dict:
        """Keyword arguments for `marginal_contrastive_loss` (the heads are passed separately)."""
        return {
            "num_positions": self.num_positions,
            "margin": self.margin,
            "tau": self.tau,
            "bidirectional": self.bidirectional,
            "detach_y": self.detach_y,
        }


def sample_positions(height: int, width: int, count: int, generator: torch.Generator | None = None) -> Tensor:
    """`count` distinct flat positions of an H x W map (all of them, shuffled, if count >= H*W).

    Drawn on the CPU from `generator` (a CPU generator) so that runs are reproducible on any device.
    """
    return torch.randperm(height * width, generator=generator)[: min(count, height * width)]


def _gather_positions(feature_map: Tensor, positions: Tensor) -> Tensor:
    """[B,C,H,W] -> [B,S,C]: the feature vectors at the given flat positions (same for every image)."""
    return feature_map.flatten(2).transpose(1, 2)[:, positions.to(feature_map.device)]


def additive_angular_margin(cosine: Tensor, margin: float) -> Tensor:
    """cos(theta + m) from cos(theta), ArcFace-style: c*cos m - sqrt(1 - c^2)*sin m.

    c is clamped to [-1 + 1e-6, 1 - 1e-6] first: rounding can push a cosine of unit vectors past 1,
    and both sqrt(negative) and the infinite slope of sqrt at 0 would give NaN.
    """
    c = cosine.clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return c * math.cos(margin) - torch.sqrt(1.0 - c * c) * math.sin(margin)


def _marginal_infonce(anchors: Tensor, candidates: Tensor, margin: float, tau: float) -> Tensor:
    """Mean over anchors of -log softmax: the same-position candidate (with margin) against the others.

    anchors, candidates: [B,S,D], L2-normalized. Negatives are the other S-1 positions of the same image.
    """
    cosines = torch.bmm(anchors, candidates.transpose(1, 2))  # [B,S,S]; diagonal = positives
    positives = torch.diagonal(cosines, dim1=1, dim2=2)
    eye = torch.eye(cosines.shape[1], dtype=torch.bool, device=cosines.device)
    logits = torch.where(eye, torch.diag_embed(additive_angular_margin(positives, margin)), cosines) / tau
    targets = torch.arange(cosines.shape[1], device=cosines.device).expand(cosines.shape[0], -1)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def marginal_contrastive_loss(
    feat_x: Tensor,
    feat_y: Tensor,
    *,
    num_positions: int = 256,
    margin: float = 0.4,
    tau: float = 0.07,
    bidirectional: bool = True,
    head_x: Projection | None = None,
    head_y: Projection | None = None,
    detach_y: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """MCL (paper Algorithm 1): contrast E_X(condition) against E_Z(ground truth) at sampled positions.

    feat_x, feat_y: [B,C,H,W] (C may differ when heads project both to a common width).
    The same `num_positions` positions are sampled for every image of the batch. Each x_i is an anchor
    whose positive is y_i and whose negatives are the other sampled y_j of the same image; the positive's
    cosine gets the additive angular margin, cos(theta_ii + m); logits are cosines / tau; cross-entropy,
    averaged over anchors (the paper writes a sum over i; a mean keeps the scale independent of the
    batch and of num_positions). With `bidirectional`, L_yx (anchors y_i) is added: L = L_xy + L_yx.
    `detach_y` stops gradients into the whole image branch (encoder and head), as the reference code does.
    With margin = 0 this is exactly InfoNCE.
    """
    if feat_x.shape[0] != feat_y.shape[0] or feat_x.shape[2:] != feat_y.shape[2:]:
        raise ValueError(f"feat_x {tuple(feat_x.shape)} and feat_y {tuple(feat_y.shape)} must share batch and spatial size")
    positions = sample_positions(feat_x.shape[2], feat_x.shape[3], num_positions, generator)
    x = _gather_positions(feat_x, positions)
    y = _gather_positions(feat_y, positions)
    if head_x is not None:
        x = head_x(x)
    if head_y is not None:
        y = head_y(y)
    if detach_y:
        y = y.detach()
    x = F.normalize(x, dim=-1, eps=_NORMALIZE_EPS)
    y = F.normalize(y, dim=-1, eps=_NORMALIZE_EPS)
    loss = _marginal_infonce(x, y, margin, tau)
    if bidirectional:
        loss = loss + _marginal_infonce(y, x, margin, tau)
    return loss


# --- the other correspondence losses (paper §3.5) -------------------------------------------------


def feature_consistency_loss(feat_x: Tensor, feat_y: Tensor, *, normalize: bool = True) -> Tensor:
    """L_fcst = |E_X(X) - E_Z(Y)|_1 (paper eq. 3), mean over elements.

    As in CoCosNet's domain alignment (`no_vgg_feat`), both adaptor outputs are L2-normalized over
    channels first, so the loss aligns directions, not magnitudes (which the encoders could shrink to 0).
    """
    if normalize:
        feat_x = F.normalize(feat_x, dim=1, eps=_NORMALIZE_EPS)
        feat_y = F.normalize(feat_y, dim=1, eps=_NORMALIZE_EPS)
    return F.l1_loss(feat_x, feat_y)


def cycle_consistency_loss(
    query: Tensor,
    key: Tensor,
    warped_values: Tensor,
    exemplar_values: Tensor,
    *,
    scale: float = 100.0,
    mask_negative: bool = False,
    correspondence: CorrespondenceFn = correspondence_softmax,
) -> Tensor:
    """L_cyc = |T^T . T . Z - Z|_1 (paper eq. 4), as CoCosNet's warp cycle.

    query [B,N,C] (condition descriptors), key [B,M,C] (exemplar descriptors), warped_values [B,N,Cv]
    = correspondence(query, key, exemplar_values). "T^T" is the softmax over the *condition* positions,
    which is the same correspondence with query and key swapped. exemplar_values [B,M,Cv] is the
    4x-average-pooled exemplar (or its 4x4 patches), exactly what the exemplar encoder outputs.
    """
    warped_back = correspondence(key, query, warped_values, scale=scale, mask_negative=mask_negative)
    return F.l1_loss(warped_back, exemplar_values)


def _per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1)


def _mean_over_selected(per_sample: Tensor, sample_weights: Tensor) -> Tensor:
    """Weighted mean of per-sample values; 0 (still attached to the graph) when no sample is selected."""
    sample_weights = sample_weights.to(per_sample.dtype).flatten()
    return (per_sample * sample_weights).sum() / sample_weights.sum().clamp_min(1e-8)


def pseudo_pair_loss(warped: Tensor, target: Tensor, is_pseudo_pair: Tensor) -> Tensor:
    """L_pse = |T . Z - Y'|_1 (paper eq. 5) over the pseudo-pair samples of the batch.

    warped, target: same shape [B,...]; is_pseudo_pair: [B] mask or weights (CoCosNet's `self_ref`).
    Returns the mean L1 over the selected samples. CoCosNet's `G_warp_self` divides by the batch size
    once more (it normalizes the weights to sum 1 and then averages over the batch too), so its
    weight of 100 corresponds to 100 / batch_size here.
    """
    return _mean_over_selected(_per_sample_mean((warped - target).abs()), is_pseudo_pair)


def warped_label_loss(
    warped_label: Tensor, target_label: Tensor, exemplar_label: Tensor, *, ignore_class: int | None = 0
) -> Tensor:
    """CoCosNet's warped-mask loss: NLL of log(warped one-hot + 1e-10) against the target's labels.

    warped_label [B,L,h,w]: the exemplar's one-hot label map warped by the correspondence (at 1/4).
    target_label, exemplar_label [B,H,W] or [B,1,H,W]: integer class ids at full resolution; both are
    reduced to h x w with nearest sampling, as CoCosNet does. A target pixel counts only if its class
    also occurs in the (reduced) exemplar label -- the warp cannot produce a class the exemplar lacks --
    and is not `ignore_class` (ADE20K's 0 = unlabelled). Mean over the counted pixels.
    """
    size = warped_label.shape[2:]
    target = _label_ids_at(target_label, size)
    exemplar = _label_ids_at(exemplar_label, size)
    num_classes = warped_label.shape[1]
    # present[b, c]: class c occurs somewhere in exemplar b
    present = torch.zeros(exemplar.shape[0], num_classes, dtype=torch.bool, device=exemplar.device)
    present.scatter_(1, exemplar.flatten(1), True)
    counted = present.gather(1, target.flatten(1)).view_as(target)
    if ignore_class is not None:
        counted &= target != ignore_class
    nll = F.nll_loss(torch.log(warped_label + 1e-10), target, reduction="none")
    return (nll * counted).sum() / counted.sum().clamp_min(1)


def _label_ids_at(label: Tensor, size: torch.Size) -> Tensor:
    if label.dim() == 3:
        label = label.unsqueeze(1)
    reduced = F.interpolate(label.float(), size=tuple(size), mode="nearest")
    return reduced.squeeze(1).long()


# --- generation-network losses (paper §3.5, CoCosNet's definitions) ---------------------------------


def perceptual_loss(fake_features: Tensor, real_features: Tensor, *, distance: Literal["mse", "l1"] = "mse") -> Tensor:
    """L_perc between VGG features of the output and the ground truth at one layer (paper eq. 6).

    CoCosNet uses the MSE at relu5_2 (ADE20K) or relu4_2 (faces, poses); the paper's eq. 6 writes an
    L1 norm, available as distance="l1". The real features are a fixed target.
    """
    target = real_features.detach()
    if distance == "mse":
        return F.mse_loss(fake_features, target)
    if distance == "l1":
        return F.l1_loss(fake_features, target)
    raise ValueError(f"distance must be 'mse' or 'l1', not {distance!r}")


def contextual_loss(
    features: Tensor, target_features: Tensor, *, bandwidth: float = 0.1, center: Literal["position", "spatial"] = "position"
) -> Tensor:
    """Contextual loss -log CX (Mechrez et al.), exactly as CoCosNet's `ContextualLoss_forward`.

    features, target_features: [B,C,H,W]. Steps: centre both by the *target's* mean (center="position":
    the target's mean over channels at each position, subtracted from both maps at that position --
    CoCosNet with --PONO, the default in all its commands, which needs equal spatial sizes; "spatial":
    each channel's mean over the target's positions, which allows different sizes);
    L2-normalize over channels; d_ij = 1 - cos; d~_ij = d_ij / (min_j d_ij + 1e-3);
    A_ij = softmax_j((1 - d~_ij) / h); CX = mean_i max_j A_ij; loss = -log CX, averaged over the batch.
    Identical feature sets give CX = 1 and a loss of 0. The softmax equals CoCosNet's w / sum(w) but
    cannot overflow. The target is not detached here; pass a detached target for a fixed exemplar.
    """
    if center == "position":
        target_mean = target_features.mean(dim=1, keepdim=True)
    elif center == "spatial":
        target_mean = target_features.mean(dim=(2, 3), keepdim=True)
    else:
        raise ValueError(f"center must be 'position' or 'spatial', not {center!r}")
    x = F.normalize((features - target_mean).flatten(2), dim=1, eps=_NORMALIZE_EPS)  # [B,C,N]
    y = F.normalize((target_features - target_mean).flatten(2), dim=1, eps=_NORMALIZE_EPS)  # [B,C,M]
    distance = 1.0 - torch.bmm(x.transpose(1, 2), y)  # [B,N,M]
    relative = distance / (distance.min(dim=-1, keepdim=True).values + 1e-3)
    affinity = torch.softmax((1.0 - relative) / bandwidth, dim=-1)
    cx = affinity.max(dim=-1).values.mean(dim=1)  # [B]; >= 1/M > 0, so the log is finite
    return -torch.log(cx).mean()


@dataclass(frozen=True)
class ContextualLayer:
    level: int  # 0-based index into the five VGG levels (4 = relu5_x)
    weight: float
    pool: int = 1  # average-pool factor applied to both feature maps first (saves the N x M memory)


# CoCosNet's get_ctx_loss: relu5_2 x 8 + relu4_2 x 4 + relu3_2 (2x avg-pooled) x 2.
# (`--use_22ctx` adds ContextualLayer(1, 1.0, pool=4).)
COCOSNET_CONTEXTUAL_LAYERS = (ContextualLayer(4, 8.0), ContextualLayer(3, 4.0), ContextualLayer(2, 2.0, pool=2))


def multilayer_contextual_loss(
    fake_levels: Sequence[Tensor],
    exemplar_levels: Sequence[Tensor],
    *,
    layers: Sequence[ContextualLayer] = COCOSNET_CONTEXTUAL_LAYERS,
    bandwidth: float = 0.1,
    center: Literal["position", "spatial"] = "position",
) -> Tensor:
    """L_cxt (paper eq. 7): weighted contextual losses of the output against the exemplar (detached)."""
    total = fake_levels[0].new_zeros(())
    for layer in layers:
        fake, exemplar = fake_levels[layer.level], exemplar_levels[layer.level].detach()
        if layer.pool > 1:
            fake, exemplar = F.avg_pool2d(fake, layer.pool), F.avg_pool2d(exemplar, layer.pool)
        total = total + layer.weight * contextual_loss(fake, exemplar, bandwidth=bandwidth, center=center)
    return total


# CoCosNet's `fm`: relu1_2 .. relu5_2 weighted 1/32, 1/16, 1/8, 1/4, 1.
COCOSNET_FEATURE_MATCHING_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def vgg_feature_matching_loss(
    fake_levels: Sequence[Tensor],
    real_levels: Sequence[Tensor],
    is_pseudo_pair: Tensor,
    *,
    level_weights: Sequence[float] = COCOSNET_FEATURE_MATCHING_WEIGHTS,
) -> Tensor:
    """CoCosNet's VGG feature matching: sum_l w_l * L1(VGG_l(output), VGG_l(ground truth)), pseudo pairs only.

    Only pseudo-pair samples count, because only for them does the ground truth share the exemplar's
    style; the mean is over the selected samples (CoCosNet divides once more by the batch size, see
    `pseudo_pair_loss`).
    """
    if len(level_weights) != len(fake_levels) or len(fake_levels) != len(real_levels):
        raise ValueError(f"{len(fake_levels)} fake levels, {len(real_levels)} real levels, {len(level_weights)} weights")
    total = fake_levels[0].new_zeros(())
    for weight, fake, real in zip(level_weights, fake_levels, real_levels):
        per_sample = _per_sample_mean((fake - real.detach()).abs())
        total = total + weight * _mean_over_selected(per_sample, is_pseudo_pair)
    return total


# --- adversarial losses (hinge, multi-scale) -------------------------------------------------------

# A multi-scale discriminator returns, per scale, the list of its layer outputs; the last is the logits.
DiscriminatorOutputs = Sequence[Sequence[Tensor]]


def _final_logits(outputs: DiscriminatorOutputs | Sequence[Tensor]) -> list[Tensor]:
    return [scale if isinstance(scale, Tensor) else scale[-1] for scale in outputs]


def hinge_generator_loss(fake_outputs: DiscriminatorOutputs | Sequence[Tensor]) -> Tensor:
    """-mean D(fake), averaged over the discriminator's scales (SPADE / CoCosNet hinge G loss).

    Each entry is one scale's logits, or that scale's list of layer outputs ending with the logits.
    """
    logits = _final_logits(fake_outputs)
    return torch.stack([-scale.mean() for scale in logits]).mean()


class HingeDiscriminatorLoss(NamedTuple):
    real: Tensor  # mean relu(1 - D(real)), averaged over scales
    fake: Tensor  # mean relu(1 + D(fake)), averaged over scales

    def total(self) -> Tensor:
        return self.real + self.fake


def hinge_discriminator_loss(
    real_outputs: DiscriminatorOutputs | Sequence[Tensor], fake_outputs: DiscriminatorOutputs | Sequence[Tensor]
) -> HingeDiscriminatorLoss:
    """The discriminator's hinge loss, kept as its real and fake terms so both can be logged."""
    real = torch.stack([F.relu(1.0 - scale).mean() for scale in _final_logits(real_outputs)]).mean()
    fake = torch.stack([F.relu(1.0 + scale).mean() for scale in _final_logits(fake_outputs)]).mean()
    return HingeDiscriminatorLoss(real=real, fake=fake)


def discriminator_feature_matching_loss(fake_outputs: DiscriminatorOutputs, real_outputs: DiscriminatorOutputs) -> Tensor:
    """pix2pixHD / CoCosNet `GAN_Feat`: L1 between D's intermediate features of output and ground truth.

    Summed over layers (the final logits excluded) and scales, divided by the number of scales; the real
    features are a fixed target.
    """
    num_scales = len(fake_outputs)
    total = fake_outputs[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake_outputs, real_outputs):
        for fake, real in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + F.l1_loss(fake, real.detach())
    return total / num_scales


# --- optional: F-LSeSim fixed self-similarity structure loss -------------------------------------


def _window_starts(centers: Tensor, window: int, size: int) -> Tensor:
    """First row (or column) of a window of `window` cells around each center, kept inside [0, size)."""
    return (centers - window // 2).clamp(min=0, max=size - window)


def self_similarity_rows(feature_map: Tensor, positions: Tensor, window: int) -> Tensor:
    """F-LSeSim's `PatchSim`: for each sampled position, its cosine to every position of a local window.

    feature_map [B,C,H,W] -> [B,S,P]. Features are centred by their spatial mean and L2-normalized;
    the window is `window` x `window` cells around the query, moved inside the map at the borders,
    or the whole map (P = H*W) when the window does not fit.
    """
    batch, _, height, width = feature_map.shape
    centred = feature_map - feature_map.mean(dim=(2, 3), keepdim=True)
    unit = F.normalize(centred.flatten(2), dim=1, eps=_NORMALIZE_EPS)  # [B,C,HW]
    positions = positions.to(feature_map.device)
    queries = unit[:, :, positions].transpose(1, 2)  # [B,S,C]
    similarity = torch.bmm(queries, unit)  # [B,S,HW]: cheap next to gathering windows of features
    if window >= height or window >= width:
        return similarity
    rows = _window_starts(positions // width, window, height)
    cols = _window_starts(positions % width, window, width)
    offsets = torch.arange(window, device=feature_map.device)
    window_index = ((rows[:, None] + offsets)[:, :, None] * width + (cols[:, None] + offsets)[:, None, :]).flatten(1)
    return similarity.gather(2, window_index.unsqueeze(0).expand(batch, -1, -1))


def fsesim_structure_loss(
    source_features: Tensor,
    output_features: Tensor,
    *,
    num_queries: int = 256,
    window: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    """F-LSeSim's FSeSim loss (seed paper 004 §3.1) with its default 'cos' comparison.

    The self-similarity rows of the source (input or ground-truth) features and of the output's
    features at the same sampled positions are compared: entries below the median of the *source* row
    are zeroed in both (as the reference code does; its notes elsewhere say "top 25%", the code keeps the
    top half), then loss = mean(1 - cos(source_row, output_row)). Fixed (VGG) features, no learned parts.
    """
    positions = sample_positions(source_features.shape[2], source_features.shape[3], num_queries, generator)
    source = self_similarity_rows(source_features, positions, window)
    output = self_similarity_rows(output_features, positions, window)
    threshold = source.sort(dim=-1, descending=True).values[:, :, source.shape[-1] // 2 : source.shape[-1] // 2 + 1]
    keep = source >= threshold
    source, output = source * keep, output * keep
    return (1.0 - F.cosine_similarity(source, output, dim=-1, eps=1e-8)).mean()
