"""Shared, expensive fixtures: real exported model directories.

`nano_model_dir` is the `nano` preset exported through the real CLI from a trainer checkpoint of
freshly initialized weights (seed 0): `mclrt export <run>/checkpoints/latest --out DIR --no-verify`
(tests/test_export.py checks parity against the same weights in PyTorch). `ade20k_model_dir` is the
paper-ade20k preset from `--init` weights (about 680 MB, minutes of export on 2 cores); mark tests
that use it `@pytest.mark.xdist_group(name="ade20k")` so a single xdist worker runs them all.

Each is built once per test session, even with pytest-xdist: the first worker that needs it builds
it under a file lock in the session's shared temporary folder, the others reuse it. Treat them as
read-only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock

NANO_SEED = 0
ADE20K_SEED = 0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes minutes; not needed for the quick acceptance run (CI still runs it)")


def _session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder all xdist workers of this session share (each worker's basetemp sits inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str, done_marker: str, build: Callable[[Path], None]) -> Path:
    """`root/name`, built by `build(path)` by whichever worker gets there first. `done_marker` is the
    file the build writes last (atomically), so its presence means the build is complete."""
    target = _session_root(tmp_path_factory) / name
    with FileLock(str(target) + ".lock"):
        if not (target / done_marker).exists():
            build(target)
    return target


@pytest.fixture(scope="session")
def nano_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`checkpoints/latest` of a run holding freshly initialized nano weights (seed 0)."""
    from export_fixtures import write_fresh_checkpoint

    run = shared_build(tmp_path_factory, "nano-run", "checkpoints/latest", lambda run: write_fresh_checkpoint(run, "nano", seed=NANO_SEED))
    return run / "checkpoints" / "latest"


@pytest.fixture(scope="session")
def nano_model_dir(tmp_path_factory: pytest.TempPathFactory, nano_checkpoint: Path) -> Path:
    def build(out: Path) -> None:
        from mclrt.runtime.cli import main

        code = main(["export", str(nano_checkpoint), "--out", str(out), "--no-verify"])
        assert code == 0, f"mclrt export {nano_checkpoint} failed with exit code {code}"

    return shared_build(tmp_path_factory, "nano-model", "mclrt.json", build)


@pytest.fixture(scope="session")
def nano_source(nano_checkpoint: Path):
    """The PyTorch model `nano_model_dir` was exported from (eval mode, spectral norm folded)."""
    from mclrt.export.checkpoint import load_checkpoint_source

    return load_checkpoint_source(nano_checkpoint)


@pytest.fixture(scope="session")
def ade20k_source():
    """paper-ade20k, freshly initialized and seeded (about 30 s to build on 2 busy cores)."""
    from mclrt.export.checkpoint import init_model

    return init_model("paper-ade20k", ADE20K_SEED)


@pytest.fixture(scope="session")
def ade20k_model_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    def build(out: Path) -> None:
        from mclrt.export.onnx_export import ExportOptions, export_model_dir

        # Parity is the tests' job (batch 1 only at this size), not repeated here.
        export_model_dir(request.getfixturevalue("ade20k_source"), out, ExportOptions(verify=False))

    return shared_build(tmp_path_factory, "paper-ade20k-model", "mclrt.json", build)
