"""The calibration set: real photos in, the graphs' own inputs out, made by the runtime's preprocessing.

`--calib` is a folder (searched recursively) or a glob pattern of photos, taken in sorted path order.
Every photo serves twice: as an exemplar (RGB resized with area interpolation, scaled to [-1, 1]) and
as the source of a condition map (extracted as the model's mclrt.json says -- Canny edges, face
edges or a pose map -- or read from `--calib-cond DIR`, a file with the photo's name stem, for kinds
that cannot be extracted from a photo: label maps, CelebA edge maps).

Which photos do what, deterministically:
- `holdout` photos, evenly spaced over the sorted list, are kept out of calibration for the accuracy
  report; up to `num` of the rest, again evenly spaced, are the calibration images;
- within either set, condition i is paired with the exemplar of photo (i + 1) mod n, so no image is
  its own exemplar (unless the set holds one image).

Every photo is preprocessed once up front and all failures are reported together in one error, before
anything is written -- unless `--continue-on-error`: then each bad photo is reported on its own line
and left out, the split is made again over the photos that remain (checking any photo it newly picks),
and the set records how many were skipped (the command exits 3). A photo with transparent pixels is a
bad photo unless `--alpha flatten` names a colour to put it on. The arrays are then made again when calibration needs them, one image at a time,
so 512 paper-size label maps (40 MB each) never sit in memory together.
"""

from __future__ import annotations

import glob
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES, list_images, load_rgb
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.inputs.preprocess import (
    ConditionSource,
    accepted_suffixes,
    condition_from_photo,
    load_condition,
    photo_to_tensor,
    resize_photo,
)

_GLOB_CHARS = set("*?[")
_FAILURES_NAMED = 5  # how many failing files one error line names before "and N more"


@dataclass(frozen=True)
class CalibrationImage:
    path: Path
    sha256: str
    condition_file: Path | None = None  # from --calib-cond; None: extracted from the photo


@dataclass(frozen=True)
class Prepared:
    """One photo as the graphs see it."""

    exemplar: np.ndarray  # float32 [3, H, W] in [-1, 1]
    condition: np.ndarray  # float32 [L, H, W] in [0, 1]; also the exemplar's own map for maskmix models


@dataclass(frozen=True)
class CalibrationSet:
    calibration: tuple[CalibrationImage, ...]
    holdout: tuple[CalibrationImage, ...]
    source: str  # what the user passed as --calib
    skipped: tuple[Path, ...] = ()  # photos left out by --continue-on-error (each reported on its line)
    alpha: str | None = None  # --alpha flatten's colour; None: transparent photos are refused

    def preprocessor(self, model: ModelDir) -> "Preprocessor":
        """Reads this set's photos as `collect` checked them (the same --alpha)."""
        return Preprocessor(model, self.alpha)

    @property
    def sha256(self) -> str:
        """SHA-256 over the sorted SHA-256s of the calibration images: names and order do not matter."""
        return set_sha256(self.calibration)

    @property
    def holdout_sha256(self) -> str:
        return set_sha256(self.holdout)

    def names(self, images: tuple[CalibrationImage, ...] | tuple[Path, ...]) -> list[str]:
        """Paths as the report shows them: relative to --calib when it is a folder."""
        paths = [item.path if isinstance(item, CalibrationImage) else item for item in images]
        root = Path(self.source)
        if root.is_dir():
            return [path.relative_to(root).as_posix() for path in paths]
        return [str(path) for path in paths]


def set_sha256(images: tuple[CalibrationImage, ...]) -> str:
    return hashlib.sha256("\n".join(sorted(image.sha256 for image in images)).encode()).hexdigest()


def pairs(count: int) -> list[tuple[int, int]]:
    """(condition index, exemplar index) for a set of `count` images."""
    return [(i, (i + 1) % count) for i in range(count)]


# --- finding and splitting ------------------------------------------------------------------------------


def find_photos(spec: str, recursive: bool = False) -> list[Path]:
    """--calib: a folder (its subfolders too with --recursive, as in infer and eval), a glob pattern, or a
    single photo; sorted paths."""
    path = Path(spec)
    if path.is_dir():
        from mclrt.runtime.inputs.preprocess import warn_subfolders

        warn_subfolders(path, recursive)
        photos = list_images(path, recursive=recursive, report_skipped=True)
        if not photos:
            raise UserError(f"holds no photos ({', '.join(IMAGE_SUFFIXES)})", path)
        return photos
    if path.is_file():
        return [path]
    if _GLOB_CHARS & set(spec):
        photos = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not photos:
            raise UserError(f"the pattern matches no photos ({', '.join(IMAGE_SUFFIXES)})", spec)
        return photos
    raise UserError("no such folder or file", path)


