"""Data loaders for Polygraphy's command line, so its tools run on mclrt's graphs with real inputs.

    export MCLRT_MODEL=runtime/models/demo          # the model directory (default: the demo model)
    polygraphy run $MCLRT_MODEL/exemplar_encoder.onnx --onnxrt --data-loader-script tools/polygraphy_data.py:exemplar_encoder
    polygraphy run $MCLRT_MODEL/translator.onnx --onnxrt --trt --data-loader-script tools/polygraphy_data.py:translator
    polygraphy debug precision $MCLRT_MODEL/translator.onnx --data-loader-script tools/polygraphy_data.py:translator ...

Each function yields feeds for one graph: the inputs `mclrt compare` uses (runtime/inputs/feeds.py:
package photos as exemplars, their Canny edges as conditions for edge models, valid random maps
otherwise), and for the translator the keys and values the FP32 encoder makes of those exemplars on
ONNX Runtime's CPU provider -- real descriptors, as in use, not random ones. MCLRT_BATCH (default 1)
and MCLRT_SEED (default 0) choose the batch and the photos; MCLRT_ITERATIONS (default 1) how many feeds.
Docs: docs/tensorrt.md, "Polygraphy recipes".
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "runtime" / "models" / "demo"


def _settings():
    from mclrt.runtime.model_dir import load_model_dir

    model = load_model_dir(os.environ.get("MCLRT_MODEL") or DEFAULT_MODEL)
    return model, int(os.environ.get("MCLRT_BATCH", "1")), int(os.environ.get("MCLRT_SEED", "0")), int(os.environ.get("MCLRT_ITERATIONS", "1"))


def exemplar_encoder():
    """Feeds of the exemplar encoder: the exemplar (and, for maskmix models, its own condition map)."""
    from mclrt.runtime.inputs.feeds import real_feeds

    model, batch, seed, iterations = _settings()
    for i in range(iterations):
        encoder_feed, _ = real_feeds(model, batch, seed + i)
        yield encoder_feed


def translator():
    """Feeds of the translator: a condition, and the keys and values the encoder makes of the exemplar."""
    from mclrt.runtime.backends import Device, RunnerOptions, open_runners
    from mclrt.runtime.inputs.feeds import real_feeds

    model, batch, seed, iterations = _settings()
    with open_runners(model, RunnerOptions(backend="ort", device=Device.cpu), graphs=("exemplar_encoder",))["exemplar_encoder"] as encoder:
        for i in range(iterations):
            encoder_feed, condition_feed = real_feeds(model, batch, seed + i)
            yield {**condition_feed, **encoder.infer(encoder_feed)}
