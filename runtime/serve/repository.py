"""A Triton model repository from a model directory: `mclrt serve export`.

Layout (Triton's: one folder per model, a numbered version folder, config.pbtxt beside it):

    REPO/exemplar_encoder/config.pbtxt    exemplar (+ exemplar_condition) -> exemplar_keys, exemplar_values
    REPO/exemplar_encoder/1/...           model.onnx | model.plan | model.py + model.onnx
    REPO/translator/config.pbtxt          condition, exemplar_keys, exemplar_values -> image, warped_exemplar
    REPO/translator/1/...
    REPO/translate/config.pbtxt           the ensemble clients call: condition, exemplar (+ exemplar_condition)
    REPO/translate/1/                     -> image (+ warped_exemplar); empty, as Triton wants for ensembles
    REPO/mclrt-serve.json                 what was generated from what (Triton reads only the model folders)

Tensor names, dims and data types come from the model's `mclrt.json`; the batch dimension is Triton's
(`max_batch_size`), so dims leave it out. Every config is a `ModelConfig` protobuf message printed with
protobuf's text format and parsed back before it is written (`schema.round_trip`).

Backends:
- `onnxruntime`: Triton's ONNX Runtime backend runs the two exported graphs as they are (KIND_AUTO: the
  GPU where there is one).
- `tensorrt`: `platform: "tensorrt_plan"`, KIND_GPU; Triton loads `<model>/1/model.plan` (its default
  file name), which must be built on the deployment GPU with the TensorRT of the Triton release that
  serves it (a plan only loads in the TensorRT version, and on the GPU architecture, that built it).
  `--engines DIR` copies plans built elsewhere (`mclrt engine build` writes `exemplar_encoder.plan` and
  `translator.plan`); otherwise `build_plans.sh` in the repository builds them with `trtexec` from the
  ONNX files kept beside each config, with the batch profile 1..max_batch. The translator's
  `mclrt::CorrespondenceSoftmax` node is imported from its ONNX function by TensorRT's parser when no
  plugin is registered, so the plans need no plugin library. A plugin library that a plan does need is
  loaded by Triton's TensorRT backend from `--backend-config=tensorrt,plugins=<lib.so>` (or LD_PRELOAD);
  `--plugin-library` records it in the server command line written to mclrt-serve.json.
  NEVER RUN: no GPU and no TensorRT backend exist where this was written; only the configs' schema is
  checked here.
- `python`: Triton's python backend running ONNX Runtime (`python_model.py`), with a bounded cache of
  encoded exemplars in the encoder. This is the variant `mclrt serve run` serves, and the one tested end
  to end here with a real tritonserver (CPU).
"""

from __future__ import annotations

import enum
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ModelDir, TensorSpec, load_model_dir
from mclrt.runtime.serve import schema

ENCODER, TRANSLATOR, ENSEMBLE = "exemplar_encoder", "translator", "translate"
MANIFEST = "mclrt-serve.json"
BUILD_SCRIPT = "build_plans.sh"
_DATA_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16"}
# The ensemble's internal tensors between the encoder and the translator.
_KEYS, _VALUES = "encoded_exemplar_keys", "encoded_exemplar_values"


class ServeBackend(str, enum.Enum):
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"
    python = "python"


@dataclass(frozen=True)
class RepositoryOptions:
    backend: ServeBackend = ServeBackend.python
    max_batch: int = 8
    instances: int = 1
    preferred_batch: tuple[int, ...] = ()
    max_queue_delay_us: int = 2000
    warped: bool = True  # the ensemble also returns warped_exemplar
    exemplar_cache: int = 16  # python backend: encoded exemplars kept per encoder instance
    threads: int = 0  # python backend: ONNX Runtime threads per instance (0: its default)
    engines: Path | None = None  # tensorrt: a folder with exemplar_encoder.plan and translator.plan
    plugin_library: Path | None = None  # tensorrt: a plugin library Triton must load


@dataclass
class Repository:
    path: Path
    configs: dict[str, object] = field(default_factory=dict)  # model name -> ModelConfig message
    files: list[Path] = field(default_factory=list)


def check_options(options: RepositoryOptions) -> None:
    if options.max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, not {options.max_batch}")
    if options.instances < 1:
        raise UserError(f"--instances must be at least 1, not {options.instances}")
    bad = [size for size in options.preferred_batch if not 1 <= size <= options.max_batch]
    if bad:
        raise UserError(f"--preferred-batch {bad} must lie in 1..--max-batch ({options.max_batch})")
    if options.backend is not ServeBackend.tensorrt and (options.engines or options.plugin_library):
        raise UserError("--engines and --plugin-library belong to --backend tensorrt")
    if options.engines is not None:
        for graph in (ENCODER, TRANSLATOR):
            if not (options.engines / f"{graph}.plan").is_file():
                raise UserError(f"--engines: {graph}.plan is missing (a folder written by `mclrt engine build`)", options.engines)
    if options.plugin_library is not None and not options.plugin_library.is_file():
        raise UserError("--plugin-library: no such file", options.plugin_library)


