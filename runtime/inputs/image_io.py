"""Reading photos and label maps from disk, with one-line errors for bad files.

Decoding is OpenCV's (`cv2.imdecode` from the file's bytes, so paths with any characters work and the
bytes are read once). OpenCV alone is not enough to reject a damaged file: libjpeg decodes a truncated
JPEG "successfully" (it prints a warning to stderr and fills the missing rows with grey). So before
decoding we check the container: a JPEG must reach its end-of-image marker after the last scan, a PNG
must reach its IEND chunk, a WebP/BMP must be as long as its header says. Pillow could do this too,
but the runtime's dependencies stay numpy + OpenCV (Pillow would be one more package on a Jetson).

Colour conventions: photos come back as RGB uint8 [H, W, 3]. Grayscale photos are replicated to three
channels (CoCosNet's `convert('RGB')` does the same; ADE20K holds a few grey JPEGs). A photo with real
transparency is refused, because dropping alpha would invent the colours under it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mclrt.runtime.errors import UserError

# What `load_rgb` / `list_images` accept. All are formats OpenCV's wheels decode.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Colours `--alpha-colour` names (or #rrggbb).
NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}


def parse_colour(text: str) -> tuple[int, int, int]:
    """'white', 'black', 'grey' or '#rrggbb' -> (r, g, b); anything else is a UserError."""
    name = text.strip().lower()
    if name in NAMED_COLOURS:
        return NAMED_COLOURS[name]
    digits = name[1:] if name.startswith("#") else name
    if len(digits) == 6 and all(c in "0123456789abcdef" for c in digits):
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    raise UserError(f"--alpha-colour must be white, black, grey or #rrggbb, not {text!r}")


def flatten_alpha(bgra: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """BGRA uint8 -> RGB uint8 composited over `colour` (r, g, b)."""
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
    rgb = cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2RGB).astype(np.float32)
    under = np.array(colour, np.float32)[None, None, :]
    return np.clip(np.rint(rgb * alpha + under * (1.0 - alpha)), 0, 255).astype(np.uint8)


def load_rgb(path: str | os.PathLike, alpha: str | tuple[int, int, int] | None = None) -> np.ndarray:
    """Read a photo as RGB uint8 [H, W, 3]; a missing, damaged or non-image file is a `UserError`.

    A picture with transparent pixels is refused, unless `alpha` names a colour to flatten it onto
    (`--alpha flatten --alpha-colour white`)."""
    data = _read_bytes(path)
    kind = _container_kind(data)
    _check_complete(data, kind, path)
    buf = np.frombuffer(data, np.uint8)
    if kind == "jpeg":
        # IMREAD_COLOR applies the EXIF orientation (phone photos) and turns grey/CMYK into BGR.
        bgr = _decode(buf, cv2.IMREAD_COLOR, path)
        if bgr is None:
            raise UserError("not a readable JPEG image", path)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    # Other formats: decode unchanged to see alpha and bit depth before converting.
    img = _decode(buf, cv2.IMREAD_UNCHANGED, path)
    if img is None:
        raise UserError("not an image (or a format OpenCV cannot read)", path)
    img = _to_uint8(img, path)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        if int(img[:, :, 3].min()) < 255:
            if alpha is None:
                raise UserError("has transparent pixels (an alpha channel); pass --alpha flatten to put it on a background (--alpha-colour, default white)", path)
            return flatten_alpha(img, parse_colour(alpha) if isinstance(alpha, str) else tuple(alpha))
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise UserError(f"has {img.shape[2]} channels; expected a grey, RGB or opaque RGBA photo", path)


def load_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label map of class ids as uint8 [H, W] (ADE20K annotations: 0 = unknown, 1..150 = classes).

    The ids must be stored losslessly in one 8-bit channel. A grey image saved as RGB with three equal
    channels is accepted; a colour-coded or palette PNG is refused, because OpenCV would hand us the
    palette colours instead of the ids.
    """
    data = _read_bytes(path)
    kind = _container_kind(data)
    if kind == "jpeg":
        raise UserError("is a JPEG; class ids need a lossless PNG", path)
    _check_complete(data, kind, path)
    if kind == "png" and _png_color_type(data) == 3:
        raise UserError("is a palette PNG; save the class ids as an 8-bit grayscale PNG", path)
    img = _decode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED, path)
    if img is None:
        raise UserError("not an image (or a format OpenCV cannot read)", path)
    if img.dtype == np.uint16:
        if int(img.max()) > 255:
            raise UserError(f"holds class ids up to {int(img.max())}; at most 255 are supported", path)
        img = img.astype(np.uint8)
    if img.dtype != np.uint8:
        raise UserError(f"has pixel type {img.dtype}; expected 8-bit class ids", path)
    if img.ndim == 3:
        colour = img[:, :, :3]
        if not (np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2])):
            raise UserError("is a colour image; expected class ids in one grayscale channel", path)
        img = colour[:, :, 0]
    return np.ascontiguousarray(img)


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary part mask (white = part) as bool [H, W]; any grey, RGB or palette encoding works.

    CelebAMask-HQ's part masks are black/white images; CoCosNet reads them with `convert('L')`.
    """
    data = _read_bytes(path)
    kind = _container_kind(data)
    _check_complete(data, kind, path)
    img = _decode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE, path)
    if img is None:
        raise UserError("not an image (or a format OpenCV cannot read)", path)
    return img > 127


def list_images(folder: str | os.PathLike, recursive: bool = True, report_skipped: bool = False) -> list[Path]:
    """Image files under `folder`, sorted by their path relative to it (so every machine sees one order).

    With `report_skipped`, the other files found are named in one warning line ("skipped N: ...")
    instead of being left out silently (commands that take a user's folder ask for it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError("no such folder" if not folder.exists() else "not a folder", folder)
    pattern = "**/*" if recursive else "*"
    files = [p for p in folder.glob(pattern) if p.is_file()]
    found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if report_skipped and found and len(found) < len(files):  # no images at all is an error the caller reports
        from mclrt.runtime.notices import warn

        skipped = sorted(p.relative_to(folder).as_posix() for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
        named = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        warn(f"skipped {len(skipped)}: {named} (not images: {' '.join(IMAGE_SUFFIXES)})", folder)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


# --- container checks -----------------------------------------------------------------------------


def _decode(buf: np.ndarray, flags: int, path: str | os.PathLike) -> np.ndarray | None:
    """cv2.imdecode, with OpenCV's refusals (a header declaring more than CV_IO_MAX_IMAGE_PIXELS --
    a decompression bomb -- or a size its decoder cannot hold) as one line naming the file."""
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error as err:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(err):
            limit = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))
            raise UserError(f"declares an image larger than OpenCV decodes ({limit} pixels, OPENCV_IO_MAX_IMAGE_PIXELS); refusing it", path) from None
        raise UserError(f"OpenCV cannot decode it: {str(err).strip().splitlines()[-1]}", path) from None


