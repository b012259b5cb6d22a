"""`mclrt infer --shard K/N`: N runs (machines, GPUs) translate one folder together. Every input is
translated by exactly one shard, and re-running a finished shard writes nothing -- checked on real
runs of the CLI with a tiny real model over a folder of conditions."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.jobs.infer import shard_of
from model_dir_fixtures import build_tiny_model_dir, write_edge_conditions, write_photo

COUNT = 14


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shard")
    build_tiny_model_dir(root / "model")
    write_photo(root / "exemplar.png", index=1)
    (source,) = write_edge_conditions(root / "one", count=1)
    (root / "conds").mkdir()
    for i in range(COUNT):
        shutil.copy(source, root / "conds" / f"frame_{i:03d}.png")
    return root


def run_shard(capsys, ws: Path, out: Path, shard: str, *extra: str) -> tuple[int, str, str]:
    args = ["infer", "--model", ws / "model", "--cond", ws / "conds", "--exemplar", ws / "exemplar.png", "--out", out]
    code = main([str(a) for a in [*args, "--shard", shard, *extra]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def outputs(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())} if out.exists() else {}


def test_three_shards_translate_every_input_exactly_once_and_a_rerun_writes_nothing(ws, tmp_path, capsys):
    out = tmp_path / "out"
    by_shard: list[set[str]] = []
    for k in range(3):
        before = set(outputs(out))
        code, stdout, err = run_shard(capsys, ws, out, f"{k}/3")
        assert code == 0, err
        new = set(outputs(out)) - before
        by_shard.append(new)
        line = next(line for line in stdout.splitlines() if line.startswith(f"shard {k}/3: "))
        assert line == f"shard {k}/3: {len(new)} of {COUNT} input(s); {len(new)} translated, 0 already done, 0 failed, 0 not reached"
    assert sum(len(names) for names in by_shard) == COUNT  # no input twice...
    assert set().union(*by_shard) == {f"frame_{i:03d}.png" for i in range(COUNT)}  # ...and none missed
    assert all(by_shard), "with 14 inputs each of 3 shards gets some"  # by sha256 of these stems: 5, 6, 3

    finished = outputs(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, err = run_shard(capsys, ws, out, "1/3")
    assert code == 0, err
    assert f"shard 1/3: {len(by_shard[1])} of {COUNT} input(s); 0 translated, {len(by_shard[1])} already done" in stdout
    assert outputs(out) == finished and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    code, stdout, err = run_shard(capsys, ws, out, "2/3", "--json")  # the same summary, for a scheduler to collect
    assert code == 0, err
    report = json.loads(stdout)
    assert report["shard"] == {"index": 2, "count": 3} and report["inputs"] == COUNT
    assert report["assigned"] == len(by_shard[2]) and report["images"] == 0 and report["written"] == []
    assert {f"{stem}.png" for stem in report["skipped"]} == by_shard[2]
    assert outputs(out) == finished


def test_a_shard_is_the_same_whatever_else_is_in_the_folder(ws, tmp_path, capsys):
    """Stable under listing order and under files coming and going: a file's shard is its own."""
    conds = shutil.copytree(ws / "conds", tmp_path / "conds")
    names = sorted(p.stem for p in conds.iterdir())
    alone = {name for name in names if shard_of(name, 3) == 2}
    for extra in ("a_first", "m_middle", "z_last"):
        shutil.copy(conds / "frame_000.png", conds / f"{extra}.png")
    code = main([str(a) for a in ["infer", "--model", ws / "model", "--cond", conds, "--exemplar", ws / "exemplar.png",
                                   "--out", tmp_path / "out", "--shard", "2/3"]])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    written = {p.stem for p in (tmp_path / "out").iterdir()}
    assert written & set(names) == alone


@pytest.mark.parametrize("bad", ["3/3", "-1/3", "1/0", "1", "a/b", "1/2/3"])
def test_a_malformed_shard_is_one_line(ws, tmp_path, capsys, bad):
    code, _, err = run_shard(capsys, ws, tmp_path / "out", bad)
    assert code == 2 and err.startswith("error: --shard: must be K/N with 0 <= K < N") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
