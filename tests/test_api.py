"""The Python API (mclrt.runtime.Translator): the documented examples run, and the object does what the
commands do -- same images as `mclrt infer` on the same inputs, one encode for many translations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mclrt.runtime import Translator
from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import encode_png
from mclrt.runtime.inputs.image_io import load_rgb
from mclrt.runtime.inputs.package_photos import package_photos

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "runtime" / "models" / "demo"
DOCS = REPO / "docs" / "api.md"


@pytest.fixture(scope="module")
def photos():
    return [photo.rgb for photo in package_photos()[:4]]


def test_the_docs_examples_run_in_order(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3, "docs/api.md lost its examples"
    script = tmp_path / "api_examples.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("onnxruntime (") and "(128, 128, 3)" in lines[0]
    assert lines[-1] == "3 3"


def test_encode_once_translate_three_frames_like_infer(photos, tmp_path):
    """The API and `mclrt infer` give the same image for the same files."""
    from mclrt.runtime.cli import main

    files = []
    for i, rgb in enumerate(photos):
        path = tmp_path / f"photo{i}.png"
        path.write_bytes(encode_png(rgb))
        files.append(path)
    out = tmp_path / "out"
    conds = tmp_path / "conds"
    conds.mkdir()
    for path in files[1:]:
        (conds / path.name).write_bytes(path.read_bytes())
    assert main(["infer", "--model", str(DEMO), "--cond", str(conds), "--exemplar", str(files[0]), "--out", str(out), "--backend", "ort"]) == 0

    with Translator(DEMO, backend="ort") as model:
        style = model.encode(files[0])
        for path in files[1:]:
            result = model.translate(path, style)
            np.testing.assert_array_equal(result.image, load_rgb(out / path.name))
        # Arrays give what their files give.
        np.testing.assert_array_equal(model.translate(photos[1], model.encode(photos[0])).image, load_rgb(out / files[1].name))


def test_batch_and_stream_match_one_at_a_time(photos):
    with Translator(DEMO, backend="ort", threads=1) as model:
        style = model.encode(photos[0])
        one = [model.translate(p, style) for p in photos[1:]]
        streamed = list(model.stream(iter(photos[1:]), style, batch=1))
        batched = model.translate_batch(photos[1:], style, batch=3)
    for a, b, c in zip(one, streamed, batched):
        np.testing.assert_array_equal(a.image, b.image)
        # A batch of 3 runs other kernels than a batch of 1: equal up to rounding of the last bit.
        assert np.abs(a.image.astype(int) - c.image.astype(int)).max() <= 1


def test_the_runners_open_once_and_close(photos):
    model = Translator(DEMO, backend="ort")
    assert model._pipeline is None  # nothing opened by loading the directory
    style = model.encode(photos[0])
    pipeline = model.pipeline
    model.translate(photos[1], style)
    assert model.pipeline is pipeline and pipeline.translator.is_active
    model.close()
    assert not pipeline.translator.is_active and not pipeline.encoder.is_active


def test_bad_input_is_one_clear_error(photos, tmp_path):
    with Translator(DEMO, backend="ort") as model:
        style = model.encode(photos[0])
        with pytest.raises(UserError, match="condition map must be float"):
            model.translate(np.zeros((3, 64, 64), np.float32), style)
        with pytest.raises(UserError, match=r"values in \[0, 1\]"):
            model.translate(np.full((1, 128, 128), 2.0, np.float32), style)
        with pytest.raises(UserError, match="must be uint8 RGB"):
            model.encode(np.zeros((64, 64, 3), np.int32))
        missing = tmp_path / "missing.png"
        with pytest.raises(UserError) as err:
            model.translate(missing, style)
        assert str(missing) in str(err.value)
    with pytest.raises(UserError):
        Translator(tmp_path / "not-a-model")
