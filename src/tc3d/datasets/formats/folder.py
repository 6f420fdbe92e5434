"""Any tree of class folders: ``ROOT/<label>/**/*.mp4``, or ``ROOT/train`` and ``ROOT/test`` (or
``val``) with class folders inside; frame folders (``img_00001.jpg``...) count as videos.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from tc3d.datasets.files import is_video, subdirs, walk
from tc3d.datasets.formats.split import DatasetFormatError, DataSplit, make_split

logger = logging.getLogger(__name__)


_FRAME = re.compile(r"img_\d+\.(jpe?g|png)", re.IGNORECASE)


def iter_items(class_dir: Path) -> Iterator[Path]:
    """Videos anywhere below a class folder, and frame folders (``img_00001.jpg``...) as items."""
    for dirpath, dirnames, files in walk(class_dir):
        if dirpath != class_dir and any(_FRAME.fullmatch(f) for f in files):
            dirnames.clear()
            yield dirpath
            continue
        yield from (dirpath / f for f in files if is_video(f))


def _class_items(d: Path) -> dict[str, list[Path]]:
    """{class folder name: its items sorted by path}, for class folders holding any item."""
    found = {c.name: sorted(iter_items(c), key=str) for c in subdirs(d)}
    return {name: items for name, items in found.items() if items}


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """Classes are the sorted names of class folders that hold videos. ROOT/train + ROOT/test
    (or ROOT/val) with class folders inside are used as the split. Otherwise the split is
    fixed without randomness: within each class, items sorted by path, every 5th one
    (index % 5 == 4) is test, so re-running on the same tree always gives the same split."""
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    by_class = _class_items(root / "train") if test_dir and (root / "train").is_dir() else {}
    if by_class:
        test_by_class = _class_items(test_dir)
        if not test_by_class:
            raise DatasetFormatError(f"empty split: {test_dir} has no class folders with videos")
        classes = sorted(set(by_class) | set(test_by_class))
        train = [(p, True, classes.index(c), None) for c in by_class for p in by_class[c]]
        test = [(p, True, classes.index(c), None) for c in test_by_class for p in test_by_class[c]]
        return make_split("folder", root, classes, train, test)
    by_class = _class_items(root)
    if not by_class:
        raise DatasetFormatError(f"no class folders with videos (ROOT/<label>/*.mp4) in {root}")
    classes = sorted(by_class)
    train, test = [], []
    for label, name in enumerate(classes):
        for i, p in enumerate(by_class[name]):
            (test if i % 5 == 4 else train).append((p, True, label, None))
    if not test:
        logger.warning("no class in %s has 5 videos, so the test side is empty", root)
    return make_split("folder", root, classes, train, test)
