"""What every data-set reader returns and shares: the items and split record, the one error,
and the helpers that find split folders and the listed files on disk.

Listed files that are not on disk are collected in ``DataSplit.missing`` rather than raised,
because real copies of these sets (Kinetics above all) are always a little incomplete.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tc3d.datasets.files import is_video, subdirs, walk
from tc3d.errors import TC3DError

INT = re.compile(r"[+-]?\d+")


class DatasetFormatError(TC3DError, ValueError):
    """Bad or unrecognisable data set layout; str(e) is one clear line for the user."""


@dataclass(frozen=True)
class VideoItem:
    path: Path  # absolute path of a video file, or of a frame folder
    label: int  # 0-based class index into DataSplit.classes
    num_frames: int | None = None  # known only for raw-frame list entries


@dataclass
class DataSplit:
    format: str  # "ucf101" | "hmdb51" | "kinetics" | "folder" | "list"
    root: Path
    classes: list[str]
    train: list[VideoItem]  # only entries whose file/folder exists
    test: list[VideoItem]
    missing: list[Path]  # listed (train or test) but not found on disk; never fatal
    listed_train: int  # how many train entries the split files list (incl. missing)
    listed_test: int


# One listed entry: (path, found on disk, label, num_frames).
Entry = tuple[Path, bool, int, int | None]


def make_split(fmt: str, root: Path, classes: list[str], train: list[Entry], test: list[Entry]):
    """Assemble a DataSplit; entries not found on disk go to `missing`, in list order."""

    def found(entries: list[Entry]) -> list[VideoItem]:
        return [VideoItem(p, label, n) for p, ok, label, n in entries if ok]

    missing = [p for p, ok, _, _ in train + test if not ok]
    return DataSplit(fmt, root, classes, found(train), found(test), missing, len(train), len(test))


def find_split_dir(
    root: Path, names: tuple[str, ...], sdir: Path | None, ok, expected: str
) -> Path:
    """The first candidate split folder that passes `ok` (only `sdir` when it is given)."""
    dirs = [sdir] if sdir else [root / n for n in names]
    for d in dirs:
        if d.is_dir() and ok(d):
            return d
    raise DatasetFormatError(
        f"split files not found: expected {expected} in {' or '.join(str(d) for d in dirs)}"
    )


class Finder:
    """Finds ``Class/video.avi`` under ROOT or one of its video subfolders, exactly or, failing
    that, ignoring case: UCF101 lists say ``HandStandPushups/`` where the folder is
    ``HandstandPushups/``. The case-free index of ``base/*/*`` is built once, on the first miss."""

    def __init__(self, root: Path, subfolders: tuple[str, ...]):
        self.bases = [root / s for s in subfolders if (root / s).is_dir()] + [root]
        self._index: dict[str, Path] | None = None

    def find(self, rel: str) -> tuple[Path, bool]:
        """(path, found); a missing file is reported at its path under the first base."""
        for base in self.bases:
            if (base / rel).exists():
                return base / rel, True
        if self._index is None:
            self._index = {}
            for base in self.bases:
                for sub in subdirs(base):
                    for f in sub.iterdir():
                        self._index.setdefault(f"{sub.name}/{f.name}".lower(), f)
        hit = self._index.get(rel.lower())
        return (hit, True) if hit else (self.bases[0] / rel, False)


def videos_under(root: Path, key: Callable[[str], str]) -> dict[str, Path]:
    """Every video file below ``root`` by ``key(file name)``, the first one walked winning:
    Kinetics and UCF-Crime downloads spread their clips over folders their lists do not name."""
    index: dict[str, Path] = {}
    for dirpath, _, files in walk(root):
        for f in files:
            if is_video(f):
                index.setdefault(key(f), dirpath / f)
    return index
