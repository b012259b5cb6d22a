"""The held-out photos an evaluation runs on: a folder (its subfolders with --recursive) or a glob pattern, each
read, centre-cropped to the model's aspect ratio and resized to its size (area), as training's views are.

Every photo is read and checked before any model runs, so a bad file stops the command with one line
naming it, and nothing is reported for a partial set -- unless --continue-on-error, which reports and
skips bad photos, scores the others and exits 3.
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES, list_images, load_rgb
from mclrt.runtime.inputs.limits import check_input_size
from mclrt.runtime.inputs.preprocess import resize_photo, warn_subfolders

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class EvalPhoto:
    name: str  # the path as given, relative to the folder when a folder was given
    path: Path
    rgb: np.ndarray  # uint8 [H, W, 3] at the model's size


def find_photos(spec: str, recursive: bool = False) -> list[tuple[str, Path]]:
    """(name, path) of every photo in a folder (its subfolders too with `recursive`, as --recursive means
    in infer and quantize) or matching a glob pattern, sorted."""
    path = Path(spec)
    if path.is_dir():
        warn_subfolders(path, recursive)
        paths = list_images(path, recursive=recursive, report_skipped=True)
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


def load_photos(
    spec: str, size: tuple[int, int], recursive: bool = False, failed: list[str] | None = None, alpha: str | None = None
) -> list[EvalPhoto]:
    """Every photo, read and checked against the input limits every command shares (runtime/inputs/limits.py).

    A bad photo stops with its one-line error, unless `failed` is given (--continue-on-error): then its
    line is printed and appended there, and the others are returned. `alpha`: None refuses photos with
    transparent pixels; a colour (--alpha flatten --alpha-colour) flattens them onto it."""
    photos = []
    for name, path in find_photos(spec, recursive):
        try:
            rgb = load_rgb(path, alpha)
            check_input_size(rgb.shape[:2], size, path, "crop", "photo")
            window = centre_crop_to_aspect(rgb, size)
        except UserError as err:
            if failed is None:
                raise
            failed.append(str(err))
            print(f"error: {err} (skipped)", file=sys.stderr, flush=True)
            continue
        photos.append(EvalPhoto(name, path, resize_photo(window, size)))
    if failed and not photos:
        raise UserError(f"none of its {len(failed)} photo(s) could be read", spec)
    return photos
