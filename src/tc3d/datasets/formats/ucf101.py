"""UCF101 as it ships: ``classInd.txt``, ``trainlist0N.txt`` and ``testlist0N.txt`` in
``splits/`` or ``ucfTrainTestlist/``; CRLF line ends and class-name case mismatches
(``HandstandPushups``/``HandStandPushups``) are read as the real files have them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.datasets.files import read_lines
from tc3d.datasets.formats.split import INT, DatasetFormatError, Finder, find_split_dir, make_split

if TYPE_CHECKING:
    from tc3d.datasets.formats.split import DataSplit, Entry

logger = logging.getLogger(__name__)


DIRS = ("splits", "ucfTrainTestlist")  # where the split files are, relative to ROOT


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    d = find_split_dir(root, DIRS, sdir, has_splits, "classInd.txt")
    classes = _read_class_ind(d / "classInd.txt")
    index = {c.lower(): i for i, c in enumerate(classes)}
    train_file, test_file = d / f"trainlist{split:02d}.txt", d / f"testlist{split:02d}.txt"
    if not train_file.is_file() and not test_file.is_file():
        raise DatasetFormatError(
            f"UCF101 split {split} does not exist: no {train_file.name} or {test_file.name} in {d}"
        )
    finder = Finder(root, ("videos", "UCF-101"))
    train = _read_ucf_list(train_file, index, finder)
    test = _read_ucf_list(test_file, index, finder)
    return make_split("ucf101", root, classes, train, test)


def has_splits(d: Path) -> bool:
    return (d / "classInd.txt").is_file()


def _read_class_ind(path: Path) -> list[str]:
    """``1 ApplyEyeMakeup`` lines -> names in index order (indices must run 1..N)."""
    pairs = []
    for lineno, text in read_lines(path):
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not INT.fullmatch(parts[0]):
            raise DatasetFormatError(f"{path}:{lineno}: expected '<index> <Class>', got {text!r}")
        pairs.append((int(parts[0]), parts[1]))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise DatasetFormatError(f"{path}: class indices must run 1..{len(pairs)} without gaps")
    return [name for _, name in pairs]


def _read_ucf_list(path: Path, index: dict[str, int], finder: Finder) -> list[Entry]:
    """``Class/v_Class_g08_c01.avi [label]`` lines. The class comes from the folder name (matched
    ignoring case); a disagreeing 1-based label is overruled and warned about once."""
    if not path.is_file():
        raise DatasetFormatError(f"UCF101 split file not found: {path}")
    entries: list[Entry] = []
    disagree: list[int] = []
    for lineno, text in read_lines(path):
        parts = text.rsplit(maxsplit=1)
        has_label = len(parts) == 2 and INT.fullmatch(parts[1])
        rel = (parts[0] if has_label else text).replace("\\", "/").strip("/")
        folder = rel.split("/")[0]
        if "/" not in rel:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'Class/video.avi', got {text!r}")
        if folder.lower() not in index:
            raise DatasetFormatError(f"{path}:{lineno}: class {folder!r} is not in classInd.txt")
        label = index[folder.lower()]
        if has_label and int(parts[1]) - 1 != label:
            disagree.append(lineno)
        entries.append((*finder.find(rel), label, None))
    if disagree:
        msg = "%s: %d labels disagree with their class folder (first: line %d); using the folder"
        logger.warning(msg, path, len(disagree), disagree[0])
    if not entries:
        raise DatasetFormatError(f"empty split: {path} lists no videos")
    return entries
