"""Anomaly detection in surveillance video (paper Section IV-A, Table VI).

The paper treats UCF-Crime as untrimmed video classification: normal vs anomalous video, with
video-level labels only, T-C3D's S segments spread over the whole long video. Training is the
ordinary loop (:func:`tc3d.training.train.train` with ``anomaly=True``). The benchmark, though, is
scored per frame: a clip slides along the video, each clip gets the model's anomaly
probability, and each frame takes the mean over the clips that contain it. Frame-level ROC AUC
concatenates the frames of all test videos into one curve, as Sultani et al. do; video-level
AUC ranks whole videos by the model's fused S-clip probability. AUCs are 0-100.

The functions take a :class:`tc3d.api.Model` and run in its inference engine (fp32, bf16 or
int8), through :func:`clip_anomaly_probabilities` for the sliding clips and ``score_items`` for
whole videos.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

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
from tc3d.infer.anomaly_evidence import LocalScorer
from tc3d.infer.engine import Engine
from tc3d.infer.evaluate import score_items
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.progress import Progress, report
from tc3d.video.clips import read_clips
from tc3d.video.decode import OpenVideo, VideoReadError, opened
from tc3d.video.sampling import sliding_indices

if TYPE_CHECKING:
    from tc3d.api import Model

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
    video: OpenVideo, num_frames: int, loaded: LoadedModel, stride: int
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(starts, clips ``(n, 3, k, H, W)``) for the video's sliding clips, a chunk at a time."""
    spec = replace(loaded.clip, crops=1)  # centre crop
    starts = clip_starts(num_frames, spec.sampling.span, stride)
    for chunk in np.array_split(starts, max(1, int(np.ceil(len(starts) / CLIPS_PER_READ)))):
        indices = sliding_indices(chunk, spec.sampling, num_frames)  # (n, k)
        yield chunk, read_clips(video, indices, spec)[0]


