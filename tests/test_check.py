"""`mclrt check` on real tiny model directories: a good one passes (including TensorRT-RTX's real
parser and builder on the CPU when installed); broken ones are reported with the node at fault."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mclrt.runtime.checks import fp16_risk
from mclrt.runtime.checks import trt_op_support
from mclrt.runtime.checks.model_check import CheckOptions, check_model_dir, tensorrt_rtx_installed
from mclrt.runtime.checks.onnx_graph import GraphIndex, prepare_for_checks
from model_dir_fixtures import TinySpec, build_tiny_model_dir, correspondence_node, rewrite_graph

needs_rtx = pytest.mark.skipif(not tensorrt_rtx_installed(), reason="TensorRT-RTX is not installed (the [trt-check] extra)")
NO_TRT = CheckOptions(tensorrt=False)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return build_tiny_model_dir(tmp_path_factory.mktemp("check") / "tiny")


@pytest.fixture
def copy(good, tmp_path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "model"))


def _translator(model: Path) -> onnx.ModelProto:
    return onnx.load(model / "translator.onnx")


def _before_tanh(model: onnx.ModelProto, nodes: list[onnx.NodeProto], new_input: str, inits=()) -> onnx.ModelProto:
    """Insert `nodes` (reading "blend", producing `new_input`) in front of the final Tanh."""
    graph = model.graph
    tanh = next(n for n in graph.node if n.op_type == "Tanh")
    position = list(graph.node).index(tanh)
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    tanh.input[0] = new_input
    graph.initializer.extend(inits)
    return model


def _errors(report, check: str) -> list:
    return [f for f in report.findings if f.check == check and f.severity == "error"]


def _status(report, step: str, graph: str | None) -> str:
    return next(s.status for s in report.steps if s.step == step and s.graph == graph)


# --- a good model -------------------------------------------------------------------------------------


@needs_rtx
def test_good_model_passes_everything_including_tensorrt_rtx(good):
    report = check_model_dir(good, CheckOptions(tensorrt=True))
    assert report.ok, report.findings
    assert [f for f in report.findings if f.severity == "error"] == []
    assert {s.step for s in report.steps} == {
        "load", "onnx-checker", "tensorrt-ops", "correspondence", "correspondence-function", "onnxruntime", "tensorrt-rtx-build", "fp16-risk",
    }  # fmt: skip
    for graph in ("exemplar_encoder", "translator"):
        assert _status(report, "tensorrt-rtx-build", graph) == "pass"
        detail = next(s.detail for s in report.steps if s.step == "tensorrt-rtx-build" and s.graph == graph)
        assert "SM86 plan" in detail and "batch 1/1/4" in detail
    assert "max abs error" in next(s.detail for s in report.steps if s.step == "correspondence-function")


def test_check_cli_json_and_exit_codes(good, tmp_path):
    done = subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", "check", "--model", str(good), "--json", "--no-trt"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert {s["status"] for s in report["steps"] if s["step"] == "tensorrt-rtx-build"} == {"skip"}
    # a directory that does not load is a user error (exit 2, one line)
    done = subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", "check", "--model", str(tmp_path / "absent")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path / 'absent'}: model directory not found"


# --- broken models --------------------------------------------------------------------------------------


def test_unsupported_op_is_reported_and_fails(copy):
    model = _before_tanh(
        _translator(copy),
        [
            helper.make_node("Sigmoid", ["blend"], ["probability"]),
            helper.make_node("Bernoulli", ["probability"], ["coin"], name="coin_flip"),
            helper.make_node("Mul", ["coin", "zero"], ["nothing"]),
            helper.make_node("Add", ["blend", "nothing"], ["blend_plus"]),
        ],
        "blend_plus",
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, NO_TRT)
    assert not report.ok
    assert [(f.graph, f.node, f.message) for f in _errors(report, "tensorrt-ops")] == [
        ("translator", "coin_flip", "Bernoulli is not supported by TensorRT")
    ]
    assert _status(report, "onnxruntime", None) == "pass"  # ONNX Runtime runs it; TensorRT would not


@needs_rtx
def test_tensorrt_rtx_parse_failure_is_a_finding(copy):
    model = _before_tanh(
        _translator(copy),
        [helper.make_node("Bernoulli", ["blend"], ["coin"], name="coin_flip")],
        "coin",
    )
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, CheckOptions(tensorrt=True))
    assert _status(report, "tensorrt-rtx-build", "translator") == "fail"
    assert _status(report, "tensorrt-rtx-build", "exemplar_encoder") == "pass"
    assert any("Bernoulli" in f.message for f in _errors(report, "tensorrt-rtx-build"))


def test_missing_function_is_reported(copy):
    model = _translator(copy)
    del model.functions[:]
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, NO_TRT)
    assert not report.ok
    assert any("no model-local function" in f.message for f in _errors(report, "correspondence"))
    assert any("no model-local function" in f.message for f in _errors(report, "tensorrt-ops"))
    assert any("CorrespondenceSoftmax" in f.message for f in _errors(report, "onnxruntime"))


def test_two_correspondence_nodes_are_reported(copy):
    model = _translator(copy)
    second = correspondence_node("query_out", "exemplar_keys", "exemplar_values", "warp_flat_2", TinySpec(), name="correspondence_2")
    add = helper.make_node("Add", ["warp_flat", "warp_flat_2"], ["warp_sum"])
    graph = model.graph
    position = [n.name for n in graph.node].index("correspondence") + 1
    graph.node.insert(position, second)
    graph.node.insert(position + 1, add)
    next(n for n in graph.node if n.op_type == "Transpose" and n.input[0] == "warp_flat").input[0] = "warp_sum"
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, NO_TRT)
    assert not report.ok
    messages = [f.message for f in _errors(report, "correspondence")]
    assert len(messages) == 1 and "expected exactly one mclrt::CorrespondenceSoftmax node in total, found 2" in messages[0]


def test_correspondence_attributes_must_match_the_contract(copy):
    model = _translator(copy)
    node = next(n for n in model.graph.node if n.op_type == "CorrespondenceSoftmax")
    for attr in node.attribute:
        if attr.name == "plugin_namespace":
            attr.s = b"other"
        if attr.name == "scale":
            attr.f = 10.0
    rewrite_graph(copy, "translator.onnx", model)
    messages = [f.message for f in _errors(check_model_dir(copy, NO_TRT), "correspondence")]
    assert any("plugin_namespace is 'other'" in m for m in messages)
    assert any("scale is 10.0, mclrt.json says 100.0" in m for m in messages)


def test_function_body_is_verified_numerically(copy):
    """A function that forgets the scale still 'runs' -- the numeric check catches it."""
    model = _translator(copy)
    body = model.functions[0].node
    mul = next(n for n in body if n.op_type == "Mul" and n.output[0] == "logits")
    mul.op_type, mul.input[1] = "Identity", ""
    del mul.input[1:]
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, NO_TRT)
    assert any("differs from softmax(scale*q k^T) v" in f.message for f in _errors(report, "correspondence-function"))


def test_tiny_epsilon_is_an_fp16_warning_not_a_failure(copy):
    model = _before_tanh(
        _translator(copy),
        [helper.make_node("InstanceNormalization", ["blend", "in_scale", "in_bias"], ["normalized"], name="tiny_eps_norm", epsilon=1e-8)],
        "normalized",
        [numpy_helper.from_array(np.ones(3, np.float32), "in_scale"), numpy_helper.from_array(np.zeros(3, np.float32), "in_bias")],
    )
    rewrite_graph(copy, "translator.onnx", model)
    report = check_model_dir(copy, NO_TRT)
    assert report.ok
    warnings = [(f.node, f.message) for f in report.findings if f.check == "fp16-risk"]
    assert warnings == [("tiny_eps_norm", "InstanceNormalization epsilon 1e-08 is below FP16's smallest normal (6.1e-5)")]
    assert _status(report, "fp16-risk", "translator") == "warn"


def test_resize_mode_and_dtype_restrictions(copy):
    model = _translator(copy)
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    next(a for a in resize.attribute if a.name == "mode").s = b"cubic"
    model = _before_tanh(
        model,
        [
            helper.make_node("Cast", ["blend"], ["blend64"], to=TensorProto.DOUBLE, name="to_double"),
            helper.make_node("Cast", ["blend64"], ["blend32"], to=TensorProto.FLOAT, name="to_float"),
        ],
        "blend32",
    )
    rewrite_graph(copy, "translator.onnx", model)
    found = {(f.node, f.message) for f in _errors(check_model_dir(copy, NO_TRT), "tensorrt-ops")}
    assert ("Resize -> warped_exemplar", "Resize: mode 'cubic' is not supported (nearest or linear only)") in found
    assert any(node == "to_double" and "FP64" in message for node, message in found)
    assert any(node == "to_float" and "FP64" in message for node, message in found)


# --- the static analyses on small graphs -------------------------------------------------------------------


def _index(nodes, inputs, outputs, inits=()) -> GraphIndex:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return GraphIndex.build(prepare_for_checks(model).graph)


def _value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_fp16_risks_exp_pow_reductions():
    index = _index(
        [
            helper.make_node("Exp", ["x"], ["e"], name="raw_exp"),
            helper.make_node("Clip", ["x", "lo", "hi"], ["clipped"]),
            helper.make_node("Exp", ["clipped"], ["safe"], name="clamped_exp"),
            helper.make_node("Pow", ["x", "two"], ["squared"], name="square"),
            helper.make_node("ReduceMean", ["x", "axes"], ["mean"], name="big_mean"),
            helper.make_node("Softmax", ["x"], ["p"], name="small_softmax", axis=-1),
        ],
        [_value("x", [1, 4, 80, 80])],
        [_value(n, None) for n in ("e", "safe", "squared", "mean", "p")],
        [
            numpy_helper.from_array(np.array(-10, np.float32), "lo"),
            numpy_helper.from_array(np.array(10, np.float32), "hi"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        ],
    )
    found = {f.node: f.message for f in fp16_risk.check_graph(index, "g")}
    assert set(found) == {"raw_exp", "square", "big_mean"}
    assert "6400 elements" in found["big_mean"] and "|x| > 255.9" in found["square"]


def test_trt_table_and_run_time_inputs():
    table = trt_op_support.load_op_table()
    assert "INT64" in table["ConstantOfShape"].types and "" not in table["Selu"].types
    assert table["Softmax"].supported and not table["Bernoulli"].supported
    index = _index(
        [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Slice", ["shape", "start", "end"], ["axes"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["sum"], name="dynamic_axes"),
            helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="big_k", axis=-1),
        ],
        [_value("x", [1, 4, 8, 4000])],
        [_value("sum", None), _value("values", None), helper.make_tensor_value_info("indices", TensorProto.INT64, None)],
        [
            numpy_helper.from_array(np.array([2], np.int64), "start"),
            numpy_helper.from_array(np.array([3], np.int64), "end"),
            numpy_helper.from_array(np.array([3900], np.int64), "k"),
        ],
    )
    found = {(f.node, f.message) for f in trt_op_support.check_graph(index, "g")}
    assert ("dynamic_axes", "ReduceSum: `axes` must be an initializer or constant, but 'axes' is computed at run time") in found
    assert ("big_k", "TopK: `K` must be less than 3840 (is 3900)") in found
