"""Anomaly detection in surveillance video (paper Section IV-A, Table VI).

The paper treats UCF-Crime as untrimmed video classification: normal vs anomalous video, with
video-level labels only, T-C3D's S segments spread over the whole long video. Training is the
ordinary loop (:func:`tc3d.training.train.train` with ``anomaly=True``). The benchmark, though, is
scored per frame: a clip slides along the video, each clip gets the model's anomaly
probability, and each frame takes the mean over the clips that contain it. Frame-level ROC AUC
concatenates the frames of all test videos into one curve, as Sultani et al. do; video-level
AUC ranks whole videos by the model's fused S-clip probability. AUCs are 0-100.

The model runs in the inference engine (fp32, bf16 or int8), through
:func:`clip_anomaly_probabilities` for the sliding clips and ``score_items`` for whole videos.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tc3d.datasets.annotations import (
    anomaly_binary,
    find_annotation_file,
    read_temporal_annotations,
)
from tc3d.datasets.formats import DatasetFormatError, is_normal_folder, load_dataset
from tc3d.errors import TC3DError
from tc3d.figures import save_figure
from tc3d.infer.calibration import make_engine
from tc3d.infer.engine import Engine
from tc3d.infer.evaluate import score_items
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.video.clips import read_clips
from tc3d.video.decode import VideoReadError, probe
from tc3d.video.sampling import sliding_indices

log = logging.getLogger(__name__)

CLIPS_PER_READ = 32  # clips decoded together: bounds memory on hour-long videos


class AnomalyError(TC3DError, RuntimeError):
    """Bad model or data for anomaly detection; str(e) is one line."""


def anomaly_class(loaded: LoadedModel) -> int:
    """Index of the anomalous class: a binary model's ``Anomaly``; else every non-``Normal``."""
    if "Anomaly" in loaded.classes:
        return loaded.classes.index("Anomaly")
    raise AnomalyError(
        f"{loaded.source}: not an anomaly model (classes {loaded.classes[:4]}...); "
        "train one with 'tc3d anomaly train'"
    )


def clip_anomaly_probabilities(engine: Engine, clips: torch.Tensor, anomaly: int) -> np.ndarray:
    """``(N, 3, k, H, W)`` clips -> ``(N,)`` anomaly probabilities, at the engine's precision.

    Each clip is fused alone, as a video all of whose S segments look like it (the model's
    own fusion, :meth:`~tc3d.infer.engine.Engine.fuse_each`), so weighted and attention
    fusions give calibrated single-clip outputs too.
    """
    return engine.fuse_each(engine.clip_scores(clips))[:, anomaly].numpy()


