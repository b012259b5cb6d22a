"""A person's own pictures (issue 24): edge maps drawn either way round, outputs of one run that would
collide, --threads beyond the cores, errors a program reads (--json), and a folder with one bad photo.

Real package photos and edge maps drawn from them, through the real CLI (in process, or a subprocess
where the process itself is measured).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.api import Translator
from mclrt.runtime.cli import main
from mclrt.runtime.inputs.conditions import edge_map, package_photos
from model_dir_fixtures import build_tiny_model_dir, write_photo

CLI = [sys.executable, "-m", "mclrt.runtime.cli"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    build_tiny_model_dir(root / "model")
    write_photo(root / "exemplar.png", index=1, size=64)
    photo = cv2.resize(package_photos()[0].rgb, (64, 64), interpolation=cv2.INTER_AREA)
    white_on_black = (edge_map(photo)[0] * 255).astype(np.uint8)
    (root / "wob").mkdir()
    (root / "bow").mkdir()
    cv2.imwrite(str(root / "wob" / "drawing.png"), white_on_black)
    cv2.imwrite(str(root / "bow" / "drawing.png"), 255 - white_on_black)  # black lines on white, as people draw
    return root


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def infer_args(ws: Path, cond, out: Path, *more) -> list:
    return ["infer", "--model", ws / "model", "--cond", cond, "--exemplar", ws / "exemplar.png", "--out", out, *more]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


# --- edge polarity ------------------------------------------------------------------------------------------


def test_black_on_white_gives_the_output_of_its_inverse_and_says_it_was_inverted(ws, tmp_path, capsys):
    code, _, err = run(capsys, *infer_args(ws, ws / "wob" / "drawing.png", tmp_path / "wob", "--extract", "none", "--save-condition"))
    assert code == 0, err
    assert "invert" not in err
    code, _, err = run(capsys, *infer_args(ws, ws / "bow" / "drawing.png", tmp_path / "bow", "--extract", "none", "--save-condition"))
    assert code == 0, err
    inverted = [line for line in err.splitlines() if "inverted" in line]
    assert len(inverted) == 1 and inverted[0].startswith("warning: ") and "drawing.png" in inverted[0], err
    wob, bow = png(tmp_path / "wob" / "drawing.png"), png(tmp_path / "bow" / "drawing.png")
    assert np.abs(wob.astype(np.float64) - bow.astype(np.float64)).max() <= 1e-6
    # --save-condition writes the map the model saw: the same white-on-black map from either drawing.
    saw = png(tmp_path / "bow" / "drawing_cond.png")
    np.testing.assert_array_equal(saw, png(tmp_path / "wob" / "drawing_cond.png"))
    assert 0 < float(np.mean(saw > 127)) < 0.5


def test_invert_no_reads_the_map_as_it_is_and_yes_always_inverts(ws, tmp_path, capsys):
    code, _, err = run(capsys, *infer_args(ws, ws / "bow" / "drawing.png", tmp_path / "no", "--extract", "none", "--invert", "no", "--save-condition"))
    assert code == 0 and "inverted" not in err, err
    assert float(np.mean(png(tmp_path / "no" / "drawing_cond.png") > 127)) > 0.5  # mostly "on": read as it is
    code, _, err = run(capsys, *infer_args(ws, ws / "wob" / "drawing.png", tmp_path / "yes", "--extract", "none", "--invert", "yes", "--save-condition"))
    assert code == 0, err
    assert float(np.mean(png(tmp_path / "yes" / "drawing_cond.png") > 127)) > 0.5


def test_the_api_inverts_arrays_and_files_alike(ws):
    drawn = png(ws / "bow" / "drawing.png")
    with Translator(ws / "model", "ort") as model:
        from_file = model.condition(ws / "bow" / "drawing.png").map
        from_array = model.condition(np.repeat(drawn[:, :, None], 3, axis=2)).map
        as_drawn = model.condition(ws / "wob" / "drawing.png").map
    np.testing.assert_array_equal(from_file, as_drawn)
    np.testing.assert_array_equal(from_array, as_drawn)
    with Translator(ws / "model", "ort", invert="no") as model:
        assert not np.array_equal(model.condition(ws / "bow" / "drawing.png").map, as_drawn)


# --- outputs of one run that would share a path ------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_inputs_colliding_through_side_files_are_refused_before_any_write(ws, tmp_path, capsys, overwrite):
    conds = tmp_path / "conds"
    conds.mkdir()
    drawing = (ws / "wob" / "drawing.png").read_bytes()
    (conds / "x.png").write_bytes(drawing)
    (conds / "x_warp.png").write_bytes(drawing)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    code, _, err = run(capsys, *infer_args(ws, conds, out, "--save-warp", *(["--overwrite"] if overwrite else [])))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert str(conds / "x.png") in lines[0] and str(conds / "x_warp.png") in lines[0]
    assert not out.exists() and snapshot(tmp_path) == before


def test_two_files_with_one_stem_are_refused_naming_both(ws, tmp_path, capsys):
    conds = tmp_path / "conds"
    conds.mkdir()
    (conds / "a.png").write_bytes((ws / "wob" / "drawing.png").read_bytes())
    cv2.imwrite(str(conds / "a.bmp"), png(ws / "wob" / "drawing.png"))
    code, _, err = run(capsys, *infer_args(ws, conds, tmp_path / "out", "--overwrite"))
    assert code == 2 and str(conds / "a.png") in err and str(conds / "a.bmp") in err, err
    assert not (tmp_path / "out").exists()


# --- --threads ----------------------------------------------------------------------------------------------


def _peak_threads(args: list, cwd: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Run the CLI and sample its thread count (/proc/PID/status) until it ends; the highest seen."""
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            break
        for line in status.splitlines():
            if line.startswith("Threads:"):
                peak = max(peak, int(line.split()[1]))
        time.sleep(0.01)
    out, err = process.communicate()
    return peak, subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("command", ["infer", "eval-warp", "bench"])
