"""The Python API: one object a notebook, a service or a script holds.

    from mclrt.runtime import Translator

    with Translator("runtime/models/demo", backend="ort") as model:   # load the directory, open its runners
        style = model.encode("exemplar.jpg")                            # the exemplar, encoded once
        result = model.translate("photo_or_edge_map.png", style)        # one image
        result.image                                                    # uint8 [H, W, 3]
        results = model.translate_batch(["a.png", "b.png"], style)     # several, in batches
        for result in model.stream(frames, style):                      # frames: RGB uint8 arrays
            ...

`mclrt infer`, `mclrt video`, the demo (`make demo`) and the video benchmark are thin users of this
object (through runtime/jobs/), so what a notebook does and what a command does are one code path.

What it takes, everywhere a condition or an exemplar is asked for:
- a path: read with the command line's rules (runtime/inputs/preprocess.py): condition maps (edge
  images, label PNGs, .npy arrays, pose files) as they are, photos through the model's extractor;
- an RGB uint8 array [H, W, 3]: a photo (or, for an edge model, a black-and-white edge map);
- for conditions, a float array [L, H, W] in [0, 1] at the model's size: the map itself.
Edge maps are white lines on black; one that is mostly white (black lines on white) is inverted, with
one warning line (`invert`: auto, yes, no). Pictures with transparency are refused unless `alpha` names
a colour to flatten them onto. Inputs too small for the model (runtime/inputs/limits.py) are refused.
Inputs of another aspect ratio are fitted (`fit`: crop, pad or stretch). Bad input raises
`mclrt.runtime.errors.UserError`, whose message names the input and the problem.

No torch here: this runs where only the runtime is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np

from mclrt.runtime.backends import Device, RunnerOptions
from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.inputs.fit import Placement, check_fit, placement
from mclrt.runtime.inputs.image_io import parse_colour
from mclrt.runtime.inputs.preprocess import (
    ConditionSource,
    check_extract,
    check_invert,
    condition_from_rgb_placed,
    load_condition_placed,
    load_exemplar,
)
from mclrt.runtime.model_dir import ModelDir, load_model_dir
from mclrt.runtime.pipeline import EncodedExemplar, TranslationPipeline
from mclrt.runtime.runners import RunnerError

# What a condition or an exemplar may be given as (see the module docstring).
Picture = Union[str, os.PathLike, np.ndarray]


@dataclass(frozen=True)
class Style:
    """An encoded exemplar: reuse it for every condition that should look like it."""

    encoded: EncodedExemplar
    rgb: np.ndarray  # uint8 [H, W, 3]: the exemplar at the model's size (for pictures)


@dataclass(frozen=True)
class Condition:
    """What the model sees for one input: the map, and where the input landed in the model's frame."""

    map: np.ndarray  # float32 [L, H, W] in [0, 1]
    placement: Placement


@dataclass(frozen=True)
class Result:
    image: np.ndarray  # uint8 [H, W, 3]: the translated image
    warped: np.ndarray  # uint8 [H, W, 3]: the exemplar warped onto the condition by the correspondence
    condition: Condition


