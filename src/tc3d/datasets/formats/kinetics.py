"""Kinetics as it ships: ``train.csv`` and ``validate.csv`` (quoted labels, ``youtube_id``,
``time_start``, ``time_end``), clips named ``<id>_<start:06d>_<end:06d>.mp4`` anywhere under ROOT.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.datasets.formats.split import DatasetFormatError, find_split_dir, make_split, videos_under

if TYPE_CHECKING:
    from tc3d.datasets.formats.split import DataSplit, Entry

logger = logging.getLogger(__name__)


DIRS = (".", "annotations")  # where train.csv is, relative to ROOT


def has_splits(d: Path) -> bool:
    f = d / "train.csv"
    if not f.is_file():
        return False
    with f.open(encoding="utf-8-sig", errors="replace") as fh:
        return "youtube_id" in fh.readline()


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """train.csv is train; validate.csv/val.csv is the test side, else test.csv if it has
    labels (Kinetics-400's does not). Clips are found anywhere under ROOT by file stem,
    ``<id>_<start:06d>_<end:06d>`` or just ``<id>``; a missing one is listed at ROOT/<stem>.mp4."""
    d = find_split_dir(root, DIRS, sdir, has_splits, "train.csv")
    train_rows = _read_kinetics_csv(d / "train.csv")
    test_files = [d / n for n in ("validate.csv", "val.csv", "test.csv") if (d / n).is_file()]
    test_file = test_files[0] if test_files else None
    test_rows = _read_kinetics_csv(test_file) if test_file else []
    if not test_rows:
        logger.warning("no labelled validate.csv, val.csv or test.csv in %s; test side empty", d)
    train_labels = {label for label, _, _ in train_rows}
    classes = sorted(train_labels | {label for label, _, _ in test_rows})
    if len(classes) > len(train_labels):
        logger.warning(
            "%s has %d labels train.csv lacks", test_file, len(classes) - len(train_labels)
        )
    index = {c: i for i, c in enumerate(classes)}
    clips = videos_under(root, lambda name: Path(name).stem)

    def entries(rows: list[tuple[str, str, str]]) -> list[Entry]:
        out: list[Entry] = []
        for label, stem, youtube_id in rows:
            p = clips.get(stem) or clips.get(youtube_id)
            out.append((p or root / f"{stem}.mp4", p is not None, index[label], None))
        return out

    return make_split("kinetics", root, classes, entries(train_rows), entries(test_rows))


def _read_kinetics_csv(path: Path) -> list[tuple[str, str, str]]:
    """Rows as (label, clip stem, youtube_id); [] for a label-less test.csv."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        need = ("youtube_id", "time_start", "time_end")
        if any(h not in header for h in need):
            raise DatasetFormatError(f"{path}:1: expected a header with {', '.join(need)}")
        if "label" not in header:
            if path.name == "test.csv":
                return []
            raise DatasetFormatError(f"{path}:1: expected a 'label' column in the header")
        li, yi, si, ei = (header.index(h) for h in ("label", *need))
        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            try:
                label, yid = row[li].strip(), row[yi].strip()
                stem = f"{yid}_{int(float(row[si])):06d}_{int(float(row[ei])):06d}"
            except (IndexError, ValueError, OverflowError):
                msg = f"{path}:{reader.line_num}: bad row {','.join(row)!r}"
                raise DatasetFormatError(msg) from None
            rows.append((label, stem, yid))
    if path.name == "test.csv" and not any(label for label, _, _ in rows):
        return []
    if not rows:
        raise DatasetFormatError(f"empty split: {path} lists no clips")
    return rows
