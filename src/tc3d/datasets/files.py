"""Finding video files on disk and reading small text files, the way every command does.

Data sets arrive copied from other machines: macOS ``._x.mp4`` litter, symlinked folders
(sometimes in a loop), list files with a BOM, CRLF or Latin-1 bytes. One walker and one line
reader keep every command (the data-set loaders, tag, features, bench) seeing the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".wmv", ".3gp", ".ogv")  # fmt: skip


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered, stripped, non-blank lines; tolerant of a BOM, CRLF and non-UTF-8 bytes."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(i, s.strip()) for i, s in enumerate(lines, 1) if s.strip()]


def walk(top: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """os.walk in sorted order, skipping dot-files (macOS ``._x.mp4`` litter), following
    symlinked folders (data sets are often linked in) but never entering one folder twice.
    Callers may prune by clearing the yielded dirnames list."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield Path(dirpath), dirnames, sorted(f for f in filenames if not f.startswith("."))


def is_video(name: str) -> bool:
    """A file name with a video extension (any case)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def subdirs(d: Path) -> list[Path]:
    """Visible sub-folders, sorted."""
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_videos(root: str | Path) -> list[Path]:
    """Video files anywhere under ``root``, sorted (hidden files and folders skipped)."""
    return sorted(d / f for d, _, files in walk(Path(root)) for f in files if is_video(f))
