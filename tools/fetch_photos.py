"""Build the demo's photo corpus from Debian's desktop-background packages, with every image's licence.

    python -m mclrt.tools.fetch_photos --out DIR [--debs DEB_DIR] [--max-side 768] [--overwrite]

Downloads the packages in `PACKAGES` with `apt-get download` (no root needed, but `apt-get update`
must have run once; `--debs` uses .deb files already there instead), unpacks each with `dpkg-deb -x`
and reads its machine-readable copyright file (/usr/share/doc/<package>/copyright, DEP-5). An image
is kept only when all of these hold:

* it is on the reviewed list of photographs (`PHOTOGRAPHS`): the wallpaper packages mix photos with
  renders, drawings and logos, which teach the correspondence nothing about photos; every image of
  these packages was looked at once and only the photographs were listed (the per-file decisions);
* its licence, from the copyright stanza that covers it, allows redistributing derived works such as
  trained weights (`REDISTRIBUTABLE`: CC0, CC BY, CC BY-SA, GPL, Expat); NC/ND or unknown licences are
  refused, and so is any image of a package whose copyright file is not machine-readable;
* its shorter side is at least `--min-side` pixels (random crops of a large photo multiply samples).

Kept photos are written as JPEG (quality 95), shrunk so the shorter side is at most `--max-side`
(training crops are resized to 128 px anyway; small files decode fast on a CPU), into
DIR/train/<package>/ or DIR/heldout/<package>/: every photo of a package in `HELDOUT_PACKAGES` is held
out, so training never sees that source. The photos that ship inside Python packages
(`mclrt.runtime.inputs.package_photos`) join the training split. DIR/manifest.json and manifest.csv
list every image considered: source package and version, file, author, licence, split, decision and
reason. Nothing here is committed: the corpus is rebuilt from scratch by this one command.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import typer

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_path
from mclrt.tools._cli import run_tool

# Debian bookworm's desktop-background packages (`apt-cache search wallpaper`, `... backgrounds`).
# gnome-backgrounds, ukui-wallpapers and sway-backgrounds are fetched too: their images are renders or
# vector art (gnome-backgrounds' copyright file is not even machine-readable), and the manifest says so.
PACKAGES: tuple[str, ...] = (
    "mate-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "plasma-workspace-wallpapers",
    "gnome-backgrounds",
    "ukui-wallpapers",
    "sway-backgrounds",
)
HELDOUT_PACKAGES: frozenset[str] = frozenset({"plasma-workspace-wallpapers"})

# The per-file decisions: the photographs among each package's images (installed path -> short name),
# chosen by looking at every image. Everything else in these packages is a render, a drawing, a logo or a
# texture of doubtful origin (lomiri's analogpattern, plasma's ColorfulCups) and is left out.
PHOTOGRAPHS: dict[str, dict[str, str]] = {
    "mate-backgrounds": {
        f"usr/share/backgrounds/mate/nature/{name}.jpg": name
        for name in (
            "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow",
            "LadyBird", "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower",
        )
    },
    "lomiri-wallpapers-16.04": {
        f"usr/share/backgrounds/{name}.jpg": name.split("_by_")[0]
        for name in (
            "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
            "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
        )
    },
    "lomiri-wallpapers-20.04": {"usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg": "Kleiber"},
    "plasma-workspace-wallpapers": {
        f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg": name
        for name in (
            "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf",
            "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
        )
    },
}

# DEP-5 licence short names that allow redistributing derived works (the trained weights).
REDISTRIBUTABLE = re.compile(r"^(CC0(-1\.0)?|CC-BY(-SA)?-\d\.\d|GPL-[23](\.0)?\+?|Expat|MIT|public-domain)$", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".jxl", ".svg", ".tif", ".tiff", ".bmp")


@dataclass
class ImageRecord:
    package: str
    version: str
    file: str  # path inside the package
    name: str  # the corpus file, relative to DIR ("" when not kept)
    author: str
    licence: str
    split: str  # "train", "heldout" or "" (not kept)
    decision: str  # "kept" or "rejected"
    reason: str
    width: int = 0
    height: int = 0


def fetch_debs(packages: tuple[str, ...], into: Path) -> dict[str, Path]:
    """`apt-get download` every package into `into`; {package: .deb path}."""
    try:
        done = subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise UserError("apt-get not found: fetch_photos needs a Debian/Ubuntu system (or pass --debs DIR)") from err
    if done.returncode != 0:
        raise UserError(f"apt-get download failed (run `apt-get update` once first?): {done.stderr.strip().splitlines()[-1:]}")
    return find_debs(into, packages)


def find_debs(folder: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        matches = sorted(folder.glob(f"{package}_*.deb"))
        if not matches:
            raise UserError(f"no {package}_*.deb here", folder)
        found[package] = matches[-1]
    return found


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True).stdout.strip()


def extract_deb(deb: Path, into: Path) -> Path:
    done = subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"dpkg-deb -x failed: {done.stderr.strip()}", deb)
    return into


class CopyrightFile:
    """A package's DEP-5 copyright file: which stanza covers an installed image.

    The stanzas name paths in the upstream source tree (`nature/Aqua.jpg`, `16.04/Bridge.jpg`), the
    package installs them elsewhere (`usr/share/backgrounds/mate/nature/Aqua.jpg`): a pattern covers an
    installed file when it matches a trailing part of its path, or names the same file (basename) when
    the package flattened the tree. As in DEP-5, the last stanza that covers a file wins.
    """

    def __init__(self, text: str):
        from debian.copyright import Copyright, NotMachineReadableError

        try:
            parsed = Copyright(io.StringIO(text), strict=False)
        except (NotMachineReadableError, ValueError) as err:
            raise UserError(f"copyright file is not machine-readable (DEP-5): {err}") from err
        self._stanzas = [
            (stanza.files_pattern(), [p.rsplit("/", 1)[-1] for p in stanza.files], stanza) for stanza in parsed.all_files_paragraphs()
        ]

    def covering(self, installed: str) -> tuple[str, str] | None:
        """(author, licence short name) of the stanza covering `installed`, or None."""
        parts = installed.split("/")
        found = None
        for pattern, basenames, stanza in self._stanzas:
            suffixes = ("/".join(parts[i:]) for i in range(len(parts)))
            if any(pattern.match(s) for s in suffixes) or (parts[-1] in basenames):
                found = stanza
        if found is None or found.license is None:
            return None
        author = " ".join((found.copyright or "").split())
        return author, found.license.synopsis.strip()


def _with_upstream_metadata(image: Path, author: str) -> str:
    """KDE wallpapers name their photographer in <wallpaper>/metadata.json, where Debian's copyright file
    credits only the group (`Files: *`): add the photographer and upstream's licence to the author."""
    for folder in image.parents[:3]:
        metadata = folder / "metadata.json"
        if metadata.is_file():
            try:
                plugin = json.loads(metadata.read_text(encoding="utf-8")).get("KPlugin", {})
            except (json.JSONDecodeError, UnicodeDecodeError):
                return author
            names = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []) if a.get("Name"))
            if names:
                upstream = f"; upstream metadata.json licence {plugin['License']}" if plugin.get("License") else ""
                return f"{names} (photographer, metadata.json{upstream}); Debian copyright: {author}"
    return author


