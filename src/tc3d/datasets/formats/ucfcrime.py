"""UCF-Crime as it ships: ``Anomaly_Train.txt`` and ``Anomaly_Test.txt``
(``Abuse/Abuse001_x264.mp4``), the videos spread over ``Anomaly-Videos-Part-N`` folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.datasets.files import read_lines
from tc3d.datasets.formats.split import DatasetFormatError, find_split_dir, make_split, videos_under

if TYPE_CHECKING:
    from tc3d.datasets.formats.split import DataSplit, Entry

CRIME_DIRS = (  # where the split files are, relative to ROOT
    ".",
    "Anomaly_Detection_splits",
    "UCF_Crimes-Train-Test-Split/Anomaly_Detection_splits",
)
DIRS = CRIME_DIRS
NORMAL = "Normal"


def has_splits(d: Path) -> bool:
    return (d / "Anomaly_Train.txt").is_file() or (d / "Anomaly_Test.txt").is_file()


def is_normal_folder(folder: str) -> bool:
    """``Training_Normal_Videos_Anomaly``, ``Testing_Normal_Videos_Anomaly``,
    ``Normal_Videos_event``: any folder whose name contains ``Normal`` holds normal videos."""
    return "normal" in folder.lower()


def load(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """UCF-Crime as the ordinary classifier sees it: one class per event folder (13 crimes in
    the real set) plus ``Normal`` for every normal folder, i.e. the 14-class anomalous-activity
    variant. :func:`anomaly_binary` turns it into the normal-vs-anomalous task. Listed videos
    are found at ROOT/<line>, else by file name anywhere under ROOT (the real download spreads
    them over ``Anomaly-Videos-Part-1``... folders)."""
    d = find_split_dir(root, CRIME_DIRS, sdir, has_splits, "Anomaly_Train.txt")
    sides = {}
    for side in ("Train", "Test"):
        f = d / f"Anomaly_{side}.txt"
        sides[side] = [] if not f.is_file() else _read_crime_list(f)
    events = {folder for rows in sides.values() for folder, _ in rows}
    classes = sorted({NORMAL if is_normal_folder(e) else e for e in events})
    by_name: dict[str, Path] | None = None

    def find(folder: str, name: str) -> tuple[Path, bool]:
        nonlocal by_name
        for p in (root / folder / name, root / name):
            if p.is_file():
                return p, True
        if by_name is None:
            by_name = videos_under(root, str.lower)
        hit = by_name.get(name.lower())
        return (hit, True) if hit else (root / folder / name, False)

    def entries(rows: list[tuple[str, str]]) -> list[Entry]:
        out: list[Entry] = []
        for folder, name in rows:
            label = classes.index(NORMAL if is_normal_folder(folder) else folder)
            out.append((*find(folder, name), label, None))
        return out

    return make_split("ucfcrime", root, classes, entries(sides["Train"]), entries(sides["Test"]))


def _read_crime_list(path: Path) -> list[tuple[str, str]]:
    """``Abuse/Abuse001_x264.mp4`` lines -> (folder, file name)."""
    rows = []
    for lineno, text in read_lines(path):
        rel = text.split()[0].replace("\\", "/").strip("/")
        if "/" not in rel:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'Event/video.mp4', got {text!r}")
        folder, name = rel.rsplit("/", 1)
        rows.append((folder.split("/")[-1], name))
    if not rows:
        raise DatasetFormatError(f"empty split: {path} lists no videos")
    return rows
