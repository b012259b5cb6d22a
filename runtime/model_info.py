"""`mclrt info --model DIR`: what a model directory holds, read from mclrt.json and the ONNX files (no torch)."""

from __future__ import annotations

from typing import Any

from mclrt.runtime.model_dir import ModelDir


def describe_model_dir(model: ModelDir) -> dict[str, Any]:
    """Preset, precision, shapes, parameters per graph (ONNX initializer elements) and provenance."""
    import onnx

    manifest = model.manifest
    graphs = {}
    for graph, spec in manifest.graphs.items():
        path = model.graph_path(graph)
        proto = onnx.load(str(path), load_external_data=False)
        elements = 0
        for init in proto.graph.initializer:
            count = 1
            for dim in init.dims:
                count *= dim
            elements += count
        graphs[graph] = {
            "file": spec.file,
            "bytes": path.stat().st_size,
            "initializer_elements": elements,
            "nodes": len(proto.graph.node),
            "inputs": {t.name: list(t.shape) for t in spec.inputs},
            "outputs": {t.name: list(t.shape) for t in spec.outputs},
        }
    source = manifest.provenance.get("source", {}) if isinstance(manifest.provenance.get("source"), dict) else {}
    return {
        "model": str(model.path),
        "preset": manifest.preset,
        "precision": manifest.precision,
        "image_size": list(manifest.image_size),
        "condition": {"kind": manifest.condition.kind, "channels": manifest.condition.channels,
                      "extract": manifest.condition.extract, "maskmix": manifest.condition.maskmix},
        "correspondence": {"positions": manifest.correspondence.positions, "descriptor_width": manifest.correspondence.descriptor_width,
                           "value_width": manifest.correspondence.value_width},
        "opset": manifest.opset,
        "graphs": graphs,
        "versions": manifest.versions,
        # What the weights are: "CoCosNet (no SCM, no MCL)" for an imported CoCosNet checkpoint.
        "architecture": manifest.provenance.get("architecture") or "MCL-Net",
        "imported_from": _imported_files(manifest.provenance.get("imported_from")),
        "source": {
            "checkpoint": _checkpoint(manifest.provenance),
            "init": manifest.provenance.get("init"),
            "quantized_from": source.get("model"),
        },
    }


def _checkpoint(provenance: dict) -> str | None:
    """'run expH, checkpoint 00001920' for a checkpoint export (older manifests: the recorded path)."""
    if provenance.get("checkpoint_folder"):
        run = provenance.get("run")
        return (f"run {run}, " if run else "") + f"checkpoint {provenance['checkpoint_folder']}"
    return provenance.get("checkpoint")


def _imported_files(imported: Any) -> dict[str, Any] | None:
    if not isinstance(imported, dict):
        return None
    files = imported.get("files") if isinstance(imported.get("files"), dict) else {}
    return {"upstream": imported.get("upstream"), "files": {k: v.get("file") for k, v in files.items() if isinstance(v, dict)}}
