"""The exported model directory: `mclrt.json` beside `exemplar_encoder.onnx` and `translator.onnx`.

Both sides use this module: export writes the manifest with `write_manifest(...)`, and everything
downstream (infer, bench, check, engine builds, calibration) opens a directory with
`load_model_dir(...)`, which validates the manifest and verifies each graph's SHA-256 so a truncated
copy or an edited file is refused with an error naming the file.

The graph inputs/outputs recorded in the manifest are read from the ONNX files themselves at write
time, so the manifest cannot disagree with the graphs it describes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_write_bytes, sha256_file

MANIFEST_NAME = "mclrt.json"
FORMAT = "mclrt-model"
FORMAT_VERSION = 1
GRAPH_FILES = {"exemplar_encoder": "exemplar_encoder.onnx", "translator": "translator.onnx"}
PRECISIONS = ("fp32", "fp16", "int8-trt", "int8-cpu")
CONDITION_KINDS = ("edge", "label", "pose", "celeba-edge")
EXTRACTORS = ("canny", "face", "pose")
BATCH_DIM = "batch"

# Value range of every tensor named by the contract: images in [-1, 1], condition maps in [0, 1],
# L2-normalized keys in [-1, 1], and values that are pooled exemplar pixels, so also in [-1, 1].
CONTRACT_RANGES: dict[str, tuple[float, float]] = {
    "exemplar": (-1.0, 1.0),
    "exemplar_condition": (0.0, 1.0),
    "condition": (0.0, 1.0),
    "exemplar_keys": (-1.0, 1.0),
    "exemplar_values": (-1.0, 1.0),
    "image": (-1.0, 1.0),
    "warped_exemplar": (-1.0, 1.0),
}
CONTRACT_IO = {
    "exemplar_encoder": (("exemplar",), ("exemplar_keys", "exemplar_values")),
    "translator": (("condition", "exemplar_keys", "exemplar_values"), ("image", "warped_exemplar")),
}

DEFAULT_PREPROCESSING = {
    "image": "rgb, resize to image_size (area), scale to [-1,1]",
    "condition": "see condition.kind: edge = binary edge map (threshold 0.5; reduced keeping every line, enlarged nearest); "
    "label = one-hot of label ids; pose = CoCosNet DeepFashion 20-channel pose map; "
    "celeba-edge = CoCosNet CelebA-HQ 15-channel edge map; values in [0,1]",
}


# --- the manifest, as dataclasses -------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # "batch" for the dynamic batch dimension
    dtype: str  # numpy-style name: "float32", "float16"
    range: tuple[float, float] | None = None

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        """Shape without the batch dimension."""
        return tuple(int(d) for d in self.shape[1:])


@dataclass(frozen=True)
class GraphSpec:
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)


@dataclass(frozen=True)
class ConditionSpec:
    kind: str  # one of CONDITION_KINDS
    channels: int
    extract: str | None  # how to make the condition from a photo, if the preset allows it
    maskmix: bool  # the exemplar encoder also takes the exemplar's own condition map


@dataclass(frozen=True)
class CorrespondenceSpec:
    positions: int
    descriptor_width: int
    value_width: int
    scale: float = 100.0
    mask_negative: bool = False


@dataclass(frozen=True)
class Manifest:
    preset: str
    precision: str
    image_size: tuple[int, int]
    condition: ConditionSpec
    correspondence: CorrespondenceSpec
    graphs: dict[str, GraphSpec]
    opset: int
    versions: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREPROCESSING))

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **data}
        data["image_size"] = list(self.image_size)
        for graph in data["graphs"].values():
            for tensor in graph["inputs"] + graph["outputs"]:
                tensor["shape"] = list(tensor["shape"])
                tensor["range"] = None if tensor["range"] is None else list(tensor["range"])
        return data


@dataclass(frozen=True)
class ModelDir:
    """A loaded (and, unless asked otherwise, hash-verified) model directory."""

    path: Path
    manifest: Manifest

    def graph_path(self, graph: str) -> Path:
        return self.path / self.manifest.graphs[graph].file

    @property
    def encoder(self) -> GraphSpec:
        return self.manifest.graphs["exemplar_encoder"]

    @property
    def translator(self) -> GraphSpec:
        return self.manifest.graphs["translator"]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.manifest.image_size

    @property
    def condition(self) -> ConditionSpec:
        return self.manifest.condition


# --- reading ---------------------------------------------------------------------------------------


class _Fields:
    """Typed access to nested JSON fields; every problem becomes a UserError naming mclrt.json."""

    def __init__(self, data: Mapping[str, Any], path: Path):
        self.data, self.path = data, path

    def get(self, dotted: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, Mapping) or part not in value:
                if optional:
                    return None
                raise UserError(f"missing field {dotted!r}", self.path)
            value = value[part]
        if value is None and optional:
            return None
        # bool is an int in Python; a JSON true where a number belongs is still a mistake.
        if (kind in (int, float) or kind == (int, float)) and isinstance(value, bool) or not isinstance(value, kind):
            raise UserError(f"field {dotted!r} has {type(value).__name__} {value!r}, expected {_kind_name(kind)}", self.path)
        return value

    def choice(self, dotted: str, choices: tuple[str, ...], optional: bool = False) -> str | None:
        value = self.get(dotted, str, optional)
        if value is not None and value not in choices:
            raise UserError(f"field {dotted!r} is {value!r}, expected one of {', '.join(choices)}", self.path)
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _tensor_specs(fields: _Fields, dotted: str) -> tuple[TensorSpec, ...]:
    specs = []
    for index, item in enumerate(fields.get(dotted, list)):
        where = f"{dotted}[{index}]"
        if not isinstance(item, Mapping):
            raise UserError(f"field {where!r} must be an object", fields.path)
        one = _Fields(item, fields.path)
        shape = one.get("shape", list)
        if not all((isinstance(d, int) and not isinstance(d, bool) and d > 0) or d == BATCH_DIM for d in shape):
            raise UserError(f"field {where}.shape {shape!r} must hold positive ints or {BATCH_DIM!r}", fields.path)
        value_range = one.get("range", list, optional=True)
        if value_range is not None and (len(value_range) != 2 or not all(isinstance(v, (int, float)) for v in value_range)):
            raise UserError(f"field {where}.range must be [low, high]", fields.path)
        specs.append(
            TensorSpec(
                name=one.get("name", str),
                shape=tuple(shape),
                dtype=one.get("dtype", str),
                range=None if value_range is None else (float(value_range[0]), float(value_range[1])),
            )
        )
    return tuple(specs)


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Validate the JSON object of a mclrt.json (already decoded) and build the Manifest."""
    if not isinstance(data, Mapping):
        raise UserError("must hold a JSON object", path)
    fields = _Fields(data, path)
    if fields.get("format", str) != FORMAT:
        raise UserError(f"field 'format' is {data['format']!r}, expected {FORMAT!r}", path)
    version = fields.get("format_version", int)
    if version != FORMAT_VERSION:
        raise UserError(f"unsupported format_version {version} (this mclrt reads version {FORMAT_VERSION})", path)
    image_size = fields.get("image_size", list)
    if len(image_size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size):
        raise UserError(f"field 'image_size' {image_size!r} must be [height, width]", path)
    graphs = {}
    for graph in GRAPH_FILES:
        graphs[graph] = GraphSpec(
            file=fields.get(f"graphs.{graph}.file", str),
            sha256=fields.get(f"graphs.{graph}.sha256", str).lower(),
            inputs=_tensor_specs(fields, f"graphs.{graph}.inputs"),
            outputs=_tensor_specs(fields, f"graphs.{graph}.outputs"),
        )
    manifest = Manifest(
        preset=fields.get("preset", str),
        precision=fields.choice("precision", PRECISIONS),
        image_size=(image_size[0], image_size[1]),
        condition=ConditionSpec(
            kind=fields.choice("condition.kind", CONDITION_KINDS),
            channels=fields.get("condition.channels", int),
            extract=fields.choice("condition.extract", EXTRACTORS, optional=True),
            maskmix=fields.get("condition.maskmix", bool),
        ),
        correspondence=CorrespondenceSpec(
            positions=fields.get("correspondence.positions", int),
            descriptor_width=fields.get("correspondence.descriptor_width", int),
            value_width=fields.get("correspondence.value_width", int),
            scale=float(fields.get("correspondence.scale", (int, float))),
            mask_negative=fields.get("correspondence.mask_negative", bool),
        ),
        graphs=graphs,
        opset=fields.get("opset", int),
        versions=fields.get("versions", dict, optional=True) or {},
        provenance=fields.get("provenance", dict, optional=True) or {},
        preprocessing=fields.get("preprocessing", dict, optional=True) or dict(DEFAULT_PREPROCESSING),
    )
    _check_contract(manifest, path)
    return manifest


