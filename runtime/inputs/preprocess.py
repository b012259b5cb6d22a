"""What a user gives `mclrt infer` -> what the graphs take.

Conditions, per the model's `condition.kind` (all float32 [L, H, W] in [0, 1] at the model's size):
- edge: a grayscale edge image, white lines on black (white = edge), thresholded at 50 %; a map that is
  mostly white (black lines on white, as people draw them) is inverted first, with one warning line
  (`invert`: auto; yes or no decide instead); enlarged with nearest, reduced so
  that every line survives (a target pixel is an edge when any pixel it covers is: max-pooling by
  area, since nearest would drop most of a 1-pixel line);
- label: a class-id PNG, resized with nearest, one-hot over the model's classes;
- pose: OpenPose keypoints (OpenPose JSON, or CoCosNet's `<name>_candidate.txt` + `<name>_subset.txt`)
  in pixels of the model's image size, drawn as CoCosNet's 20-channel pose map;
- celeba-edge: a photo with its CelebAMask-HQ part masks beside it (`<stem>_<part>.png`), drawn as
  CoCosNet's 15-channel map;
- any kind: a `.npy` array [L, H, W] (or [H, W] when L = 1) already in [0, 1];
- or a raw photo with `--extract canny|face|pose`, which makes the condition on the fly (the photo is
  first resized to the model's size, so edges are as thick as in training).
`--extract auto` (the default of `mclrt infer`) uses the model's own extractor (mclrt.json's
`condition.extract`) for photos and reads condition maps as they are: an edge model's black-and-white
images, .npy arrays and pose files are maps; a colour or grey-toned image is a photo.
Input that is probably wrong but usable gets a one-line warning on stderr (runtime/notices.py).
The exemplar is any photo: RGB, resized to the model's size (area), scaled to [-1, 1].

The maps themselves are drawn by `mclrt.runtime.inputs.conditions`, the same code training uses.

An input whose aspect ratio is not the model's is first fitted (`fit`: centre crop, pad or stretch; see
`mclrt.runtime.inputs.fit`); the functions here default to `stretch`, the commands to `crop`.
"""

from __future__ import annotations

import enum
import functools
import glob
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mclrt.runtime.inputs import conditions
from mclrt.runtime.inputs.fit import Placement, centre_crop, check_fit, fit_map, fit_photo, pad_content, placement
from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES
from mclrt.runtime.inputs.limits import check_input_size, warn_if_edges_degenerate
from mclrt.runtime.model_dir import ConditionSpec
from mclrt.runtime.notices import warn

EXTRACT_CHOICES = ("auto", "none", "canny", "face", "pose")
# Edge polarity: auto inverts a map that is mostly "on" (black lines on white); yes always; no never.
INVERT_CHOICES = ("auto", "yes", "no")
_MOSTLY_ON = 0.5


class Invert(str, enum.Enum):
    """The commands' --invert choices (INVERT_CHOICES)."""

    auto = "auto"
    yes = "yes"
    no = "no"
# Which condition kind each extractor makes.
EXTRACTED_KIND = {"canny": "edge", "face": "edge", "pose": "pose"}
CANDIDATE_SUFFIX = "_candidate.txt"
SUBSET_SUFFIX = "_subset.txt"
_GLOB_CHARS = set("*?[")
# An edge map is black and white; a grey photo is mostly mid-tones. Anti-aliased or JPEG-saved edge
# maps have some mid-tones along their lines, far fewer than this share of all pixels.
_PHOTO_MIDTONE_SHARE = 0.10
_MIDTONES = (32, 224)
_SKIPPED_NAMED = 3
# Reducing an edge map more than this keeps its lines (max-pooling) but thickens and merges them,
# unlike the 1-pixel Canny lines the model was trained on: worth one warning per image size.
_LARGE_EDGE_FACTOR = 2.0
_reported_edge_sizes: set[tuple[int, int]] = set()
_inverted_arrays: list[bool] = []  # whether an inverted picture without a file was reported


@dataclass(frozen=True)
class ConditionSource:
    """One condition the user gave, and the stem its outputs are named after."""

    stem: str
    path: Path
    subset: Path | None = None  # CoCosNet pose files come in pairs: the _subset.txt beside the _candidate.txt


