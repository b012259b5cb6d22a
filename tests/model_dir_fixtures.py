"""Tiny but contract-exact model directories, built with onnx.helper, for testing the runtime.

The graphs are small real networks that follow the mclrt-model format to the letter:
- exemplar_encoder: 4x4 average-pool the exemplar to M positions, a fixed random 1x1 conv and L2
  normalization make the keys [B, M, C]; the pooled RGB are the values [B, M, 3]. With maskmix the
  exemplar's own condition map is pooled and concatenated before the conv.
- translator: the condition is pooled and projected the same way into queries [B, N, C]; the one
  `mclrt::CorrespondenceSoftmax` node (with its model-local function of standard ops and
  plugin_namespace="mclrt") warps the values; the warp is upsampled 4x (nearest) and blended with
  the condition through a 3x3 conv and tanh.

So ONNX Runtime really runs them and TensorRT-RTX really parses and builds them; only the weights are
random. The real exported models replace these once export exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mclrt.runtime.model_dir import ConditionSpec, CorrespondenceSpec, write_manifest

OPSET = 20
IR_VERSION = 10  # what torch's dynamo exporter writes; TensorRT-RTX's parser reads it


@dataclass(frozen=True)
class TinySpec:
    kind: str = "edge"
    channels: int = 1
    image_size: int = 32
    maskmix: bool = False
    extract: str | None = "canny"
    descriptor_width: int = 16
    scale: float = 100.0
    mask_negative: bool = False
    seed: int = 0

    @property
    def corr_side(self) -> int:
        return self.image_size // 4

    @property
    def positions(self) -> int:
        return self.corr_side**2


def correspondence_function() -> onnx.FunctionProto:
    """mclrt::CorrespondenceSoftmax(q, k, v; scale, mask_negative) = softmax(scale * s) @ v, s = q k^T,
    with s replaced by relu(s) when mask_negative (branch-free: max(s, s * (1 - mask)))."""
    scale = helper.make_node("Constant", [], ["scale_value"])
    scale.attribute.append(onnx.AttributeProto(name="value_float", ref_attr_name="scale", type=onnx.AttributeProto.FLOAT))
    mask = helper.make_node("Constant", [], ["mask_value"])
    mask.attribute.append(onnx.AttributeProto(name="value_int", ref_attr_name="mask_negative", type=onnx.AttributeProto.INT))
    nodes = [
        helper.make_node("Transpose", ["k"], ["k_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "k_t"], ["similarity"]),
        mask,
        helper.make_node("CastLike", ["mask_value", "similarity"], ["mask_cast"]),
        helper.make_node("Constant", [], ["one"], value_float=1.0),
        helper.make_node("CastLike", ["one", "similarity"], ["one_cast"]),
        helper.make_node("Sub", ["one_cast", "mask_cast"], ["keep_negative"]),
        helper.make_node("Mul", ["similarity", "keep_negative"], ["similarity_or_zero"]),
        helper.make_node("Max", ["similarity", "similarity_or_zero"], ["masked"]),
        scale,
        helper.make_node("CastLike", ["scale_value", "masked"], ["scale_cast"]),
        helper.make_node("Mul", ["masked", "scale_cast"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["attention"], axis=-1),
        helper.make_node("MatMul", ["attention", "v"], ["y"]),
    ]
    return helper.make_function(
        "mclrt",
        "CorrespondenceSoftmax",
        ["q", "k", "v"],
        ["y"],
        nodes,
        opset_imports=[helper.make_opsetid("", OPSET)],
        attributes=["scale", "mask_negative"],
    )


def correspondence_node(q: str, k: str, v: str, out: str, spec: TinySpec, name: str = "correspondence") -> onnx.NodeProto:
    return helper.make_node(
        "CorrespondenceSoftmax",
        [q, k, v],
        [out],
        name=name,
        domain="mclrt",
        scale=float(spec.scale),
        mask_negative=int(spec.mask_negative),
        plugin_namespace="mclrt",
    )


def _tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _project_and_normalize(prefix: str, source: str, in_channels: int, spec: TinySpec, rng) -> tuple[list, list, str]:
    """[B, c, h, w] -> 1x1 conv to C -> L2-normalize over channels -> [B, M, C]."""
    c = spec.descriptor_width
    weight = rng.standard_normal((c, in_channels, 1, 1)).astype(np.float32)
    inits = [_tensor(f"{prefix}_w", weight), _tensor(f"{prefix}_flat_shape", np.array([0, c, -1], np.int64))]
    nodes = [
        helper.make_node("Conv", [source, f"{prefix}_w"], [f"{prefix}_proj"], name=f"{prefix}_conv"),
        helper.make_node("LpNormalization", [f"{prefix}_proj"], [f"{prefix}_unit"], axis=1, p=2, name=f"{prefix}_norm"),
        helper.make_node("Reshape", [f"{prefix}_unit", f"{prefix}_flat_shape"], [f"{prefix}_flat"]),
        helper.make_node("Transpose", [f"{prefix}_flat"], [f"{prefix}_out"], perm=[0, 2, 1]),
    ]
    return nodes, inits, f"{prefix}_out"


def _model(graph: onnx.GraphProto, functions=()) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("mclrt", 1)] if functions else [])
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions), producer_name="mclrt-tests")
    model.ir_version = IR_VERSION
    return model


def build_encoder(spec: TinySpec) -> onnx.ModelProto:
    rng = np.random.default_rng(spec.seed)
    size, m, l = spec.image_size, spec.positions, spec.channels
    inputs = [helper.make_tensor_value_info("exemplar", TensorProto.FLOAT, ["batch", 3, size, size])]
    nodes = [helper.make_node("AveragePool", ["exemplar"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4])]
    source, in_channels = "pooled", 3
    if spec.maskmix:
        inputs.append(helper.make_tensor_value_info("exemplar_condition", TensorProto.FLOAT, ["batch", l, size, size]))
        nodes += [
            helper.make_node("AveragePool", ["exemplar_condition"], ["pooled_condition"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Concat", ["pooled", "pooled_condition"], ["pooled_both"], axis=1),
        ]
        source, in_channels = "pooled_both", 3 + l
    key_nodes, inits, keys = _project_and_normalize("key", source, in_channels, spec, rng)
    nodes += key_nodes
    inits.append(_tensor("values_shape", np.array([0, 3, -1], np.int64)))
    nodes += [
        helper.make_node("Identity", [keys], ["exemplar_keys"]),
        helper.make_node("Reshape", ["pooled", "values_shape"], ["values_flat"]),
        helper.make_node("Transpose", ["values_flat"], ["exemplar_values"], perm=[0, 2, 1]),
    ]
    outputs = [
        helper.make_tensor_value_info("exemplar_keys", TensorProto.FLOAT, ["batch", m, spec.descriptor_width]),
        helper.make_tensor_value_info("exemplar_values", TensorProto.FLOAT, ["batch", m, 3]),
    ]
    return _model(helper.make_graph(nodes, "exemplar_encoder", inputs, outputs, inits))


def build_translator(spec: TinySpec) -> onnx.ModelProto:
    rng = np.random.default_rng(spec.seed + 1)
    size, m, l, side = spec.image_size, spec.positions, spec.channels, spec.corr_side
    inputs = [
        helper.make_tensor_value_info("condition", TensorProto.FLOAT, ["batch", l, size, size]),
        helper.make_tensor_value_info("exemplar_keys", TensorProto.FLOAT, ["batch", m, spec.descriptor_width]),
        helper.make_tensor_value_info("exemplar_values", TensorProto.FLOAT, ["batch", m, 3]),
    ]
    nodes = [helper.make_node("AveragePool", ["condition"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4])]
    query_nodes, inits, queries = _project_and_normalize("query", "pooled", l, spec, rng)
    nodes += query_nodes
    blend = (rng.standard_normal((3, 3 + l, 3, 3)) * 0.3).astype(np.float32)
    inits += [
        _tensor("warp_shape", np.array([0, 3, side, side], np.int64)),
        _tensor("upsample_scales", np.array([1, 1, 4, 4], np.float32)),
        _tensor("blend_w", blend),
        _tensor("blend_b", np.zeros(3, np.float32)),
    ]
    nodes += [
        correspondence_node(queries, "exemplar_keys", "exemplar_values", "warp_flat", spec),
        helper.make_node("Transpose", ["warp_flat"], ["warp_channels"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["warp_channels", "warp_shape"], ["warp_small"]),
        helper.make_node("Resize", ["warp_small", "", "upsample_scales"], ["warped_exemplar"], mode="nearest"),
        helper.make_node("Concat", ["warped_exemplar", "condition"], ["blend_in"], axis=1),
        helper.make_node("Conv", ["blend_in", "blend_w", "blend_b"], ["blend"], pads=[1, 1, 1, 1], name="blend_conv"),
        helper.make_node("Tanh", ["blend"], ["image"], name="to_image"),
    ]
    outputs = [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size]),
        helper.make_tensor_value_info("warped_exemplar", TensorProto.FLOAT, ["batch", 3, size, size]),
    ]
    return _model(helper.make_graph(nodes, "translator", inputs, outputs, inits), [correspondence_function()])


def write_tiny_manifest(model_dir: Path, spec: TinySpec, overwrite: bool = False, precision: str = "fp32"):
    return write_manifest(
        model_dir,
        preset=f"tiny-{spec.kind}",
        precision=precision,
        image_size=(spec.image_size, spec.image_size),
        condition=ConditionSpec(kind=spec.kind, channels=spec.channels, extract=spec.extract, maskmix=spec.maskmix),
        correspondence=CorrespondenceSpec(
            positions=spec.positions,
            descriptor_width=spec.descriptor_width,
            value_width=3,
            scale=spec.scale,
            mask_negative=spec.mask_negative,
        ),
        provenance={"built_by": "tests/tiny_models.py", "seed": spec.seed},
        overwrite=overwrite,
    )


def build_tiny_model_dir(model_dir: Path, spec: TinySpec = TinySpec()) -> Path:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(build_encoder(spec), model_dir / "exemplar_encoder.onnx")
    onnx.save(build_translator(spec), model_dir / "translator.onnx")
    write_tiny_manifest(model_dir, spec)
    return model_dir


def rewrite_graph(model_dir: Path, graph_file: str, model: onnx.ModelProto, spec: TinySpec = TinySpec()) -> None:
    """Replace one graph of a tiny model dir and re-hash the manifest (for tests of broken graphs)."""
    onnx.save(model, Path(model_dir) / graph_file)
    write_tiny_manifest(Path(model_dir), spec, overwrite=True)


def numpy_correspondence(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float = 100.0, mask_negative: bool = False):
    """The contract's correspondence_softmax in numpy."""
    s = q @ np.swapaxes(k, 1, 2)
    if mask_negative:
        s = np.maximum(s, 0.0)
    logits = scale * s
    logits = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v


# --- user-side inputs for the CLI tests: real photos shipped in packages ------------------------------


def write_photo(path: Path, index: int = 1, size: int = 96) -> Path:
    """A package photo (0 astronaut, 1 chelsea, 2 coffee, ...) downsized and written as PNG or JPEG."""
    import cv2

    from mclrt.runtime.inputs.conditions import package_photos

    rgb = cv2.resize(package_photos()[index].rgb, (size, size), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"could not write {path}")
    return path


def write_edge_conditions(folder: Path, count: int = 3, size: int = 64) -> list[Path]:
    """Edge maps (white = edge, grayscale PNG) of the first `count` package photos."""
    import cv2

    from mclrt.runtime.inputs.conditions import edge_map, package_photos

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for photo in package_photos()[:count]:
        edges = edge_map(cv2.resize(photo.rgb, (size, size), interpolation=cv2.INTER_AREA))[0]
        path = folder / f"{photo.name}.png"
        cv2.imwrite(str(path), (edges * 255).astype(np.uint8))
        paths.append(path)
    return paths
