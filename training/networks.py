"""MCL-Net networks, read top to bottom like the paper's section 3.

    condition X ──E_X──┐                         ┌── SPADE generator ── image
                       ├─ descriptors ─ softmax ─┤
    exemplar Z ──E_Z──┘   (+ SCM, eq. 2)   warp  └── warped exemplar

Building blocks first (normalizations, SPADE, residual blocks, attention), then the domain adaptors
E_X / E_Z, the correspondence network with the self-correlation map, the generator, the
discriminator and the projection heads of the marginal contrastive loss. `MCLNet` is the inference
path that export splits into an exemplar encoder (once per exemplar) and a translator (per frame).

Layer-by-layer widths follow CoCosNet (shared/research/reference_implementations.md §1, §6) with every
width a multiple of `ngf`; see `config.ModelConfig` for the derived widths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from mclrt.training.config import ModelConfig
from mclrt.training.correspondence import correspondence_softmax

# L2-normalization epsilon: large enough to be representable in FP16 (the reference code uses
# float machine epsilon, which underflows), small enough not to matter for unit-scale features.
NORMALIZE_EPS = 1e-4


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral norm as a removable parametrization (export folds it: `remove_spectral_norm`)."""
    return spectral_norm(module) if enabled else module


def feature_normalize(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return F.normalize(x, p=2.0, dim=dim, eps=NORMALIZE_EPS)


class PositionalNorm2d(nn.Module):
    """PONO: normalize each pixel over its channels (mean and variance per position).

    `unbiased=False` divides the squared deviations by C (mclrt's models before the `pono` field);
    `unbiased=True` by C - 1, as CoCosNet and the PONO paper's code do (`x.var(dim=1)`), which
    imported CoCosNet weights need (config.ModelConfig.pono). Either way the exported graph is
    ReduceMean/ReduceSum, Sub, Mul, Div, Sqrt: no custom op.
    """

    def __init__(self, eps: float = 1e-5, unbiased: bool = False):
        super().__init__()
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        if self.unbiased:
            var = (x - mean).pow(2).sum(dim=1, keepdim=True) / (x.shape[1] - 1)
        else:  # unchanged expression: models trained with it compute bit-identical outputs
            var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, unbiased={self.unbiased}"


class SPADE(nn.Module):
    """x̂ (1 + γ(seg)) + β(seg), with x̂ positionally normalized and seg resized (nearest) to x."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int, unbiased: bool = False):
        super().__init__()
        self.param_free_norm = PositionalNorm2d(unbiased=unbiased)
        self.mlp_shared = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(label_nc, hidden, 3), nn.ReLU())
        self.mlp_gamma = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, norm_nc, 3))
        self.mlp_beta = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, norm_nc, 3))

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResBlock(nn.Module):
    """Two SPADE → LReLU → conv3×3 steps plus a (learned when widths differ) shortcut."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int, spectral: bool = True, unbiased: bool = False):
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.norm_0 = SPADE(fin, label_nc, hidden, unbiased)
        self.conv_0 = nn.Sequential(nn.ReflectionPad2d(1), sn(nn.Conv2d(fin, fmid, 3), spectral))
        self.norm_1 = SPADE(fmid, label_nc, hidden, unbiased)
        self.conv_1 = nn.Sequential(nn.ReflectionPad2d(1), sn(nn.Conv2d(fmid, fout, 3), spectral))
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, hidden, unbiased)
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False), spectral)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class ResidualBlock(nn.Module):
    """The shared trunk block: pad → conv → IN → PReLU → pad → conv → IN, + x, → PReLU (one PReLU)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(x + self.conv2(self.prelu(self.conv1(x))))


class Attention(nn.Module):
    """SAGAN self-attention with 2×2-pooled keys/values; γ starts at 0 so it begins as identity."""

    def __init__(self, channels: int, spectral: bool = True):
        super().__init__()
        self.theta = sn(nn.Conv2d(channels, channels // 8, 1, bias=False), spectral)
        self.phi = sn(nn.Conv2d(channels, channels // 8, 1, bias=False), spectral)
        self.g = sn(nn.Conv2d(channels, channels // 2, 1, bias=False), spectral)
        self.o = sn(nn.Conv2d(channels // 2, channels, 1, bias=False), spectral)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # B, C/8, HW
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # B, C/8, HW/4
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # B, C/2, HW/4
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # B, HW, HW/4
        o = torch.bmm(g, beta.transpose(1, 2)).reshape(b, c // 2, h, w)
        return x + self.gamma * self.o(o)


def conv_sn_in(fin: int, fout: int, kernel: int, stride: int) -> nn.Sequential:
    """Spectral-norm conv (no bias: instance norm removes it) followed by a parameter-free IN."""
    return nn.Sequential(sn(nn.Conv2d(fin, fout, kernel, stride, padding=1, bias=False)), nn.InstanceNorm2d(fout))


def unfold3x3(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """k×k neighbourhood descriptors [B, k²·C, H·W], zero padded.

    Written as shifted slices instead of `F.unfold` so the exported graph uses Pad/Slice/Concat,
    which every ONNX backend (TensorRT included) supports, rather than an im2col decomposition.
    """
    if kernel == 1:
        return x.flatten(2)
    pad = kernel // 2
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    shifts = [padded[:, :, i : i + h, j : j + w] for i in range(kernel) for j in range(kernel)]
    return torch.cat(shifts, dim=1).flatten(2)


def patchify(image: torch.Tensor, patch: int) -> torch.Tensor:
    """Non-overlapping patch×patch RGB patches as rows: [B, 3, H, W] → [B, (H/p)(W/p), 3p²]."""
    b, c, h, w = image.shape
    x = image.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(rows: torch.Tensor, channels: int, size: int, patch: int) -> torch.Tensor:
    """Inverse of `patchify`: [B, (H/p)(W/p), C p²] → [B, C, H, W]."""
    b = rows.shape[0]
    g = size // patch
    x = rows.reshape(b, g, g, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels, size, size)


# ---------------------------------------------------------------------------------------------
# Correspondence network
# ---------------------------------------------------------------------------------------------


class DomainAdaptor(nn.Module):
    """E_X or E_Z: five SN+IN convs down to 1/4 resolution, then three SPADE blocks conditioned on
    the branch's own input (CoCosNet's AdaptiveFeatureGenerator). Output: 4·ngf channels."""

    def __init__(self, cfg: ModelConfig, input_nc: int):
        super().__init__()
        nf, kw = cfg.ngf, cfg.adaptor_kernel
        unbiased = cfg.pono == "unbiased"
        self.layer1 = conv_sn_in(input_nc, nf, 3, 1)
        self.layer2 = conv_sn_in(nf, 2 * nf, kw, 2)
        self.layer3 = conv_sn_in(2 * nf, 4 * nf, 3, 1)
        self.layer4 = conv_sn_in(4 * nf, 8 * nf, kw, 2)
        self.layer5 = conv_sn_in(8 * nf, 8 * nf, 3, 1)
        self.head_0 = SPADEResBlock(8 * nf, 8 * nf, input_nc, cfg.spade_hidden, unbiased=unbiased)
        self.G_middle_0 = SPADEResBlock(8 * nf, 8 * nf, input_nc, cfg.spade_hidden, unbiased=unbiased)
        self.G_middle_1 = SPADEResBlock(8 * nf, 4 * nf, input_nc, cfg.spade_hidden, unbiased=unbiased)
        self.size = cfg.corr_size

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x_in)
        x = self.layer2(F.leaky_relu(x, 0.2))
        x = self.layer3(F.leaky_relu(x, 0.2))
        x = self.layer4(F.leaky_relu(x, 0.2))
        x = self.layer5(F.leaky_relu(x, 0.2))
        if x.shape[-1] != self.size:  # kernel-4 convs with padding 1 are exact /2; guard odd sizes
            x = F.interpolate(x, size=(self.size, self.size), mode="nearest")
        x = self.head_0(x, x_in)
        x = self.G_middle_0(x, x_in)
        return self.G_middle_1(x, x_in)


class SelfCorrelationMap(nn.Module):
    """MCL-Net eq. 2: SCM_i = x_iᵀ X over all N positions, then a fully-connected layer N → D.

    Computed by reassociation, (Xᵀ X) W = Xᵀ (X W): exact, and it never builds the N×N map
    (N·C·D·2 multiply-adds instead of N²·C + N²·D: about 16× fewer at 64×64 with C = D = 256).
    One layer is shared by both domains.
    """

    def __init__(self, positions: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(positions, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: normalized features [B, C, N] → [B, N, D]."""
        xw = torch.matmul(x, self.fc.weight.t())  # B, C, D
        return torch.bmm(x.transpose(1, 2), xw) + self.fc.bias

    def naive(self, x: torch.Tensor) -> torch.Tensor:
        """The definition, for tests: build the N×N self-correlation map, then the FC layer."""
        scm = torch.bmm(x.transpose(1, 2), x)  # B, N, N; row i = SCM_i
        return self.fc(scm)