def _check_contract(manifest: Manifest, path: Path) -> None:
    """The graphs' inputs and outputs must be the ones every consumer feeds and reads."""
    height, width = manifest.image_size
    cond, corr = manifest.condition, manifest.correspondence
    expected_shapes = {
        "exemplar": (BATCH_DIM, 3, height, width),
        "exemplar_condition": (BATCH_DIM, cond.channels, height, width),
        "condition": (BATCH_DIM, cond.channels, height, width),
        "exemplar_keys": (BATCH_DIM, corr.positions, corr.descriptor_width),
        "exemplar_values": (BATCH_DIM, corr.positions, corr.value_width),
        "image": (BATCH_DIM, 3, height, width),
        "warped_exemplar": (BATCH_DIM, 3, height, width),
    }
    for graph, (inputs, outputs) in CONTRACT_IO.items():
        spec = manifest.graphs[graph]
        if graph == "exemplar_encoder" and cond.maskmix:
            inputs = inputs + ("exemplar_condition",)
        for role, want, have in (("inputs", inputs, spec.inputs), ("outputs", outputs, spec.outputs)):
            names = sorted(t.name for t in have)
            if names != sorted(want):
                raise UserError(f"graphs.{graph}.{role} are {names}, the mclrt-model format needs {sorted(want)}", path)
            for tensor in have:
                if tensor.shape != expected_shapes[tensor.name]:
                    raise UserError(
                        f"graphs.{graph}: {tensor.name} has shape {list(tensor.shape)}, "
                        f"expected {list(expected_shapes[tensor.name])} from image_size/condition/correspondence",
                        path,
                    )