def split(count: int, num: int, holdout: int) -> tuple[list[int], list[int]]:
    """Indices (calibration, holdout) into `count` sorted photos, each set evenly spaced."""
    if holdout < 1:
        raise UserError("--holdout must be at least 1: the accuracy report needs images calibration did not see")
    if num < 1:
        raise UserError("--num must be at least 1")
    if count < holdout + 1:
        raise UserError(f"found {count} photo(s), but --holdout {holdout} needs at least {holdout + 1} (held-out + calibration)")
    held = _evenly_spaced(list(range(count)), holdout)
    rest = [i for i in range(count) if i not in set(held)]
    return _evenly_spaced(rest, min(num, len(rest))), held


def _evenly_spaced(items: list[int], k: int) -> list[int]:
    if k >= len(items):
        return list(items)
    picks = np.round(np.linspace(0, len(items) - 1, k)).astype(int)
    return [items[i] for i in picks]


def _condition_files(cond_dir: Path, model: ModelDir) -> dict[str, Path]:
    if not cond_dir.is_dir():
        raise UserError("no such folder" if not cond_dir.exists() else "not a folder", cond_dir)
    suffixes = accepted_suffixes(model.condition.kind, "none")
    files: dict[str, Path] = {}
    for path in sorted(cond_dir.rglob("*")):
        if path.is_file() and any(path.name.lower().endswith(s) for s in suffixes):
            stem = path.name[: -len(".npy")] if path.name.lower().endswith(".npy") else path.stem
            if stem in files:
                raise UserError(f"two condition files for the photo stem {stem!r}: {files[stem].name} and {path.name}", cond_dir)
            files[stem] = path
    if not files:
        raise UserError(f"holds no {model.condition.kind} condition files ({', '.join(suffixes)})", cond_dir)
    return files


# --- preprocessing --------------------------------------------------------------------------------------


class Preprocessor:
    """photo (+ condition file) -> Prepared, exactly as `mclrt infer` prepares its inputs."""

    def __init__(self, model: ModelDir, alpha: str | None = None):
        self.model = model
        self.size = model.image_size
        self.alpha = alpha  # None: pictures with transparent pixels are refused; a colour: flattened onto it

    def __call__(self, image: CalibrationImage) -> Prepared:
        rgb = load_rgb(image.path, self.alpha)
        exemplar = photo_to_tensor(resize_photo(rgb, self.size))
        if image.condition_file is not None:
            source = ConditionSource(image.condition_file.stem, image.condition_file)
            condition = load_condition(source, self.model.condition, self.size, alpha=self.alpha)
        else:
            condition = condition_from_photo(rgb, self.model.condition.extract, self.size, image.path)
        return Prepared(exemplar, condition)


def collect(
    spec: str,
    model: ModelDir,
    num: int,
    holdout: int,
    cond_dir: Path | None = None,
    recursive: bool = False,
    alpha: str | None = None,
    continue_on_error: bool = False,
) -> CalibrationSet:
    """Find, split and preprocess-check the photos; any failure is one UserError naming the files --
    or, with `continue_on_error`, one line per bad photo on stderr, and the set is made of the others."""
    if cond_dir is None and model.condition.extract is None:
        raise UserError(
            f"this model's {model.condition.kind} condition cannot be extracted from a photo; "
            "pass --calib-cond DIR with one condition file per photo (same name stem)"
        )
    photos = find_photos(spec, recursive)
    split(len(photos), num, holdout)  # too few photos for --holdout: said before any photo is read
    conditions = _condition_files(cond_dir, model) if cond_dir is not None else None
    preprocess = Preprocessor(model, alpha)
    failures: dict[int, tuple[Path, str]] = {}  # photo index -> (file, problem)
    images: dict[int, CalibrationImage] = {}
    while True:
        # Each pass checks the photos the split picks that were not checked yet; with --continue-on-error,
        # a bad one leaves the pool and the split is made again, so the sets keep their sizes when they can.
        usable = [i for i in range(len(photos)) if i not in failures]
        try:
            calibration_positions, holdout_positions = split(len(usable), num, holdout)
        except UserError as err:
            raise UserError(f"{_failure_message(list(failures.values()), len(photos))}; {err.problem}", spec) from None
        calibration_indices = [usable[p] for p in calibration_positions]
        holdout_indices = [usable[p] for p in holdout_positions]
        new_failures = False
        for index in sorted(set(calibration_indices) | set(holdout_indices)):
            if index in images:
                continue
            failure = _check_photo(photos[index], conditions, cond_dir, preprocess, images, index)
            if failure is not None:
                failures[index] = failure
                new_failures = True
                if continue_on_error:
                    print(f"error: {failure[0]}: {failure[1]} (skipped)", file=sys.stderr, flush=True)
        if not new_failures:
            break
        if not continue_on_error:
            raise UserError(_failure_message(list(failures.values()), len(images) + len(failures)), spec)
    return CalibrationSet(
        calibration=tuple(images[i] for i in calibration_indices),
        holdout=tuple(images[i] for i in holdout_indices),
        source=spec,
        skipped=tuple(photos[i] for i in sorted(failures)),
        alpha=alpha,
    )