# --- finding the inputs ----------------------------------------------------------------------------------


def accepted_suffixes(kind: str, extract: str) -> tuple[str, ...]:
    if extract not in ("none", "auto"):
        return IMAGE_SUFFIXES
    maps = {
        "edge": IMAGE_SUFFIXES + (".npy",),
        "label": IMAGE_SUFFIXES + (".npy",),
        "pose": (".json", CANDIDATE_SUFFIX, ".npy"),
        "celeba-edge": (".npy",),
    }[kind]
    return maps + tuple(s for s in IMAGE_SUFFIXES if s not in maps) if extract == "auto" else maps


def find_condition_sources(spec: str, condition: ConditionSpec, extract: str = "none", recursive: bool = False) -> list[ConditionSource]:
    """Expand --cond (a file, a folder, or a glob pattern) into condition sources, sorted by path.

    A folder is read at its top level; subfolders are named in one warning line, or, with `recursive`
    (--recursive, the same meaning in infer, eval and quantize), searched too -- their outputs then
    go to the same subfolders of --out (`sub/x.png` -> `OUT/sub/x.png`)."""
    path = Path(spec)
    extract = resolve_auto(extract, condition)
    if path.is_file():
        paths = [path]
    elif path.is_dir():
        suffixes = accepted_suffixes(condition.kind, extract)
        files = sorted((p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
        warn_subfolders(path, recursive)
        paths = [p for p in files if _has_suffix(p, suffixes)]
        if not paths:
            raise UserError(f"holds no condition files ({', '.join(suffixes)})", path)
        skipped = [p.name for p in files if not _has_suffix(p, suffixes)]
        if skipped:
            named = ", ".join(skipped[:_SKIPPED_NAMED]) + (f" and {len(skipped) - _SKIPPED_NAMED} more" if len(skipped) > _SKIPPED_NAMED else "")
            warn(f"skipped {len(skipped)}: {named} (not {' / '.join(suffixes)})", path)
    elif _GLOB_CHARS & set(spec):
        paths = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        if not paths:
            raise UserError("the pattern matches no files", spec)
    else:
        raise UserError("no such file or folder", path)
    sources = _pair_pose_files(paths)
    if path.is_dir() and recursive:  # outputs keep the subfolder: sub/x.png -> OUT/sub/x.png
        sources = [ConditionSource(s.path.parent.relative_to(path).joinpath(s.stem).as_posix(), s.path, s.subset) for s in sources]
    stems: dict[str, Path] = {}
    for source in sources:
        if source.stem in stems:
            raise UserError(f"has the same name stem as {stems[source.stem]}; outputs would overwrite each other", source.path)
        stems[source.stem] = source.path
    return sources


def warn_subfolders(folder: Path, recursive: bool) -> None:
    """Without --recursive, the subfolders of an input folder are named in one warning line, never skipped silently."""
    if recursive:
        return
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        named = ", ".join(subfolders[:_SKIPPED_NAMED]) + (f" and {len(subfolders) - _SKIPPED_NAMED} more" if len(subfolders) > _SKIPPED_NAMED else "")
        warn(f"did not search {len(subfolders)} subfolder(s): {named} (pass --recursive to include them)", folder)


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in suffixes)


def _pair_pose_files(paths: list[Path]) -> list[ConditionSource]:
    """A `_candidate.txt` takes its `_subset.txt` along; a subset file listed on its own is its partner's."""
    candidates = {p.name[: -len(CANDIDATE_SUFFIX)] for p in paths if p.name.endswith(CANDIDATE_SUFFIX)}
    sources = []
    for p in paths:
        if p.name.endswith(SUBSET_SUFFIX) and p.name[: -len(SUBSET_SUFFIX)] in candidates:
            continue
        if p.name.endswith(CANDIDATE_SUFFIX):
            stem = p.name[: -len(CANDIDATE_SUFFIX)]
            sources.append(ConditionSource(stem, p, p.with_name(stem + SUBSET_SUFFIX)))
        else:
            sources.append(ConditionSource(p.stem, p))
    return sources


# --- conditions ---------------------------------------------------------------------------------------------


def resolve_auto(extract: str, condition: ConditionSpec) -> str:
    """`auto` is the model's own extractor for photos; a model without one reads condition maps only."""
    if extract == "auto" and condition.extract is None:
        return "none"
    return extract


def check_extract(extract: str, condition: ConditionSpec) -> None:
    """--extract must make the kind of condition the model takes."""
    if extract not in EXTRACT_CHOICES:
        raise UserError(f"--extract must be one of {', '.join(EXTRACT_CHOICES)}, not {extract!r}")
    if extract == "auto":
        return  # the model's own extractor, checked per photo when one is found
    if extract != "none" and EXTRACTED_KIND[extract] != condition.kind:
        raise UserError(
            f"--extract {extract} makes {EXTRACTED_KIND[extract]} maps, but this model's condition is {condition.kind!r}"
        )
    # Fail before any work, not once per photo: a missing extra is not a problem of one input file.
    if extract in ("face", "pose") and not conditions.mediapipe_available():
        raise UserError(f"--extract {extract} needs mediapipe 0.10.21 (the [extract] extra): {conditions.MEDIAPIPE_INSTALL}")


def load_condition(
    source: ConditionSource, condition: ConditionSpec, size: tuple[int, int], extract: str = "none", fit: str = "stretch",
    invert: str = "auto", alpha: str | None = None,
) -> np.ndarray:
    """The condition map float32 [L, H, W] in [0, 1] for one source; bad input is a UserError naming the file."""
    return load_condition_placed(source, condition, size, extract, fit, invert, alpha)[0]


def load_condition_placed(
    source: ConditionSource, condition: ConditionSpec, size: tuple[int, int], extract: str = "none", fit: str = "stretch",
    invert: str = "auto", alpha: str | None = None,
) -> tuple[np.ndarray, Placement]:
    """`load_condition` plus where the input landed in the model's frame (`fit`: see mclrt.runtime.inputs.fit).
    `invert`: edge polarity (see `orient_edges`); `alpha`: None refuses transparent pictures, or a colour
    (`#rrggbb`, a name) to flatten them onto (image_io.load_rgb)."""
    check_extract(extract, condition)
    check_fit(fit)
    check_invert(invert)
    load_rgb = functools.partial(conditions.load_rgb, alpha=alpha) if alpha is not None else conditions.load_rgb
    extract = resolve_auto(extract, condition)
    name = source.path.name.lower()
    is_image = _has_suffix(source.path, IMAGE_SUFFIXES)
    if extract == "auto":
        if not is_image:
            extract = "none"  # .npy arrays and pose files are condition maps
        elif condition.kind != "edge":
            extract = condition.extract  # a label model has no extractor; pose and face models take photos
        else:
            return condition_from_rgb_placed(load_rgb(source.path), condition, size, "auto", fit, source.path, invert)
        check_extract(extract, condition)
    if extract != "none":
        return condition_from_photo_placed(load_rgb(source.path), extract, size, source.path, fit)
    if name.endswith(".npy"):
        return _load_npy_condition(source.path, condition, size, fit)
    if condition.kind == "edge":
        return _load_edge_image(source.path, size, fit, invert, load_rgb)
    if condition.kind == "label":
        ids = conditions.load_label_png(source.path)
        check_input_size(ids.shape[:2], size, source.path, fit, "label map")
        ids, where = fit_map(ids, size, fit)
        return conditions.onehot_labels(ids, condition.channels, source.path), where
    if condition.kind == "pose":
        # Keypoint files are in pixels of the model's frame already (checked there): nothing to fit.
        return _load_pose(source, size), placement(size, size, "stretch")
    if condition.kind == "celeba-edge" and is_image:
        return _load_celeba_photo(source.path, size, fit)
    raise UserError(f"{condition.kind} conditions are read from .npy arrays [{condition.channels}, H, W]", source.path)


def _load_celeba_photo(path: Path, size: tuple[int, int], fit: str) -> tuple[np.ndarray, Placement]:
    """A CelebA-HQ photo with its CelebAMask-HQ part masks beside it -> the 15-channel map, as CoCosNet builds it."""
    rgb, masks = conditions.load_rgb(path), conditions.read_celeba_part_masks(path)
    where = placement(rgb.shape[:2], size, fit)
    if fit == "crop":
        rgb, masks = centre_crop(rgb, size), {part: centre_crop(mask, size) for part, mask in masks.items()}
    content = conditions.celeba_edge_map_resized(rgb, masks, (where.box[2], where.box[3]))
    return (pad_content(content, where) if fit == "pad" else content), where


def condition_from_rgb_placed(
    rgb: np.ndarray, condition: ConditionSpec, size: tuple[int, int], extract: str = "auto", fit: str = "stretch",
    path: str | os.PathLike | None = None, invert: str = "auto",
) -> tuple[np.ndarray, Placement]:
    """The condition map for an RGB uint8 picture [H, W, 3] (a file's pixels, or an array a caller holds)
    and where it landed. With `auto`, an edge model reads a black-and-white picture as an edge map and
    makes edges from anything else with its own extractor; `none` reads it as an edge map (`invert`:
    its polarity, see `orient_edges`)."""
    check_extract(extract, condition)
    check_fit(fit)
    check_invert(invert)
    extract = resolve_auto(extract, condition)
    if extract == "auto" and condition.kind == "edge" and _is_edge_map(rgb):
        if path is not None:
            _warn_if_much_larger(rgb.shape[:2], size, Path(path))
        return _edge_image_to_map(rgb[:, :, 0], size, fit, invert, path)
    if extract == "none":
        if condition.kind != "edge" or not _is_grey(rgb):
            raise UserError(f"a picture is a {condition.kind} condition only as a grayscale edge map; give a photo with an extractor", path)
        return _edge_image_to_map(rgb[:, :, 0], size, fit, invert, path)
    how = condition.extract if extract == "auto" else extract
    if how is None:
        raise UserError(f"this {condition.kind} model has no extractor for photos: give its condition maps", path)
    check_extract(how, condition)
    return condition_from_photo_placed(rgb, how, size, path, fit)


def condition_from_photo(
    rgb: np.ndarray, extract: str, size: tuple[int, int], path: str | os.PathLike | None = None, fit: str = "stretch"
) -> np.ndarray:
    """Make the condition from a photo: Canny edges (+ face contours), or a pose map from detected keypoints."""
    return condition_from_photo_placed(rgb, extract, size, path, fit)[0]


def condition_from_photo_placed(
    rgb: np.ndarray, extract: str, size: tuple[int, int], path: str | os.PathLike | None = None, fit: str = "stretch"
) -> tuple[np.ndarray, Placement]:
    """`condition_from_photo` plus where the photo landed. With `pad` the map is drawn from the photo's
    own region only and padded with 0, so the padding draws no edge along the seam."""
    check_input_size(rgb.shape[:2], size, path, fit, "photo")
    where = placement(rgb.shape[:2], size, fit)
    if fit == "crop":
        rgb = centre_crop(rgb, size)
    region = (where.box[2], where.box[3])
    if extract in ("canny", "face"):
        content = conditions.edge_map(resize_photo(rgb, region), face=extract == "face")
        warn_if_edges_degenerate(content, path)
    elif extract == "pose":
        try:
            keypoints = conditions.pose_keypoints_from_photo(rgb)
        except UserError as err:
            raise UserError(err.problem, err.path or path) from None
        content = conditions.pose_map(_scale_keypoints(keypoints, rgb.shape[:2], region), region)
    else:
        raise ValueError(f"unknown extractor {extract!r}")
    return (pad_content(content, where) if fit == "pad" else content), where


def _is_grey(rgb: np.ndarray) -> bool:
    return np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])


