"""An index over one ONNX graph for static checks: who produces and consumes each tensor, which
tensors are constants (and their values), and each tensor's inferred dtype and shape.

The checks look at a graph the way TensorRT's parser will: model-local functions inlined (TensorRT
inlines a local function unless a plugin of that name is registered) and shapes inferred, so the
body of `mclrt::CorrespondenceSoftmax` is checked like any other part of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

# ONNX element types -> the names TensorRT's operator table uses.
TRT_TYPE_NAMES = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.BFLOAT16: "BF16",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.FLOAT8E4M3FN: "FP8",
    onnx.TensorProto.INT4: "INT4",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.UINT16: "UINT16",
    onnx.TensorProto.INT16: "INT16",
    onnx.TensorProto.UINT32: "UINT32",
    onnx.TensorProto.UINT64: "UINT64",
    onnx.TensorProto.STRING: "STRING",
}


def node_label(node: onnx.NodeProto) -> str:
    """A name a reader can find: the node's name, else its op and first output (inlined nodes have none)."""
    if node.name:
        return node.name
    return f"{node.op_type} -> {node.output[0]}" if node.output else node.op_type


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def prepare_for_checks(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline model-local functions and infer shapes (data propagation on, so Reshape targets resolve)."""
    import onnx.inliner
    import onnx.shape_inference

    inlined = onnx.inliner.inline_local_functions(model) if model.functions else model
    return onnx.shape_inference.infer_shapes(inlined, data_prop=True)


@dataclass
class GraphIndex:
    graph: onnx.GraphProto
    producers: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    types: dict[str, onnx.TypeProto] = field(default_factory=dict)
    graph_outputs: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, graph: onnx.GraphProto, outer: "GraphIndex | None" = None) -> "GraphIndex":
        index = cls(graph)
        if outer is not None:  # a subgraph sees its parents' constants and types
            index.constants.update(outer.constants)
            index.types.update(outer.types)
        for init in graph.initializer:
            index.constants[init.name] = numpy_helper.to_array(init)
            index.types[init.name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
        for value in list(graph.input) + list(graph.value_info) + list(graph.output):
            index.types[value.name] = value.type
        index.graph_outputs = {v.name for v in graph.output}
        for node in graph.node:
            for out in node.output:
                if out:
                    index.producers[out] = node
            for name in node.input:
                if name:
                    index.consumers.setdefault(name, []).append(node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = _constant_node_value(node)
                if value is not None:
                    index.constants[node.output[0]] = value
        return index

    # --- queries --------------------------------------------------------------------------------
    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)

    def elem_type(self, name: str) -> int | None:
        tensor_type = self.types.get(name)
        if tensor_type is None or not tensor_type.HasField("tensor_type"):
            return None
        return tensor_type.tensor_type.elem_type or None

    def type_name(self, name: str) -> str | None:
        elem = self.elem_type(name)
        return None if elem is None else TRT_TYPE_NAMES.get(elem, onnx.TensorProto.DataType.Name(elem))

    def shape(self, name: str) -> list[int | str | None] | None:
        """Inferred shape: ints where known, the symbol (e.g. "batch") or None where not; None if no rank."""
        tensor_type = self.types.get(name)
        if tensor_type is None or not tensor_type.HasField("tensor_type") or not tensor_type.tensor_type.HasField("shape"):
            if name in self.constants:
                return list(self.constants[name].shape)
            return None
        dims: list[int | str | None] = []
        for dim in tensor_type.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif dim.HasField("dim_param"):
                dims.append(dim.dim_param)
            else:
                dims.append(None)
        return dims

    def producer(self, name: str) -> onnx.NodeProto | None:
        return self.producers.get(name)


def walk_graphs(graph: onnx.GraphProto, outer: GraphIndex | None = None) -> Iterator[GraphIndex]:
    """The graph and every subgraph (If/Loop/Scan bodies), each with its own index."""
    index = GraphIndex.build(graph, outer)
    yield index
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from walk_graphs(attr.g, index)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from walk_graphs(sub, index)


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.ref_attr_name:  # still inside a function body: the value is a parameter
            return None
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), np.int64)
    return None  # sparse or string constants: not numeric