def _check_photo(
    path: Path, conditions: dict[str, Path] | None, cond_dir: Path | None, preprocess: Preprocessor, images: dict[int, CalibrationImage], index: int
) -> tuple[Path, str] | None:
    """Preprocess one photo as calibration will: None when it works (recorded in `images`), else (file, problem)."""
    condition_file = None
    if conditions is not None:
        condition_file = conditions.get(path.stem)
        if condition_file is None:
            return path, f"no condition file named {path.stem}.* in {cond_dir}"
    image = CalibrationImage(path, sha256_file(path), condition_file)
    try:
        preprocess(image)
    except UserError as err:
        return (Path(err.path) if err.path else path), err.problem
    images[index] = image
    return None


# Below this many calibration images, activation ranges describe those photos rather than photos in
# general (2 is what a quick test run gives); a warning says so.
FEW_CALIBRATION_IMAGES = 8


def warn_if_small(cset: CalibrationSet, num: int, spec: str) -> None:
    """One warning line when calibration uses fewer images than --num asked, or very few."""
    from mclrt.runtime.notices import warn

    count = len(cset.calibration)
    if count < num:
        found = count + len(cset.holdout)
        warn(f"calibrating on {count} image(s), fewer than --num {num} asked ({found} photo(s) found, {len(cset.holdout)} held out)", spec)
    if count <= FEW_CALIBRATION_IMAGES:
        warn(f"only {count} calibration image(s): INT8 ranges from so few photos rarely fit others; use 100 or more", spec)


def _failure_message(failures: list[tuple[Path, str]], total: int) -> str:
    named = "; ".join(f"{path.name}: {problem}" for path, problem in failures[:_FAILURES_NAMED])
    more = f"; and {len(failures) - _FAILURES_NAMED} more" if len(failures) > _FAILURES_NAMED else ""
    return f"{len(failures)} of {total} photo(s) failed preprocessing (fix or remove them, or skip them with --continue-on-error): {named}{more}"


# --- the graphs' inputs ----------------------------------------------------------------------------------


def encoder_feed(prepared: Prepared, maskmix: bool) -> dict[str, np.ndarray]:
    feed = {"exemplar": prepared.exemplar[None]}
    if maskmix:
        feed["exemplar_condition"] = prepared.condition[None]
    return feed


def encoder_feeds(images: tuple[CalibrationImage, ...], preprocess: Preprocessor) -> Iterator[dict[str, np.ndarray]]:
    """The exemplar encoder's calibration inputs: every image once, as an exemplar."""
    maskmix = preprocess.model.condition.maskmix
    for image in images:
        yield encoder_feed(preprocess(image), maskmix)


def translator_feeds(images: tuple[CalibrationImage, ...], preprocess: Preprocessor, encode) -> Iterator[dict[str, np.ndarray]]:
    """The translator's calibration inputs: condition i with the FP32-encoded exemplar (i + 1) mod n.

    `encode(feed) -> (keys, values)` runs the FP32 exemplar encoder; it is called once per pair.
    """
    maskmix = preprocess.model.condition.maskmix
    for condition_index, exemplar_index in pairs(len(images)):
        keys, values = encode(encoder_feed(preprocess(images[exemplar_index]), maskmix))
        condition = preprocess(images[condition_index]).condition
        yield {"condition": condition[None], "exemplar_keys": keys, "exemplar_values": values}