class Translator:
    """A model directory with its runners: load once, encode an exemplar once, translate many conditions.

    `backend`: auto (TensorRT where it runs, else ONNX Runtime), ort, trt. `device`: auto or cpu
    (ONNX Runtime's CPU provider only). `extract`: how photos become conditions (auto: the model's own
    extractor; canny, face, pose; none: conditions are maps). `invert`: edge-map polarity (auto inverts a
    mostly white map; yes; no). `alpha`: None refuses transparent pictures; a colour ('white', '#rrggbb')
    flattens them onto it. The runners open on first use, or with
    `open()` / `with`; `close()` frees them.
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelDir,
        backend: str = "auto",
        *,
        precision: str | None = None,
        device: str = "auto",
        threads: int = 0,
        extract: str = "auto",
        fit: str = "crop",
        invert: str = "auto",
        alpha: str | None = None,
    ):
        self.model = model if isinstance(model, ModelDir) else load_model_dir(model)
        self.options = RunnerOptions(backend=str(getattr(backend, "value", backend)), precision=precision, device=Device(device), threads=threads)
        check_extract(extract, self.model.condition)
        check_fit(fit)
        check_invert(invert)
        if alpha is not None:
            parse_colour(alpha)  # a bad colour is refused before any work
        self.extract, self.fit, self.invert, self.alpha = extract, fit, invert, alpha
        self._pipeline: TranslationPipeline | None = None

    # --- life cycle -------------------------------------------------------------------------------
    def open(self) -> "Translator":
        if self._pipeline is None:
            pipeline = TranslationPipeline.open(self.model, self.options)
            try:
                pipeline.__enter__()
            except RunnerError as err:
                pipeline.__exit__(None, None, None)
                raise UserError(str(err), self.model.path) from err
            self._pipeline = pipeline
        return self

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.__exit__(None, None, None)
            self._pipeline = None

    def __enter__(self) -> "Translator":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def pipeline(self) -> TranslationPipeline:
        return self.open()._pipeline

    @property
    def backend(self) -> str:
        """What runs the graphs, e.g. 'onnxruntime (CPUExecutionProvider)'."""
        from mclrt.runtime.backends import describe

        return describe(self.pipeline.translator)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.model.image_size

    # --- inputs -----------------------------------------------------------------------------------
    def condition(self, source: Picture | ConditionSource, extract: str | None = None) -> Condition:
        """The condition map the model sees for `source` (a path, a photo array or a map; or a found
        input file, as `find_condition_sources` lists them, pose keypoint pairs included)."""
        spec, size, how = self.model.condition, self.model.image_size, extract or self.extract
        if isinstance(source, (str, os.PathLike)):
            source = ConditionSource(Path(source).stem, Path(source))
        if isinstance(source, ConditionSource):
            return Condition(*load_condition_placed(source, spec, size, how, self.fit, self.invert, self.alpha))
        array = np.asarray(source)
        if array.dtype.kind == "f":
            return Condition(self._checked_map(array), placement(size, size, "stretch"))
        return Condition(*condition_from_rgb_placed(_rgb(array), spec, size, how, self.fit, None, self.invert))

    def _checked_map(self, array: np.ndarray) -> np.ndarray:
        want = (self.model.condition.channels, *self.model.image_size)
        if array.shape != want:
            raise UserError(f"a condition map must be float [L, H, W] = {list(want)} for this model, not {list(array.shape)}")
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise UserError("a condition map holds values in [0, 1]")
        return np.ascontiguousarray(array, dtype=np.float32)

    def encode(self, exemplar: Picture, exemplar_condition: Picture | None = None) -> Style:
        """Encode the exemplar once. A maskmix model also needs the exemplar's own condition map:
        `exemplar_condition` when given, else extracted from the photo with the model's extractor."""
        spec, size = self.model.condition, self.model.image_size
        if exemplar_condition is not None and not isinstance(exemplar_condition, (str, os.PathLike)):
            exemplar_condition = self.condition(exemplar_condition).map  # a photo array or a map, as for conditions
        source = exemplar if isinstance(exemplar, (str, os.PathLike)) else _rgb(np.asarray(exemplar))
        prepared = load_exemplar(source, spec, size, self.extract, exemplar_condition, self.fit, self.invert, self.alpha)
        try:
            encoded = self.pipeline.encode(prepared.tensor, prepared.condition)
        except RunnerError as err:
            raise UserError(str(err), self.model.path) from err
        return Style(encoded, prepared.rgb)

    # --- translating ------------------------------------------------------------------------------
    def translate(self, condition: Picture | Condition, style: Style) -> Result:
        """One condition in the style of `style`."""
        return self.translate_batch([condition], style)[0]

    def translate_batch(self, conditions: Sequence[Picture | Condition], style: Style, batch: int = 8) -> list[Result]:
        """Several conditions, `batch` per translator run (the encoded exemplar is tiled, not re-encoded)."""
        prepared = [c if isinstance(c, Condition) else self.condition(c) for c in conditions]
        results: list[Result] = []
        for first in range(0, len(prepared), max(1, batch)):
            chunk = prepared[first : first + batch]
            images, warped = self.translate_maps(np.stack([c.map for c in chunk]), style)
            results += [Result(to_uint8_rgb(images[i]), to_uint8_rgb(warped[i]), c) for i, c in enumerate(chunk)]
        return results

    def translate_maps(self, maps: np.ndarray, style: Style | EncodedExemplar) -> tuple[np.ndarray, np.ndarray]:
        """The graphs' own view: condition maps [B, L, H, W] -> (images, warped exemplars), float32
        [B, 3, H, W] in [-1, 1]. `style` may also be an EncodedExemplar (e.g. correspondence colours)."""
        encoded = style.encoded if isinstance(style, Style) else style
        try:
            translation = self.pipeline.translate(maps, encoded)
        except RunnerError as err:
            raise UserError(str(err), self.model.path) from err
        return translation.images, translation.warped

    def stream(self, frames: Iterable[Picture], style: Style, batch: int = 1) -> Iterator[Result]:
        """Translate frames as they come (a generator), `batch` at a time; the exemplar stays encoded."""
        pending: list[Condition] = []
        for frame in frames:
            pending.append(self.condition(frame))
            if len(pending) == batch:
                yield from self.translate_batch(pending, style, batch)
                pending = []
        if pending:
            yield from self.translate_batch(pending, style, batch)


def _rgb(array: np.ndarray) -> np.ndarray:
    """An RGB uint8 [H, W, 3] picture from a uint8 array (grey [H, W] is repeated to three channels)."""
    if array.dtype != np.uint8:
        raise UserError(f"a picture array must be uint8 RGB [H, W, 3] (or a float condition map), not {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise UserError(f"a picture array must be RGB [H, W, 3], not {list(array.shape)}")
    return np.ascontiguousarray(array)
