"""The CorrespondenceSoftmax Triton kernel: numerics under TRITON_INTERPRET=1, PTX for sm_86..sm_110.

Numerics: every case runs through the real `@triton.jit` kernel in Triton's interpreter (in one
subprocess, `triton_interpret_worker.py`, with TRITON_INTERPRET=1 set before Triton is imported)
and is compared with a float64 numpy softmax(scale * q k^T) v. FP16 cases compare with the
reference on the FP16-rounded inputs. Features are random unit vectors and real descriptors
(centred, L2-normalized 3x3 patches of colour and gradient channels of scikit-image photos).
Every case has N != M, batch > 1, scale 100, several key tiles and several feature blocks.

PTX: compiled with no GPU for each target architecture, then assembled by ptxas; whether the
kernel runs on a GPU is not verified here (there is none).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FP32_TOLERANCE = 1e-5
FP16_TOLERANCE = 1e-2
ARCHS = (86, 87, 89, 90, 110)
SCALE = 100.0


# --- reference and inputs -------------------------------------------------------------------------
def reference(q, k, v, scale, mask_negative):
    """float64 softmax(scale * q k^T [relu first]) v over the key axis."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    sim = q @ k.transpose(0, 2, 1)
    if mask_negative:
        sim = np.maximum(sim, 0.0)
    logits = scale * sim
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


