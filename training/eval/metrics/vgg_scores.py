"""CoCosNet's semantic consistency and style relevance (colour, texture), which MATEBIT reports too,
from VGG-19 features (higher is better, at most 1).

- semantic (output vs ground truth, aligned): the cosine similarity of the relu3_2, relu4_2 and relu5_2
  feature maps (each flattened to one vector), averaged over the three layers (CoCosNet §4.1).
- colour and texture (output vs exemplar, not aligned): the papers compare "semantically corresponding
  patches" at relu1_2 (colour) and relu2_2 (texture) without publishing how the patches are matched. Our
  reading uses global statistics instead, which need no matching: colour = cosine similarity of the
  channel means of relu1_2; texture = cosine similarity of the Gram matrices of relu2_2 (Gatys et al.'s
  texture representation). Values are therefore not comparable with the papers' tables.

The VGG-19 weights are the user's (`--vgg FILE`), found and SHA-256-checked by `mclrt.training.vgg`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEMANTIC_LAYERS = (2, 3, 4)  # relu3_2, relu4_2, relu5_2 in VggFeatures' output order
COLOUR_LAYER, TEXTURE_LAYER = 0, 1  # relu1_2, relu2_2


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)


def _gram(features: torch.Tensor) -> torch.Tensor:
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[2]


def semantic_consistency(features_out: list[torch.Tensor], features_real: list[torch.Tensor]) -> torch.Tensor:
    """[N]: mean over relu3_2/4_2/5_2 of the cosine similarity of the whole feature maps."""
    return torch.stack([_cosine(features_out[l], features_real[l]) for l in SEMANTIC_LAYERS]).mean(dim=0)


def colour_relevance(features_out: list[torch.Tensor], features_exemplar: list[torch.Tensor]) -> torch.Tensor:
    """[N]: cosine similarity of relu1_2's channel means."""
    return _cosine(features_out[COLOUR_LAYER].mean(dim=(2, 3)), features_exemplar[COLOUR_LAYER].mean(dim=(2, 3)))


def texture_relevance(features_out: list[torch.Tensor], features_exemplar: list[torch.Tensor]) -> torch.Tensor:
    """[N]: cosine similarity of relu2_2's Gram matrices."""
    return _cosine(_gram(features_out[TEXTURE_LAYER]), _gram(features_exemplar[TEXTURE_LAYER]))
