"""Real TensorRT-RTX builds on the CPU: plans with and without the plugin, FP16 precision read back.

Every build runs in a subprocess (the `mclrt` CLI or a small script): TensorRT-RTX's parser can abort
the whole process on a plugin problem, and a crash must fail one test, not kill pytest. Running a
plan needs a GPU, so nothing here executes one; what is checked is what the real parser and builder
produce: which layers, in which types, with the plugin mapped or the function inlined, and what the
plan carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from model_dir_fixtures import TinySpec
from normalized_models import build_normalized_model_dir

trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")
# One xdist worker builds the module's plans once (make test runs with --dist loadgroup).
pytestmark = pytest.mark.xdist_group(name="trt_build")

TESTS = Path(__file__).resolve().parent
# A scale and mask that differ from the defaults, so finding them in a plan means they were serialized.
SPEC = TinySpec(scale=37.5, mask_negative=True)


def _plugin_parse_possible() -> bool:
    """TensorRT-RTX's parser dlopen()s libtensorrt_rtx.so when importing a plugin node; `make install`
    adds that link (tools/trt_rtx_setup.py). Without it the parser aborts the process."""
    import importlib.util

    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    return spec is not None and any((Path(p) / "libtensorrt_rtx.so").exists() for p in spec.submodule_search_locations or ())


needs_plugin_parse = pytest.mark.skipif(not _plugin_parse_possible(), reason="libtensorrt_rtx.so link missing: run `python -m mclrt.tools.trt_rtx_setup`")


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MCLRT_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def mclrt(*args: str, cache_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", *args], capture_output=True, text=True, env=_env(cache_dir), timeout=timeout)


def run_script(source: str, cache_dir: Path, timeout: float = 300) -> dict:
    """Run a Python snippet in a fresh process; it prints one JSON object last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True, env=_env(cache_dir), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_normalized_model_dir(tmp_path_factory.mktemp("tiny") / "model", SPEC)


