"""Files written so that a crash or a bad input never leaves a partial file or clobbers a user's file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mclrt.runtime.errors import UserError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success fsync it and rename it onto `final`.

    On any exception the temporary file is removed and `final` is untouched. Unless `overwrite`,
    an existing `final` is an error: nothing a user has is silently replaced.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's usual mode
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside `final`; on success fsync it and rename it onto `final`.

    The directory version of `atomic_path`, for outputs that are a set of files (a model directory):
    readers see the old directory or the complete new one, never a mix. On any exception the
    temporary directory is removed and `final` is untouched. Unless `overwrite`, an existing `final`
    is an error; with it, the old directory is renamed aside, the new one renamed in, then the old
    one deleted. Callers decide what they are willing to replace before calling.
    """
    final = Path(final)
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise UserError("already exists (pass --overwrite to replace it)", final)
        if not final.is_dir() or final.is_symlink():
            raise UserError("exists and is not a directory; refusing to replace it", final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old")
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        _fsync_dir(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if final.exists():
            os.rename(final, old)
            try:
                os.rename(tmp, final)
            except OSError:
                os.rename(old, final)  # put the user's directory back before reporting the failure
                raise
            _fsync_dir(final.parent)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_bytes(final: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a directory; the rename itself is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