def unit_rows(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def random_features(rng, batch, n, m, c, cv):
    q = unit_rows(rng.standard_normal((batch, n, c)))
    k = unit_rows(rng.standard_normal((batch, m, c)))
    v = rng.uniform(-1.0, 1.0, (batch, m, cv))
    return q, k, v


def photo(name):
    from skimage import data

    return getattr(data, name)()[..., :3].astype(np.float64) / 255.0


def patch_descriptors(image, grid, sigmas):
    """Centred, L2-normalized 3x3 patches of standardized (blurred colour, x/y gradient) channels."""
    from skimage.filters import gaussian
    from skimage.transform import resize

    small = resize(image, grid + (3,), anti_aliasing=True)
    channels = []
    for sigma in sigmas:
        blurred = gaussian(small, sigma=sigma, channel_axis=-1)
        gy, gx = np.gradient(blurred, axis=(0, 1))
        channels += [blurred, gx, gy]
    stack = np.concatenate(channels, axis=-1)  # [h, w, 9 * len(sigmas)]
    # Standardize each channel over the image, so gradients weigh as much as colours (raw, the
    # blurred colours dominate and every patch looks alike: the softmax would be nearly flat).
    stack = (stack - stack.mean(axis=(0, 1))) / (stack.std(axis=(0, 1)) + 1e-8)
    padded = np.pad(stack, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = grid
    patches = [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    desc = np.concatenate(patches, axis=-1).reshape(h * w, -1)
    desc -= desc.mean(axis=1, keepdims=True)
    return unit_rows(desc)


def exemplar_values(image, grid, cv):
    """What the translator warps: pooled RGB (3), 4x4 RGB patches (48), or a 151-class colour
    label one-hot plus RGB (154), all from the exemplar photo at 4x the correspondence grid."""
    from skimage.transform import resize

    h, w = grid
    rgb = resize(image, (4 * h, 4 * w, 3), anti_aliasing=True) * 2.0 - 1.0
    patches = rgb.reshape(h, 4, w, 4, 3).transpose(0, 2, 1, 3, 4).reshape(h * w, 48)
    pooled = patches.reshape(h * w, 16, 3).mean(axis=1)
    if cv == 3:
        return pooled
    if cv == 48:
        return patches
    assert cv == 154
    levels = np.clip(((pooled + 1.0) / 2.0 * np.array([5, 5, 6])).astype(int), 0, [4, 4, 5])
    label = 1 + levels[:, 0] * 30 + levels[:, 1] * 6 + levels[:, 2]  # 1..150; 0 = "unknown"
    return np.concatenate([np.eye(151)[label], pooled], axis=1)


def real_features(sigmas, cv):
    """Batch of 2, N != M: astronaut -> chelsea, and coffee -> astronaut."""
    query_grid, key_grid = (18, 20), (16, 19)
    pairs = [("astronaut", "chelsea"), ("coffee", "astronaut")]
    q = np.stack([patch_descriptors(photo(a), query_grid, sigmas) for a, _ in pairs])
    k = np.stack([patch_descriptors(photo(b), key_grid, sigmas) for _, b in pairs])
    v = np.stack([exemplar_values(photo(b), key_grid, cv) for _, b in pairs])
    return q, k, v


@dataclass(frozen=True)
class Case:
    name: str
    features: str  # "random" or "real"
    dtype: str
    batch: int
    n: int
    m: int
    c: int  # random: the width; real: the number of blur scales (width = 81 * scales)
    cv: int
    mask_negative: bool
    strided: bool = False

    def arrays(self):
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        if self.features == "random":
            q, k, v = random_features(rng, self.batch, self.n, self.m, self.c, self.cv)
        else:
            q, k, v = real_features(np.geomspace(0.5, 4.0, self.c), self.cv)
        dtype = np.float16 if self.dtype == "fp16" else np.float32
        return tuple(a.astype(dtype) for a in (q, k, v))


CASES = [
    Case("random_fp32_c640_cv3", "random", "fp32", 2, 300, 230, 640, 3, False),
    Case("random_fp32_c640_cv3_relu", "random", "fp32", 2, 300, 230, 640, 3, True),
    Case("random_fp32_c2560_cv48", "random", "fp32", 3, 150, 200, 2560, 48, False),
    Case("random_fp32_c2560_cv154_relu", "random", "fp32", 2, 130, 170, 2560, 154, True),
    Case("random_fp32_c640_cv48_strided", "random", "fp32", 2, 200, 150, 640, 48, False, strided=True),
    Case("random_fp16_c640_cv3", "random", "fp16", 2, 300, 230, 640, 3, False),
    Case("random_fp16_c2560_cv48_relu", "random", "fp16", 2, 150, 200, 2560, 48, True),
    Case("random_fp16_c2560_cv154", "random", "fp16", 2, 130, 170, 2560, 154, False),
    Case("real_fp32_c648_cv3", "real", "fp32", 2, 360, 304, 8, 3, False),
    Case("real_fp32_c2592_cv48_relu", "real", "fp32", 2, 360, 304, 32, 48, True),
    Case("real_fp16_c648_cv154", "real", "fp16", 2, 360, 304, 8, 154, False),
    Case("real_fp16_c2592_cv3_relu", "real", "fp16", 2, 360, 304, 32, 3, True),
]


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    """{case name: (inputs, kernel output)} from one interpreter subprocess for all cases."""
    folder = tmp_path_factory.mktemp("triton_interpret")
    inputs, saved = {}, {}
    for case in CASES:
        q, k, v = case.arrays()
        inputs[case.name] = (q, k, v)
        saved.update({f"{case.name}/q": q, f"{case.name}/k": k, f"{case.name}/v": v})
        saved[f"{case.name}/attrs"] = np.array([SCALE, float(case.mask_negative)])
        if case.strided:
            saved[f"{case.name}/strided"] = np.array([1])
    np.savez(folder / "cases.npz", **saved)
    worker = Path(__file__).with_name("triton_interpret_worker.py")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, str(worker), str(folder / "cases.npz"), str(folder / "out.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    outputs = np.load(folder / "out.npz")
    return {name: (inputs[name], outputs[name]) for name in inputs}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kernel_matches_float64_reference(case, interpreted):
    (q, k, v), out = interpreted[case.name]
    assert out.shape == (q.shape[0], q.shape[1], v.shape[2])
    assert out.dtype == q.dtype  # FP16 in, FP16 out
    expected = reference(q, k, v, SCALE, case.mask_negative)  # FP16 inputs: their rounded values, in float64
    error = np.abs(out.astype(np.float64) - expected).max()
    tolerance = FP16_TOLERANCE if case.dtype == "fp16" else FP32_TOLERANCE
    assert error <= tolerance, f"{case.name}: max abs error {error:.3g} > {tolerance}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_cases_exercise_online_softmax_and_feature_blocks(case):
    """The interpreter's tiles leave every case several key tiles (online rescaling), several
    feature blocks (C in chunks) and a batch > 1 with N != M."""
    from mclrt.runtime.kernels.correspondence_triton import interpreter_tile_config

    width = case.c if case.features == "random" else 81 * case.c
    tiles = interpreter_tile_config(case.n, case.m, width)
    assert math.ceil(case.m / tiles.block_m) > 1
    assert math.ceil(width / tiles.block_c) > 1
    assert case.batch > 1 and case.n != case.m


def test_real_features_give_peaked_correspondences():
    """At scale 100 real descriptors give sharp softmax rows: the case tests the running max."""
    q, k, _ = real_features(np.geomspace(0.5, 4.0, 8), 3)
    logits = SCALE * q @ k.transpose(0, 2, 1)
    spread = logits.max(axis=-1) - logits.min(axis=-1)
    assert spread.min() > 50.0  # every row spans e^50 and more: the running max must be subtracted
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    assert np.median(weights.max(axis=-1)) > 0.5  # most rows are dominated by one best match


# --- PTX ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_ptx_compiles_and_assembles_for_target(arch, tmp_path):
    from mclrt.runtime.kernels.correspondence_triton import KERNEL_NAME, compile_ptx, entry_params, ptxas_for, unsupported_reason

    if unsupported_reason(arch):  # e.g. sm_110 with Triton 3.5/3.6, whose ptxas predates CUDA 13
        pytest.skip(unsupported_reason(arch))
    kernel = compile_ptx(arch, "fp16", Cv=3, C=640, N=1024)  # the nano preset
    target = re.search(r"^\.target\s+(sm_\d+a?)\s*$", kernel.ptx, re.MULTILINE)
    assert target is not None and re.fullmatch(rf"sm_{arch}a?", target.group(1)), target
    assert re.search(rf"\.entry\s+{KERNEL_NAME}\s*\(", kernel.ptx)
    assert kernel.name == KERNEL_NAME
    # Exactly q, k, v, out: TensorRT's AOT plugins pass inputs then outputs, nothing after.
    assert len(entry_params(kernel.ptx, kernel.name)) == 4
    assert 0 < kernel.shared_mem <= 48 * 1024
    assert kernel.threads_per_block == kernel.num_warps * 32
    # ptxas accepts the PTX with the hidden parameters removed.
    ptx_file = tmp_path / "kernel.ptx"
    ptx_file.write_text(kernel.ptx)
    assembled = subprocess.run(
        [ptxas_for(arch)[0], f"-arch={target.group(1)}", str(ptx_file), "-o", str(tmp_path / "kernel.cubin")],
        capture_output=True,
        text=True,
    )
    assert assembled.returncode == 0, assembled.stderr
    assert (tmp_path / "kernel.cubin").stat().st_size > 0
    assert kernel.cubin[:4] == b"\x7fELF"  # compile_ptx assembles the same PTX itself


@pytest.mark.parametrize("dtype,cv", [("fp32", 3), ("fp32", 48), ("fp32", 154), ("fp16", 48), ("fp16", 154)])
def test_paper_size_kernels_fit_default_shared_memory(dtype, cv):
    """N = M = 4096, C = 2560: every value width compiles and needs no shared-memory opt-in."""
    from mclrt.runtime.kernels.correspondence_triton import compile_ptx, entry_params

    kernel = compile_ptx(86, dtype, Cv=cv, C=2560, N=4096)
    assert kernel.shared_mem <= 48 * 1024
    assert len(entry_params(kernel.ptx, kernel.name)) == 4
    assert kernel.grid(batch=3) == (4096 // kernel.spec.tiles.block_n, 3, 1)


def test_strip_refuses_a_used_hidden_parameter():
    from mclrt.runtime.kernels.correspondence_triton import strip_hidden_params

    ptx = ".visible .entry f(\n\t.param .u64 f_param_0,\n\t.param .u64 f_param_1\n)\n{\n\tld.param.u64 %rd1, [f_param_1];\n}\n"
    with pytest.raises(ValueError, match="f_param_1"):
        strip_hidden_params(ptx, "f", keep=1)
    unused = ptx.replace("[f_param_1]", "[f_param_0]")
    assert "f_param_1" not in strip_hidden_params(unused, "f", keep=1)


def test_compile_kernels_tool_writes_ptx_and_refuses_to_overwrite(tmp_path, capsys):
    import json

    from mclrt.tools.compile_kernels import main

    args = ["--arch", "sm_87", "--preset", "nano", "--dtype", "fp16", "--out", str(tmp_path)]
    assert main(args) == 0
    ptx = tmp_path / "sm_87" / "correspondence_fp16_n1024_m1024_c640_cv3_s100.ptx"
    meta = json.loads(ptx.with_suffix(".json").read_text())
    assert ".target sm_87" in ptx.read_text()
    assert meta["params"] == ["q_ptr", "k_ptr", "v_ptr", "out_ptr"] and meta["for"] == ["nano"]
    assert meta["spec"]["descriptor_width"] == 640 and meta["shared_mem"] > 0
    before = ptx.read_text()
    assert main(args) == 2  # existing output is never silently replaced
    assert "already exists" in capsys.readouterr().err
    assert ptx.read_text() == before
    assert main(args + ["--overwrite"]) == 0


# --- import hygiene and gates ---------------------------------------------------------------------
def test_runtime_kernel_modules_import_without_triton_or_torch():
    code = (
        "import sys\n"
        "import mclrt.runtime.kernels, mclrt.runtime.kernels.correspondence_launch\n"
        "import mclrt.tools.kernel_interpret, mclrt.runtime.trt.qdp_aot\n"
        "heavy = [m for m in ('torch', 'triton', 'tensorrt', 'cuda') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_interpret_refuses_without_interpreter_mode(monkeypatch):
    from mclrt.tools.kernel_interpret import interpret

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = np.zeros((1, 16, 16), np.float32)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        interpret(x, x, x)


def test_qdp_unavailable_without_enterprise_tensorrt():
    import importlib.util

    from mclrt.runtime.trt.qdp_aot import qdp_available, register_qdp

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("enterprise TensorRT is installed here; the gate's negative case cannot be shown")
    assert qdp_available() is False
    with pytest.raises(RuntimeError, match="10.9"):
        register_qdp()