def frame_scores(
    model: Model, video: str | Path | OpenVideo, stride: int | None = None
) -> np.ndarray:
    """One anomaly score per decoded frame: the mean over the sliding clips holding it.

    ``stride`` defaults to half a clip's span, so every frame lies in about two clips. A model
    trained with ``--objective ranking`` scores frames with its scorer instead (no clips).
    """
    if model.loaded.anomaly_scorer is not None:
        scorer = LocalScorer.from_dict(model.loaded.anomaly_scorer)
        return scorer.frame_scores(scorer.read(video))
    loaded, engine = model.loaded, model.engine([str(video)], videos=1)
    span = loaded.clip.sampling.span
    stride = stride or max(1, span // 2)
    starts, probs = [], []
    with opened(video) as v:
        num_frames = v.info.num_frames
        for chunk, clips in _clip_batches(v, num_frames, loaded, stride):
            starts.append(chunk)
            probs.append(clip_anomaly_probabilities(engine, clips, anomaly_class(loaded)))
    return spread_clip_scores(num_frames, np.concatenate(starts), span, np.concatenate(probs))


def scorer_heat(model: Model, video: str | Path | OpenVideo, size: int = 180, count: int = 8):
    """Where a ranking anomaly model saw lasting local change: ``count`` frames spread over
    the 2 s from its top-scoring frame on, each cell's score laid on as heat. Returns the
    frame ``scores`` and, for the page's heat-map animation, what :func:`cam_video` returns
    with ``out=None`` (``images``, ``label``, ``prob``, ``frame_indices``)."""
    from tc3d.apps.cam import blend_heat

    scorer = LocalScorer.from_dict(model.loaded.anomaly_scorer)
    with opened(video) as v:
        evidence = scorer.read(v)
        cells = scorer.cell_logits(evidence)
        scores = scorer.frame_scores_of(cells, evidence.fps)
        top, span = int(scores.argmax()), evidence.frames(2.0)
        first = max(0, min(top, len(scores) - 1 - span))  # from the top on: the change is there
        picks = np.linspace(first, min(len(scores) - 1, first + span), count)
        picks = np.unique(picks.round().astype(int))
        rgb = v.read(picks.tolist(), short_side=size)
    heat = 1.0 / (1.0 + np.exp(-cells[picks]))  # each cell's own score, 0-1
    text = f"Anomaly {100 * scores[top]:.0f}%"
    images = [blend_heat(frame, h, text)[0] for frame, h in zip(rgb, heat, strict=True)]
    return {"scores": scores, "images": images, "label": "Anomaly", "prob": float(scores[top]),
            "frame_indices": picks.tolist()}  # fmt: skip


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

    def summary(self) -> dict:
        """The video's entry under ``per_video``."""
        return {
            "video": str(self.path),
            "anomalous": self.anomalous,
            "frames": len(self.scores),
            "mean_score": float(self.scores.mean()),
            "max_score": float(self.scores.max()),
            "frame_auc": auc(self.labels, self.scores),
        }


def _score_test_videos(
    model: Model, items, annotations: dict, stride: int | None, progress: Progress | None
) -> tuple[list[VideoScores], list[dict]]:
    """Per-frame scores and labels of each test video, and the videos skipped with a reason."""
    scored: list[VideoScores] = []
    skipped: list[dict] = []
    for i, item in enumerate(items):
        normal = item.label == 0 or is_normal_folder(item.path.parent.name)
        note = annotations.get(item.path.name)
        if note is None and not normal:
            skipped.append({"path": str(item.path), "error": "not in the annotation file"})
        else:
            try:
                scores = frame_scores(model, item.path, stride)
            except VideoReadError as e:
                skipped.append({"path": str(item.path), "error": e.reason})
            else:
                labels = frame_labels(len(scores), note.intervals if note else ())
                scored.append(VideoScores(item.path, scores, labels, not normal))
        report(progress, i + 1, len(items))
    return scored, skipped


def evaluate_anomaly(
    model: Model,
    root: str | Path,
    splits: str | Path | None = None,
    stride: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """``tc3d anomaly test``: frame-level AUC over all test frames concatenated, and video AUC.

    int8 calibrates, when the model has no calibration yet, on the data set's videos. Video
    AUC ranks videos by the fused S-clip probability of a classifier, by the top frame score
    of a ranking model (``video_auc_max`` always by the top frame score).

    Frame labels come from the temporal annotation file; a test video of an anomalous folder
    that the file does not annotate is skipped with a reason (its frames' labels are unknown).
    """
    loaded = model.loaded
    anomaly_class(loaded)
    start = time.perf_counter()
    data = load_dataset(root, "ucfcrime", 1, splits)
    binary = anomaly_binary(data)
    if not binary.test:
        raise AnomalyError(f"{root}: Anomaly_Test.txt lists no video found on disk")
    annotations = read_temporal_annotations(find_annotation_file(root, splits))
    scored, skipped = _score_test_videos(model, binary.test, annotations, stride, progress)
    if not scored:
        raise AnomalyError("no test video could be scored")
    all_scores = np.concatenate([v.scores for v in scored])
    all_labels = np.concatenate([v.labels for v in scored])
    video_truth = np.array([v.anomalous for v in scored], np.int8)
    video_max = np.array([v.scores.max() for v in scored])
    video_score = video_max if loaded.anomaly_scorer is not None else _fused(model, binary, scored)
    frames = len(all_scores)
    seconds = time.perf_counter() - start
    return {
        "frame_auc": auc(all_labels, all_scores),
        "video_auc": auc(video_truth, video_score),
        "video_auc_max": auc(video_truth, video_max),
        "videos": len(scored),
        "frames": frames,
        "anomalous_frames": int(all_labels.sum()),
        "skipped": skipped,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "per_video": [v.summary() for v in scored],
    }


def _fused(model: Model, binary, scored: list[VideoScores]) -> np.ndarray:
    """Each scored test video's anomaly probability as the T-C3D classifier was trained to give
    it: S segment clips, fused (int8 calibrates, when needed, on the data set's videos)."""
    loaded = model.loaded
    engine = model.engine([it.path for it in binary.train or binary.test], videos=len(binary.test))
    items = [it for it in binary.test if any(it.path == v.path for v in scored)]
    fused = score_items(loaded.model, items, replace(loaded.clip, protocol="sclips"),
                        model.device, model.precision, engine=engine)  # fmt: skip
    a = anomaly_class(loaded)
    return np.array([fused.probs[i][a] if i in fused.probs else 0.0 for i in range(len(items))])


def find_annotations_near(video: Path, levels: int = 3) -> Path | None:
    """The annotation file of the data set a video sits in (ROOT, up to ``levels`` above)."""
    for d in list(Path(video).resolve().parents)[:levels]:
        try:
            return find_annotation_file(d)
        except DatasetFormatError:
            continue
    return None


def score_video(
    model: Model,
    video: str | Path | OpenVideo,
    plot: str | Path | None = None,
    annotations: str | Path | None = None,
    stride: int | None = None,
) -> dict:
    """``tc3d anomaly score``: per-frame scores, and a timeline PNG with annotated intervals
    shaded (from ``annotations``, else the data set's own file when the video sits in one)."""
    anomaly_class(model.loaded)
    with opened(video) as v:
        scores = frame_scores(model, v, stride)
        fps = v.info.fps
    path = Path(str(video))
    intervals: tuple = ()
    note_file = Path(annotations) if annotations else find_annotations_near(path)
    if note_file is not None:
        note = read_temporal_annotations(note_file).get(path.name)
        intervals = note.intervals if note else ()
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
