"""Tiny model directories with the layers FP16 must leave alone, for the TensorRT tests.

`model_dir_fixtures` (the runtime's tiny models) already writes contract-exact directories; its
graphs normalize with one LpNormalization. The FP16 recipe and its check need more: the encoder and
translator here add a conv stack with InstanceNormalization, CoCosNet's positional norm written out
as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div, and an L2-normalize written as ReduceL2/Add/Div --
the decomposed chains that an FP16 conversion must find by walking the graph. The correspondence
node, its function and the manifest come from `model_dir_fixtures`, so both test helpers describe
the same contract.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_dir_fixtures import IR_VERSION, OPSET, TinySpec, correspondence_function, correspondence_node, write_tiny_manifest

FEATURES = 8  # width of the toy conv stacks


class _Graph:
    """Collects nodes and initializers under readable, unique names (the names show up in TensorRT's layer log)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attrs) -> str:
        out = output or f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x: str, name: str, cin: int, cout: int, stride: int = 1) -> str:
        weight = (self.rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
        bias = (0.1 * self.rng.standard_normal(cout)).astype(np.float32)
        inputs = [x, self.const(f"{name}.weight", weight), self.const(f"{name}.bias", bias)]
        return self.node("Conv", inputs, name, pads=[1, 1, 1, 1], strides=[stride, stride])

    def instance_norm(self, x: str, name: str, channels: int) -> str:
        scale = self.const(f"{name}.scale", np.ones(channels, np.float32))
        bias = self.const(f"{name}.bias", np.zeros(channels, np.float32))
        return self.node("InstanceNormalization", [x, scale, bias], name, epsilon=1e-5)

    def positional_norm(self, x: str, name: str) -> str:
        """PONO over channels as CoCosNet writes it: (x - mean_c) / sqrt(var_c + eps)."""
        axes = self.const(f"{name}.axes", np.array([1], np.int64))
        mean = self.node("ReduceMean", [x, axes], f"{name}/mean", keepdims=1)
        centered = self.node("Sub", [x, mean], f"{name}/center")
        squared = self.node("Pow", [centered, self.const(f"{name}.two", np.array(2.0, np.float32))], f"{name}/square")
        variance = self.node("ReduceMean", [squared, axes], f"{name}/variance", keepdims=1)
        shifted = self.node("Add", [variance, self.const(f"{name}.eps", np.array(1e-5, np.float32))], f"{name}/add_eps")
        std = self.node("Sqrt", [shifted], f"{name}/std")
        return self.node("Div", [centered, std], f"{name}/normalize")

    def l2_normalize(self, x: str, name: str, output: str | None = None) -> str:
        """x / (||x||_2 + eps) over the last axis: q k^T is a cosine similarity only for unit descriptors."""
        axes = self.const(f"{name}.axes", np.array([-1], np.int64))
        norm = self.node("ReduceL2", [x, axes], f"{name}/norm", keepdims=1)
        shifted = self.node("Add", [norm, self.const(f"{name}.eps", np.array(1e-6, np.float32))], f"{name}/add_eps")
        return self.node("Div", [x, shifted], f"{name}/divide", output=output)

    def descriptors(self, x: str, in_channels: int, name: str, spec: TinySpec, output: str | None = None) -> str:
        """[B, c, H, W] -> unit descriptors [B, M, C] at 1/4 resolution."""
        h = self.conv(x, f"{name}/conv0", in_channels, FEATURES)
        h = self.instance_norm(h, f"{name}/in0", FEATURES)
        h = self.node("LeakyRelu", [h], f"{name}/act0", alpha=0.2)
        h = self.conv(h, f"{name}/down1", FEATURES, FEATURES, stride=2)
        h = self.node("LeakyRelu", [h], f"{name}/act1", alpha=0.2)
        h = self.conv(h, f"{name}/down2", FEATURES, spec.descriptor_width, stride=2)
        h = self.positional_norm(h, f"{name}/pono")
        flat_shape = self.const(f"{name}.flat_shape", np.array([0, spec.descriptor_width, -1], np.int64))
        rows = self.node("Transpose", [self.node("Reshape", [h, flat_shape], f"{name}/flatten")], f"{name}/to_rows", perm=[0, 2, 1])
        return self.l2_normalize(rows, f"{name}/l2", output=output)


def _model(g: _Graph, name: str, inputs, outputs, functions=()) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("mclrt", 1)] if functions else [])
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions), producer_name="mclrt-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def build_encoder(spec: TinySpec) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(spec.seed))
    size, m = spec.image_size, spec.positions
    g.descriptors("exemplar", 3, "encoder", spec, output="exemplar_keys")
    pooled = g.node("AveragePool", ["exemplar"], "encoder/pool_values", kernel_shape=[4, 4], strides=[4, 4])
    flat = g.node("Reshape", [pooled, g.const("encoder.values_shape", np.array([0, 3, -1], np.int64))], "encoder/values_flatten")
    g.node("Transpose", [flat], "encoder/values", output="exemplar_values", perm=[0, 2, 1])
    return _model(
        g,
        "exemplar_encoder",
        [helper.make_tensor_value_info("exemplar", TensorProto.FLOAT, ["batch", 3, size, size])],
        [
            helper.make_tensor_value_info("exemplar_keys", TensorProto.FLOAT, ["batch", m, spec.descriptor_width]),
            helper.make_tensor_value_info("exemplar_values", TensorProto.FLOAT, ["batch", m, 3]),
        ],
    )


