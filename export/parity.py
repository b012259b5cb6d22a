"""Do the exported graphs compute what the PyTorch model computes? ONNX Runtime (CPU) against eager.

Each graph is compared on its own, fed the same inputs in both worlds: the encoder on the exemplar
(and its condition map for maskmix presets), the translator on the condition plus the *PyTorch*
encoder's keys and values, so an error is pinned to the graph that makes it. Every batch size runs
through one ONNX Runtime session per graph, which also proves the batch dimension is dynamic.

Inputs: sample 0 of every batch is real -- a package photo (scikit-image's astronaut) as exemplar and,
for edge presets, its Canny edges made by the runtime's own preprocessing -- and the rest are random
but valid (uniform images in [-1, 1]; blocky random one-hot label maps; random binary edge maps;
random pose maps in [0, 1]).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mclrt.runtime.inputs import conditions
from mclrt.runtime.model_dir import GRAPH_FILES
from mclrt.runtime.inputs.package_photos import package_photos
from mclrt.runtime.inputs.preprocess import photo_to_tensor, resize_photo
from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions
from mclrt.training.config import ModelConfig
from mclrt.training.networks import MCLNet

# Label maps are drawn on a coarse grid and upsampled, so regions look like segments, not noise.
_LABEL_CELL = 16
_EDGE_DENSITY = 0.08


@dataclass(frozen=True)
class ParityOptions:
    batches: tuple[int, ...] = (1, 3)
    tolerance: float = 1e-4  # max abs error on outputs in [-1, 1]
    seed: int = 0
    photo: str = "astronaut"


@dataclass(frozen=True)
class OutputParity:
    graph: str
    output: str
    batch: int
    max_abs_error: float


@dataclass
class ParityReport:
    tolerance: float
    outputs: list[OutputParity] = field(default_factory=list)
    ort_seconds_per_image: dict[str, float] = field(default_factory=dict)  # the largest batch, per graph

    @property
    def ok(self) -> bool:
        # `not error > tol` would let NaN through; NaN must fail.
        return all(o.max_abs_error <= self.tolerance for o in self.outputs)

    @property
    def worst(self) -> OutputParity:
        return max(self.outputs, key=lambda o: (np.nan_to_num(o.max_abs_error, nan=np.inf)))

    def failures(self) -> list[OutputParity]:
        return [o for o in self.outputs if not o.max_abs_error <= self.tolerance]

    def summary(self) -> str:
        worst = self.worst
        return f"max abs error {worst.max_abs_error:.2g} ({worst.graph}.{worst.output}, batch {worst.batch}; tolerance {self.tolerance:g})"


def parity_inputs(config: ModelConfig, batch: int, seed: int = 0, photo: str = "astronaut") -> dict[str, np.ndarray]:
    """`exemplar`, `condition` and (maskmix) `exemplar_condition`, float32 NCHW; sample 0 is real."""
    size = (config.image_size, config.image_size)
    rng = np.random.default_rng(seed)
    rgb = resize_photo(_photo(photo), size)
    exemplar = [photo_to_tensor(rgb)]
    exemplar += [rng.uniform(-1.0, 1.0, (3, *size)).astype(np.float32) for _ in range(batch - 1)]
    real_condition = conditions.edge_map(rgb) if config.condition_kind == "edge" else _random_condition(config, rng)
    condition = [real_condition] + [_random_condition(config, rng) for _ in range(batch - 1)]
    feed = {"exemplar": np.stack(exemplar), "condition": np.stack(condition).astype(np.float32)}
    if config.maskmix:
        feed["exemplar_condition"] = np.stack([_random_condition(config, rng) for _ in range(batch)]).astype(np.float32)
    return feed


def _photo(name: str) -> np.ndarray:
    for photo in package_photos():
        if photo.name == name:
            return photo.rgb
    raise ValueError(f"no package photo named {name!r}")


def _random_condition(config: ModelConfig, rng: np.random.Generator) -> np.ndarray:
    size = config.image_size
    if config.condition_kind == "label":
        cells = -(-size // _LABEL_CELL)
        coarse = rng.integers(0, config.label_nc, (cells, cells))
        ids = np.kron(coarse, np.ones((_LABEL_CELL, _LABEL_CELL), dtype=coarse.dtype))[:size, :size]
        return conditions.onehot_labels(ids, config.label_nc)
    if config.condition_kind == "pose":
        return rng.uniform(0.0, 1.0, (config.label_nc, size, size)).astype(np.float32)
    # edge and celeba-edge: sparse binary maps
    return (rng.uniform(size=(config.label_nc, size, size)) < _EDGE_DENSITY).astype(np.float32)


def check_parity(model: MCLNet, model_dir: str | Path, options: ParityOptions = ParityOptions()) -> ParityReport:
    """Compare both graphs in `model_dir` with `model` (eval mode, spectral norm folded)."""
    config: ModelConfig = model.cfg
    model_dir = Path(model_dir)
    report = ParityReport(options.tolerance)
    cpu_only = OrtOptions(providers=(CPU_EP,))
    with OnnxRuntimeRunner(model_dir / GRAPH_FILES["exemplar_encoder"], cpu_only, name="exemplar_encoder") as encoder, \
            OnnxRuntimeRunner(model_dir / GRAPH_FILES["translator"], cpu_only, name="translator") as translator:
        for batch in options.batches:
            feed = parity_inputs(config, batch, options.seed, options.photo)
            encoder_feed = {k: feed[k] for k in ("exemplar", "exemplar_condition") if k in feed}
            with torch.no_grad():
                keys, values = model.encode_exemplar(*(torch.from_numpy(encoder_feed[k]) for k in encoder_feed))
            started = time.perf_counter()
            ort_encoded = encoder.infer(encoder_feed)
            report.ort_seconds_per_image["exemplar_encoder"] = (time.perf_counter() - started) / batch
            report.outputs += _compare("exemplar_encoder", batch, {"exemplar_keys": keys, "exemplar_values": values}, ort_encoded)

            condition = torch.from_numpy(feed["condition"])
            with torch.no_grad():
                image, warped = model.translate(condition, keys, values)
            translator_feed = {"condition": feed["condition"], "exemplar_keys": keys.numpy(), "exemplar_values": values.numpy()}
            started = time.perf_counter()
            ort_translated = translator.infer(translator_feed)
            report.ort_seconds_per_image["translator"] = (time.perf_counter() - started) / batch
            report.outputs += _compare("translator", batch, {"image": image, "warped_exemplar": warped}, ort_translated)
    return report


def _compare(graph: str, batch: int, expected: dict[str, torch.Tensor], got: dict[str, np.ndarray]) -> list[OutputParity]:
    results = []
    for name, want in expected.items():
        have = got[name]
        if have.shape != tuple(want.shape):
            raise RuntimeError(f"{graph}.{name}: ONNX Runtime gave shape {have.shape}, PyTorch {tuple(want.shape)}")
        error = float(np.max(np.abs(have.astype(np.float64) - want.numpy().astype(np.float64))))
        results.append(OutputParity(graph, name, batch, error))
    return results
