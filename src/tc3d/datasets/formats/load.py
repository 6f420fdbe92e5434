"""Which layout a data set has, and reading it: the one entry point over the six readers.

This reads split files and the directory tree only; it never opens a video, so it is fast
enough to run on every command that takes --data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tc3d.datasets.files import subdirs
from tc3d.datasets.formats import folder, hmdb51, kinetics, lists, ucf101, ucfcrime
from tc3d.datasets.formats.split import DatasetFormatError, DataSplit

logger = logging.getLogger(__name__)

FORMATS = ("ucf101", "hmdb51", "kinetics", "ucfcrime", "folder", "list")

# The layouts told apart by their split files: (name, candidate folders, has split files).
_SPLIT_CHECKS: tuple[tuple[str, tuple[str, ...], Callable[[Path], bool]], ...] = (
    ("ucf101", ucf101.DIRS, ucf101.has_splits),
    ("hmdb51", hmdb51.DIRS, hmdb51.has_splits),
    ("kinetics", kinetics.DIRS, kinetics.has_splits),
    ("ucfcrime", ucfcrime.DIRS, ucfcrime.has_splits),
)
_LOADERS: dict[str, Callable[[Path, int, Path | None], DataSplit]] = {
    "ucf101": ucf101.load,
    "hmdb51": hmdb51.load,
    "kinetics": kinetics.load,
    "ucfcrime": ucfcrime.load,
    "folder": folder.load,
    "list": lists.load,
}


def detect_format(root: Path) -> str:
    """Name the format of `root` from its split files, falling back to class folders."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetFormatError(f"data set root not found: {root}")
    if root.is_file():
        return "list"
    for fmt, names, has_splits in _SPLIT_CHECKS:
        if any(has_splits(root / n) for n in names):
            return fmt
    trains, _, label_map = lists.list_files(root)
    if trains and label_map:
        return "list"
    if any(next(folder.iter_items(d), None) for d in subdirs(root)):
        return "folder"
    raise DatasetFormatError(
        f"cannot tell the data set format of {root}: no UCF101/HMDB51 split files, Kinetics "
        "train.csv, train list with label map, or class folders with videos; pass --format"
    )


def load_dataset(
    root: str | Path,
    format: str | None = None,
    split: int = 1,
    splits_dir: str | Path | None = None,
) -> DataSplit:
    """Read the train/test lists of a data set; `format=None` detects it."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetFormatError(f"data set root not found: {root}")
    root = root.resolve()
    sdir = None
    if splits_dir is not None:
        sdir = Path(splits_dir).expanduser()
        if not sdir.is_dir():
            raise DatasetFormatError(f"splits folder not found: {sdir}")
        sdir = sdir.resolve()
    fmt = format.lower() if format else None
    if fmt is None and sdir is not None:  # --splits DIR alone may already say which set it is
        fmt = next((f for f, _, has_splits in _SPLIT_CHECKS if has_splits(sdir)), None)
    fmt = fmt or detect_format(root)
    if fmt not in FORMATS:
        raise DatasetFormatError(
            f"unknown data set format {format!r}; expected one of {', '.join(FORMATS)}"
        )
    if split < 1 or (split != 1 and fmt in ("kinetics", "ucfcrime", "folder", "list")):
        raise DatasetFormatError(f"split {split} does not exist for {fmt} data set {root}")
    if fmt != "list" and not root.is_dir():
        raise DatasetFormatError(f"{root} is a file; the {fmt} format expects a data set folder")
    data = _LOADERS[fmt](root, split, sdir)
    if data.missing:
        n = data.listed_train + data.listed_test
        logger.warning(
            "%d of %d listed videos not found, e.g. %s", len(data.missing), n, data.missing[0]
        )
    return data