def read_copyright(root: Path, package: str) -> CopyrightFile:
    path = root / "usr" / "share" / "doc" / package / "copyright"
    if not path.is_file():
        raise UserError(f"{package} has no copyright file", path)
    return CopyrightFile(path.read_text(encoding="utf-8", errors="replace"))


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the shorter side is at most `max_side` (area averaging); never enlarge."""
    height, width = rgb.shape[:2]
    scale = max_side / min(height, width)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise UserError("could not encode JPEG", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data.tobytes())


def collect_package(
    package: str,
    deb: Path,
    staging: Path,
    out: Path,
    photographs: dict[str, dict[str, str]],
    heldout: frozenset[str],
    min_side: int,
    max_side: int,
) -> list[ImageRecord]:
    """Unpack one .deb and decide on each of its images; write the kept ones under `out`."""
    from mclrt.runtime.inputs.image_io import load_rgb

    root = extract_deb(deb, staging / package)
    version = deb_version(deb)
    reviewed = photographs.get(package, {})
    try:
        copyright_file: CopyrightFile | None = read_copyright(root, package)
        copyright_problem = ""
    except UserError as err:
        copyright_file, copyright_problem = None, str(err)
    split = "heldout" if package in heldout else "train"
    records = []
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and "/usr/share/doc/" not in p.as_posix())
    for path in images:
        installed = path.relative_to(root).as_posix()
        record = ImageRecord(package, version, installed, "", "", "", "", "rejected", "")
        covering = copyright_file.covering(installed) if copyright_file else None
        if covering:
            record.author, record.licence = covering
            record.author = _with_upstream_metadata(path, record.author)
        if installed not in reviewed:
            record.reason = "not on the reviewed list of photographs (render, drawing, logo or not reviewed)"
        elif copyright_file is None:
            record.reason = copyright_problem
        elif covering is None:
            record.reason = "no copyright stanza covers this file"
        elif not REDISTRIBUTABLE.match(record.licence):
            record.reason = f"licence {record.licence!r} is not known to allow redistributing derived weights"
        else:
            rgb = load_rgb(path)
            record.height, record.width = rgb.shape[:2]
            if min(record.height, record.width) < min_side:
                record.reason = f"shorter side {min(record.height, record.width)} px < {min_side}"
            else:
                record.name = f"{split}/{package}/{reviewed[installed]}.jpg"
                record.split, record.decision, record.reason = split, "kept", "photograph, redistributable licence"
                write_jpeg(out / record.name, shrink(rgb, max_side))
        records.append(record)
    missing = sorted(set(reviewed) - {r.file for r in records})
    if missing:  # a newer package version renamed or dropped a reviewed photo: say so, do not guess
        raise UserError(f"{package} {version} lacks reviewed photographs {missing}: review its images again", deb)
    shutil.rmtree(root)
    return records


def package_photo_records(out: Path, max_side: int) -> list[ImageRecord]:
    """The photos shipped inside Python packages join the training split (their licences are stated there)."""
    from mclrt.runtime.inputs.package_photos import package_photos

    records = []
    for photo in package_photos():
        name = f"train/python-packages/{photo.name}.jpg"
        write_jpeg(out / name, shrink(photo.rgb, max_side))
        height, width = photo.rgb.shape[:2]
        records.append(
            ImageRecord("python-packages", "", photo.name, name, "", photo.licence, "train", "kept", "package photo", width, height)
        )
    return records


def build_corpus(
    out: Path,
    debs: Path | None = None,
    overwrite: bool = False,
    packages: tuple[str, ...] = PACKAGES,
    photographs: dict[str, dict[str, str]] = PHOTOGRAPHS,
    heldout: frozenset[str] = HELDOUT_PACKAGES,
    min_side: int = 1000,
    max_side: int = 768,
    with_package_photos: bool = True,
) -> list[ImageRecord]:
    manifest = out / "manifest.json"
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError("already exists and is not empty (pass --overwrite to rebuild it)", out)
        if not manifest.is_file():  # only ever delete a corpus this tool wrote, never a user's folder
            raise UserError("is not a corpus written by fetch_photos (no manifest.json): refusing to replace it", out)
        for split in ("train", "heldout"):
            shutil.rmtree(out / split, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mclrt-photos-") as scratch:
        scratch_path = Path(scratch)
        if debs is None:
            (scratch_path / "debs").mkdir()
            found = fetch_debs(packages, scratch_path / "debs")
        else:
            found = find_debs(debs, packages)
        records = []
        for package in packages:
            records += collect_package(package, found[package], scratch_path, out, photographs, heldout, min_side, max_side)
    if with_package_photos:
        records += package_photo_records(out, max_side)
    write_manifest(out, records)
    return records


def write_manifest(out: Path, records: list[ImageRecord]) -> None:
    rows = [asdict(r) for r in records]
    with atomic_path(out / "manifest.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps({"images": rows}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_path(out / "manifest.csv", overwrite=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else list(ImageRecord.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(rows)


app = typer.Typer(add_completion=False, help=__doc__.splitlines()[0])


@app.command()
def main(
    out: Path = typer.Option(..., "--out", help="corpus folder: train/, heldout/, manifest.json, manifest.csv"),
    debs: Path = typer.Option(None, "--debs", help="use the .deb files in this folder instead of apt-get download"),
    min_side: int = typer.Option(1000, "--min-side", help="drop photos whose shorter side is smaller (pixels)"),
    max_side: int = typer.Option(768, "--max-side", help="shrink kept photos to this shorter side (pixels)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="rebuild a corpus this tool wrote before"),
) -> None:
    records = build_corpus(out, debs, overwrite, min_side=min_side, max_side=max_side)
    kept = [r for r in records if r.decision == "kept"]
    for split in ("train", "heldout"):
        print(f"{split}: {sum(r.split == split for r in kept)} photos")
    print(f"rejected: {len(records) - len(kept)} images (reasons in {out / 'manifest.csv'})")


def run(argv: list[str] | None = None) -> int:
    return run_tool(app, argv)


if __name__ == "__main__":
    raise SystemExit(run())
