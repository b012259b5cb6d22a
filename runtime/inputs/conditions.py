"""Condition maps: what the networks see instead of a photo. float32 [L, H, W], values in [0, 1].

One implementation serves training (the datasets) and the runtime (`mclrt infer` on a user's photo),
so a model sees the same kind of map in both. numpy + OpenCV only; mediapipe (face contours, pose from
a photo) and scikit-image (the CelebA-HQ background Canny) are imported only when asked for.

Kinds (see `mclrt.json`'s `condition.kind`):
* `edge`, 1 channel: `edge_map` -- Canny of the grayscale photo, optionally with face-contour lines.
* `label`, `num_classes` channels: `onehot_labels` of a class-id PNG (ADE20K: 151, ids 0..150).
* `pose`, 20 channels: `pose_map` of OpenPose-18 keypoints, CoCosNet's DeepFashion format.
* `celeba-edge`, 15 channels: `celeba_edge_map` of CelebAMask-HQ part masks, CoCosNet's format.

The loaders and keypoint helpers these need live in small modules next to this one and are
re-exported here, so `from mclrt.runtime.inputs.conditions import ...` is the one place to look.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import list_images, load_label_png, load_mask, load_rgb
from mclrt.runtime.inputs.landmarks import (
    MEDIAPIPE_INSTALL,
    detect_pose_keypoints,
    face_contours,
    mediapipe_available,
    pose_keypoints_from_photo,
)
from mclrt.runtime.inputs.openpose import (
    NUM_KEYPOINTS,
    read_candidate_subset,
    read_openpose_json,
    write_candidate_subset,
)
from mclrt.runtime.inputs.package_photos import PackagePhoto, package_photos

# --- edge ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeParams:
    """How `edge_map` draws edges. The defaults are part of a trained model's contract: change them
    and a model sees different maps than it was trained on.

    Canny runs on the grayscale photo after a Gaussian blur of sigma 1 (scikit-image's Canny default,
    which CoCosNet's CelebA edges use); hysteresis thresholds 50/150 on the 0..255 gradient with the
    exact L2 gradient norm -- the classic 1:3 ratio, dense enough at 128x128 to outline eyes and mouths
    while leaving flat skin and sky empty.
    """

    blur_sigma: float = 1.0
    low_threshold: float = 50.0
    high_threshold: float = 150.0
    # Face-contour lines (mediapipe FaceMesh). 0 = automatic: 1 px below 512 px images, 2 px from 512 on.
    face_line_width: int = 0
    max_faces: int = 4


def canny_edges(rgb: np.ndarray, params: EdgeParams = EdgeParams()) -> np.ndarray:
    """bool [H, W]: Canny edges of the grayscale photo, after a Gaussian blur."""
    gray = cv2.cvtColor(_check_rgb(rgb), cv2.COLOR_RGB2GRAY)
    if params.blur_sigma > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), params.blur_sigma)
    return cv2.Canny(gray, params.low_threshold, params.high_threshold, L2gradient=True) > 0


def edge_map(rgb: np.ndarray, params: EdgeParams = EdgeParams(), face: bool = False) -> np.ndarray:
    """The `edge` condition, float32 [1, H, W] of 0/1, for an RGB uint8 photo [H, W, 3].

    With `face=True`, each face mediapipe's FaceMesh finds is drawn as lines (FACEMESH_CONTOURS and
    FACEMESH_NOSE) and Canny is kept only outside the face ovals: Canny inside a face traces skin and
    shading noise, while the contour lines give the model the eyes, brows, lips and nose it must
    place. No face found means plain Canny. `face=True` without mediapipe is a `UserError`.
    """
    return edge_map_and_face_found(rgb, params, face)[0]


def edge_map_and_face_found(rgb: np.ndarray, params: EdgeParams = EdgeParams(), face: bool = False) -> tuple[np.ndarray, bool]:
    """`edge_map`, and whether a face was found and drawn (always False with face=False)."""
    edges = canny_edges(rgb, params)
    found = None
    if face:
        width = params.face_line_width or max(1, min(rgb.shape[:2]) // 256)
        found = face_contours(rgb, line_width=width, max_faces=params.max_faces)
        if found is not None:
            lines, inside_faces = found
            edges = (edges & ~inside_faces) | lines
    return edges[None].astype(np.float32), found is not None


# --- label -----------------------------------------------------------------------------------------


def onehot_labels(label_ids: np.ndarray, num_classes: int, path_for_errors: str | os.PathLike | None = None) -> np.ndarray:
    """The `label` condition, float32 [num_classes, H, W], from class ids uint8 [H, W].

    An id >= num_classes is a `UserError` naming the file and the offending ids (a dataset with more
    classes than the model, or a colour-coded map read as ids).
    """
    label_ids = np.asarray(label_ids)
    if label_ids.ndim != 2:
        raise ValueError(f"label ids must be [H, W], got {label_ids.shape}")
    check_label_ids(label_ids, num_classes, path_for_errors)
    onehot = np.zeros((num_classes, *label_ids.shape), np.float32)
    np.put_along_axis(onehot, label_ids[None].astype(np.intp), 1.0, axis=0)
    return onehot


def check_label_ids(label_ids: np.ndarray, num_classes: int, path_for_errors: str | os.PathLike | None = None) -> None:
    """`UserError` naming the file and the offending ids if any id is >= num_classes."""
    if label_ids.size and int(label_ids.max()) >= num_classes:
        bad = np.unique(label_ids[label_ids >= num_classes])
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise UserError(f"has class ids {shown}, but the model has {num_classes} classes (ids 0..{num_classes - 1})", path_for_errors)


def resize_labels(label_ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids [H, W] resized to `size` (H, W) with nearest neighbour as CoCosNet does it (PIL's NEAREST,
    which samples pixel centres; OpenCV's INTER_NEAREST_EXACT is the same). Plain INTER_NEAREST samples
    without the half-pixel offset and picks another pixel for ~14 % of a 311x203 -> 256x256 map."""
    return resize_nearest(label_ids, size)


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] or [H, W, C] resized to `size` (H, W) like PIL's NEAREST (CoCosNet's transform for maps)."""
    height, width = size
    if array.shape[:2] == (height, width):
        return np.ascontiguousarray(array)
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def resize_bilinear_pil(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] resized to `size` (H, W) with PIL's BILINEAR, as CoCosNet resizes its
    photos and distance maps. PIL's filter widens with the reduction (antialiasing), which OpenCV's
    INTER_LINEAR does not, so this is PIL itself; Pillow comes with scikit-image, which the conditions
    that need it (celeba-edge) need anyway."""
    height, width = size
    if array.shape[:2] == (height, width):
        return np.ascontiguousarray(array)
    try:
        from PIL import Image
    except ImportError as err:
        raise UserError("CoCosNet's conditions need Pillow to resize as CoCosNet does (pip install Pillow)") from err
    return np.asarray(Image.fromarray(np.ascontiguousarray(array, np.uint8)).resize((width, height), Image.BILINEAR))


