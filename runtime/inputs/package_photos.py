"""Real photos that ship inside installed Python packages: the demo's training set and the tests' images.

Nothing is downloaded: scikit-image, scikit-learn and matplotlib carry these files in their wheels
(the `[photos]` extra). Only natural photos with a stated free licence are listed; scikit-image's
stereo motorcycle pair (Middlebury 2014, no licence stated), microscopy and space images are left out.
Note that scikit-learn's two photos are CC BY 2.0 (attribution required), not public domain.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from mclrt.runtime.errors import UserError


class PackagePhoto(NamedTuple):
    name: str
    rgb: np.ndarray  # uint8 [H, W, 3], read-only
    licence: str


_SKIMAGE_PHOTOS = {
    "astronaut": "public domain (NASA; Eileen Collins)",
    "chelsea": "CC0 (photo: Stefan van der Walt)",
    "coffee": "CC0 (photo: Rachel Michetti)",
    "rocket": "public domain (SpaceX, DSCOVR launch on Falcon 9)",
}
_SKLEARN_PHOTOS = {
    "china.jpg": "CC BY 2.0 (danielbuechele on Flickr; via scikit-learn)",
    "flower.jpg": "CC BY 2.0 (vultilion on Flickr; via scikit-learn)",
}
_MATPLOTLIB_PHOTOS = {"grace_hopper.jpg": "public domain (U.S. Navy photo; via matplotlib sample_data)"}


def package_photos() -> list[PackagePhoto]:
    """The photos in a fixed order: astronaut, chelsea, coffee, rocket, china, flower, grace_hopper."""
    return list(_load_all())


@functools.lru_cache(maxsize=1)
def _load_all() -> tuple[PackagePhoto, ...]:
    try:
        import matplotlib.cbook
        import skimage.data
        from sklearn.datasets import load_sample_image
    except ImportError as err:
        raise UserError(
            f"the package photos need scikit-image, scikit-learn and matplotlib ({err.name} is missing): "
            "pip install 'mclrt[photos]'"
        ) from err
    from mclrt.runtime.inputs.image_io import load_rgb

    photos = [(name, getattr(skimage.data, name)(), licence) for name, licence in _SKIMAGE_PHOTOS.items()]
    photos += [(name.removesuffix(".jpg"), load_sample_image(name), licence) for name, licence in _SKLEARN_PHOTOS.items()]
    photos += [
        (name.removesuffix(".jpg"), load_rgb(matplotlib.cbook.get_sample_data(name, asfileobj=False)), licence)
        for name, licence in _MATPLOTLIB_PHOTOS.items()
    ]
    frozen = []
    for name, rgb, licence in photos:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        rgb.flags.writeable = False  # shared by every caller of the cache
        frozen.append(PackagePhoto(name, rgb, licence))
    return tuple(frozen)


__all__ = ["PackagePhoto", "package_photos"]
