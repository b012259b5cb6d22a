"""mclrt.runtime: run an exported model directory. No torch anywhere in here.

    from mclrt.runtime import Translator      # the Python API (runtime/api.py)

Where things live (floors, lowest first; imports point down, never up -- tests/test_layout.py):
    errors.py, fsutil.py, threads.py, notices.py, model_dir.py, model_info.py, image_out.py: the core
    inputs/      what a user gives: reading images, condition extraction, preprocessing, package photos, feeds
    kernels/     the CorrespondenceSoftmax kernel (Triton) and its torch-free launcher
    jetson/      Jetson facts (board, JetPack, DLA, power mode) and tegrastats telemetry
    runners.py   the runner life cycle (Polygraphy's), ONNX Runtime's runner
    trt/         TensorRT: version table, plugin, FP16 recipe, builder, engine cache, runner
    backends.py  the one place (model, backend, precision, device) becomes runners
    pipeline.py  both graphs behind one object; compare.py: backends side by side (Polygraphy's Comparator)
    checks/ bench/ video/   `mclrt check`, latency and memory, the streaming pipeline behind `mclrt video`
    api.py       the Python API: Translator (load, encode once, translate one, a batch, a stream)
    jobs/        the work of `mclrt infer` and `mclrt video` (files and streams), users of the API
    commands/, cli.py  the commands and the CLI root (commands arrive through entry points)
"""

# The API, imported on first use (PEP 562): `import mclrt.runtime.errors` must not pull in ONNX Runtime.
_API = ("Translator", "Style", "Condition", "Result")


def __getattr__(name: str):
    if name in _API:
        from mclrt.runtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'mclrt.runtime' has no attribute {name!r}")


__all__ = list(_API)
