"""Face-contour lines and OpenPose-18 keypoints from a photo, through mediapipe's legacy solutions.

mediapipe is optional (the `[extract]` extra) and imported only inside these functions. Only
mediapipe 0.10.21 works offline: it is the last release with `mp.solutions`, and it bundles the
FaceMesh and Pose (model_complexity=1) models; 0.10.30+ removed the solutions and downloads models
at run time. Its declared dependencies (numpy<2, jax, opencv-contrib with GUI, ...) are not needed
and would downgrade this environment's numpy, so it is installed in two steps:

    pip install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib
    pip install --no-deps mediapipe==0.10.21

(`make install-extract` runs exactly these.) Wheels exist for CPython 3.9-3.12.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.openpose import NUM_KEYPOINTS, missing_keypoints

MEDIAPIPE_INSTALL = (
    'pip install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib '
    "&& pip install --no-deps mediapipe==0.10.21   (or: make install-extract)"
)

# mediapipe Pose (33 landmarks) index of each OpenPose-18 keypoint; the neck (1) is the shoulders' midpoint.
_NECK = -1
POSE33_TO_OPENPOSE18 = (0, _NECK, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
_LEFT_SHOULDER, _RIGHT_SHOULDER = 11, 12
VISIBILITY_THRESHOLD = 0.5  # below this mediapipe's landmark is a guess; OpenPose would not report it

# One detector per (process, settings): building the graph costs ~50 ms, and DataLoader workers are
# forked processes, which must not share the parent's graph and threads.
_detectors: dict[tuple[Any, ...], Any] = {}


def mediapipe_available() -> bool:
    try:
        import mediapipe as mp
    except ImportError:
        return False
    return hasattr(mp, "solutions")


def face_contours(rgb: np.ndarray, line_width: int, max_faces: int = 4) -> tuple[np.ndarray, np.ndarray] | None:
    """Lines of FaceMesh's contours and nose drawn on a black canvas, and the union of face-oval hulls.

    Returns (lines, inside_faces), both bool [H, W], or None when no face is found.
    """
    mp = _import_mediapipe()
    face_mesh = mp.solutions.face_mesh
    detector = _detector(
        ("face", max_faces),
        lambda: face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=False),
    )
    result = detector.process(np.ascontiguousarray(rgb))
    if not result.multi_face_landmarks:
        return None
    height, width = rgb.shape[:2]
    lines = np.zeros((height, width), np.uint8)
    inside = np.zeros((height, width), np.uint8)
    connections = face_mesh.FACEMESH_CONTOURS | face_mesh.FACEMESH_NOSE
    oval = sorted({i for pair in face_mesh.FACEMESH_FACE_OVAL for i in pair})
    for face in result.multi_face_landmarks:
        points = np.array([(p.x * width, p.y * height) for p in face.landmark], np.float32)
        pixels = np.round(points).astype(np.int32)
        for a, b in connections:
            cv2.line(lines, tuple(pixels[a]), tuple(pixels[b]), 1, thickness=line_width, lineType=cv2.LINE_8)
        cv2.fillConvexPoly(inside, cv2.convexHull(pixels[oval]), 1)
    return lines.astype(bool), inside.astype(bool)


def pose_keypoints_from_photo(rgb: np.ndarray) -> np.ndarray:
    """OpenPose-18 keypoints [18, 3] (x, y, visibility) of the most prominent person in an RGB photo.

    mediapipe Pose (static mode, model_complexity=1: the only model 0.10.21 ships) gives 33 landmarks;
    they are mapped onto OpenPose-18 (neck = mid-shoulders). A landmark with visibility < 0.5, or
    outside the frame, is missing (confidence 0). No person at all is a `UserError`.
    """
    keypoints = detect_pose_keypoints(rgb)
    if keypoints is None:
        raise UserError("no person found in the photo")
    return keypoints


def detect_pose_keypoints(rgb: np.ndarray) -> np.ndarray | None:
    """As `pose_keypoints_from_photo`, but None when there is no person (for batch tools that skip)."""
    mp = _import_mediapipe()
    pose = mp.solutions.pose
    detector = _detector(("pose",), lambda: pose.Pose(static_image_mode=True, model_complexity=1))
    result = detector.process(np.ascontiguousarray(rgb))
    if result.pose_landmarks is None:
        return None
    height, width = rgb.shape[:2]
    landmarks = np.array([(p.x * width, p.y * height, p.visibility) for p in result.pose_landmarks.landmark], np.float32)
    keypoints = missing_keypoints()
    for k in range(NUM_KEYPOINTS):
        source = POSE33_TO_OPENPOSE18[k]
        if source == _NECK:
            both = landmarks[[_LEFT_SHOULDER, _RIGHT_SHOULDER]]
            point = (*both[:, :2].mean(axis=0), both[:, 2].min())
        else:
            point = landmarks[source]
        x, y, visibility = (float(v) for v in point)
        if visibility >= VISIBILITY_THRESHOLD and 0 <= x < width and 0 <= y < height:
            keypoints[k] = (x, y, visibility)
    return keypoints


def _import_mediapipe():
    try:
        import mediapipe as mp
    except ImportError as err:
        raise UserError(f"face and pose extraction need mediapipe 0.10.21 (the [extract] extra): {MEDIAPIPE_INSTALL}") from err
    if not hasattr(mp, "solutions"):
        raise UserError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy solutions (removed in 0.10.30); "
            f"install 0.10.21: {MEDIAPIPE_INSTALL}"
        )
    return mp


def _detector(settings: tuple[Any, ...], build):
    key = (os.getpid(), *settings)
    if key not in _detectors:
        _detectors[key] = build()
    return _detectors[key]


__all__ = [
    "MEDIAPIPE_INSTALL",
    "POSE33_TO_OPENPOSE18",
    "VISIBILITY_THRESHOLD",
    "mediapipe_available",
    "face_contours",
    "pose_keypoints_from_photo",
    "detect_pose_keypoints",
]
