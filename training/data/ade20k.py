"""ADE20K scene parsing (the `label` kind, 151 channels) in the published ADEChallengeData2016 layout.

    ADEChallengeData2016/
      images/{training,validation}/ADE_{train,val}_XXXXXXXX.jpg
      annotations/{training,validation}/ADE_{train,val}_XXXXXXXX.png   (ids 0 = unknown, 1..150)
      ade20k_ref.txt, ade20k_ref_test.txt                              (exemplar retrieval lists)

CoCosNet moves the annotation PNGs next to the JPEGs; that layout (a PNG beside each JPEG in images/)
works too. The retrieval lists name images by file name; validation samples take their exemplars
from the training images, as in CoCosNet. Every sample is an image of the split's folder (sorted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mclrt.runtime.inputs.conditions import check_label_ids, load_label_png, load_rgb, onehot_labels, resize_labels
from mclrt.runtime.errors import UserError
from mclrt.training.data.paired import Loaded, PairedDataConfig, PairedDataset

ADE20K_CLASSES = 151  # 150 classes + "unknown" (id 0)
_FOLDER = {"train": "training", "val": "validation"}


@dataclass(frozen=True)
class ADE20KConfig(PairedDataConfig):
    num_classes: int = ADE20K_CLASSES


class ADE20KDataset(PairedDataset):
    reference_file = "ade20k_ref.txt"
    has_labels = True

    def __init__(self, config: ADE20KConfig):
        root = config.root
        if not root.is_dir():
            raise UserError("no such folder (expected ADEChallengeData2016 with images/ and annotations/)", root)
        folder = root / "images" / _FOLDER[config.split]
        if not folder.is_dir():
            raise UserError("no such folder (the ADE20K images of this split)", folder)
        names = [image.name for image in sorted(folder.glob("*.jpg"))]
        if not names:
            raise UserError("holds no .jpg images", folder)
        self.config = config  # (the base class sets it too; _label_path needs it already)
        self._split_names = set(names)
        for name in names:
            label = self._label_path(name)
            if not label.is_file():
                raise UserError(f"no annotation for this image (expected {label})", folder / name)
        super().__init__(config, names, config.num_classes)

    def _folder(self, name: str) -> Path:
        # Retrieved exemplars of validation samples are training images (CoCosNet's train_test_folder).
        split = self.config.split if name in self._split_names else "train"
        return self.config.root / "images" / _FOLDER[split]

    def _label_path(self, name: str) -> Path:
        folder = self._folder(name)
        stem = Path(name).stem
        published = folder.parent.parent / "annotations" / folder.name / f"{stem}.png"
        beside_image = folder / f"{stem}.png"  # CoCosNet's layout
        return beside_image if beside_image.is_file() and not published.is_file() else published

    def required_files(self, name: str) -> list[Path]:
        return [self._folder(name) / name, self._label_path(name)]

    def load(self, name: str) -> Loaded:
        image_path, label_path = self.required_files(name)
        ids = load_label_png(label_path)
        # Check every id of the file (not just the cropped window), so a bad file fails on first use.
        check_label_ids(ids, self.num_channels, label_path)
        size = (self.load_size, self.load_size)
        rgb = cv2.resize(load_rgb(image_path), size, interpolation=cv2.INTER_AREA)
        ids = resize_labels(ids, size)  # PIL's NEAREST, as CoCosNet (tests/test_cocosnet_conditions.py)
        return Loaded(rgb=rgb.transpose(2, 0, 1), label_ids=ids)

    def onehot(self, label_ids: np.ndarray, name: str) -> np.ndarray:
        return onehot_labels(label_ids, self.num_channels, self._label_path(name))


__all__ = ["ADE20K_CLASSES", "ADE20KConfig", "ADE20KDataset"]
