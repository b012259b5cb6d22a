"""`mclrt eval warp`: how accurate is a model's correspondence, measured on an exported model directory.

For every held-out photo and pair kind (`pairs.py`): the condition is extracted from the photo as the
model's mclrt.json says (`condition.extract`), the exemplar is a known transform of the same photo, and
the translator's `warped_exemplar` output -- the exemplar warped onto the condition by the correspondence
-- should reproduce the photo. It is scored against the photo with L1, PSNR and SSIM (`metrics/`), next
to two baselines on the very same pairs:
- `unwarped`: the exemplar as it is (what "no correspondence at all" scores);
- `mean colour`: the exemplar's mean colour everywhere (what a warp that only carries colour scores).
A model whose warp does not beat both has learned no useful correspondence. The model also gets
`peak_hits` (attention.peak_hit_rate): how often its attention peaks within one cell of the true
position -- PSNR alone rewards a warp that only carries colours into the right regions.

The warped exemplar is built at the correspondence resolution (1/4 of the image for the presets) and
enlarged, so even a perfect correspondence does not reach L1 0: compare models with each other and
with the baselines, not with zero.

Runs on any model directory through `mclrt.runtime.pipeline` (ONNX Runtime by default), so FP16 and
INT8 models can be compared with their FP32 source. numpy, OpenCV and scikit-image only: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from mclrt.runtime.backends import Backend, RunnerOptions, describe
from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.inputs.preprocess import check_extract, condition_from_photo, photo_to_tensor
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.runners import RunnerError
from mclrt.training.eval.attention import Attention, AttentionProbe, correspondence_grid, peak_hit_rate
from mclrt.training.eval.metrics.l1 import l1
from mclrt.training.eval.metrics.psnr import psnr
from mclrt.training.eval.metrics.ssim import ssim
from mclrt.training.eval.pairs import PairKind, PseudoPair, make_pair
from mclrt.training.eval.photos import EvalPhoto

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"l1": l1, "psnr": psnr, "ssim": ssim}
# The model's own correspondence score (attention.peak_hit_rate); the baselines have no attention.
PEAK_HITS = "peak_hits"
# Which direction is better, for the table and for readers of the JSON.
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, PEAK_HITS: True}
METHODS = ("model", "unwarped", "mean_colour")
METHOD_TITLES = {"model": "model (warped exemplar)", "unwarped": "unwarped exemplar", "mean_colour": "exemplar's mean colour"}
ALL = "all"


@dataclass(frozen=True)
class WarpedPair:
    """One pseudo pair, run through the model."""

    photo: EvalPhoto
    pair: PseudoPair
    condition: np.ndarray  # float32 [L, H, W]
    warped: np.ndarray  # uint8 [H, W, 3]: the model's warped exemplar
    attention: Attention  # the translator's q and k for this pair (batch 1)
    peak_hits: float | None  # attention.peak_hit_rate of this pair

    def scores(self) -> dict[str, dict[str, float | None]]:
        mean_colour = np.broadcast_to(np.round(self.pair.exemplar.reshape(-1, 3).mean(axis=0)).astype(np.uint8), self.pair.exemplar.shape)
        candidates = {"model": self.warped, "unwarped": self.pair.exemplar, "mean_colour": np.ascontiguousarray(mean_colour)}
        scores = {method: {name: metric(image, self.photo.rgb) for name, metric in METRICS.items()} for method, image in candidates.items()}
        scores["model"][PEAK_HITS] = self.peak_hits
        return scores


@dataclass
class WarpReport:
    model: str
    precision: str
    backend: str
    pair_kinds: list[str]
    rows: list[dict] = field(default_factory=list)  # per pair: photo, pairs, and METHODS -> METRICS -> value

    def add(self, warped: WarpedPair) -> None:
        self.rows.append({"photo": warped.photo.name, "pairs": warped.pair.kind.value, **warped.scores()})

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Mean of every metric per pair kind (and over all pairs when there are several kinds)."""
        groups = {kind: [r for r in self.rows if r["pairs"] == kind] for kind in self.pair_kinds}
        if len(self.pair_kinds) > 1:
            groups[ALL] = self.rows
        return {
            kind: {method: {name: _mean([r[method][name] for r in rows if r[method].get(name) is not None]) for name in _names(method)} for method in METHODS}
            for kind, rows in groups.items()
        }

    def to_json_dict(self) -> dict:
        return _finite(
            {
                "model": self.model,
                "precision": self.precision,
                "backend": self.backend,
                "photos": len({r["photo"] for r in self.rows}),
                "pair_kinds": self.pair_kinds,
                "metrics": {
                    "l1": "mean absolute error on the 0..255 scale (lower is better)",
                    "psnr": "dB, peak 255, mean over pairs (higher is better)",
                    "ssim": "Wang et al. 2004, Gaussian window sigma 1.5, mean over channels and pairs (higher is better)",
                    PEAK_HITS: "model only: share of correspondence cells whose attention peaks within one cell of their "
                    "true position (cells whose true position is outside the exemplar not counted; higher is better)",
                },
                "summary": self.summary(),
                "pairs": self.rows,
            }
        )


