"""MCLNet -> the exported model directory: exemplar_encoder.onnx, translator.onnx, mclrt.json.

The network is split where inference splits it: the exemplar encoder runs once per exemplar, the
translator once per frame. Each graph is traced with the dynamo exporter (`torch.export`), the
correspondence step routed through the `mclrt::correspondence_softmax` custom op so it lands in the
translator as the single node `mclrt::CorrespondenceSoftmax`, whose model-local function is then
added. The exporter's own optimizer (onnxscript: constant folding, dead-node removal, common
subexpression elimination) cleans the graphs; we only add the function afterwards, because that
optimizer would inline it.

The directory is built in a temporary folder beside the destination, checked (structure, then
ONNX Runtime vs PyTorch parity) and only then renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import onnx
import torch
from torch import nn

from mclrt.export.checkpoint import SourceModel
from mclrt.export.custom_op import DOMAIN, CUSTOM_TRANSLATION_TABLE, attach_correspondence_function, correspondence_as_custom_op
from mclrt.export.graph_checks import graph_problems
from mclrt.export.parity import ParityOptions, ParityReport, check_parity
from mclrt.runtime.inputs.conditions import EdgeParams
from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_directory
from mclrt.runtime.model_dir import (
    BATCH_DIM,
    GRAPH_FILES,
    MANIFEST_NAME,
    ConditionSpec,
    CorrespondenceSpec,
    Manifest,
    load_model_dir,
    write_manifest,
)
from mclrt.training.config import ModelConfig
from mclrt.training.networks import MCLNet

DEFAULT_OPSET = 20
# protobuf cannot serialize a message of 2 GiB or more; past that a graph would need external data.
_PROTOBUF_LIMIT = 2**31 - 1
# Example batch for tracing: not 1, because torch.export specializes dimensions of size 0 and 1.
_TRACE_BATCH = 2
_STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"

_EDGE = EdgeParams()  # the runtime's edge maps are the contract; describe them from their parameters
_CONDITION_PREPROCESSING = {
    "edge": f"1 channel, binary edge map in {{0,1}}: Canny of the grayscale photo (Gaussian blur sigma "
    f"{_EDGE.blur_sigma:g}, thresholds {_EDGE.low_threshold:g}/{_EDGE.high_threshold:g}, L2 gradient), "
    "plus face-contour lines when a face is found; nearest resize",
    "label": "one-hot of a label-id PNG (ids 0..channels-1), nearest resize",
    "pose": "20 channels in [0,1]: 3 RGB skeleton rendering + 17 limb distance maps (CoCosNet DeepFashion) "
    "from OpenPose-18 keypoints",
    "celeba-edge": "15 channels in {0,1}: CoCosNet CelebA-HQ edge map (Canny + face-part boundaries)",
}
_IMAGE_PREPROCESSING = "rgb, resize to image_size (area), scale to [-1,1]"


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    overwrite: bool = False
    verify: bool = True  # structure checks always run; this adds ONNX Runtime vs PyTorch parity
    parity: ParityOptions = ParityOptions()


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    export_seconds: dict[str, float] = field(default_factory=dict)  # per graph: trace + convert + write
    file_bytes: dict[str, int] = field(default_factory=dict)
    parity: ParityReport | None = None


# --- the two graphs, as modules whose forward() signature is the graph's input list ------------------


class ExemplarEncoderGraph(nn.Module):
    """exemplar [B,3,H,W] -> (exemplar_keys [B,M,C], exemplar_values [B,M,Cv])."""

    def __init__(self, model: MCLNet):
        super().__init__()
        self.model = model

    def forward(self, exemplar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_exemplar(exemplar)


class MaskmixExemplarEncoderGraph(ExemplarEncoderGraph):
    """The maskmix presets' encoder also sees the exemplar's own condition map [B,L,H,W]."""

    def forward(self, exemplar: torch.Tensor, exemplar_condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_exemplar(exemplar, exemplar_condition)


class TranslatorGraph(nn.Module):
    """condition + the encoder's outputs -> (image [B,3,H,W], warped_exemplar [B,3,H,W])."""

    def __init__(self, model: MCLNet):
        super().__init__()
        self.model = model

    def forward(
        self, condition: torch.Tensor, exemplar_keys: torch.Tensor, exemplar_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.translate(condition, exemplar_keys, exemplar_values)


def _example_inputs(config: ModelConfig) -> dict[str, torch.Tensor]:
    """Tracing inputs: only their shapes matter (no branch of the networks depends on values)."""
    size, b = config.image_size, _TRACE_BATCH
    return {
        "exemplar": torch.zeros(b, 3, size, size),
        "exemplar_condition": torch.zeros(b, config.label_nc, size, size),
        "condition": torch.zeros(b, config.label_nc, size, size),
        "exemplar_keys": torch.zeros(b, config.positions, config.descriptor_width),
        "exemplar_values": torch.zeros(b, config.positions, config.value_width),
    }


# --- export -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence exporter chatter that says nothing about our model (torchvision ops it skips
    registering, internal deprecation notices, the shared batch Dim being named once)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name: batch will not be used.*")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_graph(module: nn.Module, inputs: dict[str, torch.Tensor], output_names: list[str], path: Path, opset: int) -> onnx.ModelProto:
    """Trace `module` (its forward() arguments named like `inputs`) into one self-contained ONNX file."""
    batch = torch.export.Dim(BATCH_DIM, min=1)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            tuple(inputs.values()),
            None,
            dynamo=True,
            external_data=False,
            input_names=list(inputs),
            output_names=output_names,
            opset_version=opset,
            dynamic_shapes={name: {0: batch} for name in inputs},
            custom_translation_table=CUSTOM_TRANSLATION_TABLE,
            optimize=True,
            verbose=False,
        )
    model = program.model_proto
    _drop_stack_traces(model)
    if any(n.domain == DOMAIN for n in model.graph.node):
        attach_correspondence_function(model)
    size = model.ByteSize()
    if size > _PROTOBUF_LIMIT:
        raise ValueError(f"{path.name} would be {size / 2**30:.2f} GiB; one self-contained file must stay below 2 GiB")
    onnx.save_model(model, str(path), save_as_external_data=False)
    return model


