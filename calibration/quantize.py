"""`mclrt quantize`: an FP32 model directory + real photos -> INT8 model directories and an accuracy report.

Steps:
1. check everything the user gave -- the model (FP32, hashes verified), the destination, every
   calibration photo (all preprocessed once; failures reported together) -- before writing anything;
2. name every node (exclusion lists and the placement check go by name) and walk each graph for
   where Q/DQ may go (placement.py);
3. calibrate each graph once (calibrate.py): the exemplar encoder on every calibration photo as an
   exemplar, the translator on condition i + the FP32 encoder's keys/values of photo (i + 1) mod n
   (with --tool modelopt, ModelOpt calibrates on those same inputs itself, and there is no sweep);
4. write each requested encoding from those ranges (encodings.py) and prove its placement;
5. measure INT8 against FP32 on the held-out pairs, and (unless --no-sweep) each layer group alone;
6. write mclrt.json per model directory -- precision, and under provenance.quantization the recipe,
   the calibration-set hash and the accuracy -- plus accuracy.json / accuracy.png, the calibrated
   ranges, and rename the staging directory into place.

Layout: with one encoding, --out is the model directory. With `--encoding both`, --out holds `trt/`
and `cpu/` (each a complete model directory) beside the shared accuracy.json, accuracy.png and
calibration_ranges/ -- one calibration, one report, two models.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx

from mclrt.calibration import accuracy as acc
from mclrt.calibration import calib_data, placement, report
from mclrt.calibration.calibrate import METHODS, calibrate, require_calibration_caches
from mclrt.calibration.encodings import ENCODINGS, TRT, Encoding, check_modelopt, quantize_with_modelopt, quantize_with_ort
from mclrt.calibration.sweep import GroupSensitivity, sweep
from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_directory, check_output_location, shareable_json
from mclrt.runtime.model_dir import GRAPH_FILES, ModelDir, load_model_dir, write_manifest
from mclrt.runtime.backends import Device, RunnerOptions, open_runners

RANGES_DIR = "calibration_ranges"
TOOLS = ("ort", "modelopt")
ENCODING_CHOICES = ("trt", "cpu", "both")
GRAPHS = tuple(GRAPH_FILES)  # exemplar_encoder, translator


@dataclass(frozen=True)
class QuantizeOptions:
    model: Path
    calib: str
    out: Path
    num: int = 512
    method: str = "max"
    exclude: tuple[str, ...] = ()
    encoding: str = "both"  # trt | cpu | both
    holdout: int = 8
    calib_cond: Path | None = None
    sweep: bool = True
    sweep_only: tuple[str, ...] = ()  # shell patterns on layer-group names; empty: every group
    tool: str = "ort"  # ort | modelopt (the TensorRT encoding only)
    threads: int = 0  # ONNX Runtime intra-op threads (0: one per core)
    recursive: bool = False  # --calib folder: search its subfolders too
    overwrite: bool = False
    alpha: str | None = None  # --alpha flatten's colour; None: photos with transparent pixels are refused
    continue_on_error: bool = False  # report and skip bad photos instead of refusing the set

    @property
    def encodings(self) -> tuple[Encoding, ...]:
        return tuple(ENCODINGS.values()) if self.encoding == "both" else (ENCODINGS[self.encoding],)


@dataclass
class QuantizeResult:
    out: Path
    model_dirs: dict[str, Path]  # precision -> model directory
    report: dict
    accuracy: dict[str, acc.Accuracy]
    sweep: list[GroupSensitivity] = field(default_factory=list)


def quantize_model_dir(options: QuantizeOptions, progress: Callable[[str], None] = lambda message: None) -> QuantizeResult:
    started = time.perf_counter()
    model = _check_inputs(options)
    progress("checking calibration photos")
    cset = calib_data.collect(
        options.calib, model, options.num, options.holdout, options.calib_cond, options.recursive, options.alpha, options.continue_on_error
    )
    calib_data.warn_if_small(cset, options.num, options.calib)
    with tempfile.TemporaryDirectory(prefix="mclrt-quantize-") as work_name, atomic_directory(options.out, options.overwrite) as staging:
        work = Path(work_name)
        prepared, plans = _prepare_graphs(model, work)
        # ModelOpt calibrates by itself; ONNX Runtime's calibration (and the sweep built on it) is for --tool ort.
        ranges = _calibrate(model, cset, prepared, options.method, staging / RANGES_DIR, progress) if options.tool == "ort" else None
        preprocess = cset.preprocessor(model)
        held_out = acc.HeldOut.build(cset.holdout, [preprocess(image) for image in cset.holdout])
        progress("FP32 on held-out pairs")
        fp32 = acc.reference(model, held_out, options.threads)

        model_dirs, outputs, accuracy, quantized_nodes = {}, {}, {}, {}
        for encoding in options.encodings:
            target = staging if len(options.encodings) == 1 else staging / encoding.folder
            target.mkdir(exist_ok=True)
            progress(f"writing {encoding.precision}")
            quantized_nodes[encoding.precision] = _encode(model, cset, prepared, plans, ranges, options, encoding, target, preprocess)
            progress(f"{encoding.precision} on held-out pairs")
            outputs[encoding.precision] = acc.run(
                model, target / "exemplar_encoder.onnx", target / "translator.onnx", held_out, options.threads
            )
            accuracy[encoding.precision] = acc.compare(held_out, fp32, outputs[encoding.precision])
            model_dirs[encoding.precision] = target

        # The sweep measures INT8 arithmetic itself, so it uses TensorRT's placement (every conv, inputs
        # and weights) when that encoding is asked for; the CPU placement leaves some groups out.
        sweep_encoding = TRT if TRT in options.encodings else options.encodings[0]
        sensitivity = []
        if options.sweep and ranges is not None:
            sensitivity = sweep(
                model, prepared, ranges, plans, options.method, sweep_encoding, options.exclude, held_out, fp32, work / "sweep",
                options.sweep_only, options.threads, progress,
            )
        result_report = _report(options, model, cset, held_out, quantized_nodes, accuracy, sensitivity, sweep_encoding, started)
        for precision, target in model_dirs.items():
            _write_manifest(model, target, precision, result_report, accuracy[precision])
        report.write_json(staging / report.REPORT_JSON, result_report)
        report.write_grid(staging / report.REPORT_PNG, fp32, outputs, cell=max(128, min(256, model.image_size[0])))
    final_dirs = {
        precision: options.out if path == staging else options.out / path.relative_to(staging) for precision, path in model_dirs.items()
    }
    return QuantizeResult(options.out, final_dirs, result_report, accuracy, sensitivity)


# --- steps -----------------------------------------------------------------------------------------------------


def _check_inputs(options: QuantizeOptions) -> ModelDir:
    if options.method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, not {options.method!r}")
    if options.encoding not in ENCODING_CHOICES:
        raise UserError(f"--encoding must be one of {', '.join(ENCODING_CHOICES)}, not {options.encoding!r}")
    if options.tool not in TOOLS:
        raise UserError(f"--tool must be one of {', '.join(TOOLS)}, not {options.tool!r}")
    if options.tool == "modelopt":
        check_modelopt(options.encoding, options.method)
    if options.tool == "ort":
        require_calibration_caches()
    model = load_model_dir(options.model)
    if model.manifest.precision != "fp32":
        raise UserError(f"is a {model.manifest.precision} model; quantize the FP32 model directory it came from", options.model)
    out, source = options.out.resolve(), options.model.resolve()
    if out == source or source in out.parents or out in source.parents:
        raise UserError("--out must be outside the model directory (and not contain it)", options.out)
    # atomic_directory refuses these too, but only after calibration: say it before minutes of work.
    if options.out.exists() and not options.overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", options.out)
    if options.out.exists() and not options.out.is_dir():
        raise UserError("exists and is not a directory; refusing to replace it", options.out)
    # --overwrite replaces --out as a whole: it must hold none of the calibration photos or conditions.
    given = [p for p in (Path(options.calib), options.calib_cond) if p is not None and p.exists()]
    check_output_location(options.out, given, replaces_folder=True)
    return model


def _prepare_graphs(model: ModelDir, work: Path) -> tuple[dict[str, Path], dict[str, placement.GraphPlan]]:
    """Named copies of both graphs (what is calibrated and quantized) and their placement plans."""
    prepared, plans = {}, {}
    for graph in GRAPHS:
        named = placement.prepare(onnx.load(str(model.graph_path(graph))))
        prepared[graph] = work / f"{graph}.fp32.onnx"
        onnx.save(named, str(prepared[graph]))
        plans[graph] = placement.plan_graph(named, graph)
    return prepared, plans


def _calibrate(model, cset, prepared, method, ranges_dir: Path, progress) -> dict[str, Path]:
    ranges_dir.mkdir()
    preprocess = cset.preprocessor(model)
    ranges = {graph: ranges_dir / f"{graph}.json" for graph in GRAPHS}
    progress(f"calibrating the exemplar encoder ({method}, {len(cset.calibration)} images)")
    calibrate(prepared["exemplar_encoder"], calib_data.encoder_feeds(cset.calibration, preprocess), method, ranges["exemplar_encoder"])
    progress(f"calibrating the translator ({method}, {len(cset.calibration)} pairs)")
    with open_runners(model, RunnerOptions(backend="ort", device=Device.cpu), graphs=("exemplar_encoder",))["exemplar_encoder"] as encoder:

        def encode(feed):
            out = encoder.infer(feed)
            return out["exemplar_keys"], out["exemplar_values"]

        calibrate(prepared["translator"], calib_data.translator_feeds(cset.calibration, preprocess, encode), method, ranges["translator"])
    return ranges


def _encode(model, cset, prepared, plans, ranges, options, encoding: Encoding, target: Path, preprocess) -> dict[str, int]:
    """Write both graphs of one encoding into `target`; returns the quantized node count per graph."""
    counts = {}
    for graph in GRAPHS:
        nodes = placement.select_nodes(plans[graph], encoding.quantize_outputs, options.exclude)
        output = target / model.manifest.graphs[graph].file
        if not nodes:
            shutil.copyfile(prepared[graph], output)  # nothing quantizable left (e.g. all excluded)
        elif options.tool == "modelopt":
            feeds = _modelopt_feeds(model, cset, preprocess, graph)
            quantize_with_modelopt(prepared[graph], feeds, options.method, nodes, [n.name for n in plans[graph].nodes], output)
        else:
            quantize_with_ort(prepared[graph], ranges[graph], options.method, encoding, nodes, output)
        violations = placement.placement_violations(onnx.load(str(prepared[graph])), onnx.load(str(output)), graph)
        if violations:
            first = violations[0]
            raise RuntimeError(f"{encoding.precision} {graph}: Q/DQ node {first.node} {first.problem} ({len(violations)} violation(s))")
        counts[graph] = len(nodes)
    return counts


def _modelopt_feeds(model, cset, preprocess, graph: str) -> list[dict]:
    if graph == "exemplar_encoder":
        return list(calib_data.encoder_feeds(cset.calibration, preprocess))
    with open_runners(model, RunnerOptions(backend="ort", device=Device.cpu), graphs=("exemplar_encoder",))["exemplar_encoder"] as encoder:

        def encode(feed):
            out = encoder.infer(feed)
            return out["exemplar_keys"], out["exemplar_values"]

        return list(calib_data.translator_feeds(cset.calibration, preprocess, encode))


# --- what is written -------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__}


def _report(options, model, cset, held_out, quantized_nodes, accuracy, sensitivity, sweep_encoding: Encoding, started) -> dict:
    tool = "onnxruntime quantize_static (QDQ)" if options.tool == "ort" else "nvidia-modelopt onnx quantize (int8)"
    # accuracy.json travels with the quantized model: paths as given, no absolute path of this machine.
    return shareable_json({
        "format": report.REPORT_FORMAT,
        "format_version": 1,
        "model": str(options.model),
        "preset": model.manifest.preset,
        "recipe": {
            "tool": tool,
            "method": options.method,
            "num": options.num,
            "holdout": options.holdout,
            "exclude": list(options.exclude),
            "encodings": [encoding.precision for encoding in options.encodings],
            "quantized_ops": list(placement.QUANTIZABLE_OPS),
            "placement": "no Q/DQ adjoins the correspondence node (or enters its function), a normalization chain, a softmax or the output Tanh",
        },
        "calibration_set": {
            "source": cset.source,
            "images": len(cset.calibration),
            "sha256": cset.sha256,
            "calibration_images": cset.names(cset.calibration),
            "holdout_images": cset.names(cset.holdout),
            "holdout_sha256": cset.holdout_sha256,
            "holdout_pairs": len(held_out),
            # --continue-on-error: photos that failed preprocessing and were left out (the command exits 3)
            "skipped": len(cset.skipped),
            "skipped_images": cset.names(cset.skipped),
        },
        "encodings": {
            precision: {
                "summary": next(e.summary for e in options.encodings if e.precision == precision),
                "directory": "." if len(options.encodings) == 1 else next(e.folder for e in options.encodings if e.precision == precision),
                "quantized_nodes": quantized_nodes[precision],
                "accuracy": result.to_dict(),
            }
            for precision, result in accuracy.items()
        },
        "sweep": {
            "encoding": sweep_encoding.precision if sensitivity else None,
            "groups": [item.to_dict() for item in sensitivity],
            "skipped": _sweep_skipped(options),
        },
        "seconds": round(time.perf_counter() - started, 1),
        "versions": _versions(),
    })


def _sweep_skipped(options: QuantizeOptions) -> str | None:
    if not options.sweep:
        return "--no-sweep"
    if options.tool != "ort":
        return "ModelOpt calibrates internally; the sweep re-uses ONNX Runtime's calibration (--tool ort)"
    return None


def _write_manifest(model: ModelDir, target: Path, precision: str, full_report: dict, result: acc.Accuracy) -> None:
    source = model.manifest
    summary = {k: v for k, v in result.to_dict().items() if k != "pairs"}
    quantization = {
        **full_report["recipe"],
        "encoding": precision,
        "encoding_summary": full_report["encodings"][precision]["summary"],
        "quantized_nodes": full_report["encodings"][precision]["quantized_nodes"],
        # The image list stays in accuracy.json: 512 names do not belong in every model's manifest.
        "calibration_set": {k: v for k, v in full_report["calibration_set"].items() if k != "calibration_images"},
        "accuracy_vs_fp32": summary,
    }
    provenance = {
        "source": {
            "model": str(model.path),
            "precision": source.precision,
            "versions": source.versions,
            "graphs": {graph: spec.sha256 for graph, spec in source.graphs.items()},
            "provenance": source.provenance,
        },
        "quantization": quantization,
    }
    write_manifest(
        target,
        preset=source.preset,
        precision=precision,
        image_size=source.image_size,
        condition=source.condition,
        correspondence=source.correspondence,
        versions=_versions(),
        provenance=shareable_json(provenance),  # the source's path as given; an older source's absolute paths dropped too
        preprocessing=source.preprocessing,
    )


def result_summary(result: QuantizeResult) -> dict:
    """A JSON-able summary for `--json`."""
    return {"out": str(result.out), "model_dirs": {k: str(v) for k, v in result.model_dirs.items()}, "report": result.report}