def load_model_dir(path: str | os.PathLike, verify_hashes: bool = True) -> ModelDir:
    """Open a model directory; every problem is a UserError naming the file at fault."""
    root = Path(path)
    if not root.exists():
        raise UserError("model directory not found", root)
    if not root.is_dir():
        raise UserError(f"not a directory (a model is a directory holding {MANIFEST_NAME} and two .onnx files)", root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        # `mclrt quantize --encoding both` writes one model directory per encoding side by side.
        try:
            inside = [sub.name for sub in sorted(root.iterdir()) if (sub / MANIFEST_NAME).is_file()]
        except OSError:
            inside = []
        if inside:
            roles = {"trt": "TensorRT", "cpu": "ONNX Runtime"}
            choices = " or ".join(str(root / name) + (f" ({roles[name]})" if name in roles else "") for name in inside)
            raise UserError(f"holds {len(inside)} model directories (a `mclrt quantize` output): pick one, --model {choices}", root)
        raise UserError(f"not a model directory: {MANIFEST_NAME} is missing (make one with `mclrt export`)", root)
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}", manifest_path) from None
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", manifest_path) from None
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", manifest_path) from None
    manifest = parse_manifest(data, manifest_path)
    for graph, spec in manifest.graphs.items():
        graph_path = root / spec.file
        if Path(spec.file).name != spec.file:
            raise UserError(f"graphs.{graph}.file {spec.file!r} must be a file name inside the model directory", manifest_path)
        if not graph_path.is_file():
            raise UserError(f"missing: {MANIFEST_NAME} lists it as the {graph} graph", graph_path)
        if verify_hashes and sha256_file(graph_path) != spec.sha256:
            raise UserError(f"SHA-256 does not match {MANIFEST_NAME}: the file was modified or is corrupt", graph_path)
    return ModelDir(root, manifest)


# --- writing (used by `mclrt export`, and by anything that rewrites a graph, e.g. quantization) -------


def graph_spec_from_onnx(path: str | os.PathLike) -> GraphSpec:
    """Inputs/outputs and SHA-256 of an ONNX file, in the manifest's terms."""
    import onnx
    from onnx import helper

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)

    def spec(value_info) -> TensorSpec:
        tensor_type = value_info.type.tensor_type
        dims = []
        for axis, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif axis == 0:
                dims.append(BATCH_DIM)  # the one dynamic dimension the format allows
            else:
                raise UserError(f"{value_info.name}: dimension {axis} is dynamic; only the batch may be", path)
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        return TensorSpec(value_info.name, tuple(dims), dtype, CONTRACT_RANGES.get(value_info.name))

    initializers = {init.name for init in model.graph.initializer}
    return GraphSpec(
        file=path.name,
        sha256=sha256_file(path),
        inputs=tuple(spec(v) for v in model.graph.input if v.name not in initializers),
        outputs=tuple(spec(v) for v in model.graph.output),
    )


def onnx_default_opset(path: str | os.PathLike) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))


def write_manifest(
    model_dir: str | os.PathLike,
    *,
    preset: str,
    precision: str,
    image_size: tuple[int, int],
    condition: ConditionSpec,
    correspondence: CorrespondenceSpec,
    versions: Mapping[str, str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    preprocessing: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Write `model_dir/mclrt.json` for the two graphs already in `model_dir`; returns what it wrote.

    The graph I/O, hashes and opset are read from the ONNX files; the result is validated exactly as
    `load_model_dir` validates it, so an exporter cannot write a directory that consumers refuse.
    """
    import onnx

    root = Path(model_dir)
    graphs = {graph: graph_spec_from_onnx(root / file) for graph, file in GRAPH_FILES.items()}
    opsets = {onnx_default_opset(root / file) for file in GRAPH_FILES.values()}
    all_versions = {"onnx": onnx.__version__, **_mclrt_version(), **dict(versions or {})}
    manifest = Manifest(
        preset=preset,
        precision=precision,
        image_size=(int(image_size[0]), int(image_size[1])),
        condition=condition,
        correspondence=correspondence,
        graphs=graphs,
        opset=max(opsets),
        versions=all_versions,
        provenance=dict(provenance or {}),
        preprocessing=dict(preprocessing or DEFAULT_PREPROCESSING),
    )
    data = manifest.to_json_dict()
    parsed = parse_manifest(json.loads(json.dumps(data)), root / MANIFEST_NAME)  # round trip = same checks as readers
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(root / MANIFEST_NAME, text.encode("utf-8"), overwrite=overwrite)
    return parsed


def _mclrt_version() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"mclrt": version("mclrt")}
    except PackageNotFoundError:  # running from a source tree that was never installed
        return {}
