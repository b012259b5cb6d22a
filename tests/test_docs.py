"""The README a newcomer reads in five minutes, and the documentation site that holds the rest.

The site is built for real with `mkdocs build --strict` (mkdocs.yml sets link and anchor validation to
warnings, so a broken link or anchor fails the build); the README is held to its size, its first screen
and links that lead somewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300
FIRST_SCREEN = 40
SETUP_COMMANDS = ("make install && make demo", "make install && make test")


def test_docs_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs comes with the [dev] extra")
    pytest.importorskip("material", reason="mkdocs-material comes with the [dev] extra")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's end-of-life banner, not a build warning
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    # The demo picture reaches the site (docs/assets/results.png links to the committed one).
    assert (tmp_path / "site" / "assets" / "results.png").stat().st_size > 100_000


def test_readme_is_short_with_both_setup_commands_on_its_first_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    first_screen = "\n".join(lines[:FIRST_SCREEN])
    for command in SETUP_COMMANDS:
        assert command in first_screen, f"{command!r} is not in README.md's first {FIRST_SCREEN} lines"


def test_readme_takes_a_person_from_the_demo_to_their_own_photo():
    text = README.read_text(encoding="utf-8")
    demo = text.index("make install && make demo")
    own = text.index("mclrt infer --model runtime/models/demo")
    assert demo < own
    assert ".venv/bin/activate" in text and "white lines on black" in text


def test_readme_links_lead_to_files_that_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links into docs/"
    missing = [t for t in local if t and not (ROOT / t).exists()]
    assert not missing, missing
    assert any(t.startswith("docs/") for t in local)
