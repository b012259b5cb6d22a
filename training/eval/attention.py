"""The correspondence's attention rows, read from an exported translator: where a condition position
looks in the exemplar.

The translator computes `mclrt::CorrespondenceSoftmax(q, k, v)` = softmax(scale * q k^T) v but outputs
only the warp. To see the attention itself, this module loads translator.onnx, makes the node's `q` and
`k` inputs extra graph outputs (in memory; the model directory is not touched) and runs it once with
ONNX Runtime on the CPU; softmax(scale * q k^T) -- with the node's own `scale` and `mask_negative`
attributes -- is then computed for the requested rows only, in numpy. This works for any model
directory whose translator holds the node (FP32, FP16 and INT8 graphs alike), whatever backend the
rest of an evaluation uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.pipeline import EncodedExemplar
from mclrt.runtime.runners import OnnxRuntimeRunner, OrtOptions
from mclrt.training.eval.pairs import PseudoPair

OP_DOMAIN, OP_TYPE = "mclrt", "CorrespondenceSoftmax"
_Q, _K = "mclrt_eval/query_descriptors", "mclrt_eval/exemplar_descriptors"


@dataclass(frozen=True)
class Attention:
    """q [B, N, C] and k [B, M, C] as the node sees them, and its attributes."""

    q: np.ndarray
    k: np.ndarray
    scale: float
    mask_negative: bool

    def similarities(self, item: int, positions: np.ndarray | slice = slice(None)) -> np.ndarray:
        """q k^T in float64 [len(positions), M] for condition `positions`, after the node's ReLU mask if any."""
        similarity = self.q[item, positions].astype(np.float64) @ self.k[item].astype(np.float64).T
        return np.maximum(similarity, 0.0) if self.mask_negative else similarity

    def peaks(self, item: int) -> np.ndarray:
        """For every condition position, the exemplar position with the most weight [N] (int): the
        softmax and its scale are monotonic, so the argmax of the similarities."""
        return self.similarities(item).argmax(axis=1)

    def rows(self, item: int, positions: np.ndarray) -> np.ndarray:
        """softmax over the exemplar positions, float64 [len(positions), M], for condition `positions`."""
        logits = self.scale * self.similarities(item, positions)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)


def correspondence_grid(model: ModelDir) -> tuple[int, int, int]:
    """(rows, cols, stride) of the correspondence positions, row-major over the image."""
    height, width = model.image_size
    positions = model.manifest.correspondence.positions
    stride = int(round((height * width / positions) ** 0.5))
    rows, cols = height // stride, width // stride
    if rows * cols != positions:
        raise ValueError(f"{positions} correspondence positions do not tile a {height}x{width} image")
    return rows, cols, stride


def peak_hit_rate(attention: Attention, item: int, pair: PseudoPair, grid: tuple[int, int, int]) -> float | None:
    """Share of the condition's correspondence cells whose attention peaks within one cell of the cell
    their true position falls in (Chebyshev distance <= 1: the true cell or one of its 8 neighbours).

    A cell is taken at its centre pixel and sent through the pair's transform; cells whose true position
    lies outside the exemplar (the strips a flip-shift moves in, the ring a crop cuts off) are not
    counted. None when no cell counts. A warp that only carries colours into the right regions scores
    low here however good its PSNR; chance is about 9 / positions.
    """
    rows, cols, stride = grid
    row, col = np.divmod(np.arange(rows * cols), cols)
    centre = (stride - 1) / 2
    ones = np.ones(rows * cols)
    true_x, true_y = pair.photo_to_exemplar @ np.stack([col * stride + centre, row * stride + centre, ones])
    true_col, true_row = np.floor(true_x / stride), np.floor(true_y / stride)
    inside = (true_col >= 0) & (true_col < cols) & (true_row >= 0) & (true_row < rows)
    if not inside.any():
        return None
    peak_row, peak_col = np.divmod(attention.peaks(item), cols)
    hit = (np.abs(peak_col - true_col) <= 1) & (np.abs(peak_row - true_row) <= 1)
    return float(hit[inside].mean())


class AttentionProbe:
    """An ONNX Runtime session of the translator with the correspondence node's q and k as outputs."""

    def __init__(self, model: ModelDir, threads: int = 0):
        graph = onnx.load(str(model.graph_path("translator")))
        nodes = [n for n in graph.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_TYPE]
        if len(nodes) != 1:
            raise ValueError(f"{model.graph_path('translator')} holds {len(nodes)} {OP_DOMAIN}::{OP_TYPE} nodes, expected 1")
        node = nodes[0]
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        self.scale = float(attributes.get("scale", 100.0))
        self.mask_negative = bool(attributes.get("mask_negative", 0))
        # Copies under our own names, cast to float32: a graph output may not share its name with a graph
        # input (k is the input exemplar_keys in exported translators), and FP16 graphs carry half floats.
        for source, name in ((node.input[0], _Q), (node.input[1], _K)):
            graph.graph.node.append(onnx.helper.make_node("Cast", [source], [name], to=onnx.TensorProto.FLOAT))
            graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        options = OrtOptions(intra_op_threads=threads, providers=("CPUExecutionProvider",))
        self.runner = OnnxRuntimeRunner(graph.SerializeToString(), options, name="translator (attention probe)")

    def __enter__(self) -> "AttentionProbe":
        self.runner.activate()
        return self

    def __exit__(self, *exc_info) -> None:
        self.runner.deactivate()

    def attention(self, conditions: np.ndarray, exemplar: EncodedExemplar) -> Attention:
        conditions = conditions[None] if conditions.ndim == 3 else conditions
        feed = {"condition": conditions, "exemplar_keys": exemplar.keys, "exemplar_values": exemplar.values}
        metadata = self.runner.input_metadata()  # an FP16 graph with FP16 inputs takes half floats
        out = self.runner.infer({name: np.ascontiguousarray(value, metadata[name].dtype) for name, value in feed.items()})
        return Attention(out[_Q], out[_K], self.scale, self.mask_negative)
