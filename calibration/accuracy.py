"""INT8 against FP32 on held-out photos: per pair and summarized, for the report and the sweep.

Each held-out pair (condition of photo i, exemplar photo (i + 1) mod n) runs through the FP32 model
once (`reference`) and through every INT8 variant (`evaluate`), each as the runtime runs it: the
exemplar encoder, then the translator fed that encoder's keys and values. So an INT8 figure includes
the encoder's rounding as it reaches the correspondence, not just the translator's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mclrt.calibration.calib_data import CalibrationImage, Prepared, pairs
from mclrt.calibration.metrics import max_abs_error, psnr, ssim, to_unit
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.pipeline import Translation, TranslationPipeline
from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions


@dataclass(frozen=True)
class HeldOut:
    """The held-out pairs, preprocessed once."""

    names: tuple[tuple[str, str], ...]  # (condition photo, exemplar photo) file names
    conditions: tuple[np.ndarray, ...]  # [L, H, W]
    exemplars: tuple[np.ndarray, ...]  # [3, H, W]
    exemplar_conditions: tuple[np.ndarray, ...]  # [L, H, W]: the exemplar's own map (maskmix models)

    @classmethod
    def build(cls, images: Sequence[CalibrationImage], prepared: Sequence[Prepared]) -> "HeldOut":
        chosen = pairs(len(images))
        return cls(
            names=tuple((images[c].path.name, images[e].path.name) for c, e in chosen),
            conditions=tuple(prepared[c].condition for c, _ in chosen),
            exemplars=tuple(prepared[e].exemplar for _, e in chosen),
            exemplar_conditions=tuple(prepared[e].condition for _, e in chosen),
        )

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class PairAccuracy:
    condition: str
    exemplar: str
    psnr_db: float
    ssim: float
    max_abs_error: float
    warped_psnr_db: float
    warped_max_abs_error: float


@dataclass(frozen=True)
class Accuracy:
    """INT8 vs FP32 over the held-out pairs (images in [0, 1]; see metrics.py)."""

    psnr_db_mean: float
    psnr_db_min: float
    ssim_mean: float
    ssim_min: float
    max_abs_error: float  # over all pairs and pixels
    warped_psnr_db_mean: float
    warped_max_abs_error: float
    pairs: tuple[PairAccuracy, ...]

    @classmethod
    def of(cls, per_pair: Sequence[PairAccuracy]) -> "Accuracy":
        return cls(
            psnr_db_mean=float(np.mean([p.psnr_db for p in per_pair])),
            psnr_db_min=float(min(p.psnr_db for p in per_pair)),
            ssim_mean=float(np.mean([p.ssim for p in per_pair])),
            ssim_min=float(min(p.ssim for p in per_pair)),
            max_abs_error=float(max(p.max_abs_error for p in per_pair)),
            warped_psnr_db_mean=float(np.mean([p.warped_psnr_db for p in per_pair])),
            warped_max_abs_error=float(max(p.warped_max_abs_error for p in per_pair)),
            pairs=tuple(per_pair),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _pipeline(model: ModelDir, encoder: Path, translator: Path, threads: int) -> TranslationPipeline:
    options = OrtOptions(intra_op_threads=threads, providers=(CPU_EP,))
    return TranslationPipeline(model, OnnxRuntimeRunner(encoder, options), OnnxRuntimeRunner(translator, options))


def run(model: ModelDir, encoder: Path, translator: Path, held_out: HeldOut, threads: int = 0) -> list[Translation]:
    """One graph pair (FP32 or INT8) on every held-out pair."""
    outputs = []
    with _pipeline(model, encoder, translator, threads) as pipeline:
        for i in range(len(held_out)):
            own = held_out.exemplar_conditions[i] if model.condition.maskmix else None
            encoded = pipeline.encode(held_out.exemplars[i], own)
            outputs.append(pipeline.translate(held_out.conditions[i], encoded))
    return outputs


def reference(model: ModelDir, held_out: HeldOut, threads: int = 0) -> list[Translation]:
    return run(model, model.graph_path("exemplar_encoder"), model.graph_path("translator"), held_out, threads)


def compare(held_out: HeldOut, fp32: Sequence[Translation], int8: Sequence[Translation]) -> Accuracy:
    per_pair = []
    for (condition, exemplar), want, got in zip(held_out.names, fp32, int8):
        image_want, image_got = to_unit(want.images[0]), to_unit(got.images[0])
        warped_want, warped_got = to_unit(want.warped[0]), to_unit(got.warped[0])
        per_pair.append(
            PairAccuracy(
                condition=condition,
                exemplar=exemplar,
                psnr_db=psnr(image_want, image_got),
                ssim=ssim(image_want, image_got),
                max_abs_error=max_abs_error(image_want, image_got),
                warped_psnr_db=psnr(warped_want, warped_got),
                warped_max_abs_error=max_abs_error(warped_want, warped_got),
            )
        )
    return Accuracy.of(per_pair)
