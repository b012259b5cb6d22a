"""`python -m mclrt.tools.fetch_photos` on .deb packages built here with dpkg-deb: no network.

The packages imitate the real wallpaper packages: a DEP-5 copyright file whose stanzas name paths of
the upstream tree, photos and a render, a licence that forbids derived works, a too-small photo, a
package whose copyright file is not machine-readable, and a KDE-style metadata.json naming the
photographer. What is kept, where it goes (train or held out), and what the manifest says are checked.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.errors import UserError

pytest.importorskip("debian.copyright", reason="needs python-debian (the [photos] extra)")
pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian/Ubuntu)")

from mclrt.tools.fetch_photos import build_corpus, run  # noqa: E402

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {name}

Files: *
Copyright: 2020 The Wallpaper Team
License: GPL-2+

Files: nature/*.jpg
Copyright: 2019, Ada Photographer <ada@example.org>
License: CC-BY-SA-4.0

Files: nature/nc.jpg
Copyright: 2018, Nora Noncommercial
License: CC-BY-NC-4.0

License: GPL-2+
 Free.

License: CC-BY-SA-4.0
 Free.

License: CC-BY-NC-4.0
 Not for commercial use.
"""


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _deb(folder: Path, name: str, files: dict[str, np.ndarray | str]) -> None:
    root = folder / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <t@example.org>\nDescription: test wallpapers\n"
    )
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        else:
            cv2.imwrite(str(target), content[:, :, ::-1])
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(folder / f"{name}_1.0-1_all.deb")], check=True, capture_output=True)
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("debs")
    base = "usr/share/backgrounds/fake"
    _deb(
        folder,
        "fake-backgrounds",
        {
            "usr/share/doc/fake-backgrounds/copyright": DEP5.format(name="fake"),
            f"{base}/nature/lake.jpg": _photo(200, 300, 0),
            f"{base}/nature/nc.jpg": _photo(200, 300, 1),
            f"{base}/nature/tiny.jpg": _photo(60, 90, 2),
            f"{base}/abstract/render.png": _photo(200, 300, 3),
        },
    )
    _deb(
        folder,
        "prose-backgrounds",
        {
            "usr/share/doc/prose-backgrounds/copyright": "These pictures are by various people; ask them.\n",
            "usr/share/backgrounds/prose/hill.jpg": _photo(200, 300, 4),
        },
    )
    _deb(
        folder,
        "kde-like-wallpapers",
        {
            "usr/share/doc/kde-like-wallpapers/copyright": DEP5.format(name="kde"),
            "usr/share/wallpapers/Dawn/metadata.json": json.dumps(
                {"KPlugin": {"Authors": [{"Name": "Kim Shutter"}], "License": "LGPLv3"}}
            ),
            "usr/share/wallpapers/Dawn/contents/images/300x200.jpg": _photo(200, 300, 5),
        },
    )
    return folder


PACKAGES = ("fake-backgrounds", "prose-backgrounds", "kde-like-wallpapers")
PHOTOGRAPHS = {
    "fake-backgrounds": {
        "usr/share/backgrounds/fake/nature/lake.jpg": "lake",
        "usr/share/backgrounds/fake/nature/nc.jpg": "nc",
        "usr/share/backgrounds/fake/nature/tiny.jpg": "tiny",
    },
    "prose-backgrounds": {"usr/share/backgrounds/prose/hill.jpg": "hill"},
    "kde-like-wallpapers": {"usr/share/wallpapers/Dawn/contents/images/300x200.jpg": "Dawn"},
}


def _build(out: Path, debs: Path, **kwargs):
    return build_corpus(
        out,
        debs,
        packages=PACKAGES,
        photographs=PHOTOGRAPHS,
        heldout=frozenset({"kde-like-wallpapers"}),
        min_side=100,
        max_side=64,
        with_package_photos=False,
        **kwargs,
    )


def test_corpus_keeps_only_reviewed_redistributable_photos_and_says_why(tmp_path, debs):
    out = tmp_path / "corpus"
    records = _build(out, debs)
    by_file = {r.file.rsplit("/", 1)[-1]: r for r in records}
    assert set(by_file) == {"lake.jpg", "nc.jpg", "tiny.jpg", "render.png", "hill.jpg", "300x200.jpg"}

    lake = by_file["lake.jpg"]
    assert (lake.decision, lake.split, lake.licence) == ("kept", "train", "CC-BY-SA-4.0")
    assert "Ada Photographer" in lake.author and lake.version == "1.0-1" and (lake.width, lake.height) == (300, 200)
    stored = cv2.imread(str(out / lake.name))
    assert stored.shape == (64, 96, 3)  # shorter side shrunk to max_side, aspect kept

    assert by_file["nc.jpg"].decision == "rejected" and "CC-BY-NC-4.0" in by_file["nc.jpg"].reason
    assert by_file["tiny.jpg"].decision == "rejected" and "shorter side 60" in by_file["tiny.jpg"].reason
    # the render is covered by `Files: *` (GPL-2+) but is not on the reviewed list of photographs
    assert by_file["render.png"].licence == "GPL-2+" and "not on the reviewed list" in by_file["render.png"].reason
    assert by_file["hill.jpg"].decision == "rejected" and "machine-readable" in by_file["hill.jpg"].reason

    dawn = by_file["300x200.jpg"]
    assert (dawn.decision, dawn.split, dawn.name) == ("kept", "heldout", "heldout/kde-like-wallpapers/Dawn.jpg")
    assert "Kim Shutter" in dawn.author and "LGPLv3" in dawn.author

    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert kept == ["heldout/kde-like-wallpapers/Dawn.jpg", "train/fake-backgrounds/lake.jpg"]
    manifest = json.loads((out / "manifest.json").read_text())["images"]
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(manifest) == len(rows) == 6
    assert all(row["licence"] for row in rows if row["decision"] == "kept")


def test_rebuilding_needs_overwrite_and_never_replaces_a_foreign_folder(tmp_path, debs):
    out = tmp_path / "corpus"
    _build(out, debs)
    first = (out / "train/fake-backgrounds/lake.jpg").read_bytes()
    with pytest.raises(UserError, match="--overwrite"):
        _build(out, debs)
    _build(out, debs, overwrite=True)
    assert (out / "train/fake-backgrounds/lake.jpg").read_bytes() == first  # the same corpus again

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="not a corpus"):
        _build(mine, debs, overwrite=True)
    assert (mine / "holiday.jpg").read_bytes() == b"x"


def test_a_reviewed_photo_missing_from_the_package_is_an_error(tmp_path, debs):
    photographs = {**PHOTOGRAPHS, "prose-backgrounds": {"usr/share/backgrounds/prose/gone.jpg": "gone"}}
    with pytest.raises(UserError, match="gone.jpg"):
        build_corpus(tmp_path / "c", debs, packages=PACKAGES, photographs=photographs, with_package_photos=False)


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run(["--out", str(tmp_path / "c"), "--debs", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mate-backgrounds_*.deb" in err and len(err.strip().splitlines()) == 1
