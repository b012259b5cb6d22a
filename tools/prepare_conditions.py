"""Write condition maps for a folder of a user's own photos.

    python -m mclrt.tools.prepare_conditions PHOTOS_DIR --out DIR --kind edge|face|pose [--size N]

* `edge`: `DIR/<relative path>.png`, the `edge` map as a black/white PNG (Canny; see `EdgeParams`).
* `face`: the same, with mediapipe FaceMesh contour lines on every face found (needs the `[extract]`
  extra); photos without a face get plain Canny and are counted.
* `pose`: `DIR/<relative path without suffix>_candidate.txt` and `_subset.txt`, OpenPose-18 keypoints
  from mediapipe Pose in CoCosNet's DeepFashion format (run it on DeepFashion-style `img/` with
  `--out pose/` to get that layout). Photos without a person are skipped and listed.

`--size N` first resizes each photo to N x N (area), as the runtime does before extracting a condition,
so the maps match what a model of that size sees; without it maps are made at the photo's own size.
Existing outputs are never replaced unless `--overwrite`; that check happens before anything is written.
Each file is written atomically, so an interrupted run leaves only complete files.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import cv2
import numpy as np
import typer

from mclrt.runtime.inputs.conditions import (
    EdgeParams,
    detect_pose_keypoints,
    edge_map_and_face_found,
    list_images,
    load_rgb,
    write_candidate_subset,
)
from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_path, check_output_location
from mclrt.runtime.inputs.landmarks import MEDIAPIPE_INSTALL, mediapipe_available
from mclrt.tools._cli import run_tool


class Kind(str, Enum):
    edge = "edge"
    face = "face"
    pose = "pose"


def output_paths(relative: Path, out: Path, kind: Kind) -> list[Path]:
    if kind is Kind.pose:
        stem = out / relative.parent / relative.stem
        return [stem.with_name(stem.name + "_candidate.txt"), stem.with_name(stem.name + "_subset.txt")]
    return [out / relative.with_suffix(".png")]


def prepare_conditions(
    photos_dir: Path, out: Path, kind: Kind, size: int | None = None, overwrite: bool = False, params: EdgeParams = EdgeParams()
) -> dict[str, list[str]]:
    """Write the maps; returns {"written": [...], "no_face": [...], "no_person": [...]} (relative photo paths)."""
    if kind is not Kind.edge and not mediapipe_available():
        raise UserError(f"--kind {kind.value} needs mediapipe 0.10.21: {MEDIAPIPE_INSTALL}")
    photos = list_images(photos_dir)
    if not photos:
        raise UserError("holds no photos (.jpg, .png, .webp, .bmp, .tif)", photos_dir)
    relatives = [photo.relative_to(photos_dir) for photo in photos]
    check_output_location(out, [photos_dir])  # conditions over the photos would replace them (--overwrite)
    if not overwrite:
        for relative in relatives:
            for target in output_paths(relative, out, kind):
                if target.exists():
                    raise UserError("already exists (pass --overwrite to replace it)", target)
    report: dict[str, list[str]] = {"written": [], "no_face": [], "no_person": []}
    for photo, relative in zip(photos, relatives):
        rgb = load_rgb(photo)
        if size is not None:
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        targets = output_paths(relative, out, kind)
        if kind is Kind.pose:
            keypoints = detect_pose_keypoints(rgb)
            if keypoints is None:
                report["no_person"].append(relative.as_posix())
                continue
            with atomic_path(targets[0], overwrite=True) as candidate, atomic_path(targets[1], overwrite=True) as subset:
                write_candidate_subset(keypoints, candidate, subset)
        else:
            edges, face_found = edge_map_and_face_found(rgb, params, face=kind is Kind.face)
            if kind is Kind.face and not face_found:
                report["no_face"].append(relative.as_posix())
            ok, png = cv2.imencode(".png", (edges[0] * 255).astype(np.uint8))
            if not ok:
                raise RuntimeError("OpenCV could not encode a PNG")
            with atomic_path(targets[0], overwrite=True) as tmp:
                tmp.write_bytes(png.tobytes())
        report["written"].append(relative.as_posix())
    return report


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main_command(
    photos_dir: Path = typer.Argument(..., help="Folder of photos (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Folder for the condition files (mirrors PHOTOS_DIR's structure)."),
    kind: Kind = typer.Option(Kind.edge, "--kind", help="edge (Canny), face (Canny + face contours) or pose (OpenPose-18 files)."),
    size: int | None = typer.Option(None, "--size", help="Resize each photo to SIZE x SIZE first, as the runtime does."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing condition files."),
) -> None:
    """Write condition maps (edge PNGs or OpenPose keypoint files) for a folder of photos."""
    report = prepare_conditions(photos_dir, out, kind, size=size, overwrite=overwrite)
    print(f"wrote conditions for {len(report['written'])} photo(s) to {out}", file=sys.stderr)
    if report["no_face"]:
        print(f"no face found (plain Canny) in {len(report['no_face'])}: {', '.join(report['no_face'])}", file=sys.stderr)
    if report["no_person"]:
        print(f"skipped, no person found in {len(report['no_person'])}: {', '.join(report['no_person'])}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_tool(app, argv)


if __name__ == "__main__":
    sys.exit(main())
