"""Tiny real training setups for the trainer tests: package-shipped photos, cropped small, on disk.

The photos are real (scikit-image / matplotlib, CC0 or public domain), cut to centred squares so a
full-size crop is the same window every time, and saved as PNGs into a folder the `photos` dataset
reads. The config is the `nano` preset shrunk (64x64 images, ngf 8) so a step takes about a second
on 2 CPU cores; VGG is off because no VGG weights ship (the demo does the same).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mclrt.runtime.inputs.conditions import package_photos
from mclrt.training.options import TrainConfig, config_from_dict

PHOTOS = ("astronaut", "chelsea", "coffee", "grace_hopper")


def write_photo_folder(folder: Path, count: int = 3, size: int = 72) -> Path:
    """`count` package photos as centred square PNGs of size x size."""
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {photo.name: photo.rgb for photo in package_photos()}
    for name in PHOTOS[:count]:
        rgb = by_name[name]
        h, w = rgb.shape[:2]
        side = min(h, w)
        square = rgb[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        small = cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return folder


def tiny_config_dict(photos: Path, out: Path, **sections) -> dict:
    """A training config dict for the shrunk nano model on `photos`; `sections` update single sections."""
    data = {
        "model": {"preset": "nano", "image_size": 64, "ngf": 8, "ndf": 8},
        "data": {"kind": "photos", "root": str(photos), "repeat": 2, "face_contours": "off", "pseudo_pair_probability": 0.5},
        "vgg": {"network": "off"},
        "loss": {"gan": 1.0, "gan_feat": 10.0, "feature_consistency": 10.0, "mcl": 1.0, "cycle": 1.0, "pseudo_pair": 10.0, "output_l1": 10.0},
        "optim": {"lr_generator": 2e-4, "lr_correspondence": 2e-4},
        "schedule": {"steps": 2, "decay_steps": 4},
        "train": {"batch_size": 2, "seed": 3, "device": "cpu"},
        "log": {"out": str(out), "log_every": 1, "image_every": 0, "checkpoint_every": 100, "keep_last": 3, "tensorboard": False},
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def tiny_config(photos: Path, out: Path, **sections) -> TrainConfig:
    return config_from_dict(tiny_config_dict(photos, out, **sections))
