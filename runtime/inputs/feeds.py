"""Inputs for checks, builds and comparisons of a model directory: random valid tensors (`random_feed`),
and the real photos `mclrt compare` feeds every backend and model directory (`real_feeds`).

Random tensors flatter a quantized model (their activations are unlike a photo's, and so are the
calibration ranges they hit), so sample i of a batch uses the package photos (scikit-image,
scikit-learn, matplotlib; nothing is downloaded): photo i as the exemplar, and for edge models the
Canny edges of photo i+1 as the condition -- the preprocessing `mclrt infer --extract canny` runs.
Conditions that cannot be made from a photo here (label maps, pose maps, CelebA-HQ part edges)
are random but valid maps in the declared range. Without the photo packages everything is random
and valid; `real_feeds` then says so in its `kind`.
"""

from __future__ import annotations

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ModelDir


def random_feed(specs, batch: int, rng: np.random.Generator, dtype=None) -> dict[str, np.ndarray]:
    """Random inputs inside each tensor's declared range, in `dtype` (default: each tensor's own):
    sparse binary maps for [0, 1] (like edges and one-hots), uniform values otherwise (like images in
    [-1, 1]). What `mclrt check` and the FP16 recipe feed both graphs, and `real_feeds` starts from."""
    feed = {}
    for spec in specs:
        shape = (batch, *spec.fixed_shape)
        low, high = spec.range or (-1.0, 1.0)
        if (low, high) == (0.0, 1.0):
            array = (rng.random(shape) < 0.2).astype(np.float64)
        else:
            array = rng.uniform(low, high, shape)
        feed[spec.name] = array.astype(dtype or spec.dtype)
    return feed


def real_feeds(model: ModelDir, batch: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(encoder feed, {"condition": ...}) for `batch` samples, float32, in the model's shapes."""
    from mclrt.runtime.inputs import conditions
    from mclrt.runtime.inputs.package_photos import package_photos
    from mclrt.runtime.inputs.preprocess import photo_to_tensor, resize_photo

    rng = np.random.default_rng(seed)
    encoder_feed = random_feed(model.encoder.inputs, batch, rng, np.float32)
    condition_feed = random_feed([t for t in model.translator.inputs if t.name == "condition"], batch, rng, np.float32)
    try:
        photos = [p.rgb for p in package_photos()]
    except UserError:  # the [photos] extra is missing: random valid inputs still compare the numerics
        photos = []
    size, kind = model.image_size, model.condition.kind
    for i in range(batch if photos else 0):
        exemplar = resize_photo(photos[(seed + i) % len(photos)], size)
        encoder_feed["exemplar"][i] = photo_to_tensor(exemplar)
        if kind == "edge":
            other = resize_photo(photos[(seed + i + 1) % len(photos)], size)
            condition_feed["condition"][i] = conditions.edge_map(other)
            if "exemplar_condition" in encoder_feed:
                encoder_feed["exemplar_condition"][i] = conditions.edge_map(exemplar)
    return {k: v.astype(np.float32) for k, v in encoder_feed.items()}, {k: v.astype(np.float32) for k, v in condition_feed.items()}


def describe_feeds(model: ModelDir) -> str:
    """One phrase for reports: what the inputs were."""
    if model.condition.kind == "edge":
        return "package photos as exemplars, Canny edges of other package photos as conditions"
    return f"package photos as exemplars, random valid {model.condition.kind} maps as conditions"