def _midtone_share(gray: np.ndarray) -> float:
    return float(np.mean((gray >= _MIDTONES[0]) & (gray < _MIDTONES[1]))) if gray.size else 0.0


def _is_edge_map(rgb: np.ndarray) -> bool:
    """Black and white (a few grey pixels along lines at most): an edge map, not a photo."""
    return _is_grey(rgb) and _midtone_share(rgb[:, :, 0]) < _PHOTO_MIDTONE_SHARE


def _load_edge_image(path: Path, size: tuple[int, int], fit: str, invert: str = "auto", load_rgb=None) -> tuple[np.ndarray, Placement]:
    rgb = (load_rgb or conditions.load_rgb)(path)  # grey files come back with three equal channels
    if not _is_grey(rgb):
        raise UserError(
            "is a colour image with 3 channels; an edge map has 1 (grayscale, white = edge). "
            "To make edges from a photo, pass --extract canny",
            path,
        )
    share = _midtone_share(rgb[:, :, 0])
    if share >= _PHOTO_MIDTONE_SHARE:
        warn(
            f"looks like a grayscale photo, not an edge map ({share:.0%} of its pixels are mid-grey); thresholded it "
            "makes blobs, not lines -- to make edges from it, pass --extract canny",
            path,
        )
    else:
        _warn_if_much_larger(rgb.shape[:2], size, path)
    return _edge_image_to_map(rgb[:, :, 0], size, fit, invert, path)


