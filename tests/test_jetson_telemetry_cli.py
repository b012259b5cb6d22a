"""`mclrt bench --json` and `mclrt video --json` carry power, GPU load and temperatures where tegrastats
exists, and nothing changes where it does not.

There is no Jetson here: the Jetson case puts a `tegrastats` program on PATH that prints lines recorded
on an AGX Orin (tests/fixtures/jetson/agx-orin-jp621/tegrastats.txt) at its `--interval`, as the real tool
does, until it is stopped.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "jetson"
DEMO = Path(__file__).resolve().parent.parent / "runtime" / "models" / "demo"

REPLAY = """#!{python}
import sys, time
interval = float(sys.argv[sys.argv.index("--interval") + 1]) / 1000 if "--interval" in sys.argv else 1.0
lines = open({lines!r}).read().splitlines()
i = 0
while True:
    print(lines[i % len(lines)], flush=True)
    i += 1
    time.sleep(min(interval, 0.05))
"""


def _env(tmp_path: Path, with_tegrastats: bool) -> dict[str, str]:
    env = {**os.environ, "MCLRT_CACHE_DIR": str(tmp_path / "cache")}
    if with_tegrastats:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        tool = bin_dir / "tegrastats"
        tool.write_text(REPLAY.format(python=sys.executable, lines=str(FIXTURES / "agx-orin-jp621" / "tegrastats.txt")))
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def _bench(tmp_path: Path, with_tegrastats: bool) -> dict:
    argv = [sys.executable, "-m", "mclrt.runtime.cli", "bench", "--model", str(DEMO), "--backend", "ort", "--runs", "2", "--warmup", "0", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path, with_tegrastats), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bench_json_adds_power_on_a_jetson_and_nothing_elsewhere(tmp_path):
    plain = _bench(tmp_path, with_tegrastats=False)
    assert "jetson" not in plain
    jetson = _bench(tmp_path, with_tegrastats=True)["jetson"]
    assert jetson["samples"] >= 1
    assert jetson["input_power_source"] == "sum of VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"
    assert 8.6 <= jetson["input_power_w"] <= 8.8  # 8726 and 8626 mW in the recorded lines
    assert jetson["gpu_load_percent"] == 0.0 and jetson["max_temperatures_c"]["cpu"] == 52.562
    assert jetson["fps_per_watt"] > 0


def test_video_json_adds_power_on_a_jetson(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        cv2.imwrite(str(frames / f"frame_{index:03d}.png"), rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    exemplar = tmp_path / "exemplar.png"
    cv2.imwrite(str(exemplar), rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    argv = [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(DEMO), "--source", str(frames), "--exemplar", str(exemplar),
            "--out", str(tmp_path / "out"), "--extract", "none", "--backend", "ort", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path, with_tegrastats=True), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout.strip().splitlines()[-1])
    assert document["frames"]["written"] == 3
    assert document["jetson"]["samples"] >= 1 and "fps_per_watt" in document["jetson"]
