"""The Python API: what the CLI, the web page and cluster workers call.

```python
import tc3d
model = tc3d.load_model("motion")            # a .pt checkpoint, a .tc3d file or a shipped name
model.classes                                # list[str]
model.predict(["a.mp4", "b.avi"], top=5)     # the ``results`` of ``tc3d predict --json``
model.features(["a.mp4"], layers=("pool5",)) # {layer: (N, dim), "videos": [...], "failed": [...]}
```

Bad videos are reported in the returned data (``{"video", "error"}``), never raised: a batch
job over thousands of files should not stop at the first broken one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from tc3d.device import PRECISIONS, prepare_model, resolve_device
from tc3d.infer.anomaly_evidence import LocalScorer
from tc3d.infer.calibration import make_engine
from tc3d.infer.engine import Engine, VideoResult
from tc3d.infer.evaluate import check_classes, evaluate, prediction, score_videos
from tc3d.infer.features import Features, extract_features
from tc3d.infer.openvino_runtime import float_runtime
from tc3d.modelfile.checkpoint import LoadedModel, load_model_file
from tc3d.progress import Progress
from tc3d.video.decode import OpenVideo, VideoReadError
from tc3d.video.sampling import SamplingConfig


@dataclass
class Model:
    """A loaded model on its device at one precision, with the clip geometry it reads."""

    loaded: LoadedModel
    device: torch.device
    precision: str = "fp32"
    batch_size: int = 4
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def classes(self) -> list[str]:
        return self.loaded.classes

    @property
    def clip(self):
        """The :class:`~tc3d.video.clips.ClipSpec` (S, k, sampling, offset, crop) in use."""
        return self.loaded.clip

    @property
    def source(self) -> Path:
        return self.loaded.source

    def engine(
        self, calibration_fallback: Sequence[str | Path] = (), videos: int | None = None
    ) -> Engine:
        """The inference engine for ``videos`` videos (None: a stream or a server), made on
        first use (int8 calibrates then). A float engine made for a few videos on PyTorch is
        remade on OpenVINO when sustained work comes
        (:func:`~tc3d.infer.openvino_runtime.float_runtime`)."""
        engine = self._engine
        if engine is None or (
            self.precision != "int8"
            and engine.runtime != float_runtime(self.device, videos, self.precision) == "openvino"
        ):
            self._engine = make_engine(
                self.loaded, self.device, self.precision, calibration_fallback, videos=videos
            )
        return self._engine

    def score(
        self, videos: Sequence[str | Path | OpenVideo], progress: Progress | None = None
    ) -> list[VideoResult]:
        """Per video, in order, its :class:`~tc3d.infer.engine.VideoResult`: class
        probabilities, or the error of a video that could not be read. What ``predict`` and
        ``tag`` (local or on Ray) format."""
        # An open video (the page's upload) is read where it is, not opened again by its name.
        sources = [v if isinstance(v, OpenVideo) else str(v) for v in videos]
        if self.loaded.anomaly_scorer is not None:
            total = len(sources)
            return [self._anomaly_result(i, v, progress, total) for i, v in enumerate(sources)]
        engine = self.engine([str(v) for v in videos], videos=len(videos))
        return score_videos(engine, sources, self.clip, None, self.batch_size, 1, progress)

    def _anomaly_result(
        self, index: int, video: str | OpenVideo, progress: Progress | None, total: int
    ) -> VideoResult:
        """A ranking anomaly model's verdict on a whole video: its top frame score is the
        probability of ``Anomaly`` (what ``tc3d anomaly test`` ranks videos by)."""
        start = time.perf_counter()
        scorer = LocalScorer.from_dict(self.loaded.anomaly_scorer)
        try:
            evidence = scorer.read(video)
        except VideoReadError as e:
            result = VideoResult(index, str(video), error=e.reason)
        else:
            top = float(scorer.frame_scores(evidence).max())
            probs = [1.0 - top, top] if self.classes.index("Anomaly") else [top, 1.0 - top]
            seconds = time.perf_counter() - start
            result = VideoResult(index, str(video), np.array(probs), len(evidence), 0, seconds)
        if progress is not None:
            progress(index + 1, total)
        return result

    def predict(
        self, videos: Sequence[str | Path], top: int = 5, progress: Progress | None = None
    ) -> list[dict]:
        """Per video, in order: ``{"video", "labels": [{"label", "prob"}, ...]}`` (the ``top``
        most likely classes) or ``{"video", "error"}``."""
        return [prediction(self.classes, r, top) for r in self.score(videos, progress)]

    def evaluate(
        self,
        data: str | Path,
        format: str | None = None,
        split: int = 1,
        splits: str | Path | None = None,
        protocol: str = "sclips",
        crops: int = 1,
        workers: int = 2,
        progress: Progress | None = None,
    ) -> dict:
        """Video-level metrics on a data set's test split, as ``tc3d test --json`` prints them
        (``top1``, ``top5``, ``mean_class_acc``, ``fps``, ``skipped``, ...). The data set must
        name the model's classes; int8 calibrates on a sample of its training videos when the
        model's own training set is not at hand."""
        from tc3d.datasets.formats import load_dataset

        data_split = load_dataset(data, format, split, splits)
        check_classes(self.classes, data_split.classes)
        engine = self.engine(
            [str(i.path) for i in data_split.train[::7]], videos=len(data_split.test)
        )
        if progress:
            progress(0, len(data_split.test))
        result = evaluate(
            self.loaded,
            data_split.test,
            self.device,
            protocol,
            crops,
            self.precision,
            self.batch_size,
            workers,
            progress,
            engine,
        )
        result["precision"] = self.precision
        return result

    def features(
        self,
        videos: Sequence[str | Path],
        layers: Sequence[str] = ("pool5",),
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """``{layer: (N, dim) float32, ..., "videos": [...], "failed": [{"video", "error"}]}``,
        as ``tc3d features`` writes them: per video the layer averaged over every
        non-overlapping clip, L2-normalised; rows follow ``videos`` named by ``names`` (the
        paths by default), readable videos only."""

        feats = self.feature_set(videos, layers, names, progress)
        failed = [{"video": f["path"], "error": f["error"]} for f in feats.failed]
        out: dict = {k: v.astype(np.float32) for k, v in feats.layers.items()}
        out["videos"] = list(feats.videos)
        out["failed"] = failed
        return out

    def feature_set(
        self,
        videos: Sequence[str | Path],
        layers: Sequence[str] = ("pool5",),
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> Features:
        """What :meth:`features` returns, as the :class:`~tc3d.infer.features.Features` that
        ``tc3d features`` and ``similarity`` save and compare (failures as ``{path, error}``)."""
        paths = [Path(v) for v in videos]
        engine = self.engine(paths, videos=len(paths))
        return extract_features(engine, self.clip, paths, layers, names, progress)


def load_model(
    model: str | Path,
    device: str = "auto",
    precision: str = "fp32",
    *,
    segments: int | None = None,
    frames: int | None = None,
    sampling: str | None = None,
    offset: int | None = None,
    crop: int | None = None,
    batch_size: int = 4,
) -> Model:
    """Load a checkpoint, a ``.tc3d`` file or a shipped model (``motion``) ready to run.

    ``segments`` ... ``crop`` override the clip geometry stored with the model (as the CLI's
    flags of the same names do). Raises
    :class:`~tc3d.modelfile.checkpoint.CheckpointError` (one line) for a file that is not a tc3d
    model.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    loaded = load_model_file(model)
    if any(v is not None for v in (segments, frames, sampling, offset, crop)):
        s = loaded.clip.sampling
        geometry = SamplingConfig(
            segments or s.segments, frames or s.frames, sampling or s.strategy, offset or s.offset
        )
        loaded.clip = replace(loaded.clip, sampling=geometry, crop=crop or loaded.clip.crop)
    dev = resolve_device(device)
    prepare_model(loaded.model.to(dev), dev)
    return Model(loaded, dev, precision, batch_size)
