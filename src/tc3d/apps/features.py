"""``tc3d features``: the features of every video under a folder or data set, in one ``.npz``.

The features themselves (res5b, pool5, prob, pool5+std averaged over a video's clips and
L2-normalised) come from the model's engine (:mod:`tc3d.infer.features`); this module picks
the videos, names them relative to the folder and writes the file. The Ray path
(:func:`tc3d.cluster.features_on_ray`) writes through :func:`write_feature_file` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tc3d.datasets.files import list_videos
from tc3d.datasets.formats import DatasetFormatError, load_dataset
from tc3d.infer.features import FeatureError, Features
from tc3d.io import atomic_write_with
from tc3d.progress import Progress

if TYPE_CHECKING:
    from tc3d.api import Model


def save_features(features: Features, path: str | Path, classes: Sequence[str] = ()) -> Path:
    """``.npz`` with one array per layer, ``videos`` and the model's ``classes``; atomic."""
    path = Path(path)
    arrays = {"videos": np.array(features.videos), "classes": np.array(list(classes))}
    atomic_write_with(path, lambda f: np.savez(f, **arrays, **features.layers))
    return path


def feature_videos(
    root: str | Path, format: str | None = None, split: int = 1, splits: str | Path | None = None
) -> tuple[list[Path], list[str]]:
    """The videos ``tc3d features`` reads under ``root`` and the names it stores them by.

    A data set's train and test videos, or (when ``root`` is no data set and no ``format`` was
    asked for) every video below the folder. Names are relative to ``root`` so that a features
    file does not depend on where the data set sits."""
    root = Path(root)
    try:
        data = load_dataset(root, format, split, splits)
        paths = [i.path for i in data.train + data.test]
    except DatasetFormatError:
        if format:
            raise
        paths = list_videos(root)
    if not paths:
        raise FeatureError(f"no videos under {root}")
    base = root.resolve()
    names = [Path(p).resolve().relative_to(base).as_posix()
             if Path(p).resolve().is_relative_to(base) else str(p)
             for p in paths]  # fmt: skip
    return paths, names


def write_features(
    model: Model,
    root: str | Path,
    out: str | Path,
    layers: Sequence[str] = ("pool5",),
    format: str | None = None,
    split: int = 1,
    splits: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """``tc3d features``: the features of every video under ``root`` (:func:`feature_videos`)
    saved to ``out``; returns ``{videos, dim, dims, layers, file, failed}``."""
    paths, names = feature_videos(root, format, split, splits)
    if progress:
        progress(0, len(paths))
    feats = model.feature_set(paths, layers, names, progress)
    return write_feature_file(feats, out, model.classes, layers)


def write_feature_file(
    feats: Features, out: str | Path, classes: Sequence[str], layers: Sequence[str]
) -> dict:
    """Save ``feats`` (local or from a cluster) and say what was written, as ``tc3d features``
    reports it."""
    if not feats.videos:
        raise FeatureError("no video could be read")
    file = save_features(feats, out, classes)
    dims = {k: int(v.shape[1]) for k, v in feats.layers.items()}
    return {
        "videos": len(feats.videos),
        "dim": dims[layers[0]],
        "dims": dims,
        "layers": list(layers),
        "file": str(file),
        "failed": feats.failed,
    }
