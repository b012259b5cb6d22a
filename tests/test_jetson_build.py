"""Building on a Jetson, checked here: DLA placement from a recorded builder log, the DLA options against
real TensorRT-RTX objects and the CLI, the memory preflight and workspace caps, and TensorRT 10.3's plugin choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.jetson import facts
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.trt import build_memory, builder, compat, dla_report
from mclrt.runtime.trt.device import CudaInfo, GpuInfo

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = Path(builder.__file__).resolve().parent.parent / "models" / "demo"
RECORDED = FIXTURES / "trt_logs" / "translator-dla0-fp16-trt10.3.log"
RECORDED_NODES = FIXTURES / "trt_logs" / "translator-dla0-fp16-trt10.3.nodes.txt"


def test_dla_placement_from_a_recorded_build_log():
    translator = onnx.load(str(DEMO / "translator.onnx"))
    names = dla_report.correspondence_names(translator)
    assert {"n0", "correspondence/8_Softmax", "correspondence/1_MatMul"} <= names
    placement = dla_report.placement_from_build_log(RECORDED.read_text().splitlines(), names)
    assert len(placement.dla_subgraphs) == 16  # the per-core loadable limit of this TensorRT
    assert placement.dla_subgraphs[0] == dla_report.DlaSubgraph("node_Conv_1055", "node_Conv_1055")
    assert placement.dla_subgraphs[1] == dla_report.DlaSubgraph("node_leaky_relu", "node_Conv_1056")
    gpu = {layer.name: layer.layer_type for layer in placement.gpu_layers}
    assert gpu["node_instance_norm"] == "NORMALIZATION" and gpu["node_pad"] == "PADDING"
    # The correspondence stays on the GPU, all of it.
    assert placement.correspondence_gpu_layers == [
        "correspondence/0_Transpose", "correspondence/1_MatMul", "correspondence/7_Mul", "correspondence/8_Softmax", "correspondence/9_MatMul"]
    assert placement.correspondence_on_dla == []
    assert placement.fallback_reasons["node_pad"] == "Unsupported on DLA"
    assert placement.fallback_reasons["node_conv2d_119"] == "DLA supports only 16 subgraphs per DLA core"
    # Every layer the log names is a node of the model it was written for: the previous demo translator
    # (its node names in RECORDED_NODES; today's demo model was retrained with another input, maskmix).
    nodes = set(RECORDED_NODES.read_text().split())
    assert {layer.name for layer in placement.gpu_layers} <= nodes
    assert {s.first for s in placement.dla_subgraphs} | {s.last for s in placement.dla_subgraphs} <= nodes
    summary = placement.summary()
    assert summary.startswith(f"16 DLA subgraphs, {len(placement.gpu_layers)} layers on the GPU (correspondence on the GPU)")
    assert json.loads(json.dumps(placement.to_json()))["summary"] == summary


def test_dla_placement_reads_trtexec_lines_and_flags_a_correspondence_on_the_dla():
    log = [
        "[03/31/2022-14:34:54] [I] [TRT] ---------- Layers Running on DLA ----------",
        "[03/31/2022-14:34:54] [I] [TRT] [DlaLayer] {ForeignNode[Conv_0]}",
        "[03/31/2022-14:34:54] [I] [TRT] [DlaLayer] {ForeignNode[Relu_10...correspondence/7_Mul]}",
        "[03/31/2022-14:34:54] [I] [TRT] ---------- Layers Running on GPU ----------",
        "[03/31/2022-14:34:54] [I] [TRT] [GpuLayer] SHUFFLE: Reshape_2 + (Unnamed Layer* 7) [Shuffle]",
        "[03/31/2022-14:34:54] [I] [TRT] [GpuLayer] SOFTMAX: correspondence/8_Softmax",
        "[03/31/2022-14:34:55] [I] [TRT] Total Activation Memory: 8388608",
    ]
    placement = dla_report.placement_from_build_log(log, {"correspondence/7_Mul", "correspondence/8_Softmax"})
    assert [s.first for s in placement.dla_subgraphs] == ["Conv_0", "Relu_10"]
    assert [l.layer_type for l in placement.gpu_layers] == ["SHUFFLE", "SOFTMAX"]
    assert placement.correspondence_on_dla == ["Relu_10...correspondence/7_Mul"]
    assert "correspondence on the DLA" in placement.summary()
    assert not dla_report.placement_from_build_log(["Engine generation completed"]).found


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MCLRT_CACHE_DIR": str(tmp_path / "cache")}


def test_engine_build_dla_core_on_the_demo_model_is_refused_in_one_line(tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")

    def build(*extra: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "mclrt.runtime.cli", "engine", "build", "--model", str(DEMO), "--out", str(tmp_path / "engines"), *extra]
        return subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=300)

    # What the user can fix is said first ...
    done = build("--dla-core", "0", "--precision", "fp32", "--batch", "1")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].endswith("DLA runs FP16 or INT8 only (--precision fp16 or int8)")
    done = build("--dla-core", "0", "--precision", "fp16")
    assert done.returncode == 2 and "DLA needs a static batch (--batch N)" in done.stderr
    # ... then what TensorRT-RTX cannot do: no DLA, one line, no traceback, nothing written.
    done = build("--dla-core", "0", "--precision", "fp16", "--batch", "1")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "--dla-core: tensorrt-rtx" in lines[0] and "has no DLA" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "engines").exists()


def test_dla_configuration_on_real_tensorrt_objects_keeps_the_correspondence_on_the_gpu(tmp_path):
    """TensorRT-RTX parses the demo translator (correspondence inlined); set_dla with the JetPack 6 table row
    pins exactly the correspondence's layers to the GPU, and the builder reports the cores this machine has."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")
    script = textwrap.dedent(f"""
        import json, onnx
        from mclrt.runtime.trt import compat, dla_report
        from mclrt.runtime.trt.logger import shared_logger
        installed = compat.require()
        trt = installed.module
        model = onnx.load({str(DEMO / "translator.onnx")!r})
        builder = trt.Builder(shared_logger(trt))
        network = builder.create_network(compat.network_flags(trt, installed.caps, True))
        parser = trt.OnnxParser(network, shared_logger(trt))
        compat.configure_parser(trt, installed.caps, parser)
        assert parser.parse(model.SerializeToString())
        config = builder.create_builder_config()
        jetpack6 = compat.capabilities(compat.Flavour.ENTERPRISE, (10, 3))
        names = dla_report.correspondence_names(model)
        pinned = compat.set_dla(trt, jetpack6, config, 0, network, names)
        layers = [network.get_layer(i).name for i in range(network.num_layers)]
        print(json.dumps({{"cores": int(builder.num_DLA_cores), "pinned": pinned, "default": str(config.default_device_type),
                          "correspondence_layers": [n for n in layers if n.startswith("correspondence/")]}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cores"] == 0  # a CPU machine: the builder's own answer behind the one-line refusal
    assert result["default"].endswith("DLA")
    assert "correspondence/8_Softmax" in result["correspondence_layers"]
    assert result["pinned"] == len(result["correspondence_layers"]) >= 7


def test_tensorrt_10_3_inlines_the_correspondence_under_plugin_auto():
    jetpack6 = compat.capabilities(compat.Flavour.ENTERPRISE, (10, 3))
    orin = CudaInfo("12.6", "12.6", (GpuInfo(0, "Orin", (8, 7), 7 << 30),), None, "R36.4.3", "MAXN_SUPER")
    assert builder.choose_plugin_impl("auto", jetpack6, orin) == builder.IMPL_INLINE
    with pytest.raises(UserError, match="cannot map the function-backed"):
        builder.choose_plugin_impl("on", jetpack6, orin)
    thor = compat.capabilities(compat.Flavour.ENTERPRISE, (10, 13, 3, 9))  # JetPack 7: the plugin can override the function
    assert thor.plugin_overrides_local_function and not thor.dla


def test_memory_preflight_and_workspace_caps_for_8_gb_boards():
    model = load_model_dir(DEMO)
    nano = facts.read_memory(FIXTURES / "jetson" / "orin-nano-jp62")
    assert build_memory.jetson_workspace_cap(nano.total_bytes) == 1 << 30
    assert build_memory.jetson_workspace_cap(facts.read_memory(FIXTURES / "jetson" / "orin-nx-jp62").total_bytes) == 2 << 30
    assert build_memory.jetson_workspace_cap(facts.read_memory(FIXTURES / "jetson" / "agx-orin-jp621").total_bytes) is None
    build_memory.check_build_memory(model, 1 << 30, nano)  # 5 GiB free + 3.7 GiB swap: fits
    busy = facts.Memory(total_bytes=nano.total_bytes, available_bytes=900 << 20, swap_total_bytes=0, swap_free_bytes=0)
    with pytest.raises(UserError) as refused:
        build_memory.check_build_memory(model, 1 << 30, busy)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(str(model.path)) and "--skip-memory-check" in message and "0.9 GiB RAM + swap free" in message


def test_memory_plan_applies_only_on_a_jetson():
    model = load_model_dir(DEMO)
    installed = compat.Installed(None, "tensorrt", compat.capabilities(compat.Flavour.ENTERPRISE, (10, 3)))
    orin = CudaInfo("12.6", "12.6", (GpuInfo(0, "Orin", (8, 7), 7 << 30),), None, "R36.4.3", "MAXN_SUPER")
    resolved = builder.ResolvedBuild(installed, orin, "fp16", builder.IMPL_INLINE, ("current",), True, False, builder.BatchProfile(1, 1, 1), None, None)
    on_nano = build_memory.plan_for_jetson(resolved, model, builder.BuildOptions(), root=FIXTURES / "jetson" / "orin-nano-jp62")
    assert on_nano.workspace_bytes == 1 << 30
    assert build_memory.plan_for_jetson(resolved, model, builder.BuildOptions(workspace_mb=512), root=FIXTURES / "jetson" / "orin-nano-jp62").workspace_bytes is None
    assert build_memory.plan_for_jetson(resolved, model, builder.BuildOptions(), root=FIXTURES / "jetson" / "aarch64-server") is resolved
