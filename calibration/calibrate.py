"""One calibration per graph: ONNX Runtime's calibrators turn calibration inputs into tensor ranges.

`create_calibrator` builds an augmented copy of the graph that also outputs every Conv/Gemm input and
output (for `max`: only their min and max), runs it on the inputs, and `compute_data()` returns a
`TensorsData` of ranges. We feed it in chunks: the histogram calibrators (`entropy`, `percentile`)
keep every intermediate tensor of a `collect_data` call in memory before folding them into their
histograms, which for a paper-size model is ~100 MB per image.

The ranges are saved with ONNX Runtime's own `save_tensors_data` (its calibration-cache JSON), and
every encoding -- and every step of the sensitivity sweep -- reads them back through `quantize_static(...,
calibration_cache_path=...)`, which skips calibration when the cache exists. So there is exactly one
calibration, and each encoding is a pure function of (graph, ranges, encoding, node list).

Calibration is symmetric (|max| around zero) because both encodings quantize activations
symmetrically; for `entropy` and `percentile` that makes the calibrator choose the best symmetric
threshold rather than an asymmetric range we would later widen.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from mclrt.calibration.placement import QUANTIZABLE_OPS

METHODS = ("max", "entropy", "percentile")
_CHUNK = 8  # calibration inputs per collect_data call


def require_calibration_caches() -> None:
    """This design needs quantize_static(calibration_cache_path=...) and save_tensors_data (ONNX Runtime
    PR #28221, 2026); older releases (e.g. the 1.24 that ModelOpt pins) fail here, not halfway through."""
    import inspect

    import onnxruntime
    from onnxruntime.quantization import calibrate, quantize_static

    from mclrt.runtime.errors import UserError

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters or not hasattr(calibrate, "save_tensors_data"):
        raise UserError(
            f"onnxruntime {onnxruntime.__version__} cannot reuse a calibration (no calibration caches in quantize_static); "
            "mclrt quantize --tool ort needs a newer onnxruntime (the 1.31 of `pip install mclrt`)"
        )


def ort_method(method: str):
    """Our method name -> onnxruntime.quantization.CalibrationMethod."""
    from onnxruntime.quantization import CalibrationMethod

    return {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}[method]


class _ListReader:
    """The CalibrationDataReader protocol (get_next -> feed or None) over a list of feeds."""

    def __init__(self, feeds: list[Mapping[str, np.ndarray]]):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def _chunks(feeds: Iterable[Mapping[str, np.ndarray]], size: int) -> Iterator[list[Mapping[str, np.ndarray]]]:
    iterator = iter(feeds)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def calibrate(model_path: Path, feeds: Iterable[Mapping[str, np.ndarray]], method: str, ranges_path: Path) -> int:
    """Calibrate one graph on `feeds` and write the ranges to `ranges_path`; returns how many inputs it saw."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    seen = 0
    with tempfile.TemporaryDirectory(prefix="mclrt-calib-") as tmp:
        calibrator = create_calibrator(
            model_path,
            op_types_to_calibrate=list(QUANTIZABLE_OPS),
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=ort_method(method),
            providers=["CPUExecutionProvider"],
            extra_options={"symmetric": True},
        )
        for chunk in _chunks(feeds, _CHUNK):
            # The histogram collector prints a progress line per call; our CLI prints its own.
            with contextlib.redirect_stdout(io.StringIO()):
                calibrator.collect_data(_ListReader(chunk))
            seen += len(chunk)
        if not seen:
            raise ValueError("no calibration inputs")
        with contextlib.redirect_stdout(io.StringIO()):
            ranges = calibrator.compute_data()
        save_tensors_data(ranges, ranges_path)
    return seen
