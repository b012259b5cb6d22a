"""Files written so that a crash or a bad input never leaves a partial file or clobbers a user's file.

Every command that writes calls `check_output_location` before it loads a model: the output must be
writable (a probe file, so a read-only mount is caught even for root, whom permissions do not stop)
and must lie apart from every input, so that `--overwrite` can never replace what the user gave.
A write that fails part way (disk full, file size limit) becomes an `OutputWriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from mclrt.runtime.errors import OutputWriteError, UserError

# OSErrors that mean "this output cannot be written here", as opposed to a bug.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO}


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
    tmp = None
    try:
        with _write_errors_name(final):
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            yield tmp
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's usual mode
            os.replace(tmp, final)
            _fsync_dir(final.parent)
    finally:
        if tmp is not None and tmp.exists():
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
    with _write_errors_name(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old")
    try:
        with _write_errors_name(final):
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


def shareable_path(path: str | os.PathLike) -> str:
    """`path` as a file written for sharing (mclrt.json, quantization reports) may hold it: a relative
    path as given; an absolute one relative to the current folder when it lies inside it, otherwise
    `.../<its name>` -- where the folders above it are on the writer's machine concerns no reader."""
    given = os.fspath(path)
    absolute = Path(os.path.expanduser(given))
    if not absolute.is_absolute():
        return given
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return f".../{absolute.name}"


def shareable_json(value: object) -> object:
    """A JSON value with every string that is an absolute path (or starts with ~) made `shareable_path`."""
    if isinstance(value, dict):
        return {key: shareable_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shareable_json(item) for item in value]
    if isinstance(value, str) and (value.startswith("~") or os.path.isabs(value)):
        return shareable_path(value)
    return value


def atomic_write_bytes(final: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    with atomic_path(final, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def check_output_location(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), replaces_folder: bool = False) -> None:
    """Before any work: refuse an output that cannot be written or that would touch an input.

    `inputs` are the files and folders the user gave (model directory, conditions, exemplar, source).
    Refused, the same for every command that writes: `out` is an input, lies inside an input folder,
    holds an input folder, or is (or lies inside) a model directory shipped with mclrt
    (runtime/models/); and when the command replaces `out` as a whole folder (`replaces_folder`:
    export, quantize with --overwrite), any input inside `out`. Paths are compared resolved, so
    symlinks and relative paths cannot hide an overlap.
    """
    check_apart(out, inputs, replaces_folder)
    check_writable(out)


def shipped_models_dir() -> Path:
    """The model directories that come with mclrt (runtime/models/demo): never an output."""
    return Path(__file__).resolve().parent / "models"


def check_apart(out: str | os.PathLike, inputs: Iterable[str | os.PathLike], replaces_folder: bool = False) -> None:
    target = Path(out).resolve()
    shipped = shipped_models_dir()
    if target.is_relative_to(shipped):
        raise UserError(f"is inside {shipped}, the model directories shipped with mclrt; choose another output", out)
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            raise UserError(f"is also an input ({given}); choose another output", out)
        if source.is_dir() and target.is_relative_to(source):
            raise UserError(f"is inside the input folder {given}; choose an output outside it", out)
        if replaces_folder and source.is_relative_to(target):
            raise UserError(f"holds the input {given}, which replacing it would delete; choose another output", out)
        if source.is_dir() and source.is_relative_to(target):
            raise UserError(f"holds the input folder {given}; choose an output outside the inputs", out)


def check_writable(out: str | os.PathLike) -> None:
    """Create and remove a probe file in `out` (a folder) or the nearest folder that exists above it."""
    target = Path(out)
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot be created: {folder} is not a folder", out)
    try:
        fd, probe = tempfile.mkstemp(prefix=".mclrt-write-check.", dir=folder)
    except OSError as err:
        raise UserError(f"cannot be written: {err.strerror or err} ({folder})", out) from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def _write_errors_name(final: Path) -> Iterator[None]:
    """An OSError that means the file system refused the write becomes a one-line error naming `final`."""
    try:
        yield
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise OutputWriteError(f"cannot be written: {err.strerror}", final) from err


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
