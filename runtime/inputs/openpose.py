"""OpenPose-18 (COCO) body keypoints: reading and writing the two file formats people have.

Keypoints are a float32 array [18, 3] of (x, y, confidence) in pixels of the photo they belong to.
A keypoint is *missing* iff its confidence is 0 (OpenPose's own JSON convention); missing rows hold
(0, 0, 0). The 18 points, in order: nose, neck, right shoulder/elbow/wrist, left shoulder/elbow/wrist,
right hip/knee/ankle, left hip/knee/ankle, right eye, left eye, right ear, left ear.

Formats:
* CoCosNet's DeepFashion files `<name>_candidate.txt` (one row per detected point: x y score id, the
  pytorch-openpose `candidate` array) and `<name>_subset.txt` (one row per person: 18 indices into
  candidate, -1 when missing, then total score and point count). The first person is used.
* OpenPose's JSON output: `people[0].pose_keypoints_2d`, flat (x, y, c) triples of the COCO-18 model
  (54 numbers) or the BODY_25 model (75 numbers, mapped onto COCO-18).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from mclrt.runtime.errors import UserError

NUM_KEYPOINTS = 18

# BODY_25 index of each COCO-18 keypoint (BODY_25 adds mid-hip at 8 and six foot points at 19..24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def missing_keypoints() -> np.ndarray:
    return np.zeros((NUM_KEYPOINTS, 3), np.float32)


def read_candidate_subset(candidate_path: str | os.PathLike, subset_path: str | os.PathLike) -> np.ndarray:
    """Keypoints [18, 3] of the first person in a CoCosNet `_candidate.txt` / `_subset.txt` pair."""
    candidate = _load_table(candidate_path)
    subset = _load_table(subset_path)
    keypoints = missing_keypoints()
    if subset.shape[0] == 0:
        return keypoints  # no person: every keypoint missing, as CoCosNet draws it
    if subset.shape[1] < NUM_KEYPOINTS:
        raise UserError(f"line 1: {subset.shape[1]} numbers; expected at least {NUM_KEYPOINTS} candidate indices", subset_path)
    if candidate.shape[0] and candidate.shape[1] < 2:
        raise UserError(f"line 1: {candidate.shape[1]} number(s); expected rows of x y [score id]", candidate_path)
    for k in range(NUM_KEYPOINTS):
        index = int(subset[0, k])
        if index == -1:
            continue
        if not 0 <= index < candidate.shape[0]:
            raise UserError(
                f"line 1: keypoint {k} refers to candidate row {index}, but {candidate_path} has {candidate.shape[0]} rows",
                subset_path,
            )
        x, y = candidate[index, 0], candidate[index, 1]
        # The subset decides presence; the score (column 3, when there is one) is kept as information.
        score = candidate[index, 2] if candidate.shape[1] >= 3 and candidate[index, 2] > 0 else 1.0
        keypoints[k] = (x, y, score)
    return keypoints


def write_candidate_subset(keypoints: np.ndarray, candidate_path: Path, subset_path: Path) -> None:
    """Write one person's keypoints in CoCosNet's DeepFashion format (readable by `np.loadtxt`)."""
    keypoints = _check_keypoints(keypoints)
    rows = []
    indices = []
    for k in range(NUM_KEYPOINTS):
        x, y, conf = keypoints[k]
        if conf > 0:
            indices.append(len(rows))
            rows.append((x, y, conf, len(rows)))
        else:
            indices.append(-1)
    present = [k for k in range(NUM_KEYPOINTS) if keypoints[k, 2] > 0]
    subset = indices + [float(keypoints[present, 2].sum()), len(present)]
    candidate_path.write_text("".join(f"{x:.3f} {y:.3f} {c:.6f} {i:d}\n" for x, y, c, i in rows))
    subset_path.write_text(" ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in subset) + "\n")


def read_openpose_json(path: str | os.PathLike) -> np.ndarray:
    """Keypoints [18, 3] of `people[0]` in an OpenPose JSON file (COCO-18 or BODY_25 model)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such file", path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"is not valid JSON ({err})", path) from err
    people = doc.get("people") if isinstance(doc, dict) else None
    if not isinstance(people, list):
        raise UserError("has no 'people' list; expected OpenPose JSON output", path)
    if not people:
        raise UserError("lists no person ('people' is empty)", path)
    flat = people[0].get("pose_keypoints_2d") if isinstance(people[0], dict) else None
    if not isinstance(flat, list) or not all(isinstance(v, (int, float)) for v in flat):
        raise UserError("people[0] has no numeric 'pose_keypoints_2d' list", path)
    triples = np.asarray(flat, np.float32).reshape(-1, 3) if len(flat) % 3 == 0 else None
    if triples is None or len(triples) not in (18, 25):
        raise UserError(
            f"people[0].pose_keypoints_2d has {len(flat)} numbers; expected 54 (COCO-18) or 75 (BODY_25)", path
        )
    keypoints = triples if len(triples) == 18 else triples[list(BODY25_TO_COCO18)]
    keypoints = keypoints.copy()
    keypoints[keypoints[:, 2] <= 0] = 0
    return keypoints


def _load_table(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise UserError("no such file", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # np.loadtxt warns on an empty file; empty is valid here
        try:
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise UserError(f"is not a table of numbers ({err})", path) from err
    return table


def _check_keypoints(keypoints: np.ndarray) -> np.ndarray:
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be [18, 3] (x, y, confidence), got {keypoints.shape}")
    return keypoints


__all__ = [
    "NUM_KEYPOINTS",
    "BODY25_TO_COCO18",
    "missing_keypoints",
    "read_candidate_subset",
    "write_candidate_subset",
    "read_openpose_json",
]
