"""Atomic file writes: every file tc3d writes goes through here.

A file is written to a temporary name in the target's own directory, flushed and fsynced, then
renamed over the target (``os.replace``, atomic within one file system). A crash or ``kill -9``
at any point leaves either the previous file or the new one under the target name, never a torn
one; a failed write removes its temporary file. The temporary name starts with a dot and ends in
``.tmp``, so no data set reader mistakes it for a video or a list file. Files that belong
together (a model and its weights file) are written in a temporary folder and renamed one by
one, the file that names the others last: each is whole, and a failure leaves none of them new.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any


def atomic_write_with(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary binary file beside ``path``, fsync, then rename.

    For any writer that takes an open file: ``fig.savefig``, ``PIL.Image.save``, ``np.savez``,
    ``av.open``, ``onnx.save``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)  # reopened by name: some writers (onnx) read ``f.name`` as a path
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permissions ``path`` should get: those of the file it replaces, else what a plain
    ``open(path, "w")`` would give (``mkstemp`` makes every file private to its owner)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_files(paths: Sequence[str | Path], write: Callable[[Path], Any]) -> None:
    """Call ``write(folder)`` with a temporary folder beside ``paths``, in which it writes each of
    them under its own name; fsync them all, then rename each into place in the order given.

    For writers that make several files from one path (OpenVINO's ``.xml`` and the ``.bin`` it
    names): list the file that names the others last, so that it never appears before them. A
    failed write, or a failed rename, removes the temporary folder and any file already moved.
    """
    paths = [Path(p) for p in paths]
    if len({p.parent for p in paths}) != 1:
        raise ValueError(f"atomic_write_files: {paths} are not in one folder")
    parent = paths[-1].parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{paths[-1].name}.", suffix=".tmp", dir=parent))
    moved: list[Path] = []
    try:
        write(tmp)
        for p in paths:
            with open(tmp / p.name, "rb") as f:
                os.fsync(f.fileno())
        for p in paths:
            os.replace(tmp / p.name, p)
            moved.append(p)
    except BaseException:
        for p in moved:
            p.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | Path) -> None:
    """UTF-8, line ends exactly as in ``text`` (no platform translation)."""
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` of ``obj``; load it back with ``torch.load(..., weights_only=True)``."""
    import torch  # here: the synthetic-video workers use this module and never need torch

    atomic_write_with(path, lambda f: torch.save(obj, f))
