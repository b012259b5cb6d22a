"""Training data: the paper datasets in their published layouts, and folders of photos.

Each dataset is a torch `Dataset` built from a frozen config dataclass; a sample depends only on
(config.seed, epoch, index) -- call `set_epoch(epoch)` each epoch, or `sample(index, epoch)`.
`build_dataset` makes one from a training YAML's `data:` mapping.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mclrt.runtime.errors import UserError
from mclrt.training.data.ade20k import ADE20K_CLASSES, ADE20KConfig, ADE20KDataset
from mclrt.training.data.celebahq_edge import CelebAHQEdgeConfig, CelebAHQEdgeDataset
from mclrt.training.data.deepfashion import DeepFashionConfig, DeepFashionDataset
from mclrt.training.data.paired import PairedDataConfig, PairedDataset
from mclrt.training.data.photos import PhotosConfig, PhotosDataset

# The `data: {kind: ...}` values of a training YAML, and the condition kind each dataset produces.
DATASET_KINDS = {
    "ade20k": (ADE20KConfig, ADE20KDataset, "label"),
    "celebahq-edge": (CelebAHQEdgeConfig, CelebAHQEdgeDataset, "celeba-edge"),
    "deepfashion": (DeepFashionConfig, DeepFashionDataset, "pose"),
    "photos": (PhotosConfig, PhotosDataset, "edge"),
}


def build_dataset(kind: str, options: dict[str, Any]) -> ADE20KDataset | CelebAHQEdgeDataset | DeepFashionDataset | PhotosDataset:
    """A dataset from a mapping of its config's fields; unknown kinds or fields are `UserError`s."""
    if kind not in DATASET_KINDS:
        raise UserError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    config_type, dataset_type, _ = DATASET_KINDS[kind]
    known = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown {kind} data option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    missing = sorted(f.name for f in dataclasses.fields(config_type) if f.name not in options and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise UserError(f"the {kind} data options need {', '.join(missing)}")
    return dataset_type(config_type(**options))


__all__ = [
    "ADE20K_CLASSES",
    "ADE20KConfig",
    "ADE20KDataset",
    "CelebAHQEdgeConfig",
    "CelebAHQEdgeDataset",
    "DeepFashionConfig",
    "DeepFashionDataset",
    "PairedDataConfig",
    "PairedDataset",
    "PhotosConfig",
    "PhotosDataset",
    "DATASET_KINDS",
    "build_dataset",
]
