"""Which backend runs the graphs: the one place `--backend` is turned into runners.

`auto` means TensorRT when its runner reports a usable GPU, else ONNX Runtime (which itself picks
its best working provider). The TensorRT runner lives in `mclrt.runtime.trt`; it joins here with a
`Backend.trt` member, the marked line in `resolve_backend` and one branch in `open_runner`.
"""

from __future__ import annotations

import enum
from pathlib import Path

from mclrt.runtime.runners import OnnxRuntimeRunner, OrtOptions, Runner


class Backend(str, enum.Enum):
    auto = "auto"
    ort = "ort"
    trt = "trt"


def resolve_backend(backend: Backend) -> Backend:
    if backend is Backend.auto:
        from mclrt.runtime.trt.backend import tensorrt_usable

        return Backend.trt if tensorrt_usable() else Backend.ort
    return backend


def open_runner(graph: Path, backend: Backend, threads: int = 0) -> Runner:
    """An (inactive) runner for one graph of a model directory."""
    backend = resolve_backend(backend)
    if backend is Backend.ort:
        return OnnxRuntimeRunner(graph, OrtOptions(intra_op_threads=threads))
    if backend is Backend.trt:
        from mclrt.runtime.trt.backend import open_trt_runner

        return open_trt_runner(graph)
    raise ValueError(f"unknown backend {backend}")


def describe(runner: Runner) -> str:
    """What a runner runs on, for summaries: e.g. 'onnxruntime (CPUExecutionProvider)'."""
    if isinstance(runner, OnnxRuntimeRunner) and runner.is_active:
        return f"onnxruntime ({', '.join(runner.providers_in_use)})"
    return runner.name
