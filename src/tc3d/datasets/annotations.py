"""UCF-Crime's anomaly labels: the normal-vs-anomalous task and the temporal annotations.

The classifier sees UCF-Crime as 14 classes (:mod:`tc3d.datasets.formats`); the anomaly commands
need the paper's two-class view and the frame intervals of ``Temporal_Anomaly_Annotation.txt``
to score frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tc3d.datasets.files import read_lines
from tc3d.datasets.formats import CRIME_DIRS, NORMAL, DatasetFormatError, DataSplit, VideoItem

_ANNOTATION_FILES = ("Temporal_Anomaly_Annotation.txt",
                     "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")  # fmt: skip
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class AnomalyAnnotation:
    """One line of ``Temporal_Anomaly_Annotation.txt``."""

    event: str  # "Abuse", ..., or "Normal"
    intervals: tuple[tuple[int, int], ...]  # 0-based [start, end) frames; () for none


def anomaly_binary(data: DataSplit) -> DataSplit:
    """The paper's anomaly task: every video of a non-normal class is ``Anomaly`` (label 1)."""
    normal = data.classes.index(NORMAL) if NORMAL in data.classes else -1

    def relabel(items: list[VideoItem]) -> list[VideoItem]:
        return [VideoItem(i.path, int(i.label != normal), i.num_frames) for i in items]

    return DataSplit(
        data.format, data.root, [NORMAL, "Anomaly"], relabel(data.train), relabel(data.test),
        data.missing, data.listed_train, data.listed_test,
    )  # fmt: skip


def find_annotation_file(root: str | Path, splits_dir: str | Path | None = None) -> Path:
    """``Temporal_Anomaly_Annotation.txt`` in --splits DIR, ROOT or ROOT's split folders."""
    root = Path(root)
    dirs = [Path(splits_dir)] if splits_dir else [root / n for n in CRIME_DIRS]
    for d in dirs:
        for name in _ANNOTATION_FILES:
            if (d / name).is_file():
                return d / name
    raise DatasetFormatError(
        f"temporal annotation file not found: expected {_ANNOTATION_FILES[0]} in "
        + " or ".join(str(d) for d in dirs)
    )


def read_temporal_annotations(path: str | Path) -> dict[str, AnomalyAnnotation]:
    """``Abuse028_x264.mp4  Abuse  165  240  -1  -1`` lines -> {file name: annotation}.

    Up to two 1-based inclusive frame intervals, -1 for none (normal videos have four -1s);
    they come back 0-based and half-open, ``[164, 240)`` here. Any whitespace separates fields.
    """
    path = Path(path)
    out = {}
    for lineno, text in read_lines(path):
        parts = text.split()
        if len(parts) < 4 or not all(_INT.fullmatch(p) for p in parts[2:]) or len(parts) % 2:
            raise DatasetFormatError(
                f"{path}:{lineno}: expected 'video.mp4  Event  start  end  start  end', "
                f"got {text!r}"
            )
        nums = [int(p) for p in parts[2:]]
        intervals = []
        for a, b in zip(nums[::2], nums[1::2], strict=True):
            if a < 0 and b < 0:
                continue
            if a < 1 or b < a:
                raise DatasetFormatError(f"{path}:{lineno}: bad frame interval {a} {b}")
            intervals.append((a - 1, b))
        out[parts[0]] = AnomalyAnnotation(parts[1], tuple(intervals))
    return out
