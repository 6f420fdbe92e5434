"""HMDB51 as it ships: one ``<class>_test_split<N>.txt`` per class, with lines
``<video>.avi <0|1|2>`` (1 train, 2 test, 0 unused); class names keep their underscores.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.datasets.files import read_lines
from tc3d.datasets.formats.split import DatasetFormatError, Finder, find_split_dir, make_split

if TYPE_CHECKING:
    from tc3d.datasets.formats.split import DataSplit, Entry

DIRS = ("splits", "testTrainMulti_7030_splits")  # where the split files are, relative to ROOT


def has_splits(d: Path) -> bool:
    return any(d.glob("*_test_split*.txt"))


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """One ``<class>_test_split<N>.txt`` per class; class names keep their underscores
    (``brush_hair``) because only the fixed suffix is stripped. Lines marked 0 are unused."""
    d = find_split_dir(root, DIRS, sdir, has_splits, "<class>_test_split1.txt files")
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in d.iterdir() if p.name.endswith(suffix)}
    if not files:
        raise DatasetFormatError(f"HMDB51 split {split} does not exist: no *{suffix} in {d}")
    classes = sorted(files)
    finder = Finder(root, ("videos",))
    train: list[Entry] = []
    test: list[Entry] = []
    for label, name in enumerate(classes):
        for lineno, text in read_lines(files[name]):
            parts = text.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetFormatError(
                    f"{files[name]}:{lineno}: expected '<video>.avi <0|1|2>', got {text!r}"
                )
            if parts[1] != "0":
                (train if parts[1] == "1" else test).append(
                    (*finder.find(f"{name}/{parts[0]}"), label, None)
                )
    for side, entries in (("train (1)", train), ("test (2)", test)):
        if not entries:
            raise DatasetFormatError(f"empty split: no video marked {side} in *{suffix} in {d}")
    return make_split("hmdb51", root, classes, train, test)
