"""Video-level evaluation and prediction (paper Section V-C, Table IV protocols).

A video's score is computed the way the model was trained: clip scores -> fusion over the S
segments -> softmax. With ``sclips`` the S clips are the segment centres; with ``allclips``
every non-overlapping clip is scored and the clips are grouped into S contiguous groups whose
mean scores feed the fusion, so position-aware fusions still see S inputs. With 10 crops the
softmax outputs of the crops are averaged. Accuracy is always *video* accuracy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from tc3d.datasets.formats import VideoItem
from tc3d.infer.engine import Engine, VideoResult
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.models.tc3d import TC3D
from tc3d.progress import Progress
from tc3d.video.clips import ClipSpec

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """Per-video outcomes of a scoring pass over a list of items."""

    probs: dict[int, np.ndarray] = field(default_factory=dict)  # item index -> (K,)
    frames: dict[int, int] = field(default_factory=dict)  # item index -> frame count
    skipped: list[dict] = field(default_factory=list)  # [{path, error}]
    seconds: float = 0.0


def score_videos(
    engine: Engine,
    paths: Sequence[str | Path],
    spec: ClipSpec,
    num_frames: Sequence[int | None] | None = None,
    batch_size: int = 4,
    workers: int = 1,
    progress: Progress | None = None,
) -> list[VideoResult]:
    """Every video's :class:`~tc3d.infer.engine.VideoResult` (probabilities or error), in the
    order of ``paths``: the one scoring pass behind ``test``, ``predict`` and ``tag``.
    ``batch_size`` videos' clips share a forward pass."""
    clips_per_video = spec.sampling.segments * spec.crops
    results = engine.run(paths, spec, num_frames, workers=max(1, workers),
                         batch_clips=max(1, batch_size) * clips_per_video,
                         progress=progress)  # fmt: skip
    return sorted(results, key=lambda r: r.index)


def score_items(
    model: TC3D,
    items: Sequence[VideoItem],
    spec: ClipSpec,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 4,
    workers: int = 0,
    progress: Progress | None = None,
    positions: Sequence[int] | None = None,
    engine: Engine | None = None,
) -> Scores:
    """Score every item (``positions`` renames them, e.g. to global indices under DDP).

    Runs through the inference engine (:mod:`tc3d.infer.engine`): background decoding, clips
    batched across videos. ``engine`` carries a prepared precision (int8 needs calibration);
    without it an fp32/bf16 engine is made here.
    """
    engine = engine or Engine(model, device, precision)
    out = Scores()
    start = time.perf_counter()
    paths = [item.path for item in items]
    frames = [item.num_frames for item in items]
    for r in score_videos(engine, paths, spec, frames, batch_size, workers, progress):
        key = positions[r.index] if positions is not None else r.index
        if r.error is not None:
            out.skipped.append({"path": r.path, "error": r.error})
        else:
            out.probs[key] = r.probs
            out.frames[key] = r.frames
    out.seconds = time.perf_counter() - start
    return out


def check_classes(model_classes: Sequence[str], data_classes: Sequence[str]) -> None:
    """Raise ValueError unless a data set names the model's classes in the model's order: its
    labels index the model's outputs, so any other list would score the wrong classes."""
    if list(data_classes) != list(model_classes):
        raise ValueError(
            f"the model's {len(model_classes)} classes differ from the data set's "
            f"{len(data_classes)} classes"
        )


def accuracy_metrics(
    probs: dict[int, np.ndarray], labels: dict[int, int], classes: Sequence[str]
) -> dict:
    """top-1/top-5/mean class accuracy (0-100) and per-class accuracy over scored videos."""
    keys = sorted(probs)
    if not keys:
        return {"top1": 0.0, "top5": 0.0, "mean_class_acc": 0.0, "per_class": {}}
    p = np.stack([probs[k] for k in keys])
    y = np.array([labels[k] for k in keys])
    ranked = np.argsort(-p, axis=1)
    top1 = ranked[:, 0] == y
    top5 = (ranked[:, :5] == y[:, None]).any(axis=1)
    per_class = {}
    for c in np.unique(y):
        per_class[classes[c]] = float(100.0 * top1[y == c].mean())
    return {
        "top1": float(100.0 * top1.mean()),
        "top5": float(100.0 * top5.mean()),
        "mean_class_acc": float(np.mean(list(per_class.values()))),
        "per_class": per_class,
    }


def evaluate(
    loaded: LoadedModel,
    items: Sequence[VideoItem],
    device: torch.device,
    protocol: str = "sclips",
    crops: int = 1,
    precision: str = "fp32",
    batch_size: int = 4,
    workers: int = 0,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> dict:
    """``tc3d test``: video-level metrics plus timing (fps = input frames per second).

    The time covers the whole pipeline (open, decode, sample, transform, model, fusion) of
    every video (docs/REFERENCE.md, "frames per second"); preparing the engine (int8
    calibration) is not in it.
    """
    spec = replace(loaded.clip, protocol=protocol, crops=crops)
    scores = score_items(
        loaded.model, items, spec, device, precision, batch_size, workers, progress, None, engine
    )
    labels = {i: item.label for i, item in enumerate(items)}
    result = accuracy_metrics(scores.probs, labels, loaded.classes)
    frames = sum(scores.frames.values())
    result.update(
        videos=len(scores.probs),
        skipped=scores.skipped,
        seconds=scores.seconds,
        fps=frames / scores.seconds if scores.seconds > 0 else 0.0,
        frames=frames,
        protocol=protocol,
        crops=crops,
    )
    return result


def top_labels(classes: Sequence[str], probs: np.ndarray, top_k: int) -> list[dict]:
    """The ``top_k`` most likely classes (at least one) as ``[{label, prob}]``, best first: the
    labels of ``tc3d predict``, ``tag`` and the Python API."""
    order = np.argsort(-probs)[: max(1, top_k)]
    return [{"label": classes[j], "prob": float(probs[j])} for j in order]


def prediction(classes: Sequence[str], result: VideoResult, top_k: int) -> dict:
    """One video's entry of ``tc3d predict``'s results: ``{video, labels}`` or
    ``{video, error}``."""
    if result.error is not None or result.probs is None:
        return {"video": result.path, "error": result.error or "could not be scored"}
    return {"video": result.path, "labels": top_labels(classes, result.probs, top_k)}


def predict(
    loaded: LoadedModel,
    paths: Sequence[str],
    device: torch.device,
    top_k: int = 5,
    precision: str = "fp32",
    batch_size: int = 4,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> list[dict]:
    """``tc3d predict``: top-k labels per video, or an error entry; order follows ``paths``."""
    engine = engine or Engine(loaded.model, device, precision)
    paths = [str(p) for p in paths]
    results = score_videos(engine, paths, loaded.clip, None, batch_size, 1, progress)
    return [prediction(loaded.classes, r, top_k) for r in results]
