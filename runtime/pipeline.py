"""A model directory's two graphs behind one object: encode an exemplar once, translate many conditions.

The exemplar encoder runs once per exemplar; its keys and values are cached and tiled to each batch
of conditions, so a video or a folder pays only for the translator per frame. Inputs are cast to the
dtypes the runners report (an FP16 graph with FP16 I/O takes half floats) and outputs come back float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from mclrt.runtime.backends import RunnerOptions, open_runners
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.runners import Runner


@dataclass(frozen=True)
class EncodedExemplar:
    keys: np.ndarray  # [B, M, C]: B = 1 for one exemplar shared by every condition
    values: np.ndarray  # [B, M, Cv]


@dataclass(frozen=True)
class Translation:
    images: np.ndarray  # float32 [B, 3, H, W] in [-1, 1]
    warped: np.ndarray  # float32 [B, 3, H, W] in [-1, 1]


class TranslationPipeline:
    def __init__(self, model: ModelDir, encoder: Runner, translator: Runner):
        self.model, self.encoder, self.translator = model, encoder, translator

    @classmethod
    def open(cls, model: ModelDir, options: RunnerOptions = RunnerOptions()) -> "TranslationPipeline":
        runners = open_runners(model, options)
        return cls(model, runners["exemplar_encoder"], runners["translator"])

    def __enter__(self) -> "TranslationPipeline":
        self.encoder.activate()
        self.translator.activate()
        return self

    def __exit__(self, *exc_info) -> None:
        self.translator.deactivate()
        self.encoder.deactivate()

    def encode(self, exemplar: np.ndarray, exemplar_condition: np.ndarray | None = None) -> EncodedExemplar:
        """exemplar [3, H, W] or [B, 3, H, W] in [-1, 1] (+ its own condition map for maskmix models)."""
        feed = {"exemplar": _batched(exemplar)}
        if self.model.condition.maskmix:
            if exemplar_condition is None:
                raise ValueError("this model's encoder also takes the exemplar's condition map")
            feed["exemplar_condition"] = _batched(exemplar_condition)
        out = _run(self.encoder, feed)
        return EncodedExemplar(out["exemplar_keys"], out["exemplar_values"])

    def translate(self, conditions: np.ndarray, exemplar: EncodedExemplar) -> Translation:
        """conditions [B, L, H, W] in [0, 1]; the exemplar is tiled to B when it was encoded alone."""
        conditions = _batched(conditions)
        batch = conditions.shape[0]
        keys, values = exemplar.keys, exemplar.values
        if keys.shape[0] == 1 and batch > 1:
            keys, values = np.repeat(keys, batch, axis=0), np.repeat(values, batch, axis=0)
        if keys.shape[0] != batch:
            raise ValueError(f"{keys.shape[0]} encoded exemplars for {batch} conditions")
        out = _run(self.translator, {"condition": conditions, "exemplar_keys": keys, "exemplar_values": values})
        return Translation(out["image"], out["warped_exemplar"])


def _batched(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array[None] if array.ndim == 3 else array


def _run(runner: Runner, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    metadata = runner.input_metadata()
    cast = {name: np.ascontiguousarray(value, dtype=metadata[name].dtype) for name, value in feed.items()}
    return {name: value.astype(np.float32, copy=False) for name, value in runner.infer(cast).items()}


def correspondence_colours(model: ModelDir) -> tuple[np.ndarray, np.ndarray]:
    """A colour per exemplar position (x -> red, y -> green, blue falls along the diagonal), as
    exemplar values [1, M, Cv] and as a picture [3, H, W] in [-1, 1].

    Fed to the translator in place of the exemplar's pixels, these make its `warped_exemplar` output a
    correspondence map: each output pixel shows the colour of the exemplar position it matched. For
    the 4x4-patch warp (Cv = 48) every pixel of a patch gets its position's colour, channel-major as
    torch's unfold lays patches out.
    """
    height, width = model.image_size
    positions, value_width = model.manifest.correspondence.positions, model.manifest.correspondence.value_width
    stride = int(round((height * width / positions) ** 0.5))
    rows, cols = height // stride, width // stride
    if rows * cols != positions or value_width % 3:
        raise ValueError(f"cannot lay {positions} positions of width {value_width} on a {height}x{width} image")
    y, x = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    field = np.stack([x, y, -(x + y) / 2]).astype(np.float32)  # [3, rows, cols]
    per_pixel = value_width // 3
    values = np.repeat(field.reshape(3, -1).T, per_pixel, axis=1)  # [M, 3 * per_pixel], channel-major
    picture = np.repeat(np.repeat(field, stride, axis=1), stride, axis=2)
    return values[None], picture