def _warn_if_much_larger(shape: tuple[int, int], size: tuple[int, int], path: Path) -> None:
    factor = min(shape[0] / size[0], shape[1] / size[1])
    if factor > _LARGE_EDGE_FACTOR and tuple(shape) not in _reported_edge_sizes:
        _reported_edge_sizes.add(tuple(shape))
        warn(
            f"edge map {shape[1]}x{shape[0]} is {factor:.1f}x the model's {size[1]}x{size[0]}: reduced keeping every line, "
            "which thickens them; for lines like the training data's, give the photo instead (--extract canny)"
            + " (other edge maps of this size are not reported)",
            path,
        )


def check_invert(invert: str) -> None:
    if invert not in INVERT_CHOICES:
        raise UserError(f"--invert must be one of {', '.join(INVERT_CHOICES)}, not {invert!r}")


def orient_edges(gray: np.ndarray, invert: str = "auto", path: str | os.PathLike | None = None) -> np.ndarray:
    """A grey uint8 edge image as mclrt reads it: white lines on black.

    `auto` inverts a map that is mostly "on" (more than half its pixels white: black lines on white, as
    people draw them and as the demo grid shows conditions), with one warning line saying so; `yes`
    always inverts, `no` never. The inverse is exact (255 - v), so a black-on-white map and its
    white-on-black inverse give the same condition, bit for bit.
    """
    check_invert(invert)
    if invert == "no":
        return gray
    if invert == "auto":
        on = float(np.mean(gray > 127)) if gray.size else 0.0
        if on <= _MOSTLY_ON or _midtone_share(gray) >= _PHOTO_MIDTONE_SHARE:  # a grey photo is not a drawn map
            return gray
        if path is not None or not _inverted_arrays:  # pictures without a file (frames, arrays): said once
            if path is None:
                _inverted_arrays.append(True)
            warn(
                f"edge map is {on:.0%} white, so it was read as black lines on white and inverted (edge maps are white lines "
                "on black; --invert no reads it as it is)" + ("" if path is not None else "; later pictures are not reported"),
                path,
            )
    return 255 - gray


