"""`mclrt engine build --precision fp16`: the FP16 converter's warnings go to the build log beside the
plan, and the terminal gets one summary line per graph (a real TensorRT-RTX build on the CPU)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from mclrt.runtime.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt_rtx") is None and importlib.util.find_spec("tensorrt") is None,
    reason="TensorRT is not installed (pip install 'mclrt[trt-check]')",
)


def test_fp16_converter_warnings_land_in_the_build_log_with_a_one_line_summary(nano_model_dir, tmp_path, capsys):
    code = main(["engine", "build", "--model", str(nano_model_dir), "--precision", "fp16", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "will be truncated" not in captured.err and "warnings.warn" not in captured.err
    summaries = [line for line in captured.err.splitlines() if "FP16 conversion:" in line]
    assert len(summaries) == 2, captured.err  # one per graph, each on one line
    for line in summaries:
        graph = line.split(":")[1].strip()
        count = int(re.search(r"clamped (\d+) float32 constant", line).group(1))
        log = next(tmp_path.glob(f"*/{graph}.build.log"))
        assert str(log) in line
        text = log.read_text()
        # Every clamp the summary counts is in the log, one per line, then TensorRT's own messages.
        assert len(re.findall(r"^the float32 number \S+ will be truncated to -?1e-07$", text, flags=re.M)) == count > 0
        assert "# TensorRT:" in text
