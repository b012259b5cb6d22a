"""Build exemplar retrieval lists for a dataset: each image's K nearest neighbours, most similar first.

    python -m mclrt.tools.retrieval_lists IMAGES_DIR --out ref.txt --k 10 [--features vgg19|vgg16|pixels]

The output is CoCosNet's format (`<name>,<ref1>,...,<refK>`, names relative to IMAGES_DIR), read by
`mclrt.training.data`: the first reference is the "easy" exemplar, the last the "hard" one. Point
IMAGES_DIR at the folder whose relative paths the dataset uses as names: ADE20K `images/training`,
CelebA-HQ `CelebA-HQ-img`, DeepFashion's root (names `img/...`).

Similarity is the cosine of globally average-pooled VGG features -- CoCosNet's maintainers describe
using VGG features after the last max-pool (issue #10); `mclrt.training.vgg` stops at relu5_2
(VGG-19) / relu5_3 (VGG-16), whose pooled activations serve the same purpose. `pixels` (cosine of
16x16 thumbnails with the mean colour removed) needs no weights and is a weak baseline: it finds
images with similar colour layout, not similar content; use it for tests and quick experiments only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import cv2
import numpy as np
import typer
from rich.progress import track

from mclrt.runtime.inputs.conditions import list_images, load_rgb
from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_path, check_writable
from mclrt.tools._cli import run_tool

# uint8 RGB images [B, S, S, 3] -> features [B, D]
FeatureFn = Callable[[np.ndarray], np.ndarray]


def pixel_features(images: np.ndarray, thumbnail: int = 16) -> np.ndarray:
    """Weak baseline: 16x16 thumbnails, each image's mean colour removed, flattened."""
    small = np.stack([cv2.resize(image, (thumbnail, thumbnail), interpolation=cv2.INTER_AREA) for image in images])
    small = small.reshape(len(images), -1).astype(np.float32)
    return small - small.mean(axis=1, keepdims=True)


def vgg_features(architecture: str = "vgg19", weights: Path | None = None, sha256: str | None = None) -> FeatureFn:
    """Pooled deepest VGG features; weights are found and verified by `mclrt.training.vgg`."""
    import torch

    from mclrt.training.vgg import VGG16, VGG19, load_vgg_features

    model = load_vgg_features(VGG19 if architecture == "vgg19" else VGG16, weights, sha256=sha256)

    def features(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        with torch.inference_mode():
            deepest = model(batch)[-1]
        return deepest.mean(dim=(2, 3)).numpy()

    return features


def nearest_neighbours(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """[N, k] indices of each row's k most cosine-similar other rows, most similar first.

    Works in chunks of rows, so 30 000 images need 30 000 x `chunk` floats at a time, not N x N.
    Ties are broken by index, so the result is deterministic.
    """
    count = len(features)
    if not 0 < k < count:
        raise UserError(f"--k must be between 1 and the number of images - 1 ({count - 1}), got {k}")
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    result = np.empty((count, k), np.int64)
    for start in range(0, count, chunk):
        similarity = unit[start : start + chunk] @ unit.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, start + rows] = -np.inf  # never your own neighbour
        # stable sort on -similarity keeps equal similarities in index order
        result[start : start + chunk] = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return result


def build_retrieval_lists(
    images_dir: Path, features: FeatureFn, k: int, size: int = 224, batch_size: int = 16
) -> list[tuple[str, list[str]]]:
    """(name, references) for every image under `images_dir`, names relative to it."""
    paths = list_images(images_dir)
    if len(paths) < 2:
        raise UserError(f"holds {len(paths)} image(s); retrieval needs at least 2", images_dir)
    names = [path.relative_to(images_dir).as_posix() for path in paths]
    chunks = []
    for start in track(range(0, len(paths), batch_size), description="features", transient=True, disable=not sys.stderr.isatty()):
        batch = [
            cv2.resize(load_rgb(path), (size, size), interpolation=cv2.INTER_AREA) for path in paths[start : start + batch_size]
        ]
        chunks.append(np.asarray(features(np.stack(batch)), np.float32))
    neighbours = nearest_neighbours(np.concatenate(chunks), k)
    return [(names[i], [names[j] for j in neighbours[i]]) for i in range(len(names))]


def write_retrieval_list(lines: list[tuple[str, list[str]]], out: Path, overwrite: bool = False) -> None:
    from mclrt.training.data.lists import format_reference_line

    text = "".join(format_reference_line(name, refs) + "\n" for name, refs in lines)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


class Features(str, Enum):
    vgg19 = "vgg19"
    vgg16 = "vgg16"
    pixels = "pixels"


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def retrieval_lists(
    images_dir: Path = typer.Argument(..., help="Folder of images; names in the list are relative to it."),
    out: Path = typer.Option(..., "--out", help="The retrieval list to write, e.g. ade20k_ref.txt."),
    k: int = typer.Option(10, "--k", help="References per image (CoCosNet's lists have 10)."),
    features: Features = typer.Option(Features.vgg19, "--features", help="vgg19 / vgg16 (need weights) or pixels (weak baseline)."),
    weights: Path | None = typer.Option(None, "--weights", help="VGG weights file (else $MCLRT_VGG19/$MCLRT_VGG16 or the torch hub cache)."),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected SHA-256 (or 8+ hex digit prefix) of a weights file whose name carries none."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Write each image's K nearest neighbours (cosine of pooled VGG features), most similar first."""
    if out.exists() and not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", out)
    check_writable(out)
    if features is Features.pixels:
        feature_fn, size = pixel_features, 64
    else:
        feature_fn, size = vgg_features(features.value, weights, sha256), 224
    lines = build_retrieval_lists(images_dir, feature_fn, k, size=size)
    write_retrieval_list(lines, out, overwrite=overwrite)
    print(f"wrote {len(lines)} lines of {k} references to {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_tool(app, argv)


if __name__ == "__main__":
    sys.exit(main())
