"""`mclrt infer` end to end, as a user runs it: a real CLI process on real tiny model directories and
package photos. Bad input must give one `error: <file>: <problem>` line, exit code 2, no traceback,
and leave nothing in --out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.inputs.conditions import mediapipe_available
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.model_dir import MANIFEST_NAME, load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.inputs.preprocess import ConditionSource, condition_from_photo, load_condition, load_exemplar
from model_dir_fixtures import TinySpec, build_tiny_model_dir, write_edge_conditions, write_photo

LABEL_SPEC = TinySpec(kind="label", channels=5, maskmix=True, extract=None)


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: an edge model, a maskmix label model, edge conditions, photos, label maps."""
    root = tmp_path_factory.mktemp("infer")
    build_tiny_model_dir(root / "model")
    build_tiny_model_dir(root / "label_model", LABEL_SPEC)
    write_edge_conditions(root / "conds", count=3)
    write_photo(root / "exemplar.jpg", index=1)
    write_photo(root / "photo.png", index=0)
    ids = np.zeros((40, 40), np.uint8)
    ids[10:30, 5:20], ids[20:, 25:] = 2, 4
    cv2.imwrite(str(root / "labels.png"), ids)
    return root


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _png(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _expected_images(model_dir: Path, cond_paths: list[Path], exemplar: Path) -> dict[str, np.ndarray]:
    """What the model computes for these inputs, through the Python API."""
    model = load_model_dir(model_dir)
    ex = load_exemplar(exemplar, model.condition, model.image_size)
    maps = [load_condition(ConditionSource(p.stem, p), model.condition, model.image_size) for p in cond_paths]
    with TranslationPipeline.open(model) as pipeline:
        result = pipeline.translate(np.stack(maps), pipeline.encode(ex.tensor, ex.condition))
    return {p.stem: to_uint8_rgb(image) for p, image in zip(cond_paths, result.images)}


def test_writes_what_the_model_computes(ws, tmp_path):
    out = tmp_path / "out"
    done = run_cli("infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.jpg", "--out", out, "--batch", "2", "--save-warp")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "3 image(s)" in done.stdout and "images/s" in done.stdout
    stems = ["astronaut", "chelsea", "coffee"]
    assert [p.name for p in _files(out)] == sorted(f"{s}{suffix}.png" for s in stems for suffix in ("", "_corr", "_warp"))
    expected = _expected_images(ws / "model", sorted((ws / "conds").glob("*.png")), ws / "exemplar.jpg")
    for stem in stems:
        image = _png(out / f"{stem}.png")
        assert image.shape == (32, 32, 3)
        np.testing.assert_array_equal(image, expected[stem])
        assert _png(out / f"{stem}_warp.png").shape == (32, 32, 3)
        corr = _png(out / f"{stem}_corr.png")
        assert corr.shape[0] == 32 + 18 and corr.shape[1] > 3 * 32  # three panels side by side, each under its label


def test_batch_size_does_not_change_results(ws, tmp_path):
    for batch in ("1", "3"):
        done = run_cli("infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.jpg", "--out", tmp_path / batch, "--batch", batch)
        assert done.returncode == 0, done.stderr
    for path in _files(tmp_path / "1"):
        difference = np.abs(_png(path).astype(int) - _png(tmp_path / "3" / path.name).astype(int))
        assert difference.max() <= 1, path.name


def test_glob_and_extract_from_a_photo(ws, tmp_path):
    out = tmp_path / "out"
    done = run_cli("infer", "--model", ws / "model", "--cond", ws / "photo.*", "--exemplar", ws / "exemplar.jpg", "--out", out, "--extract", "canny")
    assert done.returncode == 0, done.stderr
    model = load_model_dir(ws / "model")
    condition = condition_from_photo(_png(ws / "photo.png"), "canny", model.image_size)
    ex = load_exemplar(ws / "exemplar.jpg", model.condition, model.image_size)
    with TranslationPipeline.open(model) as pipeline:
        want = to_uint8_rgb(pipeline.translate(condition, pipeline.encode(ex.tensor)).images[0])
    np.testing.assert_array_equal(_png(out / "photo.png"), want)


def test_maskmix_label_model_with_the_exemplar_condition(ws, tmp_path):
    out = tmp_path / "out"
    args = ["infer", "--model", ws / "label_model", "--cond", ws / "labels.png", "--exemplar", ws / "exemplar.jpg", "--out", out]
    done = run_cli(*args, "--exemplar-cond", ws / "labels.png")
    assert done.returncode == 0, done.stderr
    assert _png(out / "labels.png").shape == (32, 32, 3)
    done = run_cli(*args[:-1], tmp_path / "other")
    assert done.returncode == 2 and "--exemplar-cond" in done.stderr and not (tmp_path / "other").exists()


def _bad_cases(ws: Path, tmp: Path) -> dict[str, tuple[list, str, str]]:
    """name -> (extra CLI args replacing the defaults, file named in the error, words of the problem)."""
    (tmp / "note.png").write_text("not a picture")
    good = (ws / "conds" / "astronaut.png").read_bytes()
    (tmp / "cut.png").write_bytes(good[: len(good) // 2])
    write_photo(tmp / "colour.png", index=2)
    ids = np.zeros((32, 32), np.uint8)
    ids[4:9, 4:9] = 9
    cv2.imwrite(str(tmp / "ids.png"), ids)
    np.save(tmp / "three.npy", np.zeros((3, 32, 32), np.float32))
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object))
    shutil.copytree(ws / "model", tmp / "no_manifest")
    (tmp / "no_manifest" / MANIFEST_NAME).unlink()
    shutil.copytree(ws / "model", tmp / "tampered")
    data = bytearray((tmp / "tampered" / "exemplar_encoder.onnx").read_bytes())
    data[-10] ^= 0xFF
    (tmp / "tampered" / "exemplar_encoder.onnx").write_bytes(bytes(data))
    shutil.copytree(ws / "model", tmp / "bad_json")
    (tmp / "bad_json" / MANIFEST_NAME).write_text("{ nope", encoding="utf-8")
    return {
        "missing file": (["--cond", tmp / "absent.png"], "absent.png", "no such file"),
        "not an image": (["--cond", tmp / "note.png"], "note.png", "not an image"),
        "truncated image": (["--cond", tmp / "cut.png"], "cut.png", "truncated"),
        # With --extract none: by default (auto) a colour photo is a photo, and the model's Canny makes its edges.
        "wrong channel count": (["--cond", tmp / "colour.png", "--extract", "none"], "colour.png", "3 channels"),
        "wrong channel count (npy)": (["--cond", tmp / "three.npy"], "three.npy", "has 3 channels"),
        "pickled npy": (["--cond", tmp / "objects.npy"], "objects.npy", "not a readable .npy"),
        "label ids beyond the classes": (
            ["--model", ws / "label_model", "--cond", tmp / "ids.png", "--exemplar-cond", ws / "labels.png"],
            "ids.png",
            "class ids 9",
        ),
        "model without mclrt.json": (["--model", tmp / "no_manifest"], "no_manifest", "mclrt.json is missing"),
        "model with invalid JSON": (["--model", tmp / "bad_json"], MANIFEST_NAME, "invalid JSON"),
        "tampered model": (["--model", tmp / "tampered"], "exemplar_encoder.onnx", "SHA-256"),
        "empty glob": (["--cond", str(tmp / "nothing" / "*.png")], "*.png", "matches no files"),
        "missing exemplar": (["--exemplar", tmp / "absent.jpg"], "absent.jpg", "no such file"),
        "extract for another kind": (["--model", ws / "label_model", "--extract", "canny"], "", "makes edge maps"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "not an image", "truncated image", "wrong channel count", "wrong channel count (npy)", "pickled npy",
    "label ids beyond the classes", "model without mclrt.json", "model with invalid JSON", "tampered model", "empty glob",
    "missing exemplar", "extract for another kind",
])  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_no_output(ws, tmp_path, case):
    extra, named, words = _bad_cases(ws, tmp_path)[case]
    options = {"--model": ws / "model", "--cond": ws / "conds", "--exemplar": ws / "exemplar.jpg", "--out": tmp_path / "out"}
    flags = []
    for i in range(0, len(extra), 2):
        if extra[i] in options:
            options[extra[i]] = extra[i + 1]
        else:
            flags += extra[i : i + 2]
    args = [x for pair in options.items() for x in pair] + flags
    done = run_cli("infer", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and named in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert _files(tmp_path / "out") == []


@pytest.mark.skipif(mediapipe_available(), reason="mediapipe is installed: the missing-extra message cannot be shown")
def test_face_extraction_without_mediapipe_says_how_to_install(ws, tmp_path):
    done = run_cli("infer", "--model", ws / "model", "--cond", ws / "photo.png", "--exemplar", ws / "exemplar.jpg", "--out", tmp_path / "out", "--extract", "face")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "needs mediapipe" in done.stderr and "pip install" in done.stderr
    assert not (tmp_path / "out").exists()


def test_continue_on_error_skips_bad_conditions_and_fails_at_the_end(ws, tmp_path):
    conds = tmp_path / "conds"
    shutil.copytree(ws / "conds", conds)
    (conds / "broken.png").write_text("not a picture")
    out = tmp_path / "out"
    done = run_cli("infer", "--model", ws / "model", "--cond", conds, "--exemplar", ws / "exemplar.jpg", "--out", out, "--batch", "2", "--continue-on-error")
    assert done.returncode == 3  # the run went on, but not every condition made it (docs/troubleshooting.md, "Exit codes")
    assert [line for line in done.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {conds / 'broken.png'}: not an image (or a format OpenCV cannot read) (skipped)"
    ]
    assert "Traceback" not in done.stderr
    assert [p.name for p in _files(out)] == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert "3 image(s)" in done.stdout and "1 condition(s) failed" in done.stdout


def test_existing_outputs_are_kept_unless_overwrite(ws, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chelsea.png").write_bytes(b"mine")
    args = ["infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.jpg", "--out", out]
    done = run_cli(*args)
    assert done.returncode == 2 and "chelsea.png: already exists" in done.stderr
    assert [p.name for p in _files(out)] == ["chelsea.png"] and (out / "chelsea.png").read_bytes() == b"mine"
    done = run_cli(*args, "--overwrite")
    assert done.returncode == 0, done.stderr
    assert _png(out / "chelsea.png").shape == (32, 32, 3)


# --- no torch, ever ------------------------------------------------------------------------------------

_BLOCK_TORCH = """
import importlib.abc, sys
class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked in this test ({name})")
        return None
sys.meta_path.insert(0, BlockTorch())
"""


def test_infer_never_imports_torch(ws, tmp_path):
    def script(out: Path) -> str:
        args = ["infer", "--model", str(ws / "model"), "--cond", str(ws / "conds"), "--exemplar", str(ws / "exemplar.jpg"), "--out", str(out), "--save-warp"]
        return (
            "import sys\n"
            "from mclrt.runtime.cli import main\n"
            f"code = main({args!r})\n"
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert code == 0 and not loaded, (code, loaded)\n"
            "print('torch-free')\n"
        )

    done = subprocess.run([sys.executable, "-c", script(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch-free")
    # And with torch made unimportable, the same command still works.
    done = subprocess.run([sys.executable, "-c", _BLOCK_TORCH + script(tmp_path / "blocked")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(_files(tmp_path / "blocked")) == 9


def test_every_runtime_module_imports_without_torch():
    script = _BLOCK_TORCH + (
        "import importlib, pkgutil\n"
        "import mclrt.runtime\n"
        "names = [m.name for m in pkgutil.walk_packages(mclrt.runtime.__path__, 'mclrt.runtime.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 10
