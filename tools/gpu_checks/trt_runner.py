"""Check 4: the TensorRT runner's buffer handling on a real plan: device and pinned host buffers
grown across batch 1 -> 4 -> 2 (and reused when smaller), stream sync, right values.

A tiny network (y = relu(x) * 2 + 1, dynamic batch) is built on this GPU with the installed TensorRT,
so only the runner is under test. NEVER RUN: written for the first GPU run (needs TensorRT).
"""

from __future__ import annotations

import numpy as np

from mclrt.tools.gpu_checks import FAIL, PASS

SHAPE = (3, 17, 29)  # odd sizes: no accidental alignment


def tiny_onnx() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *SHAPE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", *SHAPE])
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "two"], ["m"]), helper.make_node("Add", ["m", "one"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[two, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def build_plan(installed, path) -> None:
    from mclrt.runtime.trt import compat
    from mclrt.runtime.trt.logger import shared_logger

    trt, caps = installed.module, installed.caps
    builder = trt.Builder(shared_logger(trt))
    network = builder.create_network(compat.network_flags(trt, caps, strongly_typed=True))
    parser = trt.OnnxParser(network, shared_logger(trt))
    if not parser.parse(tiny_onnx()):
        raise RuntimeError("TensorRT could not parse the tiny network: " + parser.get_error(0).desc())
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, *SHAPE), (2, *SHAPE), (4, *SHAPE))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT built no plan for the tiny network")
    path.write_bytes(bytes(plan))


def run(ctx) -> dict:
    from mclrt.runtime.trt import compat
    from mclrt.runtime.trt.runner import TensorRTRunner

    installed = compat.require()
    plan = ctx.work / "tiny.plan"
    build_plan(installed, plan)
    rows, rng = [], np.random.default_rng(0)
    with TensorRTRunner(plan, installed=installed) as runner:
        for batch in (1, 4, 2):
            x = rng.standard_normal((batch, *SHAPE)).astype(np.float32)
            y = runner.infer({"x": x})["y"]
            expected = np.maximum(x, 0) * 2 + 1
            capacity = runner._buffers["x"].capacity  # the runner's own bookkeeping: what this check is about
            rows.append({"batch": batch, "max_abs_err": float(np.abs(y - expected).max()), "x_buffer_bytes": capacity, "shape_ok": y.shape == expected.shape})
    grew = rows[1]["x_buffer_bytes"] > rows[0]["x_buffer_bytes"]
    reused = rows[2]["x_buffer_bytes"] == rows[1]["x_buffer_bytes"]
    ok = grew and reused and all(r["max_abs_err"] == 0.0 and r["shape_ok"] for r in rows)
    return {
        "status": PASS if ok else FAIL,
        "reason": "" if ok else "wrong values, shapes, or buffers not grown/reused as expected",
        "tensorrt": installed.caps.label,
        "batches": rows,
    }