@dataclass
class Correspondence:
    """What the correspondence network hands the generator and the losses."""

    warped: torch.Tensor  # exemplar warped to the condition's layout, full resolution [B, 3, H, W]
    warped_low: torch.Tensor  # the warp at correspondence resolution [B, Cv, h, w] (Cv = 3 or 48)
    cond_feat: torch.Tensor  # E_X(condition), L2-normalized [B, 4ngf, h, w]
    exemplar_feat: torch.Tensor  # E_Z(exemplar), L2-normalized
    q: torch.Tensor  # condition descriptors [B, N, C]
    k: torch.Tensor  # exemplar descriptors [B, M, C]
    extra_warped: torch.Tensor | None = None  # extra values warped with the same attention (labels)


class CorrespondenceNet(nn.Module):
    """Descriptors of condition and exemplar, their cosine-softmax correspondence, and the warp."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.adaptor_cond = DomainAdaptor(cfg, cfg.label_nc)  # E_X
        self.adaptor_image = DomainAdaptor(cfg, 3)  # E_Z
        trunk_nc = cfg.feature_nc + (cfg.label_nc if cfg.maskmix else 0)
        self.trunk = nn.Sequential(*[ResidualBlock(trunk_nc) for _ in range(cfg.trunk_blocks)])
        self.theta = nn.Conv2d(trunk_nc, cfg.feature_nc, 1)  # condition branch
        self.phi = nn.Conv2d(trunk_nc, cfg.feature_nc, 1)  # exemplar branch
        self.scm = SelfCorrelationMap(cfg.positions, cfg.scm_dim) if cfg.use_scm else None
        # The correspondence function; export swaps in the custom op that becomes one ONNX node.
        self.correspond: Callable[..., torch.Tensor] = correspondence_softmax

    # --- descriptors ---------------------------------------------------------------------------
    def encode_condition(self, condition: torch.Tensor) -> torch.Tensor:
        return feature_normalize(self.adaptor_cond(condition))

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        return feature_normalize(self.adaptor_image(image))

    def descriptors(self, feat: torch.Tensor, label: torch.Tensor | None, projection: nn.Conv2d) -> torch.Tensor:
        """Normalized adaptor features → matching descriptors [B, N, C] (unit length)."""
        x = feat
        if self.cfg.maskmix:
            if self.cfg.maskmix_downsample == "area":
                # One AveragePool in ONNX: the label is at image resolution, the features at 1/corr_stride.
                small = F.avg_pool2d(label, self.cfg.corr_stride)
            else:
                small = F.interpolate(label, size=feat.shape[2:], mode="nearest")
            x = torch.cat([x, small], dim=1)
        x = projection(self.trunk(x))
        desc = unfold3x3(x, self.cfg.match_kernel)  # B, k²C, N
        if self.cfg.center == "position":
            desc = desc - desc.mean(dim=1, keepdim=True)
        else:
            desc = desc - desc.mean(dim=2, keepdim=True)
        desc = feature_normalize(desc, dim=1).transpose(1, 2)  # B, N, k²C
        if self.scm is None:
            return desc
        scm = feature_normalize(self.scm(feat.flatten(2)), dim=2)  # B, N, D
        # Both parts unit length, so the concatenation / sqrt(2) is too: the cosine similarity is the
        # mean of the descriptor cosine and the structure (SCM) cosine.
        return torch.cat([desc, scm], dim=2) * (1.0 / math.sqrt(2.0))

    def values(self, exemplar: torch.Tensor) -> torch.Tensor:
        """What gets warped: the 4×-average-pooled exemplar, or its 4×4 patches."""
        if self.cfg.warp == "patch":
            return patchify(exemplar, self.cfg.corr_stride)
        return F.avg_pool2d(exemplar, self.cfg.corr_stride).flatten(2).transpose(1, 2)

    def encode_exemplar(
        self, exemplar: torch.Tensor, exemplar_condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Exemplar → (keys [B, M, C], values [B, M, Cv], normalized features). Once per exemplar."""
        feat = self.encode_image(exemplar)
        return self.descriptors(feat, exemplar_condition, self.phi), self.values(exemplar), feat

    # --- warp -------------------------------------------------------------------------------------
    def warp(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Correspondence softmax, then back to an image: (full-resolution warp, low-resolution warp)."""
        return self._to_image(self.correspond(q, keys, values, self.cfg.corr_scale, self.cfg.mask_negative))

    def forward(
        self,
        condition: torch.Tensor,
        exemplar: torch.Tensor,
        exemplar_condition: torch.Tensor | None = None,
        extra_values: torch.Tensor | None = None,
    ) -> Correspondence:
        """Training path. `extra_values` [B, M, K] (e.g. the exemplar's one-hot labels at 1/4) are
        warped with the same attention in the same pass."""
        cond_feat = self.encode_condition(condition)
        q = self.descriptors(cond_feat, condition, self.theta)
        k, v, exemplar_feat = self.encode_exemplar(exemplar, exemplar_condition)
        if extra_values is not None:
            v = torch.cat([v, extra_values], dim=2)
        warped_all = self.correspond(q, k, v, self.cfg.corr_scale, self.cfg.mask_negative)
        extra = None
        if extra_values is not None:
            cv = self.cfg.value_width
            extra = warped_all[:, :, cv:]
            warped_all = warped_all[:, :, :cv]
        warped, low = self._to_image(warped_all)
        return Correspondence(warped, low, cond_feat, exemplar_feat, q, k, extra)

    def _to_image(self, warped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warped rows [B, N, Cv] → (full-resolution image, low-resolution map [B, Cv, h, w])."""
        cfg = self.cfg
        b, s = warped.shape[0], cfg.corr_size
        low = warped.transpose(1, 2).reshape(b, cfg.value_width, s, s)
        if cfg.warp == "patch":
            return unpatchify(warped, 3, cfg.image_size, cfg.corr_stride), low
        if cfg.warp == "bilinear":
            return F.interpolate(low, scale_factor=cfg.corr_stride, mode="bilinear", align_corners=False), low
        return F.interpolate(low, scale_factor=cfg.corr_stride, mode="nearest"), low


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """CoCosNet's SPADE generator: every block is modulated by cat(warped exemplar, condition)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        nf, ic, hidden = cfg.ngf, 3 + cfg.label_nc, cfg.spade_hidden
        unbiased = cfg.pono == "unbiased"
        self.latent = cfg.generator_latent
        self.fc = nn.Conv2d(ic, 16 * nf, 3, padding=1)
        self.head_0 = SPADEResBlock(16 * nf, 16 * nf, ic, hidden, unbiased=unbiased)
        self.G_middle_0 = SPADEResBlock(16 * nf, 16 * nf, ic, hidden, unbiased=unbiased)
        self.G_middle_1 = SPADEResBlock(16 * nf, 16 * nf, ic, hidden, unbiased=unbiased)
        self.up_0 = SPADEResBlock(16 * nf, 8 * nf, ic, hidden, unbiased=unbiased)
        self.up_1 = SPADEResBlock(8 * nf, 4 * nf, ic, hidden, unbiased=unbiased)
        self.attn = Attention(4 * nf) if cfg.use_attention else nn.Identity()
        self.up_2 = SPADEResBlock(4 * nf, 2 * nf, ic, hidden, unbiased=unbiased)
        self.up_3 = SPADEResBlock(2 * nf, nf, ic, hidden, unbiased=unbiased)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    @staticmethod
    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, condition: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        seg = torch.cat([warped, condition], dim=1)
        x = self.fc(F.interpolate(seg, size=(self.latent, self.latent), mode="nearest"))
        x = self.head_0(x, seg)
        x = self.G_middle_0(self.up(x), seg)
        x = self.G_middle_1(x, seg)
        x = self.up_0(self.up(x), seg)
        x = self.up_1(self.up(x), seg)
        x = self.attn(self.up(x))
        x = self.up_2(x, seg)
        x = self.up_3(self.up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------


class NLayerDiscriminator(nn.Module):
    """PatchGAN on cat(condition, image): plain first/last convs, SN + IN in between, attention before
    the 4th conv. Returns every intermediate feature (for feature matching) and the logits last."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ndf, max_nc = cfg.ndf, 8 * cfg.ndf
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(cfg.label_nc + 3, ndf, 4, 2, 1), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, cfg.n_layers_d):
            nf_prev, nf = nf, min(nf * 2, max_nc)
            stride = 1 if n == cfg.n_layers_d - 1 else 2
            block: list[nn.Module] = []
            if cfg.use_attention and n == cfg.n_layers_d - 1:
                block.append(Attention(nf_prev))
            block += [sn(nn.Conv2d(nf_prev, nf, 4, stride, 1, bias=False)), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2)]
            layers.append(nn.Sequential(*block))
        layers.append(nn.Conv2d(nf, 1, 4, 1, 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scales = nn.ModuleList([NLayerDiscriminator(cfg) for _ in range(cfg.num_d)])

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([condition, image], dim=1)
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs


# ---------------------------------------------------------------------------------------------
# Projection heads of the marginal contrastive loss (supplement §3: 2-layer MLP, 256 units)
# ---------------------------------------------------------------------------------------------


class ProjectionHead(nn.Module):
    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class ProjectionHeads(nn.Module):
    """One head per domain: condition features (E_X) and image features (E_Z)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cond = ProjectionHead(cfg.feature_nc, cfg.feature_nc)
        self.image = ProjectionHead(cfg.feature_nc, cfg.feature_nc)


# ---------------------------------------------------------------------------------------------
# The inference path, split as export splits it
# ---------------------------------------------------------------------------------------------


class MCLNet(nn.Module):
    """Correspondence network + generator. `encode_exemplar` runs once per exemplar, `translate`
    once per condition (frame): together they equal the training forward pass."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.corr = CorrespondenceNet(cfg)
        self.generator = Generator(cfg)

    def encode_exemplar(
        self, exemplar: torch.Tensor, exemplar_condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values, _ = self.corr.encode_exemplar(exemplar, exemplar_condition)
        return keys, values

    def translate(
        self, condition: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.corr.descriptors(self.corr.encode_condition(condition), condition, self.corr.theta)
        warped, _ = self.corr.warp(q, keys, values)
        return self.generator(condition, warped), warped

    def forward(
        self, condition: torch.Tensor, exemplar: torch.Tensor, exemplar_condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.translate(condition, *self.encode_exemplar(exemplar, exemplar_condition))


# ---------------------------------------------------------------------------------------------
# Initialization and spectral-norm folding
# ---------------------------------------------------------------------------------------------


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """xavier_normal(gain) on conv/linear weights, zero biases (CoCosNet's init_type='xavier')."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            with torch.no_grad():
                nn.init.xavier_normal_(weight, gain=gain)
                if m.bias is not None:
                    m.bias.zero_()


def remove_spectral_norm(module: nn.Module) -> nn.Module:
    """Fold every spectral-norm parametrization into a plain weight (W / σ with the current u, v).

    Exported graphs must not recompute σ at run time (and the upstream ONNX stored every weight
    twice). In eval mode outputs are unchanged: the parametrization uses the stored u, v as well.
    """
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


def build_networks(cfg: ModelConfig, seed: int | None = None) -> dict[str, nn.Module]:
    """All networks of a preset, initialized: correspondence, generator, discriminator, heads."""
    if seed is not None:
        torch.manual_seed(seed)
    nets: dict[str, nn.Module] = {
        "model": MCLNet(cfg),
        "discriminator": MultiscaleDiscriminator(cfg),
        "heads": ProjectionHeads(cfg),
    }
    for net in nets.values():
        init_weights(net, cfg.init_gain)
    return nets


def count_parameters(module: nn.Module) -> int:
    """Trainable parameter count (spectral-norm u/v buffers are not parameters)."""
    return sum(p.numel() for p in module.parameters())
