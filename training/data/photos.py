"""Any folder of photos as an edge -> photo task; with no folder, the photos shipped inside packages.

This is the demo's training data (`mclrt.runtime.inputs.conditions.package_photos`: CC0 / public-domain /
CC BY photos from scikit-image, scikit-learn and matplotlib) and the way to train on a user's own
photos without preparing anything. A sample:

* ground truth: a random square crop (side uniform in [min_crop, max_crop] of the photo's shorter
  side), resized to image_size with area averaging, flipped with probability 1/2;
* condition: `edge_map` of that very crop (Canny, plus face-contour lines when face contours are on
  and a face is found);
* exemplar: with probability `pseudo_pair_probability` a pseudo pair from the same photo, otherwise a
  crop of another photo drawn uniformly. `pseudo_pair_views` says how the pseudo pair's exemplar is cut:
  "independent" (another independent crop and flip, anywhere in the photo) or "augment" (CoCosNet's
  pseudo pair: a geometric augmentation of the ground truth's own crop -- its window shifted by up to
  `pseudo_pair_shift` and rescaled by up to `pseudo_pair_scale` of its side, flipped with probability
  1/2). "augment" keeps most of the ground truth in view, so the warp loss (L_pse) can only be met by
  finding each position's match: it trains the correspondence for exactly the user's case of a
  similar exemplar, which independent crops of a large photo rarely are.

`face_contours`: "on" requires mediapipe (a `UserError` says how to install it), "off" never draws
them, "auto" draws them when mediapipe is installed. What was used is `face_contours_used`; record it
with the model, because the runtime must draw the same kind of map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mclrt.runtime.inputs.conditions import EdgeParams, edge_map, list_images, load_rgb, mediapipe_available, package_photos
from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.landmarks import MEDIAPIPE_INSTALL
from mclrt.training.data.sampling import EpochSampled, sample_rng


@dataclass(frozen=True)
class PhotosConfig:
    root: Path | None = None  # a folder of photos (searched recursively); None: the package photos
    image_size: int = 128
    min_crop: float = 0.5  # crop side, as a fraction of the photo's shorter side
    max_crop: float = 1.0
    flip: bool = True
    pseudo_pair_probability: float = 0.5
    pseudo_pair_views: Literal["independent", "augment"] = "independent"
    pseudo_pair_shift: float = 0.2  # "augment": largest shift of the window, as a fraction of its side
    pseudo_pair_scale: float = 0.2  # "augment": largest change of the window's side, as a fraction
    face_contours: Literal["auto", "on", "off"] = "auto"
    edge: EdgeParams = field(default_factory=EdgeParams)
    repeat: int = 1  # samples per photo per epoch (a handful of photos makes a very short epoch)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.root is not None:
            object.__setattr__(self, "root", Path(self.root))
        if isinstance(self.edge, dict):  # from a YAML mapping
            object.__setattr__(self, "edge", EdgeParams(**self.edge))
        if not 0 < self.min_crop <= self.max_crop <= 1:
            raise UserError(f"need 0 < min_crop <= max_crop <= 1, got {self.min_crop}, {self.max_crop}")
        if not 0 <= self.pseudo_pair_probability <= 1:
            raise UserError("pseudo_pair_probability must lie in [0, 1]")
        if self.pseudo_pair_views not in ("independent", "augment"):
            raise UserError(f"pseudo_pair_views must be 'independent' or 'augment', got {self.pseudo_pair_views!r}")
        if not (0 <= self.pseudo_pair_shift <= 1 and 0 <= self.pseudo_pair_scale < 1):
            raise UserError("need 0 <= pseudo_pair_shift <= 1 and 0 <= pseudo_pair_scale < 1")
        if self.face_contours not in ("auto", "on", "off"):
            raise UserError(f"face_contours must be 'auto', 'on' or 'off', got {self.face_contours!r}")
        if self.repeat < 1:
            raise UserError("repeat must be at least 1")


class PhotosDataset(EpochSampled, Dataset):
    """Samples as in `mclrt.training.data.paired` (condition, image, exemplar, exemplar_condition,
    is_pseudo_pair, name, exemplar_name), 1-channel edge conditions."""

    num_channels = 1

    def __init__(self, config: PhotosConfig = PhotosConfig()):
        self.config = config
        if config.face_contours == "on" and not mediapipe_available():
            raise UserError(f"face_contours 'on' needs mediapipe 0.10.21: {MEDIAPIPE_INSTALL}")
        self.face_contours_used = config.face_contours == "on" or (config.face_contours == "auto" and mediapipe_available())
        if config.root is None:
            self._photos = {photo.name: photo.rgb for photo in package_photos()}
            self.photo_names = list(self._photos)
        else:
            self._photos = None
            self._paths = list_images(config.root)
            if not self._paths:
                raise UserError("holds no photos (.jpg, .png, .webp, .bmp, .tif)", config.root)
            self.photo_names = [path.relative_to(config.root).as_posix() for path in self._paths]
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.photo_names) * self.config.repeat

    def sample(self, index: int, epoch: int) -> dict[str, Any]:
        rng = sample_rng(self.config.seed, epoch, index)
        photo = index % len(self.photo_names)
        target = self._photo(photo)
        window = self._random_window(target.shape[:2], rng)
        image = self._view(target, window)
        pseudo = len(self.photo_names) == 1 or rng.random() < self.config.pseudo_pair_probability
        if pseudo:
            exemplar_index = photo
            if self.config.pseudo_pair_views == "augment":
                exemplar = self._view(target, self._related_window(target.shape[:2], window, rng))
            else:
                exemplar = self._random_view(target, rng)
        else:
            # Uniform over the other photos: draw from n - 1 and skip past the target.
            exemplar_index = int(rng.integers(len(self.photo_names) - 1))
            exemplar_index += exemplar_index >= photo
            exemplar = self._random_view(self._photo(exemplar_index), rng)
        return {
            "name": self.photo_names[photo],
            "exemplar_name": self.photo_names[exemplar_index],
            "is_pseudo_pair": torch.tensor(pseudo),
            "condition": torch.from_numpy(self._edges(image)),
            "image": _to_tensor(image),
            "exemplar": _to_tensor(exemplar),
            "exemplar_condition": torch.from_numpy(self._edges(exemplar)),
        }

    def _photo(self, photo: int) -> np.ndarray:
        if self._photos is not None:
            return self._photos[self.photo_names[photo]]
        return load_rgb(self._paths[photo])

    def _random_view(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._view(rgb, self._random_window(rgb.shape[:2], rng))

    def _random_window(self, shape: tuple[int, int], rng: np.random.Generator) -> _Window:
        height, width = shape
        short = min(height, width)
        side = max(1, int(round(short * rng.uniform(self.config.min_crop, self.config.max_crop))))
        y = int(rng.integers(0, height - side + 1))
        x = int(rng.integers(0, width - side + 1))
        return _Window(y, x, side, self.config.flip and bool(rng.random() < 0.5))

    def _related_window(self, shape: tuple[int, int], window: _Window, rng: np.random.Generator) -> _Window:
        """`window` shifted, rescaled and flipped at random, kept inside the photo."""
        height, width = shape
        scale, shift = self.config.pseudo_pair_scale, self.config.pseudo_pair_shift
        side = int(round(window.side * rng.uniform(1 - scale, 1 + scale)))
        side = max(1, min(side, height, width))
        centre_y = window.y + window.side / 2 + rng.uniform(-shift, shift) * window.side
        centre_x = window.x + window.side / 2 + rng.uniform(-shift, shift) * window.side
        y = int(np.clip(round(centre_y - side / 2), 0, height - side))
        x = int(np.clip(round(centre_x - side / 2), 0, width - side))
        return _Window(y, x, side, self.config.flip and bool(rng.random() < 0.5))

    def _view(self, rgb: np.ndarray, window: _Window) -> np.ndarray:
        size = self.config.image_size
        crop = rgb[window.y : window.y + window.side, window.x : window.x + window.side]
        view = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(view[:, ::-1]) if window.flip else view

    def _edges(self, rgb: np.ndarray) -> np.ndarray:
        return edge_map(rgb, self.config.edge, face=self.face_contours_used)


class _Window(NamedTuple):
    """A square crop of a photo (top-left corner and side in pixels) and whether it is flipped."""

    y: int
    x: int
    side: int
    flip: bool


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)


__all__ = ["PhotosConfig", "PhotosDataset"]
