"""`mclrt eval images`: the papers' image-quality metrics on folders of images.

- distribution metrics, generated (`--pred`) vs real (`--real`) images, unpaired: FID and KID (Inception
  features, `inception.py`), SWD (patch statistics, no network);
- paired metrics, each generated image against the real image of the same name (path without suffix):
  LPIPS and the semantic consistency; and, with `--exemplars`, against the exemplar of the same name:
  colour and texture relevance (`metrics/vgg_scores.py`).

Every image is read and checked, and every weight file found and SHA-256-checked, before any metric
runs; a missing file is one line naming it and where to get it. All images are resized to the size of
the first generated image (area when shrinking, bilinear when enlarging).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES, list_images, load_rgb

ALL_METRICS = ("fid", "kid", "swd", "lpips", "semantic", "style")
NEEDS = {"fid": "inception", "kid": "inception", "lpips": "lpips", "semantic": "vgg", "style": "vgg"}
HIGHER_IS_BETTER = {"fid": False, "kid": False, "swd": False, "lpips": False, "semantic": True, "colour": True, "texture": True}


@dataclass(frozen=True)
class Weights:
    inception: Path | None = None
    inception_sha256: str | None = None
    vgg: Path | None = None
    vgg_sha256: str | None = None
    lpips: Path | None = None
    lpips_sha256: str | None = None


def read_folder(
    folder: Path, size: tuple[int, int] | None, what: str, generated: bool = False, alpha: str | None = None
) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """{path without suffix: RGB uint8 at `size`} of every image under `folder` (size None: the first image's).

    With `generated` (--pred), the side files `mclrt infer` writes next to each image (`<stem>_warp.png`,
    `_corr.png`, `_cond.png`, whose `<stem>.png` is there too) are not generated images: they are left
    out, and one warning line says how many. `alpha`: None refuses images with transparent pixels; a
    colour (--alpha flatten --alpha-colour) flattens them onto it."""
    paths = list_images(folder)
    if generated:
        from mclrt.runtime.jobs.infer import SIDE_SUFFIXES
        from mclrt.runtime.notices import warn

        names = {p.with_suffix("").as_posix() for p in paths}
        side = [p for p in paths if any(p.stem.endswith(s) and (p.with_suffix("").as_posix()[: -len(s)]) in names for s in SIDE_SUFFIXES)]
        if side:
            warn(f"left out {len(side)} side file(s) of mclrt infer ({', '.join('*' + s + '.png' for s in SIDE_SUFFIXES)}): not generated images", folder)
            paths = [p for p in paths if p not in set(side)]
    if not paths:
        raise UserError(f"holds no images ({', '.join(IMAGE_SUFFIXES)}) for {what}", folder)
    images: dict[str, np.ndarray] = {}
    for path in paths:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in images:
            raise UserError(f"two images share the name {key!r} (different suffixes); keep one", path)
        rgb = load_rgb(path, alpha)
        size = size or rgb.shape[:2]
        images[key] = _resized(rgb, size)
    return images, size


def _resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == tuple(size):
        return rgb
    shrinking = rgb.shape[0] > size[0] or rgb.shape[1] > size[1]
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _paired(pred: dict[str, np.ndarray], other: dict[str, np.ndarray], folder: Path, pred_folder: Path) -> list[np.ndarray]:
    missing = [key for key in pred if key not in other]
    if missing:
        raise UserError(f"{folder} has no image named {missing[0]!r} (every generated image needs its counterpart)", pred_folder / missing[0])
    return [other[key] for key in pred]


def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 [H, W, 3] list -> float [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


def _batched(function, *tensors: torch.Tensor, batch: int):
    with torch.no_grad():
        return [function(*(t[i : i + batch] for t in tensors)) for i in range(0, len(tensors[0]), batch)]


def evaluate_images(
    pred_dir: Path,
    real_dir: Path,
    exemplars_dir: Path | None = None,
    metrics: tuple[str, ...] | None = None,
    weights: Weights = Weights(),
    batch: int = 8,
    alpha: str | None = None,
) -> dict:
    metrics = tuple(metrics or [m for m in ALL_METRICS if m != "style" or exemplars_dir is not None])
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise UserError(f"--metrics: unknown {unknown[0]!r}; choose from {', '.join(ALL_METRICS)}")
    if "style" in metrics and exemplars_dir is None:
        raise UserError("the style metrics compare each generated image with its exemplar: pass --exemplars DIR")

    # Weights first: a missing or wrong file should stop the command before any image is read.
    inception = lpips = vgg = None
    if {"fid", "kid"} & set(metrics):
        from mclrt.training.eval.inception import load_fid_inception

        inception = load_fid_inception(weights.inception, weights.inception_sha256)
    if "lpips" in metrics:
        from mclrt.training.eval.metrics.lpips import load_lpips

        lpips = load_lpips(weights.lpips, weights.lpips_sha256)
    if {"semantic", "style"} & set(metrics):
        vgg = _load_vgg19(weights)

    pred, size = read_folder(pred_dir, None, "--pred", generated=True, alpha=alpha)
    real, _ = read_folder(real_dir, size, "--real", alpha=alpha)
    exemplars = read_folder(exemplars_dir, size, "--exemplars", alpha=alpha)[0] if exemplars_dir is not None and "style" in metrics else None
    if len(pred) < 2 or len(real) < 2:
        raise UserError("FID, KID and SWD compare distributions: give at least 2 images in --pred and in --real")
    pred_list, real_list = list(pred.values()), list(real.values())
    results: dict = {}

    if inception is not None:
        from mclrt.training.eval.metrics.fid import frechet_distance
        from mclrt.training.eval.metrics.kid import kernel_inception_distance

        def features(images: list[np.ndarray]) -> torch.Tensor:
            uint8 = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())
            return torch.cat(_batched(inception, uint8, batch=batch)).double()

        real_features, pred_features = features(real_list), features(pred_list)
        if "fid" in metrics:
            results["fid"] = frechet_distance(real_features, pred_features)
        if "kid" in metrics:
            mean, std = kernel_inception_distance(real_features, pred_features)
            results["kid"] = mean
            results["kid_std"] = std
    if "swd" in metrics:
        from mclrt.training.eval.metrics.swd import swd

        results["swd"] = swd(real_list, pred_list)
    pred_tensor = _tensor(pred_list)
    if lpips is not None:
        paired_real = _tensor(_paired(pred, real, real_dir, pred_dir))
        results["lpips"] = float(torch.cat(_batched(lpips, pred_tensor, paired_real, batch=batch)).mean())
    if vgg is not None:
        from mclrt.training.eval.metrics import vgg_scores

        pred_features_vgg = [torch.cat(f) for f in zip(*_batched(vgg, pred_tensor, batch=batch))]
        if "semantic" in metrics:
            real_features_vgg = [torch.cat(f) for f in zip(*_batched(vgg, _tensor(_paired(pred, real, real_dir, pred_dir)), batch=batch))]
            results["semantic"] = float(vgg_scores.semantic_consistency(pred_features_vgg, real_features_vgg).mean())
        if "style" in metrics:
            exemplar_features = [torch.cat(f) for f in zip(*_batched(vgg, _tensor(_paired(pred, exemplars, exemplars_dir, pred_dir)), batch=batch))]
            results["colour"] = float(vgg_scores.colour_relevance(pred_features_vgg, exemplar_features).mean())
            results["texture"] = float(vgg_scores.texture_relevance(pred_features_vgg, exemplar_features).mean())
    return {
        "pred": str(pred_dir),
        "real": str(real_dir),
        "exemplars": None if exemplars_dir is None else str(exemplars_dir),
        "images": {"pred": len(pred), "real": len(real)},
        "size": list(size),
        "metrics": results,
        "higher_is_better": {k: v for k, v in HIGHER_IS_BETTER.items() if k in results},
    }


def _load_vgg19(weights: Weights):
    from mclrt.training.vgg import VGG19, load_vgg_features, locate_vgg_weights

    if locate_vgg_weights(VGG19, weights.vgg) is None:
        raise UserError(
            "the semantic and style scores need VGG-19 weights: download CoCosNet's vgg19_conv.pth or torchvision's "
            "vgg19-dcbb9e9d.pth and pass --vgg /path/to/it (or set MCLRT_VGG19)"
        )
    return load_vgg_features(VGG19, weights.vgg, sha256=weights.vgg_sha256)
