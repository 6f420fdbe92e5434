"""Video features from the inference engine (paper Section V-A: T-C3D as a feature extractor).

The outputs of res5b (last convolutional block), pool5 (its global average) and prob
(softmax) are taken for every non-overlapping clip of a video, averaged over the clips and
L2-normalised. An average over clips keeps what a video shows, not how it changes, so one
more descriptor, ``pool5+std``, puts pool5's mean and its standard deviation over the clips
side by side (similarity's headline, :mod:`tc3d.apps.similarity`).

The clips are read by the engine's background readers (:func:`tc3d.infer.engine.read_videos`)
and run through :meth:`~tc3d.infer.engine.Engine.clip_maps`, at fp32, bf16 or int8.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tc3d.errors import TC3DError
from tc3d.infer.engine import Engine, read_videos
from tc3d.progress import Progress
from tc3d.video.clips import ClipSpec

LAYERS = ("res5b", "pool5", "prob")
DYNAMICS = "pool5+std"  # pool5's mean and standard deviation over a video's clips
DESCRIPTORS = (*LAYERS, DYNAMICS)  # what similarity scores; DYNAMICS gives its headline
CLIP_CHUNK = 32  # clips per forward pass


class FeatureError(TC3DError, RuntimeError):
    """Unknown layer, or no features; str(e) is one line."""


def clip_features(engine: Engine, clips: torch.Tensor) -> dict[str, np.ndarray]:
    """``(N, 3, k, H, W)`` clips -> {layer: ``(N, D)``} for res5b (flattened map), pool5, prob,
    at the engine's precision (int8 included: its graph returns the res5b map)."""
    fmap, scores = engine.clip_maps(clips)  # (N, C, T', H', W'), (N, K)
    return {
        "res5b": fmap.flatten(1).numpy(),
        "pool5": fmap.mean(dim=(2, 3, 4)).numpy(),  # what avgpool gives
        "prob": torch.softmax(scores, dim=-1).numpy(),
    }


def video_vector(descriptor: str, clips: dict[str, np.ndarray]) -> np.ndarray:
    """One video's vector from its clips' features ``{layer: (n, D)}``: the mean over the
    clips, or for :data:`DYNAMICS` the mean and the standard deviation side by side (the
    deviation is zero for a one-clip video, which then compares by its mean alone)."""
    if descriptor == DYNAMICS:
        x = clips["pool5"]
        return np.concatenate([x.mean(0), x.std(0)])
    return clips[descriptor].mean(0)


def check_layers(layers: Sequence[str]) -> None:
    """A one-line error for an unknown layer, before any video is read."""
    for layer in layers:
        if layer not in DESCRIPTORS:
            raise FeatureError(f"unknown layer {layer!r}; expected one of {', '.join(DESCRIPTORS)}")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class Features:
    videos: list[str]  # as given (relative paths when read from a pairs file)
    layers: dict[str, np.ndarray]  # layer -> (N, D), L2-normalised
    failed: list[dict]  # [{path, error}]


def extract_features(
    engine: Engine,
    clip: ClipSpec,
    paths: Sequence[str | Path],
    layers: Sequence[str] = LAYERS,
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Features:
    """Per video: every non-overlapping clip (``allclips``, centre crop) of the model's
    ``clip`` geometry, features averaged over the clips (:func:`video_vector`), then
    L2-normalised. Rows follow ``paths``, named by ``names``; unreadable videos are listed in
    ``failed``."""
    check_layers(layers)
    names = list(names) if names is not None else [str(p) for p in paths]
    spec = replace(clip, protocol="allclips", crops=1)
    vectors: dict[int, dict[str, np.ndarray]] = {}
    failed: dict[int, dict] = {}
    with contextlib.closing(read_videos(paths, spec)) as reads:
        for done, video in enumerate(reads, 1):
            if video.error is not None:
                failed[video.index] = {"path": video.path, "error": video.error}
            else:
                clips = video.clips[0]  # (n, 3, k, H, W): one crop
                feats = [clip_features(engine, c) for c in clips.split(CLIP_CHUNK)]
                per_clip = {k: np.concatenate([f[k] for f in feats]) for k in LAYERS}
                vectors[video.index] = {layer: video_vector(layer, per_clip) for layer in layers}
            if progress:
                progress(done, len(paths))
    kept = sorted(vectors)
    out = {layer: l2_normalise(np.stack([vectors[i][layer] for i in kept])) if kept
           else np.zeros((0, 0)) for layer in layers}  # fmt: skip
    return Features([names[i] for i in kept], out, [failed[i] for i in sorted(failed)])
