"""CelebA-HQ edges (the `celeba-edge` kind, 15 channels) in the published CelebAMask-HQ layout.

    <root>/
      CelebA-HQ-img/<id>.jpg                                        (1024 x 1024 photos)
      CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png      (512 x 512 part masks; absent part = no file)
      train.txt, val.txt                                            (one integer id per line)
      celebahq_ref.txt, celebahq_ref_test.txt                       (retrieval lists naming `<id>.jpg`)

The 15-channel map is built at load size, before cropping, exactly as CoCosNet's celebahqedge_dataset:
see `mclrt.runtime.inputs.conditions.celeba_edge_map_resized` (photo PIL-bilinear, masks PIL-nearest, as
upstream; checked against upstream's code in tests/test_cocosnet_conditions.py). The ground-truth photo is
resized with area averaging, the resize the runtime applies to a user's photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from mclrt.runtime.inputs.conditions import CELEBA_EDGE_CHANNELS, CELEBA_PARTS, celeba_edge_map_resized, load_mask, load_rgb
from mclrt.runtime.errors import UserError
from mclrt.training.data.lists import read_split_list
from mclrt.training.data.paired import Loaded, PairedDataConfig, PairedDataset


@dataclass(frozen=True)
class CelebAHQEdgeConfig(PairedDataConfig):
    pass


class CelebAHQEdgeDataset(PairedDataset):
    reference_file = "celebahq_ref.txt"

    def __init__(self, config: CelebAHQEdgeConfig):
        root = config.root
        if not root.is_dir():
            raise UserError("no such folder (expected CelebA-HQ-img/, CelebAMask-HQ-mask-anno/, train.txt, val.txt)", root)
        for folder in ("CelebA-HQ-img", "CelebAMask-HQ-mask-anno"):
            if not (root / folder).is_dir():
                raise UserError("no such folder (part of the CelebAMask-HQ layout)", root / folder)
        split_file = root / ("train.txt" if config.split == "train" else "val.txt")
        names = []
        for number, text in read_split_list(split_file):
            if not text.isdigit():
                raise UserError(f"line {number}: {text!r} is not a CelebA-HQ image id (a non-negative integer)", split_file)
            name = f"{int(text)}.jpg"
            if not (root / "CelebA-HQ-img" / name).is_file():
                raise UserError(f"line {number}: no such image {root / 'CelebA-HQ-img' / name}", split_file)
            names.append(name)
        super().__init__(config, names, CELEBA_EDGE_CHANNELS)

    def required_files(self, name: str) -> list[Path]:
        self._image_id(name)
        return [self.config.root / "CelebA-HQ-img" / name]

    def part_mask_path(self, name: str, part: str) -> Path:
        image_id = self._image_id(name)
        return self.config.root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000) / f"{image_id:05d}_{part}.png"

    def load(self, name: str) -> Loaded:
        size = (self.load_size, self.load_size)
        original = load_rgb(self.required_files(name)[0])
        masks = {}
        for part in CELEBA_PARTS:
            path = self.part_mask_path(name, part)
            if path.is_file():  # CelebAMask-HQ has no file for a part the face does not show
                masks[part] = load_mask(path)
        # The condition from the photo and masks resized as CoCosNet resizes them (PIL bilinear / nearest);
        # the ground truth with area averaging, the resize the runtime applies to a user's photo.
        rgb = cv2.resize(original, size, interpolation=cv2.INTER_AREA)
        return Loaded(rgb=rgb.transpose(2, 0, 1), condition=celeba_edge_map_resized(original, masks, size))

    def _image_id(self, name: str) -> int:
        stem = Path(name).stem
        if not stem.isdigit() or Path(name).suffix != ".jpg":
            raise UserError(f"{name!r} is not a CelebA-HQ image name ('<id>.jpg')", self.reference_list_path())
        return int(stem)


__all__ = ["CelebAHQEdgeConfig", "CelebAHQEdgeDataset"]