def build_translator(spec: TinySpec) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(spec.seed + 1))
    size, m, l, side = spec.image_size, spec.positions, spec.channels, spec.corr_side
    queries = g.descriptors("condition", l, "translator", spec)
    g.nodes.append(correspondence_node(queries, "exemplar_keys", "exemplar_values", "warp_rows", spec))
    columns = g.node("Transpose", ["warp_rows"], "translator/warp_to_columns", perm=[0, 2, 1])
    small = g.node("Reshape", [columns, g.const("translator.warp_shape", np.array([0, 3, side, side], np.int64))], "translator/warp_unflatten")
    scales = g.const("translator.up4", np.array([1, 1, 4, 4], np.float32))
    g.node("Resize", [small, "", scales], "translator/warp_upsample", output="warped_exemplar", mode="nearest")
    # A SPADE-style block: normalize the condition's features, modulate them by the warped exemplar.
    x = g.instance_norm(g.conv("condition", "translator/spade_in", l, FEATURES), "translator/spade_norm", FEATURES)
    gamma = g.conv("warped_exemplar", "translator/spade_gamma", 3, FEATURES)
    beta = g.conv("warped_exemplar", "translator/spade_beta", 3, FEATURES)
    one_plus_gamma = g.node("Add", [gamma, g.const("translator.one", np.array(1.0, np.float32))], "translator/spade_one_plus_gamma")
    x = g.node("Add", [g.node("Mul", [x, one_plus_gamma], "translator/spade_scale"), beta], "translator/spade_shift")
    x = g.conv(g.node("LeakyRelu", [x], "translator/spade_act", alpha=0.2), "translator/to_rgb", FEATURES, 3)
    g.node("Tanh", [x], "translator/tanh", output="image")
    return _model(
        g,
        "translator",
        [
            helper.make_tensor_value_info("condition", TensorProto.FLOAT, ["batch", l, size, size]),
            helper.make_tensor_value_info("exemplar_keys", TensorProto.FLOAT, ["batch", m, spec.descriptor_width]),
            helper.make_tensor_value_info("exemplar_values", TensorProto.FLOAT, ["batch", m, 3]),
        ],
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size]),
            helper.make_tensor_value_info("warped_exemplar", TensorProto.FLOAT, ["batch", 3, size, size]),
        ],
        [correspondence_function()],
    )


def build_normalized_model_dir(model_dir: Path, spec: TinySpec = TinySpec()) -> Path:
    """A contract-exact model directory whose graphs carry every normalization FP16 must protect."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(build_encoder(spec), model_dir / "exemplar_encoder.onnx")
    onnx.save(build_translator(spec), model_dir / "translator.onnx")
    write_tiny_manifest(model_dir, spec)
    return model_dir