def check_output(out: Path) -> None:
    """OUT must be a new or empty folder we can write: nothing of a user's is ever mixed into a repository."""
    if out.exists():
        if not out.is_dir():
            raise UserError("exists and is not a folder", out)
        if any(out.iterdir()):
            raise UserError("is not empty: a model repository is written into a new or empty folder", out)
    parent = out if out.exists() else out.parent
    while not parent.exists():
        parent = parent.parent
    try:
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=".mclrt-probe-")
        probe.close()
    except OSError as err:
        raise UserError(f"cannot write here: {err.strerror}", out) from None


def export_repository(model_path: str | Path, out: str | Path, options: RepositoryOptions = RepositoryOptions()) -> Repository:
    """Check everything, build every config, then write the repository (into a temporary folder renamed onto OUT)."""
    out = Path(out)
    check_options(options)
    check_output(out)
    model = load_model_dir(model_path)
    schema.model_config_pb2()  # tritonclient missing: say so before anything is written
    configs = build_configs(model, options)
    texts = {name: schema.round_trip(config) for name, config in configs.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mclrt-serve-", dir=out.parent))
    try:
        repository = _write(model, staging, texts, options)
        if out.exists():  # an empty folder the user made: move our files into it
            for entry in staging.iterdir():
                entry.rename(out / entry.name)
            staging.rmdir()
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Repository(out, configs, [out / p.relative_to(staging) for p in repository])


def build_configs(model: ModelDir, options: RepositoryOptions) -> dict[str, object]:
    pb = schema.model_config_pb2()
    return {
        ENCODER: _graph_config(pb, ENCODER, model.encoder.inputs, model.encoder.outputs, options, encoder=True),
        TRANSLATOR: _graph_config(pb, TRANSLATOR, model.translator.inputs, model.translator.outputs, options, encoder=False),
        ENSEMBLE: _ensemble_config(pb, model, options),
    }


def _tensor(message, spec: TensorSpec) -> None:
    message.name = spec.name
    message.data_type = getattr(schema.model_config_pb2(), _data_type(spec))
    message.dims.extend(spec.fixed_shape)


def _data_type(spec: TensorSpec) -> str:
    if spec.dtype not in _DATA_TYPES:
        raise UserError(f"tensor {spec.name!r} has dtype {spec.dtype}, which this exporter does not map to a Triton type")
    return _DATA_TYPES[spec.dtype]


def _graph_config(pb, name: str, inputs, outputs, options: RepositoryOptions, encoder: bool):
    config = pb.ModelConfig(name=name, max_batch_size=options.max_batch)
    for spec in inputs:
        _tensor(config.input.add(), spec)
    for spec in outputs:
        _tensor(config.output.add(), spec)
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(options.preferred_batch)
    batching.max_queue_delay_microseconds = options.max_queue_delay_us
    group = config.instance_group.add(count=options.instances)
    if options.backend is ServeBackend.onnxruntime:
        config.backend = "onnxruntime"
        config.default_model_filename = "model.onnx"
        group.kind = pb.ModelInstanceGroup.KIND_AUTO  # the GPU where there is one, else the CPU
    elif options.backend is ServeBackend.tensorrt:
        config.platform = "tensorrt_plan"
        config.default_model_filename = "model.plan"
        group.kind = pb.ModelInstanceGroup.KIND_GPU
    else:
        config.backend = "python"
        group.kind = pb.ModelInstanceGroup.KIND_CPU
        config.parameters["intra_op_threads"].string_value = str(options.threads)
        if encoder:
            config.parameters["exemplar_cache_size"].string_value = str(options.exemplar_cache)
    return config


def _ensemble_config(pb, model: ModelDir, options: RepositoryOptions):
    config = pb.ModelConfig(name=ENSEMBLE, platform="ensemble", max_batch_size=options.max_batch)
    translator_inputs = {spec.name: spec for spec in model.translator.inputs}
    for spec in (translator_inputs["condition"], *model.encoder.inputs):
        _tensor(config.input.add(), spec)
    returned = ["image", "warped_exemplar"] if options.warped else ["image"]
    for spec in model.translator.outputs:
        if spec.name in returned:
            _tensor(config.output.add(), spec)
    encode = config.ensemble_scheduling.step.add(model_name=ENCODER, model_version=-1)
    for spec in model.encoder.inputs:
        encode.input_map[spec.name] = spec.name
    encode.output_map["exemplar_keys"] = _KEYS
    encode.output_map["exemplar_values"] = _VALUES
    translate = config.ensemble_scheduling.step.add(model_name=TRANSLATOR, model_version=-1)
    translate.input_map["condition"] = "condition"
    translate.input_map["exemplar_keys"] = _KEYS
    translate.input_map["exemplar_values"] = _VALUES
    for name in returned:
        translate.output_map[name] = name
    return config


def _write(model: ModelDir, root: Path, texts: dict[str, str], options: RepositoryOptions) -> list[Path]:
    written = []

    def put(relative: str, data: bytes | None = None, copy_from: Path | None = None, mode: int | None = None) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if copy_from is not None:
            shutil.copyfile(copy_from, path)
        else:
            path.write_bytes(data)
        if mode is not None:
            path.chmod(mode)
        written.append(path)

    for name, text in texts.items():
        put(f"{name}/config.pbtxt", text.encode("utf-8"))
    (root / ENSEMBLE / "1").mkdir(parents=True)
    for graph in (ENCODER, TRANSLATOR):
        onnx = model.graph_path(graph)
        if options.backend is ServeBackend.onnxruntime:
            put(f"{graph}/1/model.onnx", copy_from=onnx)
        elif options.backend is ServeBackend.python:
            put(f"{graph}/1/model.onnx", copy_from=onnx)
            put(f"{graph}/1/model.py", copy_from=Path(__file__).with_name("python_model.py"))
        else:
            # Kept outside the version folder: Triton loads only <model>/1/model.plan.
            put(f"{graph}/{graph}.onnx", copy_from=onnx)
            if options.engines is not None:
                put(f"{graph}/1/model.plan", copy_from=options.engines / f"{graph}.plan")
            else:
                (root / graph / "1").mkdir(parents=True, exist_ok=True)
    if options.backend is ServeBackend.tensorrt:
        put(BUILD_SCRIPT, build_plans_script(model, options).encode("utf-8"), mode=0o755)
    put(MANIFEST, (json.dumps(_manifest(model, options), indent=2) + "\n").encode("utf-8"))
    return written


def server_command(options: RepositoryOptions, repository: str = "/models") -> list[str]:
    """The tritonserver command line for the repository (what the docs' docker command runs)."""
    command = ["tritonserver", f"--model-repository={repository}"]
    if options.plugin_library is not None:
        command.append(f"--backend-config=tensorrt,plugins={repository}/plugins/{options.plugin_library.name}")
    return command


def _manifest(model: ModelDir, options: RepositoryOptions) -> dict:
    manifest = model.manifest
    return {
        "format": "mclrt-triton-repository",
        "backend": options.backend.value,
        "verified_here": options.backend is ServeBackend.python,
        "model": {"path": str(model.path), "preset": manifest.preset, "precision": manifest.precision,
                  "sha256": {graph: spec.sha256 for graph, spec in manifest.graphs.items()}},
        "ensemble": ENSEMBLE,
        "inputs": [spec.name for spec in (model.translator.input("condition"), *model.encoder.inputs)],
        "outputs": ["image", "warped_exemplar"] if options.warped else ["image"],
        "max_batch": options.max_batch,
        "server_command": server_command(options),
        **({"plugin_library": str(options.plugin_library), "plugin_library_in_container": server_command(options)[-1].split("=", 2)[-1]}
           if options.plugin_library else {}),
    }


def build_plans_script(model: ModelDir, options: RepositoryOptions) -> str:
    """trtexec commands building <model>/1/model.plan on the deployment GPU. Never run here."""

    def shapes(specs, batch: int) -> str:
        return ",".join(f"{spec.name}:{'x'.join(str(d) for d in (batch, *spec.fixed_shape))}" for spec in specs)

    lines = [
        "#!/bin/sh",
        "# Build the TensorRT plans Triton loads (<model>/1/model.plan) on the GPU that will serve them,",
        "# with the trtexec of the same Triton release (inside its NGC container: /usr/src/tensorrt/bin/trtexec).",
        "# Written by `mclrt serve export --backend tensorrt`; NEVER RUN by mclrt (no GPU where it was written).",
        "set -eu",
        'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-trtexec}"',
    ]
    for graph, spec in ((ENCODER, model.encoder), (TRANSLATOR, model.translator)):
        fp16 = " --fp16" if model.manifest.precision == "fp16" else ""
        lines.append(
            f'"$TRTEXEC" --onnx={graph}/{graph}.onnx --saveEngine={graph}/1/model.plan{fp16}'
            f" --minShapes={shapes(spec.inputs, 1)} --optShapes={shapes(spec.inputs, max(1, options.max_batch // 2))}"
            f" --maxShapes={shapes(spec.inputs, options.max_batch)}"
        )
    return "\n".join(lines) + "\n"
