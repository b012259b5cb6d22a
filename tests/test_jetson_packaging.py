"""The JetPack Dockerfiles and the systemd unit cannot be built or started here (no Jetson, no arm64
builder); these checks read them: Dockerfile instructions through dockerfile-parse with hadolint-style
rules, and the unit through `systemd-analyze verify` where systemd is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = {"6": ROOT / "docker" / "jetpack6" / "Dockerfile", "7": ROOT / "docker" / "jetpack7" / "Dockerfile"}
UNIT = ROOT / "docker" / "systemd" / "mclrt-camera.service"


def instructions(path: Path) -> list[dict]:
    parser = DockerfileParser(path=str(path))
    return parser.structure


@pytest.mark.parametrize("jetpack", sorted(DOCKERFILES))
def test_dockerfile_instructions(jetpack):
    path = DOCKERFILES[jetpack]
    text = path.read_text()
    assert "NEVER BUILT OR RUN BY THIS PROJECT" in text  # says so in the file
    parsed = DockerfileParser(path=str(path))
    steps = [step for step in parsed.structure if step["instruction"] != "COMMENT"]
    names = [step["instruction"] for step in steps]
    assert names[0] == "ARG" and names[1] == "FROM" and names.count("FROM") == 1
    base = parsed.baseimage  # the ARG default, as docker resolves it
    assert ":" in base and not base.endswith(":latest")  # DL3007: a pinned tag
    assert base.startswith("nvcr.io/nvidia/l4t-jetpack:r36.") if jetpack == "6" else base.startswith("nvcr.io/nvidia/tensorrt:25.")
    for step in steps:
        value = step["value"]
        if step["instruction"] == "RUN":
            if "apt-get install" in value:
                assert "apt-get update" in value and "--no-install-recommends" in value and "-y" in value  # DL3015, DL3014
                assert "rm -rf /var/lib/apt/lists/*" in value  # DL3009
            if "pip install" in value:
                assert value.count("pip install") == value.count("--no-cache-dir")  # DL3042
                assert "torch" not in value and "triton" not in value  # the runtime only
            assert "sudo" not in value  # DL3004
        if step["instruction"] == "COPY":
            *sources, _target = value.split()
            for source in sources:
                if source.startswith("${"):
                    source = parsed.args[source.strip("${}")]
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        if step["instruction"] in ("ENTRYPOINT", "CMD"):
            assert isinstance(json.loads(value), list)  # DL3025: exec form
    runs = " ".join(step["value"] for step in steps if step["instruction"] == "RUN")
    assert "venv --system-site-packages" in runs and "pip install --no-cache-dir ." in runs
    assert f"pypi.jetson-ai-lab.io/{'jp6/cu126' if jetpack == '6' else 'sbsa/cu130'}" in runs
    assert parsed.envs["MCLRT_CACHE_DIR"] == "/cache"


def test_every_package_dir_pip_needs_is_copied():
    """`pip install .` needs every folder pyproject maps onto the namespace."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    mapped = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    for path in DOCKERFILES.values():
        copied = {step["value"].split()[0] for step in instructions(path) if step["instruction"] == "COPY"}
        assert mapped <= copied, (path, mapped - copied)


def test_systemd_unit_sections():
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert service["ExecStart"].startswith("/bin/sh -c '") and "--source csi:0" in service["ExecStart"]
    assert service["KillSignal"] == "SIGINT" and service["SuccessExitStatus"] == "130"  # mclrt video's clean stop
    assert "NEVER RUN BY THIS PROJECT" in UNIT.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    # JetPack's camera daemon, which the unit requires, does not exist here: a stand-in unit of that name.
    (tmp_path / "nvargus-daemon.service").write_text("[Unit]\nDescription=stand-in for JetPack's nvargus-daemon\n[Service]\nExecStart=/bin/true\n")
    shutil.copy(UNIT, tmp_path / UNIT.name)
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / UNIT.name)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
