"""Latency and memory of a model directory, comparable run against run.

Four stages, each warmed up and then timed `runs` times; reported per image (run time / batch):
- exemplar_encoder: the encoder graph alone;
- translator: the translator graph alone (keys/values already encoded);
- end_to_end: what a new exemplar costs -- resize and normalize the exemplar photo, encode it,
  translate the condition, convert the output to uint8 (a maskmix model's exemplar condition map
  is made once, outside the timing);
- end_to_end_cached_exemplar: what each further frame costs once the exemplar is encoded --
  translate + convert to uint8 (the video path).
Memory is the process's peak resident set (getrusage), read after loading and after each stage;
peaks only grow, so each stage's number is the peak so far, in stage order.

Inputs are synthetic but valid: conditions drawn from a package photo (edges for edge models, a
quantized label map, a standing skeleton for pose, ...), the exemplar another package photo; with
no photo packages installed, a drawn test pattern stands in.
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import cv2
import numpy as np

from mclrt.runtime.inputs import conditions
from mclrt.runtime.backends import Backend, RunnerOptions, describe
from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.model_dir import ConditionSpec, ModelDir, load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.inputs.preprocess import photo_to_tensor, resize_photo

STAGES = ("exemplar_encoder", "translator", "end_to_end", "end_to_end_cached_exemplar")


@dataclass(frozen=True)
class BenchOptions:
    backend: Backend = Backend.auto
    batch: int = 1
    runs: int = 20
    warmup: int = 3
    threads: int = 0


@dataclass(frozen=True)
class Latency:
    median_ms: float  # per image
    min_ms: float  # per image


@dataclass
class BenchResult:
    model: str
    preset: str
    precision: str
    backend: str
    batch: int
    runs: int
    warmup: int
    threads: int
    latency_ms_per_image: dict[str, Latency] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def time_per_image(step: Callable[[], object], batch: int, runs: int, warmup: int) -> Latency:
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        samples.append((time.perf_counter() - start) * 1000.0 / batch)
    return Latency(statistics.median(samples), min(samples))


def run_benchmark(model_path, options: BenchOptions = BenchOptions()) -> BenchResult:
    import onnxruntime

    if options.batch < 1 or options.runs < 1 or options.warmup < 0:
        raise UserError("--batch and --runs must be at least 1, --warmup at least 0")
    model = load_model_dir(model_path)
    with TranslationPipeline.open(model, RunnerOptions(backend=options.backend, threads=options.threads)) as pipeline:
        result = BenchResult(
            model=str(model_path),
            preset=model.manifest.preset,
            precision=model.manifest.precision,
            backend=describe(pipeline.translator),
            batch=options.batch,
            runs=options.runs,
            warmup=options.warmup,
            threads=options.threads,
            versions={"onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "python": platform.python_version()},
        )
        result.peak_rss_mib["after_load"] = peak_rss_mib()
        steps = stage_steps(pipeline, model, options.batch)
        for stage in STAGES:
            result.latency_ms_per_image[stage] = time_per_image(steps[stage], options.batch, options.runs, options.warmup)
            result.peak_rss_mib[stage] = peak_rss_mib()
    return result


def stage_steps(pipeline: TranslationPipeline, model: ModelDir, batch: int) -> dict[str, Callable[[], object]]:
    """The four timed stages (see the module docstring) of one open pipeline, inputs prepared."""
    size, spec = model.image_size, model.condition
    exemplar_photo, condition_photo = _bench_photos()
    exemplars = np.repeat(photo_to_tensor(resize_photo(exemplar_photo, size))[None], batch, axis=0)
    conditions_batch = np.repeat(synthetic_condition(spec, size, condition_photo)[None], batch, axis=0)
    # A maskmix model's exemplar condition map is made once, here, outside the timing.
    own = np.repeat(synthetic_condition(spec, size, exemplar_photo)[None], batch, axis=0) if spec.maskmix else None
    encoded_batch = pipeline.encode(exemplars, own)
    encoded_one = pipeline.encode(exemplars[:1], None if own is None else own[:1])

    def end_to_end():
        tensors = np.stack([photo_to_tensor(resize_photo(exemplar_photo, size)) for _ in range(batch)])
        return [to_uint8_rgb(image) for image in pipeline.translate(conditions_batch, pipeline.encode(tensors, own)).images]

    def cached():
        return [to_uint8_rgb(image) for image in pipeline.translate(conditions_batch, encoded_one).images]

    return {
        "exemplar_encoder": lambda: pipeline.encode(exemplars, own),
        "translator": lambda: pipeline.translate(conditions_batch, encoded_batch),
        "end_to_end": end_to_end,
        "end_to_end_cached_exemplar": cached,
    }


def _bench_photos() -> tuple[np.ndarray, np.ndarray]:
    """(exemplar, condition source): two package photos, or two drawn patterns without the photo packages."""
    try:
        photos = conditions.package_photos()
    except UserError:
        return drawn_pattern(0), drawn_pattern(1)
    return photos[1].rgb, photos[0].rgb  # chelsea as the exemplar, astronaut as the condition source


def drawn_pattern(seed: int, side: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    canvas = np.full((side, side, 3), 40, np.uint8)
    for _ in range(12):
        centre = tuple(int(v) for v in rng.integers(0, side, 2))
        colour = tuple(int(v) for v in rng.integers(60, 255, 3))
        cv2.circle(canvas, centre, int(rng.integers(20, side // 4)), colour, thickness=-1)
    return canvas


def synthetic_condition(spec: ConditionSpec, size: tuple[int, int], rgb: np.ndarray) -> np.ndarray:
    """A valid condition of the model's kind, made from a photo [L, H, W] float32 in [0, 1]."""
    photo = resize_photo(rgb, size)
    if spec.kind == "edge":
        return conditions.edge_map(photo)
    if spec.kind == "label":
        gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.int64)
        ids = (gray * min(spec.channels, 16) // 256).astype(np.uint8)  # a few regions by brightness
        return conditions.onehot_labels(ids, spec.channels)
    if spec.kind == "pose":
        return conditions.pose_map(_standing_pose(size), size)
    if spec.kind == "celeba-edge":
        edges = conditions.canny_edges(photo)
        distance = cv2.distanceTransform((~edges).astype(np.uint8) * 255, cv2.DIST_L1, 3)
        distance = np.clip(distance / 3.0, 0, 255).astype(np.uint8).astype(np.float32) / 255.0
        channels = [edges.astype(np.float32)] + [distance] * (spec.channels - 2) + [edges.astype(np.float32)]
        return np.stack(channels)
    raise ValueError(f"unknown condition kind {spec.kind!r}")


def _standing_pose(size: tuple[int, int]) -> np.ndarray:
    """OpenPose-18 keypoints of a person standing, facing the camera, filling the frame's height."""
    height, width = size
    unit = np.array(
        [
            (0.50, 0.12), (0.50, 0.22), (0.40, 0.22), (0.36, 0.38), (0.34, 0.52), (0.60, 0.22), (0.64, 0.38),
            (0.66, 0.52), (0.44, 0.52), (0.44, 0.72), (0.44, 0.92), (0.56, 0.52), (0.56, 0.72), (0.56, 0.92),
            (0.48, 0.10), (0.52, 0.10), (0.46, 0.11), (0.54, 0.11),
        ],
        np.float32,
    )  # fmt: skip
    keypoints = np.ones((18, 3), np.float32)
    keypoints[:, 0] = unit[:, 0] * (width - 1)
    keypoints[:, 1] = unit[:, 1] * (height - 1)
    return keypoints
