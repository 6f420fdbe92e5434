"""``tc3d data check``: does every listed video open and decode? (before a long training run)

Each listed file that exists is probed for its frame count and its first frame is decoded;
the report counts what is usable and names what is not, so a bad file is found in seconds
rather than hours into training (where it would be skipped anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tc3d.datasets.formats import load_dataset
from tc3d.video.decode import VideoReadError, decodable_frames, probe, read_frames


def _check_one(path: Path) -> tuple[int | None, int | None, str | None]:
    """(frames the header claims, frames that decode, error)."""
    try:
        frames = probe(path).num_frames
        read_frames(path, [0])
        return frames, decodable_frames(path, frames), None
    except VideoReadError as e:
        return None, None, e.reason


def check_dataset(
    root: str | Path,
    format: str | None = None,
    split: int = 1,
    splits: str | Path | None = None,
    workers: int = 4,
    clip_frames: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The ``tc3d data check`` report, plus two lists of usable videos worth knowing about:
    ``truncated`` (fewer frames decode than the header claims) and ``short`` (fewer frames
    than one S×k sample, ``clip_frames``, so clips repeat frames)."""
    data = load_dataset(root, format, split, splits)
    paths = list(dict.fromkeys(item.path for item in data.train + data.test))
    frames: list[int] = []
    unreadable: list[dict] = []
    truncated: list[dict] = []
    short: list[dict] = []
    # PyAV releases the GIL while demuxing and decoding, so threads read files in parallel.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (path, (count, decodable, error)) in enumerate(
            zip(paths, pool.map(_check_one, paths), strict=True), start=1
        ):
            if error is not None:
                unreadable.append({"path": str(path), "error": error})
                continue
            frames.append(decodable)
            if decodable < count:
                truncated.append({"path": str(path), "frames": count, "decodable": decodable})
            if decodable < clip_frames:
                short.append({"path": str(path), "frames": decodable})
            if progress:
                progress(done, len(paths))
    return {
        "format": data.format,
        "root": str(data.root),
        "classes": len(data.classes),
        "train": data.listed_train,
        "test": data.listed_test,
        "ok": len(frames),
        "unreadable": unreadable,
        "missing": [str(p) for p in data.missing],
        "truncated": truncated,
        "short": short,
        "frames": {
            "min": int(np.min(frames)) if frames else None,
            "median": float(np.median(frames)) if frames else None,
            "max": int(np.max(frames)) if frames else None,
        },
    }
