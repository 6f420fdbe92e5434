"""Data-set layouts -> lists of (video path, label): UCF101, HMDB51, Kinetics, UCF-Crime, folder,
list.

Each public data set ships its own split files, with quirks that silently lose videos if read
naively (CRLF and BOMs in UCF101's lists, class-name case mismatches such as
``HandstandPushups``/``HandStandPushups``, trailing spaces and odd characters in HMDB51's
names, quoted labels in Kinetics CSVs). This module reads those files and the directory tree
only; it never opens a video, so it is fast enough to run on every command that takes --data.
Listed files that are not on disk are collected in ``DataSplit.missing`` rather than raised,
because real copies of these sets (Kinetics above all) are always a little incomplete.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tc3d.datasets.files import is_video, read_lines, subdirs, walk
from tc3d.errors import TC3DError

logger = logging.getLogger(__name__)

FORMATS = ("ucf101", "hmdb51", "kinetics", "ucfcrime", "folder", "list")

# Where each format keeps its split files, relative to ROOT (detection and loading agree).
_UCF_DIRS = ("splits", "ucfTrainTestlist")
_HMDB_DIRS = ("splits", "testTrainMulti_7030_splits")
_KINETICS_DIRS = (".", "annotations")
CRIME_DIRS = (
    ".",
    "Anomaly_Detection_splits",
    "UCF_Crimes-Train-Test-Split/Anomaly_Detection_splits",
)
_TRAIN_LISTS = ("train.txt", "train_list.txt", "trainlist.txt")
_TEST_LISTS = ("test.txt", "test_list.txt", "testlist.txt", "val.txt", "val_list.txt",
               "vallist.txt")  # fmt: skip
_LABEL_MAPS = ("labels.txt", "label_map.txt", "classes.txt", "classInd.txt")
_FRAME = re.compile(r"img_\d+\.(jpe?g|png)", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+")


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
_Entry = tuple[Path, bool, int, int | None]


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
    trains, _, label_map = _list_files(root)
    if trains and label_map:
        return "list"
    if any(next(_iter_items(d), None) for d in subdirs(root)):
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
    loaders = {
        "ucf101": _load_ucf101,
        "hmdb51": _load_hmdb51,
        "kinetics": _load_kinetics,
        "ucfcrime": _load_ucfcrime,
        "folder": _load_folder,
        "list": _load_list,
    }
    data = loaders[fmt](root, split, sdir)
    if data.missing:
        n = data.listed_train + data.listed_test
        logger.warning(
            "%d of %d listed videos not found, e.g. %s", len(data.missing), n, data.missing[0]
        )
    return data


# ---------------------------------------------------------------- shared helpers


def _split(fmt: str, root: Path, classes: list[str], train: list[_Entry], test: list[_Entry]):
    """Assemble a DataSplit; entries not found on disk go to `missing`, in list order."""

    def found(entries: list[_Entry]) -> list[VideoItem]:
        return [VideoItem(p, label, n) for p, ok, label, n in entries if ok]

    missing = [p for p, ok, _, _ in train + test if not ok]
    return DataSplit(fmt, root, classes, found(train), found(test), missing, len(train), len(test))


def _split_dir(root: Path, names: tuple[str, ...], sdir: Path | None, ok, expected: str) -> Path:
    """The first candidate split folder that passes `ok` (only `sdir` when it is given)."""
    dirs = [sdir] if sdir else [root / n for n in names]
    for d in dirs:
        if d.is_dir() and ok(d):
            return d
    raise DatasetFormatError(
        f"split files not found: expected {expected} in {' or '.join(str(d) for d in dirs)}"
    )


class _Finder:
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


# ---------------------------------------------------------------- ucf101


def _load_ucf101(root: Path, split: int, sdir: Path | None) -> DataSplit:
    d = _split_dir(root, _UCF_DIRS, sdir, _has_class_ind, "classInd.txt")
    classes = _read_class_ind(d / "classInd.txt")
    index = {c.lower(): i for i, c in enumerate(classes)}
    train_file, test_file = d / f"trainlist{split:02d}.txt", d / f"testlist{split:02d}.txt"
    if not train_file.is_file() and not test_file.is_file():
        raise DatasetFormatError(
            f"UCF101 split {split} does not exist: no {train_file.name} or {test_file.name} in {d}"
        )
    finder = _Finder(root, ("videos", "UCF-101"))
    train = _read_ucf_list(train_file, index, finder)
    test = _read_ucf_list(test_file, index, finder)
    return _split("ucf101", root, classes, train, test)


def _has_class_ind(d: Path) -> bool:
    return (d / "classInd.txt").is_file()


def _read_class_ind(path: Path) -> list[str]:
    """``1 ApplyEyeMakeup`` lines -> names in index order (indices must run 1..N)."""
    pairs = []
    for lineno, text in read_lines(path):
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not _INT.fullmatch(parts[0]):
            raise DatasetFormatError(f"{path}:{lineno}: expected '<index> <Class>', got {text!r}")
        pairs.append((int(parts[0]), parts[1]))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise DatasetFormatError(f"{path}: class indices must run 1..{len(pairs)} without gaps")
    return [name for _, name in pairs]


def _read_ucf_list(path: Path, index: dict[str, int], finder: _Finder) -> list[_Entry]:
    """``Class/v_Class_g08_c01.avi [label]`` lines. The class comes from the folder name (matched
    ignoring case); a disagreeing 1-based label is overruled and warned about once."""
    if not path.is_file():
        raise DatasetFormatError(f"UCF101 split file not found: {path}")
    entries: list[_Entry] = []
    disagree: list[int] = []
    for lineno, text in read_lines(path):
        parts = text.rsplit(maxsplit=1)
        has_label = len(parts) == 2 and _INT.fullmatch(parts[1])
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


# ---------------------------------------------------------------- hmdb51


def _has_hmdb_splits(d: Path) -> bool:
    return any(d.glob("*_test_split*.txt"))


def _load_hmdb51(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """One ``<class>_test_split<N>.txt`` per class; class names keep their underscores
    (``brush_hair``) because only the fixed suffix is stripped. Lines marked 0 are unused."""
    d = _split_dir(root, _HMDB_DIRS, sdir, _has_hmdb_splits, "<class>_test_split1.txt files")
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in d.iterdir() if p.name.endswith(suffix)}
    if not files:
        raise DatasetFormatError(f"HMDB51 split {split} does not exist: no *{suffix} in {d}")
    classes = sorted(files)
    finder = _Finder(root, ("videos",))
    train: list[_Entry] = []
    test: list[_Entry] = []
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
    return _split("hmdb51", root, classes, train, test)


# ---------------------------------------------------------------- kinetics


def _has_kinetics_csv(d: Path) -> bool:
    f = d / "train.csv"
    if not f.is_file():
        return False
    with f.open(encoding="utf-8-sig", errors="replace") as fh:
        return "youtube_id" in fh.readline()


def _load_kinetics(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """train.csv is train; validate.csv/val.csv is the test side, else test.csv if it has
    labels (Kinetics-400's does not). Clips are found anywhere under ROOT by file stem,
    ``<id>_<start:06d>_<end:06d>`` or just ``<id>``; a missing one is listed at ROOT/<stem>.mp4."""
    d = _split_dir(root, _KINETICS_DIRS, sdir, _has_kinetics_csv, "train.csv")
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
    clips: dict[str, Path] = {}
    for dirpath, _, files in walk(root):
        for f in files:
            if is_video(f):
                clips.setdefault(Path(f).stem, dirpath / f)

    def entries(rows: list[tuple[str, str, str]]) -> list[_Entry]:
        out: list[_Entry] = []
        for label, stem, youtube_id in rows:
            p = clips.get(stem) or clips.get(youtube_id)
            out.append((p or root / f"{stem}.mp4", p is not None, index[label], None))
        return out

    return _split("kinetics", root, classes, entries(train_rows), entries(test_rows))


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


# ---------------------------------------------------------------- ucfcrime

NORMAL = "Normal"


def _has_crime_lists(d: Path) -> bool:
    return (d / "Anomaly_Train.txt").is_file() or (d / "Anomaly_Test.txt").is_file()


def is_normal_folder(folder: str) -> bool:
    """``Training_Normal_Videos_Anomaly``, ``Testing_Normal_Videos_Anomaly``,
    ``Normal_Videos_event``: any folder whose name contains ``Normal`` holds normal videos."""
    return "normal" in folder.lower()


def _load_ucfcrime(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """UCF-Crime as the ordinary classifier sees it: one class per event folder (13 crimes in
    the real set) plus ``Normal`` for every normal folder, i.e. the 14-class anomalous-activity
    variant. :func:`anomaly_binary` turns it into the normal-vs-anomalous task. Listed videos
    are found at ROOT/<line>, else by file name anywhere under ROOT (the real download spreads
    them over ``Anomaly-Videos-Part-1``... folders)."""
    d = _split_dir(root, CRIME_DIRS, sdir, _has_crime_lists, "Anomaly_Train.txt")
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
            by_name = {}
            for dirpath, _, files in walk(root):
                for f in files:
                    if is_video(f):
                        by_name.setdefault(f.lower(), dirpath / f)
        hit = by_name.get(name.lower())
        return (hit, True) if hit else (root / folder / name, False)

    def entries(rows: list[tuple[str, str]]) -> list[_Entry]:
        out: list[_Entry] = []
        for folder, name in rows:
            label = classes.index(NORMAL if is_normal_folder(folder) else folder)
            out.append((*find(folder, name), label, None))
        return out

    return _split("ucfcrime", root, classes, entries(sides["Train"]), entries(sides["Test"]))


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


# ---------------------------------------------------------------- folder


def _iter_items(class_dir: Path) -> Iterator[Path]:
    """Videos anywhere below a class folder, and frame folders (``img_00001.jpg``...) as items."""
    for dirpath, dirnames, files in walk(class_dir):
        if dirpath != class_dir and any(_FRAME.fullmatch(f) for f in files):
            dirnames.clear()
            yield dirpath
            continue
        yield from (dirpath / f for f in files if is_video(f))


def _class_items(d: Path) -> dict[str, list[Path]]:
    """{class folder name: its items sorted by path}, for class folders holding any item."""
    found = {c.name: sorted(_iter_items(c), key=str) for c in subdirs(d)}
    return {name: items for name, items in found.items() if items}


def _load_folder(root: Path, split: int, sdir: Path | None) -> DataSplit:
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
        return _split("folder", root, classes, train, test)
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
    return _split("folder", root, classes, train, test)


# ---------------------------------------------------------------- list


def _pick(d: Path, names: tuple[str, ...], words: tuple[str, ...], avoid: str) -> list[Path]:
    """The first of `names` in d, else every other .txt whose name contains one of `words`."""
    for n in names:
        if (d / n).is_file():
            return [d / n]
    txt = sorted(p for p in d.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    low = [(p, p.name.lower()) for p in txt if p.name not in _LABEL_MAPS]
    return [p for p, n in low if any(w in n for w in words) and not (avoid and avoid in n)]


def _list_files(d: Path) -> tuple[list[Path], list[Path], Path | None]:
    """Candidate train lists, test lists and the label map in a folder."""
    trains = _pick(d, _TRAIN_LISTS, ("train",), "")
    tests = _pick(d, _TEST_LISTS, ("test", "val"), "train")
    return trains, tests, next((d / n for n in _LABEL_MAPS if (d / n).is_file()), None)


def _load_list(root: Path, split: int, sdir: Path | None) -> DataSplit:
    """mmaction-style lists. A folder root (or --splits DIR) holds train.txt-like and
    test/val lists plus an optional label map. A file root is the train list; its test list is
    the sibling named with ``train`` replaced by ``test`` or ``val`` (mmaction's
    ``ucf101_train_split_1_videos.txt`` -> ``ucf101_val_split_1_videos.txt``), else the
    folder's single test/val list; with none, the test side is empty (not an error)."""
    d = root.parent if root.is_file() else (sdir or root)
    trains, tests, label_map = _list_files(d)
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
    return _split("list", root, classes, train, test)


def _read_label_map(path: Path) -> list[str]:
    """One class name per line, 0-based. A leading running index (classInd.txt's ``1 Name``)
    is dropped, but only if every line has one counting up from 0 or 1."""
    names = [text for _, text in read_lines(path)]
    heads = [n.split(maxsplit=1) for n in names]
    if heads and all(len(h) == 2 and _INT.fullmatch(h[0]) for h in heads):
        first = int(heads[0][0])
        if first in (0, 1) and [int(h[0]) for h in heads] == list(range(first, first + len(heads))):
            return [h[1] for h in heads]
    return names


def _read_list(path: Path, classes: list[str] | None) -> list[_Entry]:
    """``path label`` (video) or ``dir num_frames label`` (frame folder) lines. Labels are
    peeled off the end, so paths may contain spaces."""
    entries: list[_Entry] = []
    for lineno, text in read_lines(path):
        where = f"{path}:{lineno}"
        parts = text.split()
        n = 0
        while n < len(parts) - 1 and _INT.fullmatch(parts[-1 - n]):
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


# Defined last because it names the checks above; detect_format and load_dataset share it.
_SPLIT_CHECKS: tuple[tuple[str, tuple[str, ...], Callable[[Path], bool]], ...] = (
    ("ucf101", _UCF_DIRS, _has_class_ind),
    ("hmdb51", _HMDB_DIRS, _has_hmdb_splits),
    ("kinetics", _KINETICS_DIRS, _has_kinetics_csv),
    ("ucfcrime", CRIME_DIRS, _has_crime_lists),
)
