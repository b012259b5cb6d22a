"""The FP16 ONNX recipe: which nodes stay FP32, that the result is valid, and how close it runs to FP32.

Everything runs for real: the graph walk on contract-shaped models, onnxconverter-common, the ONNX
checker and ONNX Runtime's CPU provider.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mclrt.runtime.trt import fp16
from model_dir_fixtures import TinySpec
from normalized_models import build_encoder, build_translator


def _feed(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for value in model.graph.input:
        shape = [2] + [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
        feed[value.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return feed


def test_protected_nodes_of_the_translator():
    protected = fp16.find_protected_nodes(build_translator(TinySpec()))
    reasons = protected.reasons
    assert reasons["correspondence"].startswith("correspondence")
    assert reasons["translator/in0"] == reasons["translator/spade_norm"] == "normalization"
    # CoCosNet's positional norm, decomposed: every node of (x - mean) / sqrt(mean((x - mean)^2) + eps).
    for step in ("mean", "center", "square", "variance", "add_eps", "std", "normalize"):
        assert f"translator/pono/{step}" in protected, step
    # L2-normalize of the descriptors: the norm, its eps and the division.
    for step in ("norm", "add_eps", "divide"):
        assert f"translator/l2/{step}" in protected, step
    # Convolutions, activations and the SPADE modulation are free to run in FP16.
    for free in ("translator/conv0", "translator/act0", "translator/down2", "translator/spade_scale", "translator/spade_shift", "translator/to_rgb"):
        assert free not in protected, free


def test_torch_style_normalize_with_runtime_shapes_is_found():
    """F.normalize exports as ReduceL2 -> Clip -> Expand(Shape(x)) -> Div: the shape is data, not a constant."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 16])
    nodes = [
        helper.make_node("ReduceL2", ["x", "axes"], ["norm"], name="norm", keepdims=1),
        helper.make_node("Clip", ["norm", "eps"], ["clipped"], name="clip"),
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Expand", ["clipped", "shape"], ["expanded"], name="expand"),
        helper.make_node("Div", ["x", "expanded"], ["y"], name="divide"),
    ]
    inits = [numpy_helper.from_array(np.array([-1], np.int64), "axes"), numpy_helper.from_array(np.array(1e-12, np.float32), "eps")]
    model = helper.make_model(helper.make_graph(nodes, "normalize", [x], [y], inits), opset_imports=[helper.make_opsetid("", 20)])
    protected = fp16.find_protected_nodes(model)
    assert {"norm", "clip", "expand", "divide"} <= protected.names
    assert "shape" not in protected


def test_recipe_keeps_protected_nodes_fp32_and_runs_close_to_fp32():
    tool = fp16.available_tool()
    for build in (build_encoder, build_translator):
        model = build(TinySpec())
        converted, result = fp16.make_fp16_onnx(model, _feed(model), tool=tool)
        assert result.check.problems == []
        assert result.check.fp16_nodes > 0 and result.check.fp32_nodes >= len(result.protected.names)
        onnx.checker.check_model(converted, full_check=True)
        # keep_io_types: the contract's float32 inputs and outputs are unchanged.
        assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in list(converted.graph.input) + list(converted.graph.output))
        errors = result.max_abs_error
        assert set(errors) == {o.name for o in model.graph.output}
        assert all(np.isfinite(e) and e < 2e-2 for e in errors.values()), errors
        print(f"{model.graph.name}: FP16 ONNX vs FP32 ONNX on ORT CPU, max abs error {errors}")


def test_function_body_stays_fp32():
    model = build_translator(TinySpec())
    converted, result = fp16.make_fp16_onnx(model, None)
    assert [f.SerializeToString() for f in converted.functions] == [f.SerializeToString() for f in model.functions]
    body_types = [a.i for f in converted.functions for n in f.node for a in n.attribute if a.name == "to"]
    assert TensorProto.FLOAT16 not in body_types
    node = next(n for n in converted.graph.node if n.op_type == "CorrespondenceSoftmax")
    assert {a.name for a in node.attribute} >= {"scale", "mask_negative", "plugin_namespace"}


def test_the_check_catches_a_recipe_without_its_block_list():
    """Protect only the correspondence: the check names the normalizations that went FP16."""
    model = build_translator(TinySpec())
    converted, result = fp16.make_fp16_onnx(model, _feed(model), keep_fp32={"correspondence"})
    problems = " ".join(result.check.problems)
    for node in ("translator/in0", "translator/pono/variance", "translator/l2/norm", "translator/spade_norm"):
        assert f"protected node {node} " in problems, node
    assert "protected node correspondence " not in problems