def clip_starts(num_frames: int, span: int, stride: int) -> np.ndarray:
    """First frames of the sliding clips: every ``stride`` frames, the last one flush with
    the end, so every frame is covered (one clip for a video shorter than a clip)."""
    last = max(0, num_frames - span)
    starts = np.arange(0, last + 1, max(1, stride))
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def _clip_batches(
    path: Path, num_frames: int, loaded: LoadedModel, stride: int
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(starts, clips ``(n, 3, k, H, W)``) for the video's sliding clips, a chunk at a time."""
    spec = replace(loaded.clip, crops=1)  # centre crop
    starts = clip_starts(num_frames, spec.sampling.span, stride)
    for chunk in np.array_split(starts, max(1, int(np.ceil(len(starts) / CLIPS_PER_READ)))):
        indices = sliding_indices(chunk, spec.sampling, num_frames)  # (n, k)
        yield chunk, read_clips(path, indices, spec)[0]


def frame_scores(
    loaded: LoadedModel, path: str | Path, engine: Engine, stride: int | None = None
) -> np.ndarray:
    """One anomaly score per decoded frame: the mean over the sliding clips holding it.

    ``stride`` defaults to half a clip's span, so every frame lies in about two clips.
    """
    path = Path(path)
    num_frames = probe(path).num_frames
    span = loaded.clip.sampling.span
    stride = stride or max(1, span // 2)
    starts, probs = [], []
    for chunk, clips in _clip_batches(path, num_frames, loaded, stride):
        starts.append(chunk)
        probs.append(clip_anomaly_probabilities(engine, clips, anomaly_class(loaded)))
    return spread_clip_scores(num_frames, np.concatenate(starts), span, np.concatenate(probs))


def spread_clip_scores(num_frames: int, starts, span: int, probs) -> np.ndarray:
    """Per frame: the mean score of the clips holding it; a frame between clips (stride longer
    than a clip) takes the score interpolated between the nearest clip centres."""
    total, count = np.zeros(num_frames), np.zeros(num_frames)
    for a, p in zip(starts, probs, strict=True):
        total[a : a + span] += p
        count[a : a + span] += 1
    out = total / np.maximum(count, 1)
    gaps = count == 0
    if gaps.any():
        centres = np.minimum(np.asarray(starts) + (span - 1) / 2, num_frames - 1)
        out[gaps] = np.interp(np.flatnonzero(gaps), centres, probs)
    return out


def frame_labels(num_frames: int, intervals) -> np.ndarray:
    """0/1 per frame from 0-based half-open intervals."""
    y = np.zeros(num_frames, np.int8)
    for a, b in intervals:
        y[max(0, a) : min(num_frames, b)] = 1
    return y


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC in 0-100, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return None
    return float(100.0 * roc_auc_score(labels, scores))


@dataclass
class VideoScores:
    path: Path
    scores: np.ndarray  # per frame
    labels: np.ndarray  # per frame, 0/1
    anomalous: bool  # video-level ground truth


def evaluate_anomaly(
    loaded: LoadedModel,
    root: str | Path,
    device: torch.device,
    splits: str | Path | None = None,
    precision: str = "fp32",
    stride: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
) -> dict:
    """``tc3d anomaly test``: frame-level AUC over all test frames concatenated, and video AUC.

    The model runs in ``engine`` (made at ``precision`` when None).

    Frame labels come from the temporal annotation file; a test video of an anomalous folder
    that the file does not annotate is skipped with a reason (its frames' labels are unknown).
    """
    anomaly_class(loaded)
    start = time.perf_counter()
    data = load_dataset(root, "ucfcrime", 1, splits)
    binary = anomaly_binary(data)
    if not binary.test:
        raise AnomalyError(f"{root}: Anomaly_Test.txt lists no video found on disk")
    annotations = read_temporal_annotations(find_annotation_file(root, splits))
    fallback = [it.path for it in binary.train or binary.test]
    engine = engine or make_engine(loaded, device, precision, fallback_videos=fallback)
    scored: list[VideoScores] = []
    skipped: list[dict] = []
    for i, item in enumerate(binary.test):
        normal = item.label == 0 or is_normal_folder(item.path.parent.name)
        note = annotations.get(item.path.name)
        if note is None and not normal:
            skipped.append({"path": str(item.path), "error": "not in the annotation file"})
        else:
            try:
                scores = frame_scores(loaded, item.path, engine, stride)
            except VideoReadError as e:
                skipped.append({"path": str(item.path), "error": e.reason})
            else:
                labels = frame_labels(len(scores), note.intervals if note else ())
                scored.append(VideoScores(item.path, scores, labels, not normal))
        if progress:
            progress(i + 1, len(binary.test))
    if not scored:
        raise AnomalyError("no test video could be scored")
    all_scores = np.concatenate([v.scores for v in scored])
    all_labels = np.concatenate([v.labels for v in scored])
    # Video level: the T-C3D prediction the model was trained to make (S segment clips, fused).
    items = [it for it in binary.test if any(it.path == v.path for v in scored)]
    fused = score_items(loaded.model, items, replace(loaded.clip, protocol="sclips"), device,
                        precision, engine=engine)  # fmt: skip
    a = anomaly_class(loaded)
    video_truth = np.array([v.anomalous for v in scored], np.int8)
    video_fused = np.array([fused.probs[i][a] if i in fused.probs else 0.0
                            for i in range(len(items))])  # fmt: skip
    video_max = np.array([v.scores.max() for v in scored])
    frames = len(all_scores)
    seconds = time.perf_counter() - start
    return {
        "frame_auc": auc(all_labels, all_scores),
        "video_auc": auc(video_truth, video_fused),
        "video_auc_max": auc(video_truth, video_max),
        "videos": len(scored),
        "frames": frames,
        "anomalous_frames": int(all_labels.sum()),
        "skipped": skipped,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "per_video": [
            {
                "video": str(v.path),
                "anomalous": v.anomalous,
                "frames": len(v.scores),
                "mean_score": float(v.scores.mean()),
                "max_score": float(v.scores.max()),
                "frame_auc": auc(v.labels, v.scores),
            }
            for v in scored
        ],
    }


def find_annotations_near(video: Path, levels: int = 3) -> Path | None:
    """The annotation file of the data set a video sits in (ROOT, up to ``levels`` above)."""
    for d in list(Path(video).resolve().parents)[:levels]:
        try:
            return find_annotation_file(d)
        except DatasetFormatError:
            continue
    return None


def score_video(
    loaded: LoadedModel,
    path: str | Path,
    device: torch.device,
    plot: str | Path | None = None,
    annotations: str | Path | None = None,
    precision: str = "fp32",
    stride: int | None = None,
    engine: Engine | None = None,
) -> dict:
    """``tc3d anomaly score``: per-frame scores, and a timeline PNG with annotated intervals
    shaded (from ``annotations``, else the data set's own file when the video sits in one)."""
    anomaly_class(loaded)
    path = Path(path)
    engine = engine or make_engine(loaded, device, precision, fallback_videos=[path])
    scores = frame_scores(loaded, path, engine, stride)
    intervals: tuple = ()
    note_file = Path(annotations) if annotations else find_annotations_near(path)
    if note_file is not None:
        note = read_temporal_annotations(note_file).get(path.name)
        intervals = note.intervals if note else ()
    fps = probe(path).fps
    out = {
        "video": str(path),
        "frames": len(scores),
        "fps": fps,
        "scores": [round(float(s), 5) for s in scores],
        "intervals": [[a + 1, b] for a, b in intervals],  # 1-based inclusive, as the file
        "plot": None,
    }
    if intervals:
        out["frame_auc"] = auc(frame_labels(len(scores), intervals), scores)
    if plot:
        out["plot"] = str(plot_timeline(scores, intervals, fps, plot, title=path.name))
    return out


def plot_timeline(
    scores: np.ndarray, intervals, fps: float, out: str | Path, title: str = ""
) -> Path:
    """Anomaly score over time, annotated anomaly intervals shaded; written atomically."""
    t = np.arange(len(scores)) / (fps or 25.0)

    def draw(fig, ax) -> None:
        for i, (a, b) in enumerate(intervals):
            label = "annotated anomaly" if i == 0 else None
            ax.axvspan(a / (fps or 25.0), b / (fps or 25.0), color="tab:red", alpha=0.2,
                       label=label)  # fmt: skip
        ax.plot(t, scores, color="tab:blue", lw=1.2, label="anomaly score")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(0, max(t[-1], 1e-3))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("score")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", fontsize=8)

    return save_figure(out, draw, (8, 2.6))
