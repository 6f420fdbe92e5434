"""mmaction-style list files: ``path label`` for videos, ``dir num_frames label`` for frame
folders, with an optional label map beside them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tc3d.datasets.files import is_video, read_lines
from tc3d.datasets.formats.split import INT, DatasetFormatError, DataSplit, Entry, make_split

logger = logging.getLogger(__name__)


_TRAIN_LISTS = ("train.txt", "train_list.txt", "trainlist.txt")
_TEST_LISTS = ("test.txt", "test_list.txt", "testlist.txt", "val.txt", "val_list.txt",
               "vallist.txt")  # fmt: skip
_LABEL_MAPS = ("labels.txt", "label_map.txt", "classes.txt", "classInd.txt")


def _pick(d: Path, names: tuple[str, ...], words: tuple[str, ...], avoid: str) -> list[Path]:
    """The first of `names` in d, else every other .txt whose name contains one of `words`."""
    for n in names:
        if (d / n).is_file():
            return [d / n]
    txt = sorted(p for p in d.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    low = [(p, p.name.lower()) for p in txt if p.name not in _LABEL_MAPS]
    return [p for p, n in low if any(w in n for w in words) and not (avoid and avoid in n)]


def list_files(d: Path) -> tuple[list[Path], list[Path], Path | None]:
    """Candidate train lists, test lists and the label map in a folder."""
    trains = _pick(d, _TRAIN_LISTS, ("train",), "")
    tests = _pick(d, _TEST_LISTS, ("test", "val"), "train")
    return trains, tests, next((d / n for n in _LABEL_MAPS if (d / n).is_file()), None)


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """mmaction-style lists. A folder root (or --splits DIR) holds train.txt-like and
    test/val lists plus an optional label map. A file root is the train list; its test list is
    the sibling named with ``train`` replaced by ``test`` or ``val`` (mmaction's
    ``ucf101_train_split_1_videos.txt`` -> ``ucf101_val_split_1_videos.txt``), else the
    folder's single test/val list; with none, the test side is empty (not an error)."""
    d = root.parent if root.is_file() else (sdir or root)
    trains, tests, label_map = list_files(d)
    if root.is_file():
        trains = [root]
        twins = [d / root.name.replace("train", w) for w in ("test", "val") if "train" in root.name]
        tests = [p for p in twins if p.is_file()][:1] or [p for p in tests if p != root]
        if len(tests) != 1:
            tests = []
    for side, found in (("train", trains), ("test", tests)):
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DatasetFormatError(f"several {side} lists in {d}: {names}; pass one list file")
    if not trains:
        raise DatasetFormatError(f"split files not found: no train.txt or *train*.txt in {d}")
    classes = _read_label_map(label_map) if label_map else None
    train = _read_list(trains[0], classes)
    test = _read_list(tests[0], classes) if tests else []
    if not tests:
        logger.info("no test/val list beside %s; the test side is empty", trains[0])
    if classes is None:
        classes = [str(i) for i in range(max(e[2] for e in train + test) + 1)]
    return make_split("list", root, classes, train, test)


def _read_label_map(path: Path) -> list[str]:
    """One class name per line, 0-based. A leading running index (classInd.txt's ``1 Name``)
    is dropped, but only if every line has one counting up from 0 or 1."""
    names = [text for _, text in read_lines(path)]
    heads = [n.split(maxsplit=1) for n in names]
    if heads and all(len(h) == 2 and INT.fullmatch(h[0]) for h in heads):
        first = int(heads[0][0])
        if first in (0, 1) and [int(h[0]) for h in heads] == list(range(first, first + len(heads))):
            return [h[1] for h in heads]
    return names


def _read_list(path: Path, classes: list[str] | None) -> list[Entry]:
    """``path label`` (video) or ``dir num_frames label`` (frame folder) lines. Labels are
    peeled off the end, so paths may contain spaces."""
    entries: list[Entry] = []
    for lineno, text in read_lines(path):
        where = f"{path}:{lineno}"
        parts = text.split()
        n = 0
        while n < len(parts) - 1 and INT.fullmatch(parts[-1 - n]):
            n += 1
        rel, nums = text.rsplit(maxsplit=n)[0], [int(p) for p in parts[len(parts) - n :]]
        if n == 0:
            raise DatasetFormatError(f"{where}: expected 'path label' or 'dir frames label'")
        if n > 2 or (n == 2 and is_video(rel)):
            raise DatasetFormatError(f"{where}: multi-label lines are not supported: {text!r}")
        label, num_frames = nums[-1], (nums[0] if n == 2 else None)
        if label < 0 or (classes is not None and label >= len(classes)):
            limit = f"0..{len(classes) - 1}" if classes is not None else "0 or more"
            raise DatasetFormatError(f"{where}: label {label} outside {limit}")
        p = Path(rel).expanduser()
        p = p if p.is_absolute() else path.parent / p
        entries.append((p, p.exists(), label, num_frames))
    if not entries:
        raise DatasetFormatError(f"empty split: {path} lists no videos")
    return entries