def _drop_stack_traces(model: onnx.ModelProto) -> None:
    """The exporter records each node's Python stack trace: absolute paths of this machine and line
    numbers, so any edit anywhere would change the file's hash. The module scopes it also records
    (`pkg.torch.onnx.name_scopes`, read by calibration) stay."""
    for node in model.graph.node:
        kept = [p for p in node.metadata_props if p.key != _STACK_TRACE_KEY]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def export_graphs(model: MCLNet, directory: Path, opset: int = DEFAULT_OPSET) -> dict[str, float]:
    """Write both graphs of `model` (eval mode, spectral norm folded) into `directory`; seconds per graph."""
    config: ModelConfig = model.cfg
    example = _example_inputs(config)
    if config.maskmix:
        encoder, encoder_inputs = MaskmixExemplarEncoderGraph(model), ["exemplar", "exemplar_condition"]
    else:
        encoder, encoder_inputs = ExemplarEncoderGraph(model), ["exemplar"]
    jobs = {
        "exemplar_encoder": (encoder, encoder_inputs, ["exemplar_keys", "exemplar_values"]),
        "translator": (TranslatorGraph(model), ["condition", "exemplar_keys", "exemplar_values"], ["image", "warped_exemplar"]),
    }
    seconds = {}
    with correspondence_as_custom_op(model):
        for graph, (module, input_names, output_names) in jobs.items():
            started = time.perf_counter()
            export_graph(module, {n: example[n] for n in input_names}, output_names, directory / GRAPH_FILES[graph], opset)
            seconds[graph] = time.perf_counter() - started
    return seconds


def _versions() -> dict[str, str]:
    versions = {"torch": torch.__version__}
    for package in ("onnxscript", "onnxruntime-gpu", "onnxruntime"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def write_model_manifest(directory: Path, config: ModelConfig, provenance: dict[str, Any], overwrite: bool = False) -> Manifest:
    """mclrt.json for the graphs in `directory`, through the runtime's writer (which reads the graph
    I/O and hashes from the files, and validates the result exactly as readers do)."""
    return write_manifest(
        directory,
        preset=config.preset,
        precision="fp32",
        image_size=(config.image_size, config.image_size),
        condition=ConditionSpec(config.condition_kind, config.label_nc, config.extract, config.maskmix),
        correspondence=CorrespondenceSpec(
            positions=config.positions,
            descriptor_width=config.descriptor_width,
            value_width=config.value_width,
            scale=float(config.corr_scale),
            mask_negative=bool(config.mask_negative),
        ),
        versions=_versions(),
        provenance=provenance,
        preprocessing={"image": _IMAGE_PREPROCESSING, "condition": _CONDITION_PREPROCESSING[config.condition_kind]},
        overwrite=overwrite,
    )


def check_destination(out: str | Path, overwrite: bool = False) -> None:
    """Fail before any work if `out` cannot be written: it exists and --overwrite was not given, or
    it is something --overwrite must not replace (a file, or a folder that is not a model directory)."""
    out = Path(out)
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", out)
    if not out.is_dir() or out.is_symlink():
        raise UserError("exists and is not a directory; refusing to replace it", out)
    if any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise UserError(f"exists and is not a model directory (no {MANIFEST_NAME}); refusing to replace it", out)


def export_model_dir(source: SourceModel, out: str | Path, options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export `source` into the model directory `out`, atomically; verify before it appears."""
    out = Path(out)
    check_destination(out, options.overwrite)
    with atomic_directory(out, overwrite=options.overwrite) as building:
        seconds = export_graphs(source.model, building, options.opset)
        write_model_manifest(building, source.config, source.provenance)
        problems = graph_problems(building)
        if problems:
            raise RuntimeError("the exported graphs break the model-directory contract:\n  " + "\n  ".join(problems))
        parity = None
        if options.verify:
            parity = check_parity(source.model, building, options.parity)
            if not parity.ok:
                raise UserError(
                    f"ONNX Runtime disagrees with PyTorch: {parity.summary()}; nothing was written "
                    "(--no-verify keeps graphs that fail this check)",
                    out,
                )
        manifest = load_model_dir(building).manifest  # what every consumer will do: hashes included
        sizes = {file: (building / file).stat().st_size for file in (*GRAPH_FILES.values(), MANIFEST_NAME)}
    return ExportResult(out, manifest, seconds, sizes, parity)
