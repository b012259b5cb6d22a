"""The `torch` backend of `mclrt compare`: the PyTorch model a model directory was exported from.

A runner per graph, with the same life cycle as ONNX Runtime's and TensorRT's (runtime/runners.py):
the exemplar encoder runs `MCLNet.encode_exemplar`, the translator `MCLNet.translate` -- exactly the
two functions the ONNX graphs were traced from (export/onnx_export.py), in eval mode with spectral
norm folded, on the CPU in float32.

Which weights: mclrt.json's `provenance` records the source. A fresh `--init` export records preset
and seed, from which the weights are rebuilt bit for bit; a checkpoint export records the run's name,
the checkpoint folder and the SHA-256 of its model.safetensors, not where it lay on the exporting
machine. So `--checkpoint` names the checkpoint, and its file's SHA-256 must equal the recorded one:
the comparison is never against the wrong weights. (Older manifests recorded a path; it is used when
it resolves from here.) Quantized directories keep their
FP32 source's provenance under `provenance.source.provenance` and are followed to it.

Lives in export/ because it imports torch; it joins runtime/backends.py as the `torch` entry point of the
`mclrt.backends` group (pyproject.toml), loaded only when that backend is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import MANIFEST_NAME, ModelDir
from mclrt.runtime.runners import Runner, TensorMeta


def source_provenance(model: ModelDir) -> dict[str, Any]:
    """The provenance of the FP32 export this directory descends from (quantization nests it)."""
    provenance: Mapping[str, Any] = model.manifest.provenance
    # calibration/quantize.py writes {"source": {..., "provenance": <the FP32 export's>}, "quantization": ...}
    while isinstance(provenance.get("source"), Mapping) and isinstance(provenance["source"].get("provenance"), Mapping):
        provenance = provenance["source"]["provenance"]
    return dict(provenance)


def describe_checkpoint(provenance: Mapping[str, Any]) -> str:
    """'run expH, checkpoint 00001920 (step 1920), model.safetensors SHA-256 5708d9fe69cc...' from a provenance block."""
    parts = []
    if provenance.get("run"):
        parts.append(f"run {provenance['run']}")
    if provenance.get("checkpoint_folder"):
        parts.append(f"checkpoint {provenance['checkpoint_folder']}" + (f" (step {provenance['step']})" if provenance.get("step") is not None else ""))
    elif provenance.get("checkpoint"):
        parts.append(f"checkpoint {provenance['checkpoint']}")
    if provenance.get("model_sha256"):
        parts.append(f"model.safetensors SHA-256 {str(provenance['model_sha256'])[:12]}...")
    return ", ".join(parts) or "not recorded"


def load_source_model(model: ModelDir, checkpoint: str | Path | None = None):
    """The MCLNet (eval, spectral norm folded) whose export `model` is; UserError when it cannot be found."""
    from mclrt.export.checkpoint import init_model, load_checkpoint_source, locate_checkpoint
    from mclrt.runtime.fsutil import sha256_file

    provenance = source_provenance(model)
    manifest = model.path / MANIFEST_NAME
    if checkpoint is None and "init" in provenance:
        return init_model(str(provenance["init"]), int(provenance.get("seed", 0))).model
    recorded = provenance.get("model_sha256")
    if checkpoint is None:
        # Older manifests recorded the checkpoint's path: used when it resolves from here.
        legacy = provenance.get("checkpoint")
        if legacy is None or not Path(legacy).exists():
            raise UserError(
                f"the torch backend needs the checkpoint this model was exported from ({describe_checkpoint(provenance)}): "
                "pass --checkpoint PATH (the checkpoint folder, its run folder, or its model.safetensors)",
                manifest,
            )
        checkpoint = legacy
    _, weights_file = locate_checkpoint(checkpoint)
    if recorded is not None and weights_file.is_file() and sha256_file(weights_file) != recorded:
        raise UserError(
            f"is not the checkpoint {MANIFEST_NAME} was exported from (SHA-256 of {weights_file.name} differs from the recorded "
            f"{recorded[:12]}...: {describe_checkpoint(provenance)})",
            checkpoint,
        )
    return load_checkpoint_source(checkpoint, ema=provenance.get("weights") == "ema").model


class TorchGraphRunner(Runner):
    """One graph of the exported model, run in PyTorch eager mode on the CPU."""

    def __init__(self, model, graph: str, inputs: Mapping[str, tuple], output_names: tuple[str, ...]):
        super().__init__(f"torch:{graph}")
        self._model, self._graph = model, graph
        self._inputs = {name: TensorMeta(name, shape, np.dtype(np.float32)) for name, shape in inputs.items()}
        self._outputs = output_names

    def input_metadata(self) -> dict[str, TensorMeta]:
        return dict(self._inputs)

    def output_names(self) -> list[str]:
        return list(self._outputs)

    def _activate(self) -> None:
        self._model.eval()

    def _deactivate(self) -> None:
        pass

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in feed.items()}
        with torch.no_grad():
            if self._graph == "exemplar_encoder":
                keys, values = self._model.encode_exemplar(tensors["exemplar"], tensors.get("exemplar_condition"))
                outputs = {"exemplar_keys": keys, "exemplar_values": values}
            else:
                image, warped = self._model.translate(tensors["condition"], tensors["exemplar_keys"], tensors["exemplar_values"])
                outputs = {"image": image, "warped_exemplar": warped}
        return {name: outputs[name].numpy() for name in self._outputs}


def open_torch_runners(model: ModelDir, checkpoint: str | Path | None = None) -> dict[str, Runner]:
    """Inactive runners of both graphs, sharing one PyTorch model."""
    net = load_source_model(model, checkpoint)
    runners: dict[str, Runner] = {}
    for graph, spec in model.manifest.graphs.items():
        inputs = {t.name: tuple(None if d == "batch" else d for d in t.shape) for t in spec.inputs}
        runners[graph] = TorchGraphRunner(net, graph, inputs, tuple(t.name for t in spec.outputs))
    return runners
