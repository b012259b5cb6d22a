"""Pseudo pairs whose ideal warp is known: the exemplar is a fixed geometric transform of the photo.

The condition is extracted from the photo itself, so a perfect correspondence would warp the exemplar
back into the photo; how far the model's warped exemplar is from the photo measures its correspondence.
Each transform is an affine map from photo pixel coordinates to exemplar pixel coordinates, so the
position each condition pixel should land on in the exemplar is known too (the heat-map marks it).

- `flip-shift`: the photo mirrored left-right, then moved right by 1/8 and down by 1/16 of its size;
  the strips that move in are filled by reflecting the image at its border (OpenCV REFLECT_101), so
  about 18 % of the exemplar has no true counterpart in the photo.
- `crop`: the photo's central 3/4 (side) zoomed to the full size: the exemplar holds only the middle
  56 % of the photo, 4/3 times larger; the photo's outer ring has no counterpart in the exemplar.

Both are fixed (no randomness), so every run and every model sees the same pairs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np


class PairKind(str, enum.Enum):
    flip_shift = "flip-shift"
    crop = "crop"


# flip-shift: the shift as a fraction of width and height; crop: the kept side as a fraction of the image's.
FLIP_SHIFT = (1 / 8, 1 / 16)
CROP_SIDE = 3 / 4


@dataclass(frozen=True)
class PseudoPair:
    kind: PairKind
    exemplar: np.ndarray  # uint8 [H, W, 3], the same size as the photo
    photo_to_exemplar: np.ndarray  # float64 [2, 3]: (x, y, 1) in the photo -> (x, y) in the exemplar

    def exemplar_position(self, x: float, y: float) -> tuple[float, float]:
        """Where the photo's pixel (x, y) is in the exemplar (may fall outside it)."""
        ex, ey = self.photo_to_exemplar @ np.array([x, y, 1.0])
        return float(ex), float(ey)


def transform(kind: PairKind, size: tuple[int, int]) -> np.ndarray:
    """The affine map photo -> exemplar [2, 3] for an image of (height, width), in pixel-centre coordinates."""
    height, width = size
    if kind is PairKind.flip_shift:
        dx, dy = FLIP_SHIFT[0] * width, FLIP_SHIFT[1] * height
        return np.array([[-1.0, 0.0, width - 1 + dx], [0.0, 1.0, dy]])
    if kind is PairKind.crop:
        zoom = 1.0 / CROP_SIDE
        # The kept window starts at (1 - side) / 2 of each dimension; pixel centres scale about -0.5.
        x0, y0 = (1 - CROP_SIDE) / 2 * width, (1 - CROP_SIDE) / 2 * height
        return np.array([[zoom, 0.0, zoom * (0.5 - x0) - 0.5], [0.0, zoom, zoom * (0.5 - y0) - 0.5]])
    raise ValueError(f"unknown pair kind {kind!r}")


def make_pair(photo: np.ndarray, kind: PairKind) -> PseudoPair:
    """The exemplar for `photo` (uint8 [H, W, 3]) under the transform `kind`."""
    height, width = photo.shape[:2]
    matrix = transform(kind, (height, width))
    # Bilinear: the crop enlarges (area averaging would not apply); the flip-shift moves by whole pixels
    # at the sizes models use, so it only copies.
    exemplar = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return PseudoPair(kind, np.ascontiguousarray(exemplar), matrix)