def _edge_image_to_map(
    gray: np.ndarray, size: tuple[int, int], fit: str = "stretch", invert: str = "auto", path: str | os.PathLike | None = None
) -> tuple[np.ndarray, Placement]:
    """Grey uint8 edge image -> binary map [1, H, W] at `size` (fitted by `fit`), keeping thin lines
    when reducing, and where the image landed in the frame. A map too small for the model is refused;
    polarity per `invert` (see `orient_edges`)."""
    check_input_size(gray.shape[:2], size, path, fit, "edge map")
    gray = orient_edges(gray, invert, path)
    where = placement(gray.shape[:2], size, fit)
    if fit == "crop":
        gray = centre_crop(gray, size)
    height, width = where.box[2], where.box[3]  # the image's own region of the frame
    edges = (gray > 127).astype(np.float32)
    if edges.shape == (height, width):
        content = edges
    elif edges.shape[0] >= height and edges.shape[1] >= width:
        # Area reduction gives each target pixel the share of edge pixels it covers; any share is an
        # edge (max-pooling), so a 1-pixel line stays a connected line instead of a dotted one.
        covered = cv2.resize(edges, (width, height), interpolation=cv2.INTER_AREA)
        content = (covered > 1e-6).astype(np.float32)
    else:
        content = (cv2.resize(gray, (width, height), interpolation=cv2.INTER_NEAREST) > 127).astype(np.float32)
    return (pad_content(content[None], where) if fit == "pad" else content[None]), where