def test_threads_1000_keeps_the_process_near_the_cores(ws, tmp_path, command):
    cores = len(os.sched_getaffinity(0))
    args = {
        "infer": infer_args(ws, ws / "wob", tmp_path / "out"),
        "eval-warp": ["eval", "warp", "--model", ws / "model", "--photos", ws / "exemplar.png"],
        "bench": ["bench", "--model", ws / "model", "--backend", "ort", "--runs", "3", "--warmup", "1"],
    }[command] + ["--threads", "1000"]
    peak, done = _peak_threads(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"--threads 1000 is more than the {cores} core(s) available; using {cores}" in done.stderr
    assert 0 < peak <= 8 * cores + 16, peak  # a few pools of at most `cores` threads, never ~1000 per graph


# --- errors a program reads ---------------------------------------------------------------------------------


def test_debug_after_the_subcommand_and_usage_errors_in_one_line(ws, tmp_path, capsys):
    code, _, err = run(capsys, "infer", "--model", ws / "model", "--bogus")
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "--bogus" in err, err
    with pytest.raises(Exception):  # --debug after the subcommand: the traceback comes through
        main([str(a) for a in infer_args(ws, tmp_path / "missing.png", tmp_path / "out")] + ["--debug"])


def test_a_repeated_single_value_option_is_refused(ws, tmp_path, capsys):
    code, _, err = run(capsys, *infer_args(ws, ws / "wob", tmp_path / "out"), "--cond", ws / "bow")
    assert code == 2 and "--cond was given 2 times" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["missing", "usage", "collision"])
def test_json_errors_are_one_object_on_stdout(ws, tmp_path, capsys, case):
    conds = tmp_path / "conds"
    conds.mkdir()
    (conds / "x.png").write_bytes((ws / "wob" / "drawing.png").read_bytes())
    (conds / "x_warp.png").write_bytes((ws / "wob" / "drawing.png").read_bytes())
    args = {
        "missing": infer_args(ws, tmp_path / "nope.png", tmp_path / "out", "--json"),
        "usage": ["infer", "--json", "--model", ws / "model", "--batch", "zero"],
        "collision": infer_args(ws, conds, tmp_path / "out", "--save-warp") + ["--json"],
    }[case]
    code, out, _ = run(capsys, *args)
    report = json.loads(out)
    assert code == 2 and report["exit_code"] == 2 and set(report) == {"error", "file", "exit_code"}
    if case == "missing":
        assert report["file"] == str(tmp_path / "nope.png")


# --- input limits, alpha, out ---------------------------------------------------------------------------


def test_tiny_inputs_are_refused_the_same_in_infer_and_eval(ws, tmp_path, capsys):
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), cv2.resize(png(ws / "exemplar.png"), (12, 9)))
    code, _, err = run(capsys, *infer_args(ws, tiny, tmp_path / "out"))
    assert code == 2 and "tiny.png" in err and "needs at least 16x16" in err, err
    code, _, err = run(capsys, "eval", "warp", "--model", ws / "model", "--photos", tiny)
    assert code == 2 and "tiny.png" in err and "needs at least 16x16" in err, err


def test_alpha_flatten_puts_a_transparent_picture_on_a_colour(ws, tmp_path, capsys):
    bgr = png(ws / "exemplar.png")
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    bgra[:20, :, 3] = 0
    cv2.imwrite(str(tmp_path / "clear.png"), bgra)
    args = ["infer", "--model", ws / "model", "--cond", ws / "wob", "--exemplar", tmp_path / "clear.png"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "a")
    assert code == 2 and "--alpha flatten" in err, err
    code, _, err = run(capsys, *args, "--out", tmp_path / "b", "--alpha", "flatten", "--alpha-colour", "#ff0000")
    assert code == 0, err


def test_engine_build_never_writes_into_the_model_or_a_shipped_one(ws, capsys):
    from mclrt.runtime.fsutil import shipped_models_dir

    code, _, err = run(capsys, "engine", "build", "--model", ws / "model", "--out", ws / "model")
    assert code == 2 and "is also an input" in err, err
    code, _, err = run(capsys, "engine", "build", "--model", ws / "model", "--out", shipped_models_dir() / "demo")
    assert code == 2 and "shipped with mclrt" in err, err


# --- a folder with one bad photo ----------------------------------------------------------------------------


def test_eval_warp_continue_on_error_scores_the_others_and_exits_3(ws, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "a.png", index=0, size=64)
    write_photo(photos / "b.png", index=2, size=64)
    (photos / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg at all" * 10)
    code, _, err = run(capsys, "eval", "warp", "--model", ws / "model", "--photos", photos)
    assert code == 2 and "bad.jpg" in err
    code, out, err = run(capsys, "eval", "warp", "--model", ws / "model", "--photos", photos, "--continue-on-error", "--json")
    assert code == 3, err
    report = json.loads(out)
    assert report["photos"] == 2 and len(report["failed"]) == 1 and "bad.jpg" in report["failed"][0]
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [f"error: {report['failed'][0]} (skipped)"]
