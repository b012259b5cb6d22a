"""The held-out photos an evaluation runs on: a folder (searched recursively) or a glob pattern, each
read, centre-cropped to the model's aspect ratio and resized to its size (area), as training's views are.

Every photo is read and checked before any model runs, so a bad file stops the command with one line
naming it, and nothing is reported for a partial set.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES, list_images, load_rgb
from mclrt.runtime.inputs.preprocess import resize_photo

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class EvalPhoto:
    name: str  # the path as given, relative to the folder when a folder was given
    path: Path
    rgb: np.ndarray  # uint8 [H, W, 3] at the model's size


def find_photos(spec: str) -> list[tuple[str, Path]]:
    """(name, path) of every photo in a folder (recursively) or matching a glob pattern, sorted."""
    path = Path(spec)
    if path.is_dir():
        paths = list_images(path)
        if not paths:
            raise UserError(f"holds no photos ({', '.join(IMAGE_SUFFIXES)})", path)
        return [(p.relative_to(path).as_posix(), p) for p in paths]
    if path.is_file():
        return [(path.name, path)]
    if _GLOB_CHARS & set(spec):
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not paths:
            raise UserError("the pattern matches no files", spec)
        return [(p.as_posix(), p) for p in paths]
    raise UserError("no such file or folder", path)


def centre_crop_to_aspect(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The largest centred window of `rgb` with the aspect ratio of (height, width)."""
    height, width = rgb.shape[:2]
    want = size[1] / size[0]
    if width / height > want:
        keep = max(1, int(round(height * want)))
        left = (width - keep) // 2
        return rgb[:, left : left + keep]
    keep = max(1, int(round(width / want)))
    top = (height - keep) // 2
    return rgb[top : top + keep]


def load_photos(spec: str, size: tuple[int, int]) -> list[EvalPhoto]:
    photos = []
    for name, path in find_photos(spec):
        window = centre_crop_to_aspect(load_rgb(path), size)
        # Enlarging more than 2x blurs the photo into edges the model never saw in training.
        if window.shape[0] * 2 < size[0] or window.shape[1] * 2 < size[1]:
            raise UserError(
                f"is {window.shape[1]}x{window.shape[0]} after cropping to the model's aspect ratio; evaluating a "
                f"{size[1]}x{size[0]} model needs at least {(size[1] + 1) // 2}x{(size[0] + 1) // 2}",
                path,
            )
        photos.append(EvalPhoto(name, path, resize_photo(window, size)))
    return photos
