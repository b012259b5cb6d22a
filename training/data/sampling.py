"""Randomness of a training sample: where it comes from, and the draws CoCosNet makes per sample.

Every sample draws from its own generator, seeded by (seed, epoch, index) and nothing else, so two DDP
ranks, a resumed run and a run with a different number of DataLoader workers all see identical data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class ExemplarKind(Enum):
    HARD = "hard"  # the last reference of the retrieval list
    EASY = "easy"  # the first reference
    PSEUDO_PAIR = "pseudo-pair"  # the ground truth itself, cropped and flipped independently


def choose_exemplar(rng: np.random.Generator, hard_probability: float, real_probability: float) -> ExemplarKind:
    """CoCosNet's rule: draw p ~ U(0, 1); p < real_probability takes a retrieved exemplar -- the hard one
    if also p < hard_probability -- and anything else is a pseudo pair. With the defaults 0.2 / 0.7 that
    is 20 % hard, 50 % easy, 30 % pseudo pairs; real_probability 0 gives only pseudo pairs."""
    p = rng.random()
    if p < real_probability:
        return ExemplarKind.HARD if p < hard_probability else ExemplarKind.EASY
    return ExemplarKind.PSEUDO_PAIR


@dataclass(frozen=True)
class Crop:
    """A square window (x, y, size) of a load_size x load_size image, then an optional horizontal flip."""

    x: int
    y: int
    size: int
    flip: bool

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Crop (and flip) an array whose last two axes are height and width."""
        window = array[..., self.y : self.y + self.size, self.x : self.x + self.size]
        if self.flip:
            window = window[..., ::-1]
        return np.ascontiguousarray(window)


def draw_crop(rng: np.random.Generator, load_size: int, crop_size: int, flip: bool) -> Crop:
    """CoCosNet's `resize_and_crop`: a uniform random window, flipped with probability 1/2 if allowed."""
    x = int(rng.integers(0, load_size - crop_size + 1))
    y = int(rng.integers(0, load_size - crop_size + 1))
    flipped = bool(rng.random() < 0.5) if flip else False
    return Crop(x, y, crop_size, flipped)


def default_load_size(image_size: int) -> int:
    """CoCosNet resizes to 286 and crops 256 when training; the same ratio at other sizes (128 -> 143)."""
    return round(image_size * 286 / 256)


__all__ = ["sample_rng", "ExemplarKind", "choose_exemplar", "Crop", "draw_crop", "default_load_size"]


class EpochSampled:
    """A dataset whose item is a pure function of (index, epoch): `sample(index, epoch)` does the work.

    The trainer calls `set_epoch` before each epoch's DataLoader iterator is made (workers receive a
    copy of the dataset), so DDP ranks and resumed runs see exactly the same samples.
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int):
        return self.sample(index, self.epoch)

    def sample(self, index: int, epoch: int):
        raise NotImplementedError