def _read_bytes(path: str | os.PathLike) -> bytes:
    path = Path(path)
    if not path.exists():
        raise UserError("no such file", path)
    if path.is_dir():
        raise UserError("is a folder, not an image file", path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot be read ({err.strerror})", path) from err
    if not data:
        raise UserError("is empty (0 bytes)", path)
    return data


def _container_kind(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return "other"


def _check_complete(data: bytes, kind: str, path: str | os.PathLike) -> None:
    if kind == "jpeg" and not _jpeg_reaches_end(data):
        raise UserError("is a truncated or damaged JPEG (no end-of-image marker after the image data)", path)
    if kind == "png" and not _png_reaches_iend(data):
        raise UserError("is a truncated or damaged PNG (its chunks stop before IEND)", path)
    if kind == "webp" and int.from_bytes(data[4:8], "little") + 8 > len(data):
        raise UserError("is a truncated WebP (shorter than its header says)", path)
    if kind == "bmp" and len(data) >= 6 and int.from_bytes(data[2:6], "little") > len(data):
        raise UserError("is a truncated BMP (shorter than its header says)", path)


def _jpeg_reaches_end(data: bytes) -> bool:
    """Walk the JPEG's marker segments and entropy-coded scans; True iff an EOI marker is reached.

    Looking for FFD9 anywhere is not enough: an EXIF thumbnail near the start has its own EOI.
    Like libjpeg, stray bytes between segments are skipped rather than rejected.
    """
    n = len(data)
    pos = 2  # after SOI
    while pos < n:
        pos = data.find(b"\xff", pos)
        if pos < 0:
            return False
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return False
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return True
        if marker == 0x01 or 0xD0 <= marker <= 0xD7 or marker == 0x00:  # markers without a length
            continue
        if pos + 2 > n:
            return False
        length = int.from_bytes(data[pos : pos + 2], "big")
        pos += length
        if length < 2 or pos > n:
            return False
        if marker == 0xDA:  # start of scan: skip entropy-coded bytes up to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return False
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte or restart marker
                    pos += 2
                elif following == 0xFF:
                    pos += 1
                else:
                    break
    return False


def _png_reaches_iend(data: bytes) -> bool:
    n = len(data)
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length  # length, type, data, CRC
        if pos > n:
            return False
        if chunk_type == b"IEND":
            return True
    return False


def _png_color_type(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) length(4) "IHDR"(4) width(4) height(4) depth(1) colour type(1)
    return data[25] if len(data) > 25 else -1


def _to_uint8(img: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        if img.size and int(img.max()) <= 255:
            # 8-bit data saved in a 16-bit file: scaled as 16-bit it would be black (or, as an edge map, empty).
            from mclrt.runtime.notices import warn

            warn("is a 16-bit image whose values all fit in 8 bits (max "
                 f"{int(img.max())} of 65535); read as 8-bit values -- save it as an 8-bit image to silence this", path)
            return img.astype(np.uint8)
        return (img >> 8).astype(np.uint8)  # what IMREAD_COLOR does with 16-bit files
    raise UserError(f"has pixel type {img.dtype}; expected an 8- or 16-bit photo", path)


__all__ = ["IMAGE_SUFFIXES", "load_rgb", "load_label_png", "load_mask", "list_images"]
