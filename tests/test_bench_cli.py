"""`mclrt bench` on real tiny model directories: every stage timed, memory reported, any condition kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mclrt.runtime.bench.latency import STAGES, BenchOptions, drawn_pattern, run_benchmark, synthetic_condition
from mclrt.runtime.model_dir import ConditionSpec
from model_dir_fixtures import TinySpec, build_tiny_model_dir


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_tiny_model_dir(tmp_path_factory.mktemp("bench") / "tiny")


def test_bench_json(model):
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "bench", "--model", str(model), "--runs", "3", "--warmup", "1", "--batch", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["batch"] == 2 and result["runs"] == 3 and result["precision"] == "fp32"
    assert "onnxruntime" in result["backend"] and "onnxruntime" in result["versions"]
    assert list(result["latency_ms_per_image"]) == list(STAGES)
    for latency in result["latency_ms_per_image"].values():
        assert 0 < latency["min_ms"] <= latency["median_ms"]
    peaks = [result["peak_rss_mib"][key] for key in ("after_load", *STAGES)]
    assert peaks[0] > 10 and peaks == sorted(peaks)  # a process peak only grows


def test_bench_table(model):
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "bench", "--model", str(model), "--runs", "2", "--warmup", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for stage in ("exemplar_encoder", "translator", "end_to_end", "end_to_end_cached_exemplar"):
        assert stage in done.stdout
    assert "peak RSS after loading both graphs" in done.stdout


def test_bench_maskmix_label_model(tmp_path):
    model = build_tiny_model_dir(tmp_path / "label", TinySpec(kind="label", channels=7, maskmix=True, extract=None))
    result = run_benchmark(model, BenchOptions(runs=2, warmup=0))
    assert set(result.latency_ms_per_image) == set(STAGES)


@pytest.mark.parametrize("kind, channels", [("edge", 1), ("label", 151), ("pose", 20), ("celeba-edge", 15)])
def test_synthetic_conditions_are_valid(kind, channels):
    photo = drawn_pattern(0)  # drawn discs: the fallback when no photo package is installed
    condition = synthetic_condition(ConditionSpec(kind, channels, None, False), (64, 48), photo)
    assert condition.shape == (channels, 64, 48) and condition.dtype == np.float32
    assert condition.min() >= 0 and condition.max() <= 1 and condition.max() > 0
    if kind == "label":
        np.testing.assert_array_equal(condition.sum(axis=0), 1.0)  # one-hot
