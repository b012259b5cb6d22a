"""DeepFashion In-shop (the `pose` kind, 20 channels) in CoCosNet's layout.

    <root>/
      img/<...>/<name>.jpg
      pose/<...>/<name>_candidate.txt, <name>_subset.txt     (OpenPose-18; see mclrt.runtime.inputs.openpose)
      train.txt, val.txt                                     (paths relative to root: img/<...>.jpg)
      deepfashion_ref.txt, deepfashion_ref_test.txt          (retrieval lists of such paths)
      deepfashion_self_pair.txt                              (optional: other views of the same garment)

The pose map is drawn at the photo's own size, then resized to load size (skeleton colours nearest,
distance maps as uint8 with PIL's bilinear) and cropped, as CoCosNet does (`pose_map_resized`). No flip by default: a mirrored pose map would
swap the colours of left and right limbs.

Self pairs (CoCosNet's `--video_like`, used by its DeepFashion command together with
real_probability 0): when a sample would be a pseudo pair and `self_pairs` lists photos of the same
garment and person (same folder, same `<nn>_` prefix), one of them -- drawn uniformly, where CoCosNet
always takes the first -- is the exemplar, so the reconstruction losses see real cross-pose pairs.
Such a sample still counts as a pseudo pair (`is_pseudo_pair`), like CoCosNet's `self_ref`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from mclrt.runtime.inputs.conditions import POSE_CHANNELS, load_rgb, pose_map_resized, read_candidate_subset
from mclrt.runtime.errors import UserError
from mclrt.training.data.lists import ReferenceList, read_reference_list, read_split_list
from mclrt.training.data.paired import Loaded, PairedDataConfig, PairedDataset


@dataclass(frozen=True)
class DeepFashionConfig(PairedDataConfig):
    flip: bool = False
    self_pairs: Path | None = None  # e.g. root / "deepfashion_self_pair.txt"; None: no self pairs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.self_pairs is not None:
            object.__setattr__(self, "self_pairs", Path(self.self_pairs))


def pose_paths(root: Path, name: str) -> tuple[Path, Path]:
    """The candidate and subset files of `img/<...>/<stem>.jpg`: `pose/<...>/<stem>_{candidate,subset}.txt`."""
    relative = PurePosixPath(name)
    folder = PurePosixPath("pose", *relative.parts[1:-1])
    return root / folder / f"{relative.stem}_candidate.txt", root / folder / f"{relative.stem}_subset.txt"


class DeepFashionDataset(PairedDataset):
    reference_file = "deepfashion_ref.txt"

    def __init__(self, config: DeepFashionConfig):
        root = config.root
        if not root.is_dir():
            raise UserError("no such folder (expected img/, pose/, train.txt, val.txt)", root)
        self.config = config  # (the base class sets it too; required_files needs it already)
        split_file = root / ("train.txt" if config.split == "train" else "val.txt")
        names = []
        for number, name in read_split_list(split_file):
            self._check_name(name, f"line {number}", split_file)
            for needed in self.required_files(name):
                if not needed.is_file():
                    raise UserError(f"line {number}: no such file {needed}", split_file)
            names.append(name)
        self.self_pairs = self._read_self_pairs(config.self_pairs) if config.self_pairs else None
        super().__init__(config, names, POSE_CHANNELS)

    def required_files(self, name: str) -> list[Path]:
        return [self.config.root / name, *pose_paths(self.config.root, name)]

    def load(self, name: str) -> Loaded:
        image_path, candidate_path, subset_path = self.required_files(name)
        rgb = load_rgb(image_path)
        size = (self.load_size, self.load_size)
        # Drawn at the photo's size, resized as CoCosNet does (PIL nearest / bilinear of uint8 maps).
        condition = pose_map_resized(read_candidate_subset(candidate_path, subset_path), rgb.shape[:2], size)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return Loaded(rgb=rgb.transpose(2, 0, 1), condition=condition)

    def pseudo_pair_partner(self, name: str, rng: np.random.Generator) -> str | None:
        if self.self_pairs is None or name not in self.self_pairs:
            return None
        partners = [other for other in self.self_pairs.references[name] if _same_garment(name, other)]
        return partners[int(rng.integers(len(partners)))] if partners else None

    def _read_self_pairs(self, path: Path) -> ReferenceList:
        pairs = read_reference_list(path, "DeepFashion self pairs: '<name>,<other view>,...' per line")
        for name, others in pairs.references.items():
            for other in others:
                if _same_garment(name, other):
                    self._check_name(other, pairs.where(name), path)
                    for needed in self.required_files(other):
                        if not needed.is_file():
                            raise UserError(f"{pairs.where(name)}: no such file {needed}", path)
        return pairs

    @staticmethod
    def _check_name(name: str, where: str, path: Path) -> None:
        relative = PurePosixPath(name)
        if relative.is_absolute() or len(relative.parts) < 2 or relative.parts[0] != "img" or relative.suffix.lower() != ".jpg":
            raise UserError(f"{where}: {name!r} is not a DeepFashion photo path (img/<...>.jpg, relative to the root)", path)


def _same_garment(name: str, other: str) -> bool:
    """CoCosNet's test: same folder and the same `<nn>` before the first underscore (01_1_front / 01_2_side)."""
    a, b = PurePosixPath(name), PurePosixPath(other)
    return a != b and a.parent == b.parent and a.name.split("_")[0] == b.name.split("_")[0]


__all__ = ["DeepFashionConfig", "DeepFashionDataset", "pose_paths"]