@pytest.fixture(scope="module")
def built(model_dir, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """fp32/fp16 x plugin on/off, each built once by `mclrt engine build` in its own process."""
    if not _plugin_parse_possible():
        pytest.skip("libtensorrt_rtx.so link missing: run `python -m mclrt.tools.trt_rtx_setup`")
    out = tmp_path_factory.mktemp("engines")
    cache_dir = tmp_path_factory.mktemp("cache")
    folders = {}
    for precision in ("fp32", "fp16"):
        for plugin in ("on", "off"):
            done = mclrt("engine", "build", "--model", str(model_dir), "--precision", precision, "--plugin", plugin, "--out", str(out), cache_dir=cache_dir)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "Traceback" not in done.stderr
            folders[precision, plugin] = out / f"{precision}-{'plugin' if plugin == 'on' else 'inline'}"
    return folders


def _layers(folder: Path, graph: str) -> dict:
    return json.loads((folder / f"{graph}.layers.json").read_text())


def _holding(report: dict, node: str) -> list[dict]:
    return [layer for layer in report["layers"] if node in layer["onnx_nodes"]]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("plugin", ["on", "off"])
def test_plans_and_sidecars(built, precision, plugin):
    folder = built[precision, plugin]
    for graph in ("exemplar_encoder", "translator"):
        plan = folder / f"{graph}.plan"
        assert plan.stat().st_size > 10_000
        assert plan.read_bytes()[:4] == b"vtrt"  # a TensorRT-RTX plan
        sidecar = json.loads((folder / f"{graph}.plan.json").read_text())
        assert sidecar["fields"]["precision"] == precision and sidecar["fields"]["trt_flavour"] == "tensorrt-rtx"
        assert sidecar["fields"]["targets"] == ["sm80", "sm86", "sm89", "sm120"]  # --target auto without a GPU
    translator = json.loads((folder / "translator.plan.json").read_text())["fields"]
    assert translator["plugin_implementation"] == ("python" if plugin == "on" else "inline")
    assert bool(translator["plugin_source_sha256"]) == (plugin == "on")


def test_plugin_maps_through_plugin_namespace_and_the_plan_carries_its_fields(built):
    for precision in ("fp32", "fp16"):
        report = _layers(built[precision, "on"], "translator")
        assert report["plugin_imported"] and not report["function_inlined"]
        (layer,) = _holding(report, "correspondence")
        assert layer["layer_type"] == "custom_layer"
        plan = (built[precision, "on"] / "translator.plan").read_bytes()
        assert b"CorrespondenceSoftmax" in plan and b"mclrt" in plan
        # The serialized fields: "scale" (FP32) = 37.5 and "mask_negative" (INT32) = 1.
        scale_at, mask_at = plan.find(b"scale\x07"), plan.find(b"mask_negative")
        assert 0 < scale_at < mask_at
        assert np.float32(37.5).tobytes() in plan[scale_at:mask_at]
        int32_at = plan.find(b"INT32", mask_at)
        assert np.int32(1).tobytes() in plan[int32_at + 5 : int32_at + 40]
    for precision in ("fp32", "fp16"):
        inline = _layers(built[precision, "off"], "translator")
        assert inline["function_inlined"] and not inline["plugin_imported"]
        assert all(layer["layer_type"] != "custom_layer" for layer in inline["layers"])
        assert b"mask_negative" not in (built[precision, "off"] / "translator.plan").read_bytes()


@pytest.mark.parametrize("plugin", ["on", "off"])
def test_fp16_plans_keep_the_protected_layers_fp32(built, plugin):
    folder = built["fp16", plugin]
    for graph in ("exemplar_encoder", "translator"):
        report = _layers(folder, graph)
        assert report["violations"] == []
        assert report["half_layers"] > 0  # FP16 was really used elsewhere
        prefix = "encoder" if graph == "exemplar_encoder" else "translator"
        for node in (f"{prefix}/in0", f"{prefix}/pono/variance", f"{prefix}/pono/normalize", f"{prefix}/l2/norm"):
            layers = _holding(report, node)
            assert layers, f"{node} not found in the layer log"
            for layer in layers:
                assert layer["name"] in report["protected_layers"]
                # What the protected computation produces is Float (a fused exit Cast may follow in another layer).
                assert "Half" not in layer["output_types"] or any("_output_cast" in n for n in layer["onnx_nodes"]), layer
        assert "fp16_recipe" in report and max(report["fp16_recipe"]["ort_cpu_max_abs_error_vs_fp32"].values()) < 2e-2
    translator = _layers(folder, "translator")
    for layer in _holding(translator, "correspondence"):
        assert set(layer["input_types"]) == {"Float"}, layer  # q, k, v (and the similarity) in FP32
    instance_norm = _holding(translator, "translator/in0")
    assert all(set(layer["input_types"] + layer["output_types"]) == {"Float"} for layer in instance_norm if layer["layer_type"] == "runtime_function")


def test_up_to_date_plans_are_reused_and_no_build_refuses_stale_ones(built, model_dir, tmp_path):
    out = built["fp32", "off"].parent
    again = mclrt("engine", "build", "--model", str(model_dir), "--precision", "fp32", "--plugin", "off", "--out", str(out), "--no-build", cache_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date") == 2
    stale = mclrt("engine", "build", "--model", str(model_dir), "--precision", "fp32", "--plugin", "off", "--out", str(out), "--no-build", "--batch", "1:2:8", cache_dir=tmp_path)
    assert stale.returncode == 2
    assert "no usable plan (built with different batch_profile)" in stale.stderr and "Traceback" not in stale.stderr


@needs_plugin_parse
def test_plugin_build_time_methods_run_under_the_builder(model_dir, tmp_path):
    calls = run_script(
        f"""
        import json
        from collections import Counter
        from pathlib import Path
        import tensorrt_rtx as trt
        from mclrt.runtime.model_dir import load_model_dir
        from mclrt.runtime.trt import builder, plugin

        calls = Counter()
        plugin_class, _ = plugin.plugin_classes(trt)
        # Observe the real methods: each wrapper counts the call and runs the method itself.
        for name in ("get_output_data_types", "get_output_shapes", "supports_format_combination", "configure_plugin",
                     "get_workspace_size", "get_fields_to_serialize", "clone", "enqueue"):
            method = getattr(plugin_class, name)
            def observed(self, *args, _method=method, _name=name):
                calls[_name] += 1
                return _method(self, *args)
            setattr(plugin_class, name, observed)
        model = load_model_dir({str(model_dir)!r})
        (result,) = builder.build_engines(model, builder.BuildOptions(precision="fp32", plugin="on"), out=Path({str(tmp_path)!r}), graphs=("translator",))
        print(json.dumps({{"calls": calls, "imported": result.report.plugin_imported}}))
        """,
        tmp_path,
    )
    assert calls["imported"]
    counted = calls["calls"]
    for method in ("get_output_data_types", "get_output_shapes", "supports_format_combination", "configure_plugin", "get_workspace_size", "get_fields_to_serialize"):
        assert counted.get(method, 0) >= 1, method
    assert "enqueue" not in counted  # building never runs the kernel (and there is no GPU to run it)


def test_plugin_build_methods_answer_like_the_contract():
    """Direct calls on the plugin object (no builder): shapes, types, formats, validation, fields."""
    from mclrt.runtime.trt import plugin

    plugin_class, creator_class = plugin.plugin_classes(trt)
    fields = trt.PluginFieldCollection(
        [
            trt.PluginField("scale", np.array([37.5], np.float32), trt.PluginFieldType.FLOAT32),
            trt.PluginField("mask_negative", np.array([1], np.int32), trt.PluginFieldType.INT32),
        ]
    )
    instance = creator_class().create_plugin("correspondence", fields, trt.TensorRTPhase.BUILD)
    assert instance.fields == plugin.PluginFields(37.5, 1)
    assert instance.get_output_data_types([trt.float16] * 3) == [trt.float16]

    def desc(shape, kind=trt.float32, layout=trt.TensorFormat.LINEAR):
        tensor = trt.DynamicPluginTensorDesc()
        inner = trt.PluginTensorDesc()
        inner.dims, inner.type, inner.format = trt.Dims(shape), kind, layout
        tensor.desc = inner
        return tensor

    q, k, v, out = desc([2, 64, 16]), desc([2, 48, 16]), desc([2, 48, 3]), desc([2, 64, 3])
    instance.configure_plugin([q, k, v], [out])  # N != M is fine
    with pytest.raises(ValueError, match="descriptor width"):
        instance.configure_plugin([q, desc([2, 48, 8]), v], [out])
    with pytest.raises(ValueError, match="positions of k"):
        instance.configure_plugin([q, k, desc([2, 40, 3])], [out])
    assert [instance.supports_format_combination(i, [q, k, v, out], 3) for i in range(4)] == [True] * 4
    mixed = [desc([2, 64, 16], trt.float16), k, v, out]
    assert instance.supports_format_combination(0, mixed, 3) and not instance.supports_format_combination(1, mixed, 3)
    assert not instance.supports_format_combination(0, [desc([2, 64, 16], layout=trt.TensorFormat.HWC)], 3)
    assert not instance.supports_format_combination(0, [desc([2, 64, 16], trt.int8)], 3)
    assert instance.get_workspace_size([q, k, v], [out]) == 0
    assert plugin.fields_from_collection(instance.get_fields_to_serialize()) == plugin.PluginFields(37.5, 1)


def test_fp16_layer_check_has_teeth(model_dir, tmp_path):
    """Build with a recipe that protects only the correspondence: the builder's layer log shows the
    normalizations in Half and the check reports them; the full recipe gives no violation."""
    result = run_script(
        f"""
        import json
        from pathlib import Path
        import onnx
        from mclrt.runtime.model_dir import load_model_dir
        from mclrt.runtime.trt import builder, compat, device, fp16, layer_report
        from mclrt.runtime.trt.logger import BuildLog, shared_logger

        model = load_model_dir({str(model_dir)!r})
        options = builder.BuildOptions(precision="fp16", plugin="off")
        resolved = builder.resolve(options, compat.require(), device.probe())
        trt = resolved.installed.module
        out = {{}}
        for graph in ("exemplar_encoder", "translator"):
            source = fp16.name_unnamed_nodes(onnx.load(str(model.graph_path(graph))))
            protected = fp16.find_protected_nodes(source)
            for label, keep in (("full", None), ("correspondence only", {{"correspondence"}})):
                converted, _ = fp16.make_fp16_onnx(source, None, keep_fp32=keep)
                with shared_logger(trt).recording() as log:
                    network = builder.ParsedNetwork(resolved, converted, Path(graph + ".onnx"), log)
                    builder.SerializedPlan(resolved, network, protected, None)()
                report = layer_report.report_from_build_log(log.messages, converted, protected)
                out[graph + ": " + label] = {{"violations": report.violations, "layers": len(report.layers)}}
        print(json.dumps(out))
        """,
        tmp_path,
    )
    for graph, prefix in (("exemplar_encoder", "encoder"), ("translator", "translator")):
        assert result[f"{graph}: full"]["violations"] == [] and result[f"{graph}: full"]["layers"] > 5
        caught = " ".join(result[f"{graph}: correspondence only"]["violations"])
        assert f"{prefix}/in0" in caught and f"{prefix}/pono/" in caught, caught
