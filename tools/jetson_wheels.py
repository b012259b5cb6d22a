"""Does every runtime dependency have an aarch64 wheel for a JetPack line's Python? (`make check-jetson-wheels`)

JetPack 6 ships CPython 3.10 on Ubuntu 22.04 (glibc 2.35); JetPack 7 ships CPython 3.12 on Ubuntu
24.04 (glibc 2.39). A Jetson should never compile a dependency, so the check asks pip to resolve the
runtime's requirements (mclrt's own `Requires-Dist`, without extras) for that Python and platform with
`--only-binary=:all:` and `--dry-run`: pip fails if any requirement, direct or transitive, lacks a wheel.

Markers are evaluated here for the target (Linux aarch64), not for this machine: pip evaluates
`platform_machine` markers against the running interpreter, which would pick onnxruntime-gpu on an
x86_64 builder. On aarch64 pyproject selects plain `onnxruntime` (CPU); the GPU build for Jetson
comes from NVIDIA / jetson-ai-lab (docs/jetson.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement


@dataclass(frozen=True)
class JetpackPython:
    jetpack: str
    python: str  # "3.10"
    python_full: str
    glibc_minor: int  # manylinux_2_<n>


JETPACK_PYTHONS = (
    JetpackPython("6", "3.10", "3.10.12", 35),
    JetpackPython("7", "3.12", "3.12.3", 39),
)


def target_environment(target: JetpackPython) -> dict[str, str]:
    return {
        "platform_machine": "aarch64", "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix",
        "python_version": target.python, "python_full_version": target.python_full,
        "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": "",
    }


def runtime_requirements(target: JetpackPython, distribution: str = "mclrt") -> list[str]:
    """The runtime's requirements (no extras) whose markers hold on the target, markers stripped."""
    selected = []
    for text in requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(target_environment(target)):
            requirement.marker = None
            selected.append(str(requirement))
    return selected


def platform_tags(target: JetpackPython) -> list[str]:
    # pip does not widen one manylinux tag to the older ones a newer glibc also runs: name them all.
    return ["manylinux2014_aarch64"] + [f"manylinux_2_{minor}_aarch64" for minor in range(17, target.glibc_minor + 1)]


@dataclass(frozen=True)
class Resolution:
    ok: bool
    wheels: dict[str, str]  # name -> wheel file name
    error: str


def resolve(target: JetpackPython, requirements: list[str]) -> Resolution:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--no-cache-dir",
            "--report", str(report), "--only-binary=:all:", "--implementation", "cp", "--python-version", target.python,
            *[arg for tag in platform_tags(target) for arg in ("--platform", tag)], *requirements,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return Resolution(False, {}, (done.stderr or done.stdout).strip())
        installed = json.loads(report.read_text())["install"]
    wheels = {item["metadata"]["name"].lower(): item["download_info"]["url"].rsplit("/", 1)[-1] for item in installed}
    return Resolution(True, wheels, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jetpack", choices=[t.jetpack for t in JETPACK_PYTHONS], action="append", help="default: all")
    args = parser.parse_args(argv)
    failed = False
    for target in JETPACK_PYTHONS:
        if args.jetpack and target.jetpack not in args.jetpack:
            continue
        result = resolve(target, runtime_requirements(target))
        print(f"JetPack {target.jetpack} (CPython {target.python}, aarch64): " + ("every runtime dependency has a wheel" if result.ok else "FAILED"))
        for name, wheel in sorted(result.wheels.items()):
            print(f"  {name}: {wheel}")
        if not result.ok:
            print("  " + result.error.replace("\n", "\n  "))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
