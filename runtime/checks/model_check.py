"""`mclrt check`: prove, without a GPU, that an exported model directory is sound and deployable.

Steps, each reported as pass / fail / skip with its findings:
1. the directory loads (manifest valid, SHA-256 of each graph verified);
2. `onnx.checker.check_model(full_check=True)` on both graphs;
3. every op is supported by TensorRT (operator table + restrictions, functions inlined);
4. exactly one `mclrt::CorrespondenceSoftmax` node across both graphs, carrying plugin_namespace="mclrt",
   the manifest's scale and mask_negative, with its model-local function present, and that function
   computing softmax(scale * q k^T) v (run by ONNX Runtime against NumPy);
5. ONNX Runtime (CPU) runs both graphs on random valid inputs at batch 2: outputs finite, with the
   manifest's shapes, inside the manifest's value ranges;
6. when TensorRT-RTX is installed: its real ONNX parser parses both graphs and its builder builds a
   plan on the CPU (function inlined: the plugin is deliberately not registered), with a dynamic-batch
   profile 1/1/4 and an explicit compute capability (CURRENT needs a GPU). This runs in a subprocess,
   because a failing plugin import can abort the whole process inside the parser;
7. an FP16-risk report (warnings only).

ORT-vs-PyTorch parity needs torch and lives on the export side.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mclrt.runtime.checks.findings import Finding
from mclrt.runtime.model_dir import ModelDir, load_model_dir
from mclrt.runtime.kernels.reference import correspondence_reference

Status = Literal["pass", "warn", "fail", "skip"]
CORRESPONDENCE = ("mclrt", "CorrespondenceSoftmax")
PLUGIN_NAMESPACE = "mclrt"


@dataclass(frozen=True)
class CheckOptions:
    tensorrt: bool | None = None  # None: run the TensorRT-RTX build when TensorRT-RTX is installed
    compute_capability: str = "SM86"  # a CPU build must name its target; SM86 = RTX 30xx / A-series
    max_batch: int = 4  # the dynamic-batch profile is 1 / 1 / max_batch
    ort_batch: int = 2  # >1 so the dynamic batch is exercised
    seed: int = 0
    trt_timeout_seconds: float = 900.0


@dataclass(frozen=True)
class StepResult:
    step: str
    graph: str | None
    status: Status
    detail: str


@dataclass
class CheckReport:
    model: str
    steps: list[StepResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status != "fail" for step in self.steps)

    def add(self, step: str, graph: str | None, findings: list[Finding], detail: str = "", skipped: bool = False) -> None:
        self.findings.extend(findings)
        severities = {f.severity for f in findings}
        status: Status = "skip" if skipped else "fail" if "error" in severities else "warn" if severities else "pass"
        self.steps.append(StepResult(step, graph, status, detail))

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "ok": self.ok,
            "steps": [asdict(s) for s in self.steps],
            "findings": [f.to_dict() for f in self.findings],
        }


def tensorrt_rtx_installed() -> bool:
    """Is a TensorRT-RTX Python module present? (Found, not imported: importing loads 1 GB of libraries.)"""
    return any(importlib.util.find_spec(name) is not None for name in ("tensorrt_rtx", "tensorrt_rtx_bindings"))


def check_model_dir(path: str | Path, options: CheckOptions = CheckOptions()) -> CheckReport:
    """Run every check on a model directory. A directory that does not load raises UserError."""
    import onnx

    model_dir = load_model_dir(path)
    report = CheckReport(str(path))
    report.steps.append(StepResult("load", None, "pass", "manifest valid, SHA-256 of both graphs verified"))
    models = {graph: onnx.load(str(model_dir.graph_path(graph))) for graph in model_dir.manifest.graphs}

    for graph, model in models.items():
        report.add("onnx-checker", graph, _onnx_checker(model_dir, graph), f"{len(model.graph.node)} nodes, opset {_opset(model)}")

    # int8-cpu is ONNX Runtime's encoding (uint8, zero point 128), made beside int8-trt for TensorRT:
    # its zero points are TensorRT errors by design, so the TensorRT steps do not apply to it.
    for_tensorrt = model_dir.manifest.precision != "int8-cpu"
    not_for_tensorrt = "int8-cpu is ONNX Runtime's INT8 encoding; TensorRT takes the int8-trt one"
    prepared = {}
    for graph, model in models.items():
        prepared[graph], problem = _prepare(model, graph)
        if problem is not None:
            report.add("tensorrt-ops", graph, [problem])
            continue
        if not for_tensorrt:
            report.add("tensorrt-ops", graph, [], not_for_tensorrt, skipped=True)
            continue
        report.add("tensorrt-ops", graph, _trt_ops(prepared[graph], model, graph), _op_summary(prepared[graph]))

    report.add("correspondence", None, _correspondence(model_dir, models), "one mclrt::CorrespondenceSoftmax with its function")
    report.add("correspondence-function", "translator", *_function_numerics(model_dir, models["translator"], prepared["translator"], options))
    ort_findings, ort_detail = _ort_run(model_dir, options)
    report.add("onnxruntime", None, ort_findings, ort_detail)

    run_trt = tensorrt_rtx_installed() if options.tensorrt is None else options.tensorrt
    for graph in models:
        if not for_tensorrt:
            report.add("tensorrt-rtx-build", graph, [], not_for_tensorrt, skipped=True)
            continue
        if not run_trt:
            reason = "disabled (--no-trt)" if options.tensorrt is False else "TensorRT-RTX not installed (pip install mclrt[trt-check])"
            report.add("tensorrt-rtx-build", graph, [], reason, skipped=True)
            continue
        findings, detail = _tensorrt_rtx_subprocess(model_dir.graph_path(graph), graph, options)
        report.add("tensorrt-rtx-build", graph, findings, detail)

    for graph, model in prepared.items():
        if model is None:
            continue
        risks = _fp16(model, graph)
        report.add("fp16-risk", graph, risks, f"{len(risks)} warning(s)" if risks else "none found")
    return report


# --- 2. onnx.checker ---------------------------------------------------------------------------------


def _opset(model) -> int:
    return next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), 0)


def _onnx_checker(model_dir: ModelDir, graph: str) -> list[Finding]:
    import onnx

    try:
        onnx.checker.check_model(str(model_dir.graph_path(graph)), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        return [Finding("onnx-checker", "error", graph, None, _first_line(str(err)))]
    return []


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text


# --- 3. TensorRT op support ---------------------------------------------------------------------------


def _prepare(model, graph: str):
    import onnx

    from mclrt.runtime.checks.onnx_graph import prepare_for_checks

    try:
        return prepare_for_checks(model), None
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, RuntimeError) as err:
        return None, Finding("tensorrt-ops", "error", graph, None, f"cannot inline functions / infer shapes: {_first_line(str(err))}")


def _trt_ops(prepared, original, graph: str) -> list[Finding]:
    from mclrt.runtime.checks import trt_op_support
    from mclrt.runtime.checks.onnx_graph import walk_graphs

    local = {(f.domain, f.name) for f in original.functions}
    findings = []
    for index in walk_graphs(prepared.graph):
        findings += trt_op_support.check_graph(index, graph, local)
    return findings


def _op_summary(prepared) -> str:
    ops = {node.op_type for node in prepared.graph.node}
    return f"{len(prepared.graph.node)} nodes after inlining, {len(ops)} op types"


def _fp16(prepared, graph: str) -> list[Finding]:
    from mclrt.runtime.checks import fp16_risk
    from mclrt.runtime.checks.onnx_graph import walk_graphs

    findings = []
    for index in walk_graphs(prepared.graph):
        findings += fp16_risk.check_graph(index, graph)
    return findings


# --- 4. the correspondence node and its function ---------------------------------------------------------


def _correspondence(model_dir: ModelDir, models: dict) -> list[Finding]:
    from onnx import AttributeProto, helper

    check = "correspondence"
    corr = model_dir.manifest.correspondence
    findings = []
    nodes = []
    for graph, model in models.items():
        for node in model.graph.node:
            if (node.domain, node.op_type) == CORRESPONDENCE:
                nodes.append((graph, node))
    if len(nodes) != 1:
        where = ", ".join(f"{g}:{n.name or n.output[0]}" for g, n in nodes) or "none"
        findings.append(Finding(check, "error", None, None, f"expected exactly one mclrt::CorrespondenceSoftmax node in total, found {len(nodes)} ({where})"))
    for graph, node in nodes:
        label = node.name or node.output[0]
        if graph != "translator":
            findings.append(Finding(check, "error", graph, label, "the correspondence belongs in translator.onnx"))
        attrs = {a.name: a for a in node.attribute}
        expected = {"scale": AttributeProto.FLOAT, "mask_negative": AttributeProto.INT, "plugin_namespace": AttributeProto.STRING}
        for name, kind in expected.items():
            if name not in attrs:
                findings.append(Finding(check, "error", graph, label, f"attribute {name!r} is missing"))
            elif attrs[name].type != kind:
                findings.append(Finding(check, "error", graph, label, f"attribute {name!r} has type {AttributeProto.AttributeType.Name(attrs[name].type)}"))
        values = {name: helper.get_attribute_value(a) for name, a in attrs.items()}
        namespace = values.get("plugin_namespace")
        namespace = namespace.decode() if isinstance(namespace, bytes) else namespace
        if namespace is not None and namespace != PLUGIN_NAMESPACE:
            findings.append(Finding(check, "error", graph, label, f"plugin_namespace is {namespace!r}, must be {PLUGIN_NAMESPACE!r} (else TensorRT inlines even with the plugin registered)"))
        if isinstance(values.get("scale"), float) and not np.isclose(values["scale"], corr.scale, rtol=1e-6):
            findings.append(Finding(check, "error", graph, label, f"scale is {values['scale']}, mclrt.json says {corr.scale}"))
        if isinstance(values.get("mask_negative"), int) and bool(values["mask_negative"]) != corr.mask_negative:
            findings.append(Finding(check, "error", graph, label, f"mask_negative is {values['mask_negative']}, mclrt.json says {corr.mask_negative}"))
        model = models[graph]
        function = _find_function(model)
        if function is None:
            findings.append(Finding(check, "error", graph, label, "no model-local function mclrt::CorrespondenceSoftmax: ONNX Runtime cannot run it and TensorRT cannot inline it"))
        else:
            declared = set(function.attribute) | {a.name for a in function.attribute_proto}
            missing = {"scale", "mask_negative"} - declared
            if missing:
                findings.append(Finding(check, "error", graph, label, f"the function does not declare attribute(s) {sorted(missing)}"))
        if not any(op.domain == "mclrt" for op in model.opset_import):
            findings.append(Finding(check, "error", graph, label, "the model does not import the 'mclrt' opset domain"))
    return findings


def _find_function(model):
    return next((f for f in model.functions if (f.domain, f.name) == CORRESPONDENCE), None)


def _function_numerics(model_dir: ModelDir, translator, prepared, options: CheckOptions) -> tuple[list[Finding], str]:
    """Run the function body alone in ONNX Runtime on small random inputs; compare with NumPy."""
    from onnx import helper

    from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions, RunnerError

    check = "correspondence-function"
    function = _find_function(translator)
    node = next((n for n in translator.graph.node if (n.domain, n.op_type) == CORRESPONDENCE), None)
    if function is None or node is None:
        return [Finding(check, "error", "translator", None, "nothing to run: node or function missing (see the correspondence step)")], ""
    elem = _elem_type(prepared, node.input[0])
    corr = model_dir.manifest.correspondence
    batch, n, m, c, cv = 2, 48, 64, 32, corr.value_width
    rng = np.random.default_rng(options.seed)
    q, k = (_unit(rng.standard_normal((batch, rows, c))) for rows in (n, m))
    v = rng.uniform(-1, 1, (batch, m, cv))
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    graph = helper.make_graph(
        [helper.make_node(node.op_type, ["q", "k", "v"], ["y"], domain=node.domain, name="correspondence")],
        "correspondence_alone",
        [helper.make_tensor_value_info(name, elem, ["batch", None, None]) for name in ("q", "k", "v")],
        [helper.make_tensor_value_info("y", elem, ["batch", None, None])],
    )
    graph.node[0].attribute.extend(node.attribute)
    model = helper.make_model(graph, opset_imports=list(translator.opset_import), functions=[function])
    model.ir_version = translator.ir_version
    try:
        with OnnxRuntimeRunner(model.SerializeToString(), OrtOptions(providers=(CPU_EP,)), name="correspondence") as runner:
            got = runner.infer({"q": q.astype(dtype), "k": k.astype(dtype), "v": v.astype(dtype)})["y"]
    except RunnerError as err:
        return [Finding(check, "error", "translator", None, f"the function does not run: {err}")], ""
    want = correspondence_reference(q, k, v, corr.scale, corr.mask_negative)
    error = float(np.max(np.abs(got.astype(np.float64) - want)))
    tolerance = 1e-4 if dtype == np.float32 else 3e-2
    detail = f"ONNX Runtime vs NumPy on random unit q, k: max abs error {error:.2g}"
    if not error <= tolerance:
        return [Finding(check, "error", "translator", None, f"the function differs from softmax(scale*q k^T) v by {error:.3g} (> {tolerance:g})")], detail
    return [], detail


def _elem_type(prepared, name: str) -> int:
    """Element type of a tensor of the (shape-inferred) graph; float32 when inference could not tell."""
    import onnx

    if prepared is not None:
        for value in list(prepared.graph.value_info) + list(prepared.graph.input):
            if value.name == name and value.type.tensor_type.elem_type:
                return value.type.tensor_type.elem_type
    return onnx.TensorProto.FLOAT


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)



# --- 5. ONNX Runtime on random inputs -------------------------------------------------------------------


def _ort_run(model_dir: ModelDir, options: CheckOptions) -> tuple[list[Finding], str]:
    from mclrt.runtime.backends import Device, RunnerOptions, open_runners
    from mclrt.runtime.inputs.feeds import random_feed
    from mclrt.runtime.runners import RunnerError

    check = "onnxruntime"
    rng = np.random.default_rng(options.seed)
    batch = options.ort_batch
    tolerance = 1e-4 if model_dir.manifest.precision == "fp32" else 1e-2
    findings: list[Finding] = []
    outputs: dict[str, np.ndarray] = {}
    for graph in ("exemplar_encoder", "translator"):
        spec = model_dir.manifest.graphs[graph]
        feed = random_feed([t for t in spec.inputs if t.name not in outputs], batch, rng)
        feed.update({name: outputs[name] for name in (t.name for t in spec.inputs) if name in outputs})
        try:
            (runner,) = open_runners(model_dir, RunnerOptions(backend="ort", device=Device.cpu), graphs=(graph,)).values()
            with runner:
                result = runner.infer(feed)
        except RunnerError as err:
            findings.append(Finding(check, "error", graph, None, str(err)))
            return findings, f"CPU provider, batch {batch}"
        for tensor in spec.outputs:
            value = result[tensor.name].astype(np.float32)
            want_shape = (batch, *tensor.fixed_shape)
            if value.shape != want_shape:
                findings.append(Finding(check, "error", graph, tensor.name, f"shape {value.shape}, mclrt.json says {want_shape}"))
            if not np.all(np.isfinite(value)):
                findings.append(Finding(check, "error", graph, tensor.name, "non-finite values (NaN or inf)"))
            elif tensor.range is not None and (value.min() < tensor.range[0] - tolerance or value.max() > tensor.range[1] + tolerance):
                findings.append(
                    Finding(check, "error", graph, tensor.name, f"values in [{value.min():.4g}, {value.max():.4g}], outside the declared range {list(tensor.range)}")
                )
        outputs.update(result)
    return findings, f"CPU provider, batch {batch}, outputs finite and in range"


# --- 6. TensorRT-RTX parse + build (in a subprocess) ----------------------------------------------------


def _tensorrt_rtx_subprocess(onnx_path: Path, graph: str, options: CheckOptions) -> tuple[list[Finding], str]:
    check = "tensorrt-rtx-build"
    command = [
        sys.executable,
        "-m",
        "mclrt.runtime.checks.model_check",
        "tensorrt-rtx-build",
        str(onnx_path),
        "--compute-capability",
        options.compute_capability,
        "--max-batch",
        str(options.max_batch),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=options.trt_timeout_seconds)
    except subprocess.TimeoutExpired:
        return [Finding(check, "error", graph, None, f"timed out after {options.trt_timeout_seconds:g} s")], ""
    result = _last_json_line(done.stdout)
    if result is None:
        tail = _first_line(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else "no output"
        how = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        return [Finding(check, "error", graph, None, f"TensorRT-RTX subprocess died ({how}): {tail}")], ""
    findings = [Finding(check, "error", graph, None, message) for message in result["errors"]]
    if result["built"]:
        detail = (
            f"parsed {result['layers']} layers; {result['compute_capability']} plan {result['plan_bytes'] / 1e6:.2f} MB "
            f"(batch 1/1/{options.max_batch}) in {result['seconds']:.2f} s; TensorRT-RTX {result['version']}"
        )
    else:
        detail = f"TensorRT-RTX {result.get('version', '?')}"
    return findings, detail


def _last_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and "built" in value:
            return value
    return None


def _import_tensorrt_rtx():
    try:
        import tensorrt_rtx as trt
    except ImportError:
        import tensorrt_rtx as trt
    return trt


def tensorrt_rtx_parse_and_build(onnx_path: str | Path, compute_capability: str = "SM86", max_batch: int = 4) -> dict:
    """Parse with TensorRT-RTX's ONNX parser and build a serialized plan on the CPU (AOT).

    Runs in the calling process: call it through `python -m mclrt.runtime.checks.model_check tensorrt-rtx-build`
    unless you are already in a subprocess. No plugin is registered here, so the correspondence
    node's model-local function is inlined. Returns parsed/built flags, errors, plan size, layer count.
    """
    trt = _import_tensorrt_rtx()

    class CollectingLogger(trt.ILogger):
        """Keeps errors for the report instead of printing TensorRT's log to the terminal."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, message):
            if severity in (trt.Logger.ERROR, trt.Logger.INTERNAL_ERROR):
                self.errors.append(message)

    start = time.perf_counter()
    logger = CollectingLogger()
    result = {"version": trt.__version__, "parsed": False, "built": False, "errors": [], "layers": 0, "plan_bytes": 0}
    result["compute_capability"] = compute_capability
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # strongly typed is always on in TensorRT-RTX
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        result["errors"] = [f"parse: {parser.get_error(i)}" for i in range(parser.num_errors)] or logger.errors
        return result
    result["parsed"], result["layers"] = True, network.num_layers
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        dynamic = [axis for axis, dim in enumerate(shape) if dim < 0]
        if dynamic not in ([], [0]):
            result["errors"].append(f"input {tensor.name} has dynamic dimensions {dynamic}; only the batch (0) may be dynamic")
            return result
        rest = shape[1:]
        profile.set_shape(tensor.name, (1, *rest), (1, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    config.num_compute_capabilities = 1
    from mclrt.runtime.trt.compat import normalize_compute_capability

    target = normalize_compute_capability(compute_capability).upper()
    if not hasattr(trt.ComputeCapability, target):
        known = ", ".join(n.lower() for n in trt.ComputeCapability.__members__ if n.startswith("SM"))
        result["errors"] = [f"--target {compute_capability!r}: TensorRT-RTX builds for {known}"]
        return result
    config.set_compute_capability(getattr(trt.ComputeCapability, target), 0)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        result["errors"] = [f"build: {message}" for message in logger.errors] or ["build: build_serialized_network returned None"]
        return result
    result["built"], result["plan_bytes"] = True, int(plan.nbytes)
    result["seconds"] = time.perf_counter() - start
    return result


def _subprocess_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mclrt.runtime.checks.model_check")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("tensorrt-rtx-build", help="parse + build one ONNX graph with TensorRT-RTX; print JSON")
    build.add_argument("onnx")
    build.add_argument("--compute-capability", default="SM86")
    build.add_argument("--max-batch", type=int, default=4)
    args = parser.parse_args(argv)
    result = tensorrt_rtx_parse_and_build(args.onnx, args.compute_capability, args.max_batch)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_subprocess_main())
