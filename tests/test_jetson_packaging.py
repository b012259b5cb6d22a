"""The Jetson Dockerfile and the systemd unit cannot be built or started here (no Jetson, no arm64
builder); these checks read them: the Dockerfile's instructions, with each JetPack line's build args as
`make jetson-image` passes them, through dockerfile-parse with hadolint-style rules, and the unit through
`systemd-analyze verify` where systemd is installed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "jetson" / "Dockerfile"
UNIT = ROOT / "docker" / "systemd" / "mclrt-camera.service"
JETPACKS = ("6", "7")


def build_args(jetpack: str) -> dict[str, str]:
    """The --build-arg values `make jetson-image JETPACK=<jetpack>` would pass (make -n runs nothing)."""
    done = subprocess.run(["make", "-s", "-n", "jetson-image", f"JETPACK={jetpack}"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    words = shlex.split(done.stdout.replace("\\\n", " "))
    assert words[:4] == ["docker", "build", "-f", "docker/jetson/Dockerfile"], done.stdout
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--build-arg")


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value)


def test_one_dockerfile_serves_every_jetpack_line():
    assert not (ROOT / "docker" / "jetpack6").exists() and not (ROOT / "docker" / "jetpack7").exists()
    assert [build_args(j)["PYTHON_VERSION"] for j in JETPACKS] == ["3.10", "3.12"]
    # The Dockerfile's own defaults are JetPack 6's, so a plain `docker build` makes the Orin image.
    parsed = DockerfileParser(path=str(DOCKERFILE))
    defaults = build_args("6")
    assert parsed.baseimage == defaults["BASE"]
    assert {k: parsed.args[k] for k in ("PYTHON_VERSION", "ORT_INDEX", "MODEL")} == {k: defaults[k] for k in ("PYTHON_VERSION", "ORT_INDEX", "MODEL")}


@pytest.mark.parametrize("jetpack", JETPACKS)
def test_dockerfile_instructions(jetpack):
    text = DOCKERFILE.read_text()
    assert "NEVER BUILT OR RUN BY THIS PROJECT" in text  # says so in the file
    args = build_args(jetpack)
    parsed = DockerfileParser(path=str(DOCKERFILE), build_args=args)
    steps = [step for step in parsed.structure if step["instruction"] != "COMMENT"]
    names = [step["instruction"] for step in steps]
    assert names[0] == "ARG" and names[1] == "FROM" and names.count("FROM") == 1
    base = parsed.baseimage  # the build arg, as docker resolves it
    assert ":" in base and not base.endswith(":latest")  # DL3007: a pinned tag
    assert base.startswith("nvcr.io/nvidia/l4t-jetpack:r36.") if jetpack == "6" else base.startswith("nvcr.io/nvidia/tensorrt:25.")
    args = {**args, **parsed.args}
    for step in steps:
        value = _substitute(step["value"], args) if step["instruction"] in ("RUN", "COPY") else step["value"]
        if step["instruction"] == "RUN":
            if "apt-get install" in value:
                assert "apt-get update" in value and "--no-install-recommends" in value and "-y" in value  # DL3015, DL3014
                assert "rm -rf /var/lib/apt/lists/*" in value  # DL3009
                assert f"python{args['PYTHON_VERSION']}-venv" in value
            if "pip install" in value:
                assert value.count("pip install") == value.count("--no-cache-dir")  # DL3042
                assert "torch" not in value and "triton" not in value  # the runtime only
            assert "sudo" not in value  # DL3004
        if step["instruction"] == "COPY":
            *sources, _target = value.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        if step["instruction"] in ("ENTRYPOINT", "CMD"):
            assert isinstance(json.loads(value), list)  # DL3025: exec form
    runs = " ".join(_substitute(step["value"], args) for step in steps if step["instruction"] == "RUN")
    assert f"python{args['PYTHON_VERSION']} -m venv --system-site-packages" in runs and "pip install --no-cache-dir ." in runs
    assert f"pypi.jetson-ai-lab.io/{'jp6/cu126' if jetpack == '6' else 'sbsa/cu130'}" in runs
    assert parsed.envs["MCLRT_CACHE_DIR"] == "/cache"


def test_every_package_dir_pip_needs_is_copied():
    """`pip install .` needs every folder pyproject maps onto the namespace."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    mapped = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    copied = {step["value"].split()[0] for step in DockerfileParser(path=str(DOCKERFILE)).structure if step["instruction"] == "COPY"}
    assert mapped <= copied, mapped - copied


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
