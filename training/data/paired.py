"""What the paper datasets share: a ground truth, its condition, and an exemplar chosen CoCosNet's way.

A subclass says where its files are (`load`, `exemplar_path_exists`) and builds its condition; this
class does the rest, as CoCosNet's `Pix2pixDataset.__getitem__`:

1. the ground truth and its condition are resized to load_size x load_size (286 for 256 images) and
   cropped at a random window with a random flip (validation: no crop, no flip);
2. an exemplar is chosen: hard (last retrieved), easy (first retrieved) or a pseudo pair -- the ground
   truth again with an independently drawn crop and flip (`sampling.choose_exemplar`);
3. the exemplar's own condition gets the exemplar's crop (maskmix and the warped-label loss need it).

A sample is a dict of tensors:
  condition [L,H,W] float32 in [0,1], image [3,H,W] in [-1,1] (the ground truth),
  exemplar [3,H,W] in [-1,1], exemplar_condition [L,H,W], is_pseudo_pair (bool, 0-d),
  name / exemplar_name (str); label datasets add label / exemplar_label (int64 [H,W] class ids).
`is_pseudo_pair` is true when the exemplar shows the ground truth's own content, so reconstruction
losses against the ground truth apply (CoCosNet's `self_ref`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from mclrt.runtime.errors import UserError
from mclrt.training.data.lists import ReferenceList, read_reference_list
from mclrt.training.data.sampling import (
    Crop,
    EpochSampled,
    ExemplarKind,
    choose_exemplar,
    default_load_size,
    draw_crop,
    sample_rng,
)

Split = Literal["train", "val"]


@dataclass(frozen=True)
class PairedDataConfig:
    """Options common to the ADE20K, CelebA-HQ and DeepFashion datasets (CoCosNet's defaults)."""

    root: Path
    split: Split = "train"
    image_size: int = 256
    load_size: int | None = None  # None: 286/256 x image_size when training, image_size for validation
    flip: bool = True
    hard_probability: float = 0.2  # CoCosNet's hard_reference_probability
    real_probability: float = 0.7  # CoCosNet's real_reference_probability; the rest are pseudo pairs
    reference_list: Path | None = None  # None: the dataset's usual file in root (e.g. ade20k_ref.txt)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.reference_list is not None:
            object.__setattr__(self, "reference_list", Path(self.reference_list))
        if self.split not in ("train", "val"):
            raise UserError(f"unknown split {self.split!r}; use 'train' or 'val'")
        if not 0 <= self.hard_probability <= 1 or not 0 <= self.real_probability <= 1:
            raise UserError("hard_probability and real_probability must lie in [0, 1]")

    @property
    def training(self) -> bool:
        return self.split == "train"

    @property
    def effective_load_size(self) -> int:
        if self.load_size is not None:
            if self.load_size < self.image_size:
                raise UserError(f"load_size {self.load_size} is smaller than image_size {self.image_size}")
            return self.load_size
        return default_load_size(self.image_size) if self.training else self.image_size


@dataclass
class Loaded:
    """One photo with its condition at load_size x load_size, before cropping."""

    rgb: np.ndarray  # uint8 [3, S, S]
    condition: np.ndarray | None = None  # float32 [L, S, S]; None for label datasets
    label_ids: np.ndarray | None = None  # uint8 [S, S] (label datasets: one-hot is made after the crop)


class PairedDataset(EpochSampled, Dataset):
    """Base of the paper datasets. A subclass lists its sample names, says which files a name needs
    (`required_files`, checked up front for every retrieved exemplar) and loads one (`load`); label
    datasets also make the one-hot (`onehot`)."""

    reference_file: str  # the dataset's retrieval list in root, e.g. "ade20k_ref.txt"
    has_labels = False  # label datasets return class ids too

    def __init__(self, config: PairedDataConfig, names: list[str], num_channels: int):
        self.config = config
        self.names = names
        self.num_channels = num_channels
        self.load_size = config.effective_load_size
        self.epoch = 0
        # Validation is CoCosNet's test phase: always the first (easy) retrieved exemplar.
        self.hard_probability = config.hard_probability if config.training else 0.0
        self.real_probability = config.real_probability if config.training else 1.0
        self.references = self._read_references() if self.real_probability > 0 else None

    # --- subclass interface ------------------------------------------------------------------------

    def load(self, name: str) -> Loaded:
        raise NotImplementedError

    def required_files(self, name: str) -> list[Path]:
        """The files `load(name)` reads (the photo first); missing ones are reported before training starts."""
        raise NotImplementedError

    def onehot(self, label_ids: np.ndarray, name: str) -> np.ndarray:
        raise NotImplementedError

    def pseudo_pair_partner(self, name: str, rng: np.random.Generator) -> str | None:
        """Another photo showing the same content (DeepFashion: the same garment in another pose), or None."""
        return None

    # --- sampling ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, index: int, epoch: int) -> dict[str, Any]:
        rng = sample_rng(self.config.seed, epoch, index)
        name = self.names[index]
        target = self.load(name)
        target_crop = self._draw_crop(rng)
        kind = choose_exemplar(rng, self.hard_probability, self.real_probability)
        if kind is ExemplarKind.PSEUDO_PAIR:
            exemplar_name = self.pseudo_pair_partner(name, rng) or name
            exemplar = target if exemplar_name == name else self.load(exemplar_name)
        else:
            exemplar_name = self.references.easy(name) if kind is ExemplarKind.EASY else self.references.hard(name)
            exemplar = self.load(exemplar_name)
        exemplar_crop = self._draw_crop(rng)

        sample = {"name": name, "exemplar_name": exemplar_name, "is_pseudo_pair": torch.tensor(kind is ExemplarKind.PSEUDO_PAIR)}
        for prefix, loaded, crop, owner in (("", target, target_crop, name), ("exemplar_", exemplar, exemplar_crop, exemplar_name)):
            image_key = "image" if prefix == "" else "exemplar"
            sample[image_key] = torch.from_numpy(crop.apply(loaded.rgb).astype(np.float32) / 127.5 - 1.0)
            if loaded.label_ids is not None:
                ids = crop.apply(loaded.label_ids)
                sample[prefix + "condition"] = torch.from_numpy(self.onehot(ids, owner))
                sample[prefix + "label"] = torch.from_numpy(ids.astype(np.int64))
            else:
                sample[prefix + "condition"] = torch.from_numpy(crop.apply(loaded.condition))
        return sample

    def _draw_crop(self, rng: np.random.Generator) -> Crop:
        return draw_crop(rng, self.load_size, self.config.image_size, self.config.flip and self.config.training)

    # --- references --------------------------------------------------------------------------------

    def reference_list_path(self) -> Path:
        if self.config.reference_list is not None:
            return self.config.reference_list
        stem = self.reference_file.removesuffix(".txt")
        return self.config.root / (f"{stem}.txt" if self.config.training else f"{stem}_test.txt")

    def _read_references(self) -> ReferenceList:
        path = self.reference_list_path()
        if not path.exists():
            raise UserError(
                "no such file (the exemplar retrieval list; build one with "
                "`python -m mclrt.tools.retrieval_lists`, or set real_probability 0 for pseudo pairs only)",
                path,
            )
        references = read_reference_list(path)
        for name in self.names:
            if name not in references:
                raise UserError(f"has no line for {name!r} (every sample of the split needs one)", path)
            for ref in {references.easy(name), references.hard(name)}:
                for needed in self.required_files(ref):
                    if not needed.is_file():
                        raise UserError(f"{references.where(name)}: exemplar {ref!r}: no such file {needed}", path)
        return references


__all__ = ["PairedDataConfig", "PairedDataset", "Loaded", "Split"]