def pil_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H, W]: PIL's convert('L') of an RGB uint8 image (ITU-R 601-2 in 16-bit fixed point, rounded),
    which CoCosNet's Canny sees. OpenCV's COLOR_RGB2GRAY rounds differently (1 grey level off on ~0.1 %
    of random colours), enough to move Canny edges."""
    rgb = _check_rgb(rgb).astype(np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


# --- pose (CoCosNet DeepFashion) -------------------------------------------------------------------

POSE_CHANNELS = 20
POSE_STICK_WIDTH = 4  # half-width of the limb ellipses, pixels
POSE_JOINT_RADIUS = 4
# OpenPose's 19 limbs as pairs of keypoint indices (0-based); CoCosNet draws the first 17 (the last two,
# shoulder-ear, are left out).
POSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip
POSE_DRAWN_LIMBS = 17
# OpenPose's palette, one colour per keypoint / limb. CoCosNet draws these onto an OpenCV (BGR) canvas
# and then converts BGR->RGB, so [255, 0, 0] ends up blue; `pose_map` reproduces that.
POSE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def pose_map(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The `pose` condition, float32 [20, H, W], from OpenPose-18 keypoints [18, 3] in pixels of `size` (H, W).

    Channels 0-2: the RGB skeleton -- filled circles r=4 at present keypoints, then each of the first 17
    limbs as a filled ellipse (half-width 4) alpha-blended over the drawing (0.4 old, 0.6 new).
    Channels 3-19: per limb, the L1 distance (OpenCV DIST_L1, 3x3 mask) to that limb's ellipse,
    divided by 3, clipped at 255, truncated to an integer as CoCosNet stores it, then /255. A limb with a
    missing end is infinitely far: the whole channel is 1.
    """
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be [18, 3] (x, y, confidence), got {keypoints.shape}")
    height, width = size
    present = keypoints[:, 2] > 0
    canvas = np.zeros((height, width, 3), np.uint8)
    for k in np.flatnonzero(present):
        centre = (int(keypoints[k, 0]), int(keypoints[k, 1]))
        cv2.circle(canvas, centre, POSE_JOINT_RADIUS, POSE_COLOURS[k], thickness=-1)
    distances = np.ones((POSE_DRAWN_LIMBS, height, width), np.float32)
    for limb in range(POSE_DRAWN_LIMBS):
        a, b = POSE_LIMBS[limb]
        if not (present[a] and present[b]):
            continue
        polygon = _limb_polygon(keypoints[a, :2], keypoints[b, :2])
        drawn = canvas.copy()
        cv2.fillConvexPoly(drawn, polygon, POSE_COLOURS[limb])
        canvas = cv2.addWeighted(canvas, 0.4, drawn, 0.6, 0)
        limb_mask = np.zeros((height, width), np.uint8)
        cv2.fillConvexPoly(limb_mask, polygon, 255)
        distances[limb] = _distance_channel(limb_mask)
    rgb = canvas[:, :, ::-1].astype(np.float32) / 255.0
    return np.concatenate([rgb.transpose(2, 0, 1), distances], axis=0)


