"""A corpus of hostile inputs, run the way a user meets them: read-only and full output file systems,
decompression bombs, an output that is also an input, truncated and garbage files, Ctrl-C in the
middle of a folder and of a video.

Every case must end in one `error: <file>: <problem>` line (or one line per failed frame), the
documented exit code (docs/troubleshooting.md, "Exit codes"), no traceback, no partial output file, and every input
byte-for-byte unchanged; video frames are accounted for (read = written + dropped + failed, and the
written frames are exactly the frames on disk).

The file systems are real: a read-only tmpfs and a small full tmpfs (root can mount; permissions
alone would not stop root), and RLIMIT_FSIZE in a subprocess, which makes writes past the limit fail
with EFBIG -- the same failure at the writer as a full disk, available without privileges.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.cli import main
from model_dir_fixtures import write_edge_conditions, write_photo
from test_video import panned_frames, write_clip

CLI = [sys.executable, "-m", "mclrt.runtime.cli"]


# --- the corpus ------------------------------------------------------------------------------------------


def decompression_bomb(path: Path, side: int = 60000) -> Path:
    """A 60-byte PNG whose header declares side x side pixels (3.6 gigapixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory, nano_model_dir) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    write_edge_conditions(root / "conds", count=4)
    write_photo(root / "exemplar.png", index=1)
    write_clip(root / "clip.avi", panned_frames(6))
    frames = root / "frames"
    frames.mkdir()
    for i, rgb in enumerate(panned_frames(3)):
        cv2.imwrite(str(frames / f"f{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    decompression_bomb(root / "bomb.png")
    (root / "garbage.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (root / "garbage.avi").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (root / "truncated.png").write_bytes((root / "conds" / "chelsea.png").read_bytes()[:300])
    (root / "model").symlink_to(nano_model_dir, target_is_directory=True)
    return root


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots: what "no input changed" is checked against."""
    files = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@pytest.fixture
def inputs_unchanged(ws, nano_model_dir):
    before = snapshot(ws, nano_model_dir)
    yield
    assert snapshot(ws, nano_model_dir) == before


def run_in_process(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code: int, err: str, expected_code: int, *names: str) -> str:
    assert code == expected_code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0], err
    return lines[0]


def assert_complete_outputs(folder: Path) -> list[Path]:
    """No temporary or partial file: every file is a finished PNG that decodes."""
    files = sorted(folder.iterdir()) if folder.exists() else []
    assert [p.name for p in files if p.name.startswith(".")] == []
    for path in files:
        assert cv2.imread(str(path)) is not None, path
    return files


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int, read_only: bool = False):
    path.mkdir()
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def file_size_limit(max_bytes: int):
    """preexec_fn: writes beyond max_bytes fail with EFBIG (Python ignores SIGXFSZ)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.RLIM_INFINITY))


@pytest.fixture(params=["tmpfs", "rlimit"])
def full_output(request, tmp_path):
    """make(disk_kb, file_kb) -> (folder, preexec_fn): a folder on a tmpfs of disk_kb, or one where
    each file stops at file_kb (RLIMIT_FSIZE) -- a full disk either way, as the writer sees it."""
    with contextlib.ExitStack() as stack:

        def make(disk_kb: int, file_kb: int):
            if request.param == "tmpfs":
                return stack.enter_context(tmpfs(tmp_path / "full", disk_kb)), None
            (tmp_path / "limited").mkdir()
            return tmp_path / "limited", file_size_limit(file_kb * 1024)

        yield make


# --- read-only output ----------------------------------------------------------------------------------

READ_ONLY_COMMANDS = {
    "infer": lambda ws, out: ["infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.png", "--out", out],
    "video-file": lambda ws, out: ["video", "--model", ws / "model", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", f"{out}.avi"],
    "video-folder": lambda ws, out: ["video", "--model", ws / "model", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", out],
    "quantize": lambda ws, out: ["quantize", "--model", ws / "model", "--calib", ws / "frames", "--out", out],
    "export": lambda ws, out: ["export", "--init", "nano", "--out", out],
    "engine-build": lambda ws, out: ["engine", "build", "--model", ws / "model", "--out", out],
}


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    with tmpfs(tmp_path_factory.mktemp("ro") / "mount", 64, read_only=True) as folder:
        yield folder


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_a_read_only_output_is_one_line_before_any_work(ws, read_only, capsys, inputs_unchanged, command):
    out = read_only / "out"
    code, _, err = run_in_process(capsys, *READ_ONLY_COMMANDS[command](ws, out))
    line = assert_one_error(code, err, 2, str(out), "Read-only file system")
    assert "cannot be written" in line
    assert list(read_only.iterdir()) == []


# --- decompression bombs, truncated and garbage files -----------------------------------------------------


@pytest.mark.parametrize(
    "case, args, named",
    [
        ("bomb as a condition", ["--cond", "bomb.png", "--exemplar", "exemplar.png"], "bomb.png"),
        ("bomb as the exemplar", ["--cond", "conds", "--exemplar", "bomb.png"], "bomb.png"),
        ("garbage exemplar", ["--cond", "conds", "--exemplar", "garbage.jpg"], "garbage.jpg"),
        ("truncated condition", ["--cond", "truncated.png", "--exemplar", "exemplar.png"], "truncated.png"),
    ],
)
def test_bad_files_for_infer_are_one_line_and_leave_nothing(ws, tmp_path, capsys, inputs_unchanged, case, args, named):
    args = [ws / a if a.endswith((".png", ".jpg")) or a == "conds" else a for a in args]
    code, _, err = run_in_process(capsys, "infer", "--model", ws / "model", *args, "--out", tmp_path / "out")
    assert_one_error(code, err, 2, named)
    assert not (tmp_path / "out").exists()


def test_a_garbage_video_source_is_one_line(ws, tmp_path, capsys, inputs_unchanged):
    out = tmp_path / "out.avi"
    code, _, err = run_in_process(capsys, "video", "--model", ws / "model", "--source", ws / "garbage.avi", "--exemplar", ws / "exemplar.png", "--out", out)
    assert_one_error(code, err, 2, "garbage.avi")
    assert list(tmp_path.iterdir()) == []


def test_a_bomb_frame_in_a_frame_folder_is_counted_failed_and_exit_3(ws, tmp_path, capsys):
    frames = shutil.copytree(ws / "frames", tmp_path / "frames")
    decompression_bomb(frames / "f1.png")
    out = tmp_path / "out"
    code, stdout, err = run_in_process(
        capsys, "video", "--model", ws / "model", "--source", frames, "--exemplar", ws / "exemplar.png", "--out", out, "--json"
    )
    assert code == 3 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: frame 1: {frames / 'f1.png'}: declares an image larger than OpenCV decodes "
        "(1073741824 pixels, OPENCV_IO_MAX_IMAGE_PIXELS); refusing it (skipped)"
    ]
    report = json.loads(stdout)
    assert report["frames"] == {"read": 3, "written": 2, "dropped": 0, "failed": 1}
    assert [p.name for p in assert_complete_outputs(out)] == ["frame_000000.png", "frame_000002.png"]


# --- an output that is (or holds, or lies inside) an input ------------------------------------------------


def _overlap_cases(ws: Path, tmp: Path) -> dict[str, tuple[list, str]]:
    (tmp / "link").symlink_to(ws / "conds", target_is_directory=True)
    calib_parent = tmp / "calib_parent"
    shutil.copytree(ws / "frames", calib_parent / "photos")
    infer = ["infer", "--model", ws / "model", "--exemplar", ws / "exemplar.png"]
    video = ["video", "--model", ws / "model", "--exemplar", ws / "exemplar.png"]
    return {
        "infer out = cond folder": (infer + ["--cond", ws / "conds", "--out", ws / "conds", "--overwrite"], "is also an input"),
        "infer out inside the cond folder": (infer + ["--cond", ws / "conds", "--out", ws / "conds" / "results"], "inside the input folder"),
        "infer out = cond folder via a symlink": (infer + ["--cond", ws / "conds", "--out", tmp / "link", "--overwrite"], "is also an input"),
        "infer out = cond folder via ..": (infer + ["--cond", ws / "conds", "--out", ws / "conds" / ".." / "conds", "--overwrite"], "is also an input"),
        "infer outputs named like the inputs": (infer + ["--cond", f"{ws / 'conds'}/*.png", "--out", tmp / "link", "--overwrite"], "would replace an input"),
        "infer out = the model": (infer + ["--cond", ws / "conds", "--out", ws / "model", "--overwrite"], "is also an input"),
        "video out = source": (video + ["--source", ws / "clip.avi", "--out", ws / "clip.avi", "--overwrite"], "is also an input"),
        "video out inside the frame folder": (video + ["--source", ws / "frames", "--out", ws / "frames" / "out.avi"], "inside the input folder"),
        "quantize out holds the calibration photos": (
            ["quantize", "--model", ws / "model", "--calib", calib_parent / "photos", "--out", calib_parent, "--overwrite"],
            "which replacing it would delete",
        ),
    }


CASES = [
    "infer out = cond folder", "infer out inside the cond folder", "infer out = cond folder via a symlink",
    "infer out = cond folder via ..", "infer outputs named like the inputs", "infer out = the model",
    "video out = source", "video out inside the frame folder", "quantize out holds the calibration photos",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_an_output_over_an_input_is_refused(ws, tmp_path, capsys, inputs_unchanged, case):
    args, problem = _overlap_cases(ws, tmp_path)[case]
    before = snapshot(tmp_path)
    code, _, err = run_in_process(capsys, *args)
    assert_one_error(code, err, 2, problem)
    assert snapshot(tmp_path) == before


# --- a bad file in the middle of a folder ----------------------------------------------------------------


def test_a_bad_file_mid_folder_says_what_was_written_and_a_resume_redoes_nothing(ws, tmp_path, capsys, inputs_unchanged):
    conds = shutil.copytree(ws / "conds", tmp_path / "conds")
    shutil.copy(ws / "truncated.png", conds / "coffee.png")  # sorted: astronaut, chelsea, coffee, rocket
    out = tmp_path / "out"
    base = ["infer", "--model", ws / "model", "--cond", conds, "--exemplar", ws / "exemplar.png", "--out", out]
    code, _, err = run_in_process(capsys, *base)
    assert_one_error(code, err, 2, "coffee.png", "stopped with 2 of 4 condition(s) written")
    first = snapshot(out)
    assert [p.name for p in assert_complete_outputs(out)] == ["astronaut.png", "chelsea.png"]

    code, stdout, err = run_in_process(capsys, *base, "--skip-existing", "--continue-on-error")
    assert code == 3 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {conds / 'coffee.png'}: is a truncated or damaged PNG (its chunks stop before IEND) (skipped)"
    ]
    assert "2 condition(s) already had their outputs (skipped)" in stdout and "1 condition(s) failed" in stdout
    assert [p.name for p in assert_complete_outputs(out)] == ["astronaut.png", "chelsea.png", "rocket.png"]
    assert {k: v for k, v in snapshot(out).items() if k in first} == first  # the first run's outputs were not rewritten


# --- a full output file system -----------------------------------------------------------------------------


def test_a_full_disk_stops_infer_with_only_complete_outputs(ws, full_output):
    folder, limit = full_output(40, 16)  # an output PNG is ~30 kB: the tmpfs takes one
    out = folder / "out"
    done = subprocess.run(
        [*CLI, "infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.png", "--out", out],
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    line = assert_one_error(done.returncode, done.stderr, 3, "cannot be written", "of 4 condition(s) written")
    written = assert_complete_outputs(out)
    assert f"stopped with {len(written)} of 4" in line and len(written) < 4


def test_a_full_disk_never_leaves_a_video_with_fewer_frames_than_reported(ws, full_output):
    folder, limit = full_output(16, 16)  # an MJPG frame is 5-8 kB: two or three fit
    out = folder / "out.avi"
    done = subprocess.run(
        [*CLI, "video", "--model", ws / "model", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", out],
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and str(out) in errors[0], done.stderr
    assert "of the 6 frames given to the video writer are in the file" in errors[0] or "the file system is full" in errors[0]
    assert list(folder.iterdir()) == []  # the damaged file (and its temporary) are gone


def test_a_full_disk_under_a_frame_folder_counts_every_frame(ws, full_output):
    folder, limit = full_output(40, 16)  # a frame PNG is ~30 kB: the tmpfs takes one, the file limit none
    out = folder / "frames"
    done = subprocess.run(
        [*CLI, "video", "--model", ws / "model", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", out, "--json"],
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("error: frame ")]
    assert failures and all("cannot be written" in line for line in failures)
    report = json.loads(done.stdout)  # under --json, the report or the error: one object either way
    if "frames" in report:  # some frames made it: the report accounts for each
        frames = report["frames"]
        assert frames["read"] == frames["written"] + frames["dropped"] + frames["failed"] and frames["failed"] >= 1
        assert len(failures) == frames["failed"] and len(assert_complete_outputs(out)) == frames["written"] >= 1
    else:  # none did: one closing line says so, and no empty folder is left behind
        last = done.stderr.splitlines()[-1]
        problem = f"{out}: no frame was written ({len(failures)} read, 0 dropped, {len(failures)} failed)"
        assert last == f"error: {problem}"
        assert report == {"error": problem, "file": str(out), "exit_code": 3}
        assert not out.exists()


# --- Ctrl-C -------------------------------------------------------------------------------------------------


def finished_png_in(folder: Path) -> bool:
    """A renamed, complete output (temporaries are hidden: `.<name>.<random>.tmp.png`)."""
    return folder.exists() and any(p.suffix == ".png" and not p.name.startswith(".") for p in folder.iterdir())


def _sigint_as_at_a_terminal() -> None:
    """Run in the child before exec: Ctrl-C's default action. A shell starts background jobs (`make test &`,
    `nohup`) with SIGINT ignored, children inherit that, and the CLI then rightly ignores the SIGINT these
    tests send (seen: exit 0 with every output written). A user pressing Ctrl-C runs in the foreground."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(process: subprocess.Popen, ready, timeout: float = 120) -> tuple[str, str]:
    """SIGINT `process` as soon as `ready()` holds (the first output exists)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=120)
    finally:
        process.kill()


def test_ctrl_c_mid_folder_says_what_was_written_and_skip_existing_finishes(ws, tmp_path, inputs_unchanged):
    conds = tmp_path / "conds"
    conds.mkdir()
    for i in range(12):
        shutil.copy(ws / "conds" / "chelsea.png", conds / f"c{i:02d}.png")
    out = tmp_path / "out"
    args = [*CLI, "infer", "--model", ws / "model", "--cond", conds, "--exemplar", ws / "exemplar.png", "--out", out]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_at_a_terminal)
    stdout, stderr = _interrupt_when(process, lambda: finished_png_in(out))
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    written = assert_complete_outputs(out)
    interrupted = [line for line in stdout.splitlines() if line.startswith("interrupted: ")]
    assert len(interrupted) == 1, stdout
    assert f"interrupted: {len(written)} condition(s) written" in interrupted[0]
    assert f"; {12 - len(written)} not written" in interrupted[0] and "--skip-existing" in interrupted[0]
    assert 1 <= len(written) < 12
    first = snapshot(out)

    done = subprocess.run([*args, "--skip-existing"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(assert_complete_outputs(out)) == 12
    assert {k: v for k, v in snapshot(out).items() if k in first} == first


def test_ctrl_c_mid_video_accounts_for_every_frame(ws, tmp_path, inputs_unchanged):
    clip = write_clip(tmp_path / "long.avi", panned_frames(40))
    out = tmp_path / "frames"
    process = subprocess.Popen(
        [*CLI, "video", "--model", ws / "model", "--source", clip, "--exemplar", ws / "exemplar.png", "--out", out,
         "--max-queue", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_at_a_terminal,
    )  # fmt: skip
    stdout, stderr = _interrupt_when(process, lambda: finished_png_in(out))
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    frames = json.loads(stdout)["frames"]
    assert frames["read"] == frames["written"] and frames["dropped"] == frames["failed"] == 0
    assert 1 <= frames["written"] < 40
    assert len(assert_complete_outputs(out)) == frames["written"]


# --- --threads ----------------------------------------------------------------------------------------------


def test_threads_beyond_the_available_cores_are_capped_with_a_warning(ws, tmp_path, capsys):
    cores = len(os.sched_getaffinity(0))
    code, _, err = run_in_process(
        capsys, "infer", "--model", ws / "model", "--cond", ws / "conds" / "chelsea.png", "--exemplar", ws / "exemplar.png",
        "--out", tmp_path / "out", "--threads", 500,
    )  # fmt: skip
    assert code == 0, err
    assert f"warning: --threads 500 is more than the {cores} core(s) available; using {cores}" in err


# --- a bug ----------------------------------------------------------------------------------------------------


def test_a_bug_ends_in_its_own_traceback_once_not_a_crash_of_the_handler():
    """An exception mclrt did not expect is a bug: exit 1 with its one traceback (the handler used to
    crash on click.exceptions.Abort, which typer's bundled click lacks: two tracebacks)."""
    script = (
        "import sys\n"
        "from mclrt.runtime import cli\n"
        "@cli.app.command('explode')\n"
        "def explode() -> None:\n"
        "    raise ZeroDivisionError('a bug')\n"
        "sys.exit(cli.main(['explode']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1 and done.stderr.strip().endswith("ZeroDivisionError: a bug"), done.stderr
    assert "AttributeError" not in done.stderr


# --- the same corpus under --json: a program reads each failure as one JSON object ----------------------


def _json_cases(ws: Path, tmp: Path, read_only: Path) -> dict[str, tuple[list, int, str]]:
    """(argv, exit code, a name the error must carry) for every one-line error case above."""
    cases = {f"read-only {name}": (make(ws, read_only / "out"), 2, str(read_only / "out")) for name, make in READ_ONLY_COMMANDS.items()}
    bad = {"bomb.png": ["--cond", ws / "bomb.png", "--exemplar", ws / "exemplar.png"],
           "garbage.jpg": ["--cond", ws / "conds", "--exemplar", ws / "garbage.jpg"],
           "truncated.png": ["--cond", ws / "truncated.png", "--exemplar", ws / "exemplar.png"]}
    for name, args in bad.items():
        cases[f"bad {name}"] = (["infer", "--model", ws / "model", *args, "--out", tmp / "out"], 2, name)
    cases["garbage video"] = (["video", "--model", ws / "model", "--source", ws / "garbage.avi", "--exemplar", ws / "exemplar.png",
                               "--out", tmp / "out.avi"], 2, "garbage.avi")
    for name, (args, problem) in _overlap_cases(ws, tmp).items():
        cases[name] = (args, 2, problem)
    return cases


def test_every_error_of_the_corpus_is_one_json_object_under_json(ws, tmp_path, read_only, capsys, inputs_unchanged):
    for name, (args, expected, named) in _json_cases(ws, tmp_path, read_only).items():
        code, out, err = run_in_process(capsys, *args, "--json")
        assert_one_error(code, err, expected, named)
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, (name, out)
        report = json.loads(lines[0])
        assert set(report) == {"error", "file", "exit_code"} and report["exit_code"] == expected == code, (name, report)
        assert named in report["error"] or named in str(report["file"]), (name, report)
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.avi").exists(), name