def _load_pose(source: ConditionSource, size: tuple[int, int]) -> np.ndarray:
    if source.subset is not None:
        keypoints = conditions.read_candidate_subset(source.path, source.subset)
    else:
        keypoints = conditions.read_openpose_json(source.path)
    present = keypoints[:, 2] > 0
    height, width = size
    outside = present & ((keypoints[:, 0] >= width) | (keypoints[:, 1] >= height) | (keypoints[:, :2] < 0).any(axis=1))
    if outside.any():
        x, y = keypoints[np.flatnonzero(outside)[0], :2]
        raise UserError(
            f"keypoint at ({x:.0f}, {y:.0f}) is outside the model's {width}x{height} image; "
            "keypoints must be in pixels of the model's image size",
            source.path,
        )
    return conditions.pose_map(keypoints, size)


def _scale_keypoints(keypoints: np.ndarray, photo_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    scaled = np.array(keypoints, np.float32, copy=True)
    scaled[:, 0] *= size[1] / photo_size[1]
    scaled[:, 1] *= size[0] / photo_size[0]
    return scaled


def _load_npy_condition(path: Path, condition: ConditionSpec, size: tuple[int, int], fit: str) -> tuple[np.ndarray, Placement]:
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle a user's file
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"not a readable .npy array ({err})", path) from None
    if array.ndim == 2 and condition.channels == 1:
        array = array[None]
    if array.ndim != 3:
        raise UserError(f"has shape {list(array.shape)}; expected [channels, height, width]", path)
    if array.shape[0] != condition.channels:
        raise UserError(f"has {array.shape[0]} channels; this model's {condition.kind} condition has {condition.channels}", path)
    if not (np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_):
        raise UserError(f"has dtype {array.dtype}; expected float (or bool) values in [0, 1]", path)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min(initial=0.0) < 0.0 or array.max(initial=0.0) > 1.0:
        raise UserError("has values outside [0, 1] (or NaN/inf)", path)
    check_input_size(array.shape[1:], size, path, fit, "condition array")
    array, where = fit_map(array, size, fit)
    return np.ascontiguousarray(array), where


# --- exemplars ---------------------------------------------------------------------------------------------


def resize_photo(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 resized to (height, width) with area interpolation, as mclrt.json's preprocessing says."""
    height, width = size
    if rgb.shape[:2] == (height, width):
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def photo_to_tensor(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1]."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 127.5 - 1.0


@dataclass(frozen=True)
class Exemplar:
    rgb: np.ndarray  # uint8 [H, W, 3] at the model's size (for pictures)
    tensor: np.ndarray  # float32 [3, H, W] in [-1, 1]
    condition: np.ndarray | None  # float32 [L, H, W]: its own condition map, for maskmix models


def load_exemplar(
    source: str | os.PathLike | np.ndarray,
    condition: ConditionSpec,
    size: tuple[int, int],
    extract: str = "none",
    exemplar_condition: str | os.PathLike | np.ndarray | None = None,
    fit: str = "stretch",
    invert: str = "auto",
    alpha: str | None = None,
) -> Exemplar:
    """Read the exemplar photo (a file, or an RGB uint8 array); for maskmix models also make its own
    condition map -- for `mclrt infer`, `mclrt video` and the Python API alike.

    That map is `exemplar_condition` when given (a condition file, read like --cond, or a ready map
    float32 [L, H, W]), else extracted from the photo with `extract`, else with the model's extractor.
    """
    check_fit(fit)
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    original = conditions.load_rgb(path, alpha) if path is not None else source
    check_input_size(original.shape[:2], size, path, fit, "exemplar")
    rgb = fit_photo(original, size, fit)[0]
    own = None
    if condition.maskmix:
        if isinstance(exemplar_condition, (str, os.PathLike)):
            given = Path(exemplar_condition)
            own = load_condition(ConditionSource(given.stem, given), condition, size, fit=fit, invert=invert, alpha=alpha)
        elif exemplar_condition is not None:
            own = exemplar_condition
        else:
            how = extract if extract not in ("none", "auto") else (condition.extract or "none")
            if how == "none":
                raise UserError(
                    f"this model also needs the exemplar's own {condition.kind} map, which cannot be extracted "
                    "from a photo: pass it with --exemplar-cond",
                    path,
                )
            check_extract(how, condition)
            own = condition_from_photo(original, how, size, path, fit)
    return Exemplar(rgb, photo_to_tensor(rgb), own)