def pose_map_resized(keypoints: np.ndarray, photo_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """`pose_map` drawn at the photo's size (keypoints in its pixels) and resized to `size`, as CoCosNet's
    deepfashion_dataset does: the skeleton with PIL's NEAREST, each distance map as uint8 with PIL's BILINEAR."""
    drawn = pose_map(keypoints, photo_size)
    if tuple(photo_size) == tuple(size):
        return drawn
    skeleton = resize_nearest(np.rint(drawn[:3].transpose(1, 2, 0) * 255).astype(np.uint8), size)
    distances = [resize_bilinear_pil(np.rint(channel * 255).astype(np.uint8), size) for channel in drawn[3:]]
    return np.concatenate([skeleton.transpose(2, 0, 1), np.stack(distances)]).astype(np.float32) / 255.0


def _limb_polygon(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The ellipse CoCosNet (after OpenPose's demo) draws for a limb, as a polygon."""
    centre = (int((start[0] + end[0]) / 2), int((start[1] + end[1]) / 2))
    dx, dy = start[0] - end[0], start[1] - end[1]
    length = math.hypot(dx, dy)
    angle = int(math.degrees(math.atan2(dy, dx)))
    return cv2.ellipse2Poly(centre, (int(length / 2), POSE_STICK_WIDTH), angle, 0, 360, 1)


def _distance_channel(mask_255: np.ndarray) -> np.ndarray:
    """L1 distance to the mask's pixels, /3, clipped at 255, stored as uint8 (as CoCosNet), scaled to [0, 1]."""
    distance = cv2.distanceTransform(255 - mask_255, cv2.DIST_L1, 3)
    return np.clip(distance / 3.0, 0, 255).astype(np.uint8).astype(np.float32) / 255.0


# --- celeba-edge (CoCosNet CelebA-HQ) --------------------------------------------------------------

# CelebAMask-HQ part names, in CoCosNet's channel order. 'hair' is last on purpose (see celeba_edge_map).
CELEBA_PARTS = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear", "nose", "u_lip", "mouth", "l_lip", "eye_g", "hair")
CELEBA_EDGE_CHANNELS = 2 + len(CELEBA_PARTS)


def part_boundaries(mask: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels whose value differs from a 4-neighbour's (both sides of every boundary)."""
    mask = np.asarray(mask)
    edge = np.zeros(mask.shape, bool)
    horizontal = mask[:, 1:] != mask[:, :-1]
    vertical = mask[1:, :] != mask[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def celeba_edge_map(rgb: np.ndarray, part_masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """The `celeba-edge` condition, float32 [15, H, W], as CoCosNet's celebahqedge_dataset builds it.

    `rgb` uint8 [H, W, 3] and the CelebAMask-HQ part masks (bool [H, W], names from CELEBA_PARTS; a part
    not in the mapping is absent) at the same size. Channels:
    0: all edges -- part boundaries, plus scikit-image Canny (sigma 1) of the grayscale photo kept only
       outside the face parts (background and hair; hair is processed last, so it re-opens its pixels);
    1-13: per part, the L1 distance to its boundary /3, clipped at 255, as uint8, /255 (1 when absent);
    14: part boundaries only.
    Canny sees PIL's grey (`pil_gray`), as in CoCosNet. For a CelebA-HQ photo and masks at their own
    sizes use `celeba_edge_map_resized`, which resizes them as CoCosNet does first.
    """
    rgb = _check_rgb(rgb)
    unknown = sorted(set(part_masks) - set(CELEBA_PARTS))
    if unknown:
        raise ValueError(f"unknown CelebAMask-HQ part(s) {unknown}; known: {CELEBA_PARTS}")
    shape = rgb.shape[:2]
    outside_face = np.ones(shape, bool)
    all_boundaries = np.zeros(shape, bool)
    distances = []
    for part in CELEBA_PARTS:
        boundary = np.zeros(shape, bool)
        if part in part_masks:
            mask = np.asarray(part_masks[part], bool)
            if mask.shape != shape:
                raise ValueError(f"part mask {part!r} is {mask.shape}, photo is {shape}")
            outside_face[mask] = part == "hair"
            boundary = part_boundaries(mask)
            all_boundaries |= boundary
        distances.append(_distance_channel(boundary.astype(np.uint8) * 255))
    background = _skimage_canny(pil_gray(rgb)) & outside_face
    edges_all = (all_boundaries | background).astype(np.float32)
    return np.stack([edges_all, *distances, all_boundaries.astype(np.float32)])


def celeba_edge_map_resized(rgb: np.ndarray, part_masks: Mapping[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """`celeba_edge_map` at `size` (H, W) from a photo and part masks at their own sizes (CelebAMask-HQ:
    1024 px photos, 512 px masks), resized as CoCosNet's celebahqedge_dataset does before it draws: the
    photo with PIL's BILINEAR, each mask with PIL's NEAREST."""
    photo = resize_bilinear_pil(_check_rgb(rgb), size)
    masks = {part: resize_nearest(np.asarray(mask, bool).astype(np.uint8), size) > 0 for part, mask in part_masks.items()}
    return celeba_edge_map(photo, masks)


def read_celeba_part_masks(photo_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The CelebAMask-HQ part masks of a photo, found beside it as `<stem>_<part>.png` (also with the stem
    zero-padded to 5 digits, CelebAMask-HQ's own naming: photo `123.jpg`, masks `00123_skin.png`). A part
    with no file is absent, as in CelebAMask-HQ; no mask at all is a `UserError` naming the photo."""
    from pathlib import Path

    photo_path = Path(photo_path)
    stems = [photo_path.stem] + ([photo_path.stem.zfill(5)] if photo_path.stem.isdigit() else [])
    masks = {}
    for part in CELEBA_PARTS:
        for stem in stems:
            candidate = photo_path.with_name(f"{stem}_{part}.png")
            if candidate.is_file():
                masks[part] = load_mask(candidate)
                break
    if not masks:
        raise UserError(f"no CelebAMask-HQ part masks beside it (<stem>_<part>.png, parts {', '.join(CELEBA_PARTS)})", photo_path)
    return masks


def _skimage_canny(gray: np.ndarray) -> np.ndarray:
    try:
        from skimage.feature import canny
    except ImportError as err:
        raise UserError("celeba-edge maps need scikit-image (pip install 'scikit-image>=0.22,<0.27')") from err
    return canny(gray)  # CoCosNet's call: sigma 1, default thresholds


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
    return rgb


__all__ = [
    # condition maps
    "EdgeParams",
    "canny_edges",
    "edge_map",
    "edge_map_and_face_found",
    "onehot_labels",
    "check_label_ids",
    "POSE_CHANNELS",
    "POSE_LIMBS",
    "POSE_COLOURS",
    "pose_map",
    "CELEBA_PARTS",
    "CELEBA_EDGE_CHANNELS",
    "part_boundaries",
    "celeba_edge_map",
    "celeba_edge_map_resized",
    "read_celeba_part_masks",
    "resize_labels",
    "resize_nearest",
    "resize_bilinear_pil",
    "pil_gray",
    "pose_map_resized",
    # inputs (re-exported)
    "load_rgb",
    "load_label_png",
    "load_mask",
    "list_images",
    "read_candidate_subset",
    "read_openpose_json",
    "write_candidate_subset",
    "pose_keypoints_from_photo",
    "detect_pose_keypoints",
    "mediapipe_available",
    "MEDIAPIPE_INSTALL",
    "PackagePhoto",
    "package_photos",
]
