"""mclrt quantize on a real exported model: calibration from package photos, both INT8 encodings, the
placement rules (walked here independently of the code under test), the accuracy report, the CLI's
errors, mclrt check / TensorRT-RTX builds of the result, and mclrt bench --against.

The model is the committed demo model when present (then the PSNR >= 30 dB acceptance is asserted),
else the freshly initialized nano export -- whose outputs are nearly constant, so its PSNR is only
printed, never asserted.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from mclrt.calibration import calib_data, metrics, placement
from mclrt.calibration.quantize import QuantizeOptions, quantize_model_dir
from mclrt.runtime.checks.model_check import CheckOptions, check_model_dir, tensorrt_rtx_installed
from mclrt.runtime.cli import main
from mclrt.runtime.inputs.image_io import load_rgb
from mclrt.runtime.image_out import write_png
from mclrt.runtime.model_dir import load_model_dir, write_manifest
from mclrt.runtime.inputs.package_photos import package_photos

pytestmark = pytest.mark.xdist_group(name="quantize")

DEMO_MODEL = Path(__file__).resolve().parents[1] / "runtime" / "models" / "demo"
GRAPHS = ("exemplar_encoder", "translator")
HOLDOUT = 3
SWEPT = ("theta", "generator.conv_img")
# The demo model's exclusion list, as its sensitivity sweep explains it (docs/int8.md): quantized alone,
# the condition adaptor's downsampling convs take the worst held-out pair to ~22 dB and the trunk to
# ~33 dB; every other group stays above 48 dB.
DEMO_EXCLUDE = ("adaptor_cond.down", "trunk", "adaptor_cond.resblocks")


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def source_model(request) -> Path:
    if (DEMO_MODEL / "mclrt.json").exists():
        return DEMO_MODEL
    return Path(request.getfixturevalue("nano_model_dir"))


def _write_photos(folder: Path, count: int) -> list[Path]:
    """Small real photos: two crops of each package photo (scikit-image, scikit-learn, matplotlib)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    crops = [(photo, k, (top, left)) for photo in package_photos() for k, (top, left) in enumerate(((0, 0), (1, 1)))]
    paths = []
    for photo, k, (top, left) in crops[:count]:
        height, width = photo.rgb.shape[:2]
        crop = photo.rgb[top * height // 4 : (top + 3) * height // 4, left * width // 4 : (left + 3) * width // 4]
        path = folder / f"{photo.name}_{k}.png"
        write_png(path, cv2.resize(crop, (160, 160), interpolation=cv2.INTER_AREA))
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def calib_photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("calib") / "photos"
    _write_photos(folder, 9)
    return folder


@pytest.fixture(scope="session")
def quantized(source_model, calib_photos, tmp_path_factory):
    options = QuantizeOptions(
        model=source_model,
        calib=str(calib_photos),
        out=tmp_path_factory.mktemp("int8") / "nano-int8",
        num=512,  # more than there are: every non-held-out photo calibrates
        holdout=HOLDOUT,
        encoding="both",
        sweep=True,
        sweep_only=SWEPT,
        exclude=DEMO_EXCLUDE if source_model == DEMO_MODEL else (),
    )
    return quantize_model_dir(options)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(quantized) -> dict:
    return json.loads((quantized.out / "accuracy.json").read_text())


# --- the model directories and their manifests ------------------------------------------------------------------


def test_both_encodings_are_complete_model_directories_with_recipe_and_calibration_hash(quantized, source_model, calib_photos):
    source = load_model_dir(source_model)
    report = _report(quantized)
    calibration = report["calibration_set"]["calibration_images"]
    holdout = report["calibration_set"]["holdout_images"]
    photos = sorted(p.name for p in calib_photos.iterdir())
    assert sorted(calibration + holdout) == photos and not set(calibration) & set(holdout)
    assert len(holdout) == HOLDOUT
    # sha256 over the sorted list of the calibration files' sha256s, computed here from the files.
    expected_hash = hashlib.sha256("\n".join(sorted(_sha256(calib_photos / n) for n in calibration)).encode()).hexdigest()

    for precision, folder in (("int8-trt", "trt"), ("int8-cpu", "cpu")):
        model = load_model_dir(quantized.out / folder)  # verifies both graphs' SHA-256
        assert quantized.model_dirs[precision] == quantized.out / folder
        manifest = model.manifest
        assert manifest.precision == precision
        assert (manifest.preset, manifest.image_size, manifest.condition) == (
            source.manifest.preset,
            source.manifest.image_size,
            source.manifest.condition,
        )
        for graph in GRAPHS:  # same contract I/O as the FP32 graphs
            assert manifest.graphs[graph].inputs == source.manifest.graphs[graph].inputs
            assert manifest.graphs[graph].outputs == source.manifest.graphs[graph].outputs
        recipe = manifest.provenance["quantization"]
        expected_exclude = list(DEMO_EXCLUDE) if source_model == DEMO_MODEL else []
        assert recipe["method"] == "max" and recipe["exclude"] == expected_exclude and recipe["encoding"] == precision
        assert recipe["calibration_set"]["sha256"] == expected_hash
        assert recipe["calibration_set"]["images"] == len(calibration)
        assert all(count > 0 for count in recipe["quantized_nodes"].values())
        accuracy = {k: v for k, v in report["encodings"][precision]["accuracy"].items() if k != "pairs"}
        assert recipe["accuracy_vs_fp32"] == accuracy
        assert manifest.provenance["source"]["graphs"] == {g: s.sha256 for g, s in source.manifest.graphs.items()}
    assert (quantized.out / "calibration_ranges" / "translator.json").is_file()


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _qdq_nodes(model: onnx.ModelProto, op_type: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if node.op_type == op_type]


def test_zero_points_and_integer_types_of_each_encoding(quantized):
    for graph in GRAPHS:
        # TensorRT: every zero point int8 and 0; no INT32 (bias) dequantization; per-channel weights.
        trt = onnx.load(str(quantized.out / "trt" / f"{graph}.onnx"))
        values = _initializers(trt)
        dequantize = _qdq_nodes(trt, "DequantizeLinear")
        assert dequantize and _qdq_nodes(trt, "QuantizeLinear")
        for node in dequantize + _qdq_nodes(trt, "QuantizeLinear"):
            zero_point = values[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
        weights = [n for n in dequantize if n.input[0] in values and values[n.input[0]].ndim == 4]
        assert weights and all(values[n.input[0]].dtype == np.int8 for n in dequantize if n.input[0] in values)
        assert all(values[n.input[1]].size == values[n.input[0]].shape[0] for n in weights)  # one scale per output channel

        # ONNX Runtime CPU: activations uint8 with zero point 128, weights int8 per-channel with 0, biases int32.
        cpu = onnx.load(str(quantized.out / "cpu" / f"{graph}.onnx"))
        values = _initializers(cpu)
        activations = _qdq_nodes(cpu, "QuantizeLinear") + [n for n in _qdq_nodes(cpu, "DequantizeLinear") if n.input[0] not in values]
        assert activations
        for node in activations:
            zero_point = values[node.input[2]]
            assert zero_point.dtype == np.uint8 and np.all(zero_point == 128), node.name
        weights = [n for n in _qdq_nodes(cpu, "DequantizeLinear") if n.input[0] in values and values[n.input[0]].ndim == 4]
        assert weights
        for node in weights:
            assert values[node.input[0]].dtype == np.int8
            assert values[node.input[2]].dtype == np.int8 and not values[node.input[2]].any()
            assert values[node.input[1]].size == values[node.input[0]].shape[0]
        # Biases: INT32 for ONNX Runtime, float for TensorRT (the exporter drops all-zero biases, so count those present).
        for model, bias_type in ((cpu, np.int32), (trt, np.float32)):
            values = _initializers(model)
            producers = {out: n for n in model.graph.node for out in n.output}
            for conv in (n for n in model.graph.node if n.op_type == "Conv" and len(n.input) == 3):
                if getattr(producers.get(conv.input[1]), "op_type", None) != "DequantizeLinear":
                    continue  # a float conv
                bias = producers.get(conv.input[2])
                stored = values[bias.input[0]] if bias is not None and bias.op_type == "DequantizeLinear" else values[conv.input[2]]
                assert stored.dtype == bias_type, conv.name


# --- placement, checked by a walker written here, not by the code under test -------------------------------------

NORMALIZATION_OPS = {"InstanceNormalization", "LayerNormalization", "GroupNormalization", "BatchNormalization", "LpNormalization"}
REDUCTIONS = {"ReduceMean", "ReduceL2", "ReduceSum", "ReduceSumSquare", "ReduceMax"}
# Elementwise ops a normalization is written with: statistics, centering, eps, the normalizing division.
CHAIN_OPS = {"Sub", "Div", "Mul", "Add", "Sqrt", "Pow", "Clip", "Expand", "Max"}
QDQ = {"QuantizeLinear", "DequantizeLinear"}


def _untouchable(model: onnx.ModelProto) -> dict[str, str]:
    """Nodes no Q/DQ may adjoin: normalizations, reductions, softmax, tanh, the correspondence node, and
    every chain node within three elementwise hops after a reduction or feeding one (x - mean, (.)^2, / sqrt)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    marked = {}
    for node in model.graph.node:
        if node.op_type in NORMALIZATION_OPS | REDUCTIONS | {"Softmax", "Tanh"} or node.domain == "mclrt":
            marked[node.name] = node.op_type
    for node in model.graph.node:
        if node.op_type not in REDUCTIONS:
            continue
        frontier = list(node.output)
        for _ in range(3):  # after the reduction: eps, sqrt, the centering Sub and the dividing Div
            following = []
            for name in frontier:
                for consumer in consumers.get(name, []):
                    if consumer.op_type in CHAIN_OPS:
                        marked.setdefault(consumer.name, f"{consumer.op_type} after {node.op_type}")
                        following += list(consumer.output)
            frontier = following
        feeder = producer.get(node.input[0])  # before it: the square of a variance, the centering Sub
        if feeder is not None and feeder.op_type in {"Pow", "Mul", "Sub"}:
            marked.setdefault(feeder.name, f"{feeder.op_type} into {node.op_type}")
    return marked


def _violations(fp32: onnx.ModelProto, quantized: onnx.ModelProto) -> list[str]:
    untouchable = _untouchable(fp32)
    producer = {out: n for n in quantized.graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for node in quantized.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in quantized.graph.node:
        if node.op_type not in QDQ:
            continue
        neighbours = ([producer[node.input[0]]] if node.input[0] in producer else []) + consumers.get(node.output[0], [])
        for neighbour in neighbours:
            if neighbour.name in untouchable or neighbour.op_type in NORMALIZATION_OPS | REDUCTIONS | {"Softmax", "Tanh"}:
                found.append(f"{node.op_type} {node.name} next to {neighbour.op_type} {neighbour.name}")
    for function in quantized.functions:
        found += [f"{n.op_type} inside {function.name}" for n in function.node if n.op_type in QDQ]
    return found


def test_no_qdq_in_or_around_the_correspondence_normalizations_or_tanh(quantized, source_model):
    source = load_model_dir(source_model)
    for graph in GRAPHS:
        fp32 = placement.prepare(onnx.load(str(source.graph_path(graph))))
        ops = [n.op_type for n in fp32.graph.node]
        assert ops.count("InstanceNormalization") and ops.count("ReduceMean") and ops.count("ReduceL2")  # the walker has work
        for folder in ("trt", "cpu"):
            model = onnx.load(str(quantized.out / folder / f"{graph}.onnx"))
            assert sum(n.op_type in QDQ for n in model.graph.node) > 0
            assert _violations(fp32, model) == [], (folder, graph)
            assert placement.placement_violations(fp32, model, graph) == []
            # The correspondence node and its function are byte-for-byte the FP32 ones.
            corr = [n for n in model.graph.node if n.domain == "mclrt"]
            assert [n.SerializeToString() for n in corr] == [n.SerializeToString() for n in fp32.graph.node if n.domain == "mclrt"]
            assert [f.SerializeToString() for f in model.functions] == [f.SerializeToString() for f in fp32.functions]
            if graph == "translator":
                assert len(corr) == 1 and ops.count("Tanh") == 1
                producers = {out: n.op_type for n in model.graph.node for out in n.output}
                assert not {producers.get(name) for name in corr[0].input} & QDQ
                assert not any(n.op_type in QDQ for n in model.graph.node if corr[0].output[0] in n.input)


def test_the_walker_catches_onnx_runtimes_default_placement(quantized, source_model, tmp_path):
    """Teeth: quantizing every Conv with ONNX Runtime's defaults (outputs too, no placement walk) puts
    Q/DQ next to instance norms and the tanh, and both checks say so."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    source = load_model_dir(source_model)
    named = tmp_path / "translator.onnx"
    fp32 = placement.prepare(onnx.load(str(source.graph_path("translator"))))
    onnx.save(fp32, str(named))
    quantize_static(
        str(named), str(tmp_path / "default.onnx"), None, quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=str(quantized.out / "calibration_ranges" / "translator.json"),
    )  # fmt: skip
    default = onnx.load(str(tmp_path / "default.onnx"))
    found = _violations(fp32, default)
    assert any("InstanceNormalization" in v for v in found) and any("Tanh" in v for v in found)
    assert placement.placement_violations(fp32, default, "translator")


def test_placement_plan_of_the_exported_translator(source_model):
    source = load_model_dir(source_model)
    plan = placement.plan_graph(placement.prepare(onnx.load(str(source.graph_path("translator")))), "translator")
    by_module = {node.module: node for node in plan.nodes}
    assert "Tanh" in by_module["generator.conv_img"].output_blocked_by
    assert all("InstanceNormalization" in n.output_blocked_by for n in plan.nodes if n.group == "adaptor_cond.down")
    assert all(node.input_ok for node in plan.nodes)
    assert {"adaptor_cond.down", "trunk", "theta", "generator.spade_mlps", "generator.attention", "generator.conv_img"} <= set(plan.groups())
    everything = placement.select_nodes(plan, quantize_outputs=False)
    no_generator = placement.select_nodes(plan, quantize_outputs=False, exclude=["generator.*"])
    generator = {n.name for n in plan.nodes if n.module.startswith("generator.")}
    assert set(no_generator) == set(everything) - generator and generator
    one = plan.nodes[0].name
    assert one not in placement.select_nodes(plan, quantize_outputs=False, exclude=[one])
    assert len(placement.select_nodes(plan, quantize_outputs=True)) < len(everything)  # outputs feeding norms/tanh drop out


# --- running, checking and building the INT8 models --------------------------------------------------------------


def test_int8_models_pass_mclrt_check_including_tensorrt_rtx_parse_and_build(quantized):
    cpu = check_model_dir(quantized.out / "cpu", CheckOptions())
    assert cpu.ok, [f.message for f in cpu.findings if f.severity == "error"]
    cpu_steps = {(s.step, s.graph): s.status for s in cpu.steps}
    assert cpu_steps[("onnxruntime", None)] == cpu_steps[("correspondence", None)] == "pass"
    assert cpu_steps[("tensorrt-ops", "translator")] == cpu_steps[("tensorrt-rtx-build", "translator")] == "skip"  # ORT's encoding
    trt = check_model_dir(quantized.out / "trt", CheckOptions(tensorrt=None))
    assert trt.ok, [f.message for f in trt.findings if f.severity == "error"]
    steps = {(s.step, s.graph): s.status for s in trt.steps}
    assert steps[("onnxruntime", None)] == "pass"
    if tensorrt_rtx_installed():
        assert steps[("tensorrt-rtx-build", "exemplar_encoder")] == steps[("tensorrt-rtx-build", "translator")] == "pass"
    else:
        pytest.skip("TensorRT-RTX is not installed: the parse + build part of mclrt check was not run")


def test_engine_build_int8_builds_plans_with_tensorrt_rtx_on_the_cpu(quantized, tmp_path, capsys):
    if not tensorrt_rtx_installed():
        pytest.skip("TensorRT-RTX is not installed")
    code = main(["engine", "build", "--model", str(quantized.out / "trt"), "--precision", "int8", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    plans = sorted(tmp_path.rglob("*.plan"))
    assert [p.name for p in plans] == ["exemplar_encoder.plan", "translator.plan"]
    assert all(p.stat().st_size > 0 for p in plans)
    layers = json.loads(next(tmp_path.rglob("translator.layers.json")).read_text())
    assert any("Int8" in layer["input_types"] + layer["output_types"] for layer in layers["layers"])
    # The CPU encoding (uint8, zero point 128) is not a TensorRT model, and the builder says so.
    assert main(["engine", "build", "--model", str(quantized.out / "cpu"), "--precision", "int8", "--out", str(tmp_path / "x")]) == 2


def test_bench_against_times_int8_and_fp32_in_one_run(quantized, source_model, capsys):
    code = main(["bench", "--model", str(quantized.out / "cpu"), "--against", str(source_model), "--runs", "2", "--warmup", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["model_precision"], result["against_precision"]) == ("int8-cpu", "fp32")
    assert set(result["stages"]) == {"exemplar_encoder", "translator", "end_to_end", "end_to_end_cached_exemplar"}
    for stage, paired in result["stages"].items():
        assert paired["model"]["median_ms"] > 0 and paired["against"]["median_ms"] > 0
        assert paired["speedup"] == pytest.approx(paired["against"]["median_ms"] / paired["model"]["median_ms"])
    print(f"\nONNX Runtime CPU int8-cpu vs fp32 speed-up (2 runs, not asserted): {result['stages']['translator']['speedup']:.2f}x translator")


def test_bench_profile_shows_where_int8_and_fp32_spend_their_time(quantized, source_model, capsys):
    """`--profile` reads ONNX Runtime's own kernel trace: every quantized conv runs as one QLinearConv
    kernel per run, the FP32 model runs none, and the categories add up to the total."""
    code = main(["bench", "--model", str(quantized.out / "cpu"), "--against", str(source_model), "--runs", "2", "--warmup", "1", "--json", "--profile"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    int8, fp32 = result["profile"]
    assert (int8["precision"], fp32["precision"]) == ("int8-cpu", "fp32")
    quantized_nodes = json.loads((quantized.out / "cpu" / "mclrt.json").read_text())["provenance"]["quantization"]["quantized_nodes"]
    for graph in ("exemplar_encoder", "translator"):
        assert int8["nodes"][graph].get("QLinearConv", 0) == quantized_nodes[graph]
        assert "QLinearConv" not in fp32["nodes"][graph] and fp32["nodes"][graph]["Conv"] > 0
    for profile in (int8, fp32):
        assert profile["total_ms"] > 0
        assert sum(profile["by_category"].values()) == pytest.approx(profile["total_ms"])
    assert int8["by_category"]["int8 convolutions"] > 0 and int8["by_category"]["quantize / dequantize"] > 0
    assert fp32["by_category"]["int8 convolutions"] == 0 and fp32["by_category"]["quantize / dequantize"] == 0


# --- the accuracy report ----------------------------------------------------------------------------------------


def test_accuracy_report_is_complete_finite_and_matches_a_recomputation(quantized, source_model, calib_photos):
    report = _report(quantized)
    assert report["format"] == "mclrt-quantize-report"
    assert set(report["encodings"]) == {"int8-trt", "int8-cpu"}
    for precision, entry in report["encodings"].items():
        accuracy = entry["accuracy"]
        assert len(accuracy["pairs"]) == HOLDOUT
        for key in ("psnr_db_mean", "psnr_db_min", "ssim_mean", "ssim_min", "max_abs_error", "warped_psnr_db_mean", "warped_max_abs_error"):
            assert math.isfinite(accuracy[key]), key
        assert 0 < accuracy["psnr_db_min"] <= accuracy["psnr_db_mean"] <= metrics.PSNR_CAP_DB
        assert -1 <= accuracy["ssim_mean"] <= 1 and 0 <= accuracy["max_abs_error"] <= 1
        if source_model == DEMO_MODEL:
            assert accuracy["psnr_db_mean"] >= 30.0, precision
        print(f"\n{precision}: PSNR {accuracy['psnr_db_mean']:.2f} dB (min {accuracy['psnr_db_min']:.2f}), SSIM {accuracy['ssim_mean']:.4f}")

    assert {g["group"] for g in report["sweep"]["groups"]} == set(SWEPT)
    for group in report["sweep"]["groups"]:
        assert group["nodes"] > 0 and math.isfinite(group["psnr_db_mean"]) and group["in_models"] == "quantized"

    grid = load_rgb(quantized.out / "accuracy.png")
    cell = max(128, min(256, load_model_dir(source_model).image_size[0]))
    assert grid.shape[1] == 5 * cell + 6 * 4  # FP32 | INT8-TRT | diff | INT8-CPU | diff

    # The first held-out pair, recomputed through the runtime's own pipeline and a plain PSNR formula.
    from mclrt.runtime.pipeline import TranslationPipeline

    source = load_model_dir(source_model)
    pair = report["encodings"]["int8-cpu"]["accuracy"]["pairs"][0]
    prepare = calib_data.Preprocessor(source)
    condition = prepare(calib_data.CalibrationImage(calib_photos / pair["condition"], "")).condition
    exemplar = prepare(calib_data.CalibrationImage(calib_photos / pair["exemplar"], ""))
    own = exemplar.condition if source.condition.maskmix else None
    images = {}
    for name, model in (("fp32", source), ("int8", load_model_dir(quantized.out / "cpu"))):
        with TranslationPipeline.open(model) as pipeline:
            images[name] = pipeline.translate(condition, pipeline.encode(exemplar.exemplar, own)).images[0]
    unit = {k: np.clip((v.astype(np.float64) + 1) / 2, 0, 1) for k, v in images.items()}
    mse = np.mean((unit["fp32"] - unit["int8"]) ** 2)
    assert pair["psnr_db"] == pytest.approx(min(10 * np.log10(1 / mse), metrics.PSNR_CAP_DB), abs=1e-6)


def test_metrics_agree_with_scikit_image_on_real_photos():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    photo = package_photos()[2].rgb[:96, :128].astype(np.float64) / 255  # coffee
    noisy = np.clip(photo + rng.normal(0, 0.03, photo.shape), 0, 1)
    chw = photo.transpose(2, 0, 1), noisy.transpose(2, 0, 1)
    want_ssim = structural_similarity(photo, noisy, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=2)
    assert metrics.ssim(*chw) == pytest.approx(want_ssim, abs=1e-9)
    assert metrics.psnr(*chw) == pytest.approx(peak_signal_noise_ratio(photo, noisy, data_range=1), abs=1e-9)
    assert metrics.psnr(chw[0], chw[0]) == metrics.PSNR_CAP_DB and metrics.ssim(chw[0], chw[0]) == pytest.approx(1.0)
    assert metrics.max_abs_error(*chw) == pytest.approx(np.abs(photo - noisy).max())


def test_calibration_split_is_deterministic_and_disjoint():
    calibration, holdout = calib_data.split(10, num=512, holdout=3)
    assert holdout == [0, 4, 9] and calibration == [1, 2, 3, 5, 6, 7, 8]
    calibration, holdout = calib_data.split(10, num=3, holdout=2)
    assert holdout == [0, 9] and calibration == [1, 5, 8]  # evenly spaced over the 8 others
    assert calib_data.pairs(3) == [(0, 1), (1, 2), (2, 0)]


# --- bad input: one-line errors, nothing written ----------------------------------------------------------------------


def _quantize_cli(source: Path, calib: Path | str, out: Path, *extra: str) -> int:
    return main(["quantize", "--model", str(source), "--calib", str(calib), "--out", str(out), "--no-sweep", *extra])


def _error_line(capsys) -> str:
    """The error: the last line on stderr (progress lines, one per step, may come before it)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in "".join(lines)
    return lines[-1]


def test_unusable_calibration_photos_give_one_clear_error_and_write_nothing(source_model, tmp_path, capsys):
    out = tmp_path / "out" / "int8"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    assert _quantize_cli(source_model, empty, out) == 2
    err = _error_line(capsys)
    assert err.startswith(f"error: {empty}: holds no photos")

    mixed = tmp_path / "mixed"
    _write_photos(mixed, 4)
    good = (mixed / "astronaut_0.png").read_bytes()
    (mixed / "broken.png").write_bytes(good[: len(good) // 2])  # truncated
    (mixed / "notes.jpg").write_text("not a photo")
    assert _quantize_cli(source_model, mixed, out, "--holdout", "2") == 2
    err = _error_line(capsys)
    assert err.startswith(f"error: {mixed}: 2 of 6 photo(s) failed preprocessing")
    assert "broken.png" in err and "notes.jpg" in err

    assert _quantize_cli(source_model, tmp_path / "nowhere" / "*.png", out) == 2
    assert "matches no photos" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # not even the parent: every check ran before anything was written


def test_refusals_before_any_work(source_model, calib_photos, tmp_path, capsys):
    existing = tmp_path / "existing"
    existing.mkdir()
    assert _quantize_cli(source_model, calib_photos, existing) == 2
    assert "already exists (pass --overwrite" in capsys.readouterr().err
    # A model directory whose manifest says int8-cpu (the graphs are the FP32 ones: only the field matters here).
    source = load_model_dir(source_model)
    int8 = tmp_path / "int8"
    int8.mkdir()
    for spec in source.manifest.graphs.values():
        shutil.copyfile(source.path / spec.file, int8 / spec.file)
    manifest = source.manifest
    write_manifest(int8, preset=manifest.preset, precision="int8-cpu", image_size=manifest.image_size,
                   condition=manifest.condition, correspondence=manifest.correspondence)  # fmt: skip
    assert _quantize_cli(int8, calib_photos, tmp_path / "again") == 2
    assert "is a int8-cpu model; quantize the FP32 model directory" in capsys.readouterr().err
    assert _quantize_cli(source_model, calib_photos, tmp_path / "x", "--method", "mse") == 2
    assert "--method must be one of max, entropy, percentile" in capsys.readouterr().err
    assert _quantize_cli(source_model, calib_photos, tmp_path / "y", "--holdout", "20") == 2
    assert "--holdout 20 needs at least 21" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "int8"]  # no output, no staging directory left behind
