"""Model directories: the manifest written by `write_manifest` is the contract, and loading verifies it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import MANIFEST_NAME, load_model_dir
from model_dir_fixtures import TinySpec, build_tiny_model_dir, write_tiny_manifest


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_tiny_model_dir(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def model_copy(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "model"))


def _edit_manifest(model: Path, edit) -> None:
    path = model / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_manifest_holds_every_contract_field(built):
    data = json.loads((built / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert data["format"] == "mclrt-model" and data["format_version"] == 1
    assert set(data) >= {"preset", "precision", "image_size", "condition", "correspondence", "graphs", "opset", "versions", "provenance", "preprocessing"}
    assert data["condition"] == {"kind": "edge", "channels": 1, "extract": "canny", "maskmix": False}
    assert data["correspondence"] == {"positions": 64, "descriptor_width": 16, "value_width": 3, "scale": 100.0, "mask_negative": False}
    assert data["opset"] == 20 and data["image_size"] == [32, 32]
    translator = data["graphs"]["translator"]
    assert translator["file"] == "translator.onnx" and len(translator["sha256"]) == 64
    assert translator["inputs"][0] == {"name": "condition", "shape": ["batch", 1, 32, 32], "dtype": "float32", "range": [0.0, 1.0]}
    assert [o["name"] for o in translator["outputs"]] == ["image", "warped_exemplar"]
    assert data["graphs"]["exemplar_encoder"]["outputs"][0]["shape"] == ["batch", 64, 16]
    assert "onnx" in data["versions"]


def test_load_exposes_metadata(built):
    model = load_model_dir(built)
    assert model.image_size == (32, 32)
    assert model.condition.kind == "edge" and not model.condition.maskmix
    assert model.translator.input("exemplar_values").fixed_shape == (64, 3)
    assert model.graph_path("translator") == built / "translator.onnx"


def test_maskmix_encoder_takes_the_exemplar_condition(tmp_path):
    spec = TinySpec(kind="label", channels=5, maskmix=True, extract=None)
    model = load_model_dir(build_tiny_model_dir(tmp_path / "label", spec))
    assert [t.name for t in model.encoder.inputs] == ["exemplar", "exemplar_condition"]
    assert model.encoder.input("exemplar_condition").shape == ("batch", 5, 32, 32)


def test_tampered_graph_is_refused_naming_the_file(model_copy):
    path = model_copy / "translator.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as caught:
        load_model_dir(model_copy)
    assert caught.value.path == str(path)
    assert "SHA-256" in caught.value.problem
    load_model_dir(model_copy, verify_hashes=False)  # an explicit opt-out still reads it


@pytest.mark.parametrize(
    "breakage, where, words",
    [
        (lambda m: (m / MANIFEST_NAME).unlink(), "", "mclrt.json is missing"),
        (lambda m: (m / MANIFEST_NAME).write_text('{"format": "mclrt-model",', encoding="utf-8"), MANIFEST_NAME, "invalid JSON at line 1"),
        (lambda m: (m / MANIFEST_NAME).write_bytes(b"\xff\xfe\x00"), MANIFEST_NAME, "not UTF-8"),
        (lambda m: _edit_manifest(m, lambda d: d.update(format_version=2)), MANIFEST_NAME, "unsupported format_version 2"),
        (lambda m: _edit_manifest(m, lambda d: d.update(format="other")), MANIFEST_NAME, "'format'"),
        (lambda m: _edit_manifest(m, lambda d: d["condition"].update(channels="1")), MANIFEST_NAME, "condition.channels"),
        (lambda m: _edit_manifest(m, lambda d: d["condition"].update(kind="depth")), MANIFEST_NAME, "condition.kind"),
        (lambda m: _edit_manifest(m, lambda d: d["condition"].update(channels=3)), MANIFEST_NAME, "expected ['batch', 3, 32, 32]"),
        (lambda m: _edit_manifest(m, lambda d: d.pop("graphs")), MANIFEST_NAME, "missing field 'graphs.exemplar_encoder.file'"),
        (lambda m: _edit_manifest(m, lambda d: d["graphs"]["translator"].update(file="../x.onnx")), MANIFEST_NAME, "inside the model directory"),
        (lambda m: (m / "exemplar_encoder.onnx").unlink(), "exemplar_encoder.onnx", "missing"),
    ],
)
def test_broken_directories_are_user_errors_naming_the_file(model_copy, breakage, where, words):
    breakage(model_copy)
    with pytest.raises(UserError) as caught:
        load_model_dir(model_copy)
    assert caught.value.path == str(model_copy / where if where else model_copy)
    assert words in caught.value.problem


def test_not_a_directory(tmp_path):
    with pytest.raises(UserError, match="model directory not found"):
        load_model_dir(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        load_model_dir(tmp_path / "file")


def test_write_manifest_never_overwrites_silently(model_copy):
    before = (model_copy / MANIFEST_NAME).read_bytes()
    with pytest.raises(UserError, match="already exists"):
        write_tiny_manifest(model_copy, TinySpec())
    assert (model_copy / MANIFEST_NAME).read_bytes() == before
    write_tiny_manifest(model_copy, TinySpec(), overwrite=True, precision="fp16")
    assert load_model_dir(model_copy).manifest.precision == "fp16"