def _names(method: str) -> tuple[str, ...]:
    return (*METRICS, PEAK_HITS) if method == "model" else tuple(METRICS)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _finite(value):
    """JSON has no infinity or NaN (Python would write non-standard tokens): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def photo_extractor(model: ModelDir) -> str:
    """How this model's condition is made from a photo (mclrt.json `condition.extract`), checked usable here."""
    spec = model.condition
    if not spec.extract or spec.extract == "none":
        raise UserError(
            f"this model's {spec.kind!r} condition cannot be extracted from a photo (mclrt.json condition.extract "
            "is not set), so pseudo pairs cannot be made from photos",
            model.path,
        )
    check_extract(spec.extract, spec)
    return spec.extract


def warp_pairs(
    model: ModelDir,
    photos: Sequence[EvalPhoto],
    kinds: Sequence[PairKind],
    backend: Backend = Backend.ort,
    threads: int = 0,
    batch: int = 8,
    on_backend: Callable[[str], None] | None = None,
) -> Iterator[WarpedPair]:
    """Run every (photo, pair kind) through the model, `batch` pairs per graph run."""
    extract = photo_extractor(model)
    size = model.image_size
    jobs = [(photo, make_pair(photo.rgb, kind)) for photo in photos for kind in kinds]
    conditions: dict[str, np.ndarray] = {}

    def condition_of(photo: EvalPhoto) -> np.ndarray:
        if photo.name not in conditions:
            conditions[photo.name] = condition_from_photo(photo.rgb, extract, size, photo.path)
        return conditions[photo.name]

    grid = correspondence_grid(model)
    try:
        # The attention is read by a second ONNX Runtime session of the translator (attention.py), whatever
        # backend runs the pipeline: the peaks need q and k, which the translator does not output.
        with TranslationPipeline.open(model, RunnerOptions(backend=backend, threads=threads)) as pipeline, AttentionProbe(model, threads) as probe:
            if on_backend is not None:
                on_backend(describe(pipeline.translator))
            for first in range(0, len(jobs), batch):
                chunk = jobs[first : first + batch]
                maps = np.stack([condition_of(photo) for photo, _ in chunk])
                exemplars = np.stack([photo_to_tensor(pair.exemplar) for _, pair in chunk])
                own = None
                if model.condition.maskmix:
                    own = np.stack([condition_from_photo(pair.exemplar, extract, size, photo.path) for photo, pair in chunk])
                encoded = pipeline.encode(exemplars, own)
                result = pipeline.translate(maps, encoded)
                attention = probe.attention(maps, encoded)
                for i, (photo, pair) in enumerate(chunk):
                    mine = Attention(attention.q[i : i + 1], attention.k[i : i + 1], attention.scale, attention.mask_negative)
                    yield WarpedPair(photo, pair, maps[i], to_uint8_rgb(result.warped[i]), mine, peak_hit_rate(mine, 0, pair, grid))
    except RunnerError as err:
        raise UserError(str(err), model.path) from err


def evaluate_warp(
    model: ModelDir,
    photos: Sequence[EvalPhoto],
    kinds: Sequence[PairKind] = tuple(PairKind),
    backend: Backend = Backend.ort,
    threads: int = 0,
    batch: int = 8,
    on_pair: Callable[[WarpedPair], None] | None = None,
) -> WarpReport:
    """Score every pseudo pair; `on_pair` sees each one as it is done (the heat-maps use it)."""
    if not photos:
        raise ValueError("no photos to evaluate on")
    report = WarpReport(str(model.path), model.manifest.precision, "", [kind.value for kind in kinds])

    def set_backend(name: str) -> None:
        report.backend = name

    for warped in warp_pairs(model, photos, kinds, backend, threads, batch, set_backend):
        report.add(warped)
        if on_pair is not None:
            on_pair(warped)
    return report
