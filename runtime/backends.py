"""The one place that turns (model directory, backend, precision, device) into runners.

Every command that runs a model directory -- infer, video, bench, compare, eval, check -- and the
Python API open their runners here, for both graphs at once (`open_runners`), so a backend joins
mclrt in this file and nowhere else:

- `ort`: ONNX Runtime (runtime/runners.py), on its best provider that really works here, or on the
  CPU provider alone with `device="cpu"` (what comparisons take as their reference);
- `trt`: TensorRT plans from the engine cache (runtime/trt/backend.py), built on first use;
- a backend declared in the `mclrt.backends` entry points (pyproject.toml): `torch`, the PyTorch model
  a directory was exported from (export/torch_runner.py). It lives on a floor above runtime/ because
  it imports torch; an entry point lets it join without runtime/ importing upwards.

`auto` means TensorRT when its runner reports a usable GPU, else ONNX Runtime.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import GRAPH_FILES, ModelDir
from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions, Runner

GRAPHS = tuple(GRAPH_FILES)  # ("exemplar_encoder", "translator")
BACKENDS_GROUP = "mclrt.backends"


class Backend(str, enum.Enum):
    """The backends `--backend` offers where a model is run for its outputs."""

    auto = "auto"
    ort = "ort"
    trt = "trt"


class Device(str, enum.Enum):
    auto = "auto"  # the best the backend can use here (a GPU provider where one works)
    cpu = "cpu"  # ONNX Runtime's CPU provider only: the reference of every comparison


@dataclass(frozen=True)
class RunnerOptions:
    """How the runners of one model directory are opened."""

    backend: str = "auto"  # auto, ort, trt, or an entry-point backend (torch)
    precision: str | None = None  # engine precision for trt (default: the model's own); the tolerance label elsewhere
    device: Device = Device.auto
    threads: int = 0  # ONNX Runtime threads per graph (0: one per core)
    plugin: str = "auto"  # the CorrespondenceSoftmax plugin for trt plans
    profile_prefix: str | None = None  # ONNX Runtime per-kernel profiles under this prefix (one per graph)
    checkpoint: str | None = None  # the torch backend's checkpoint, when the manifest's does not resolve here


def resolve_backend(backend: str | Backend) -> str:
    backend = backend.value if isinstance(backend, enum.Enum) else str(backend)
    if backend == Backend.auto.value:
        from mclrt.runtime.trt.backend import tensorrt_usable

        return Backend.trt.value if tensorrt_usable() else Backend.ort.value
    return backend


def backend_names() -> tuple[str, ...]:
    """Every backend a comparison can name: the built-in ones and those declared as entry points."""
    return (Backend.ort.value, Backend.trt.value, *sorted(_entry_point_backends()))


def _entry_point_backends() -> dict:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=BACKENDS_GROUP)}


def open_runners(model: ModelDir, options: RunnerOptions = RunnerOptions(), graphs: tuple[str, ...] = GRAPHS) -> dict[str, Runner]:
    """Inactive runners, by graph name, for `graphs` of `model`."""
    backend = resolve_backend(options.backend)
    if backend == Backend.ort.value:
        providers = (CPU_EP,) if options.device is Device.cpu else None
        return {
            graph: OnnxRuntimeRunner(
                model.graph_path(graph),
                OrtOptions(
                    intra_op_threads=options.threads,
                    providers=providers,
                    profile_prefix=None if options.profile_prefix is None else f"{options.profile_prefix}{graph}",
                ),
                name=f"ort:{graph}",
            )
            for graph in graphs
        }
    if options.device is Device.cpu:
        raise UserError(f"--backend {backend} does not run on the CPU provider; use ort for a CPU reference")
    if backend == Backend.trt.value:
        from mclrt.runtime.trt.backend import open_trt_runner

        return {graph: open_trt_runner(model, graph, precision=options.precision, plugin=options.plugin) for graph in graphs}
    plugins = _entry_point_backends()
    if backend not in plugins:
        raise UserError(f"unknown backend {backend!r}: expected one of {', '.join(backend_names())}")
    try:
        opener = plugins[backend].load()
    except ImportError as err:
        raise UserError(f"the {backend} backend cannot be loaded here ({err}); for torch: pip install 'mclrt[train]'") from None
    runners = opener(model, options.checkpoint)
    return {graph: runners[graph] for graph in graphs}


def describe(runner: Runner) -> str:
    """What a runner runs on, for summaries: e.g. 'onnxruntime (CPUExecutionProvider)'."""
    if isinstance(runner, OnnxRuntimeRunner) and runner.is_active:
        return f"onnxruntime ({', '.join(runner.providers_in_use)})"
    return runner.name
