"""What the page shows about one video, computed by the library's own functions.

Nothing here runs a model itself: the labels are :meth:`tc3d.api.Model.predict` (exactly
``tc3d predict --json``), the timeline is the streaming path's per-window decisions
(:func:`tc3d.infer.stream.run_stream`), the heat map is :func:`tc3d.apps.cam.cam_video` and
the anomaly curve :func:`tc3d.apps.anomaly.frame_scores`. This module only picks their
settings for an interactive page (a bounded number of timeline windows, a small GIF), times
them, and keeps server paths out of what is returned. The upload is opened once here and the
open video handed to each of them (``Model.predict`` opens it by its path).

One lock per model: requests from several users queue on it instead of running the same engine
from several threads (int8 engines and the CAM hooks are not meant for that), and two requests
can never see each other's results.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tc3d.api import Model
from tc3d.apps.anomaly import AnomalyError, anomaly_class, frame_scores, scorer_heat
from tc3d.apps.cam import cam_video
from tc3d.errors import TC3DError
from tc3d.infer.engine import EngineError
from tc3d.infer.stream import StreamConfig, run_stream
from tc3d.video.decode import OpenVideo, VideoReadError, open_video

log = logging.getLogger(__name__)

TIMELINE_WINDOWS = 24  # at most this many decisions: each one costs a clip through the model
MIN_STRIDE = 8  # frames between decisions on short videos: one 8-frame window
CAM_SIZE = 160  # pixels: a GIF of S x k frames stays a few hundred kB
CAM_FRAME_MS = 120


class UnreadableVideo(TC3DError, ValueError):
    """The upload is not a video the model can read; str(e) is one line for the user."""


@dataclass
class ServedModel:
    """A model the page offers, with the lock that makes requests take turns on it."""

    name: str
    model: Model
    anomaly: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def wrap(cls, name: str, model: Model) -> ServedModel:
        try:
            anomaly_class(model.loaded)
            anomaly = True
        except AnomalyError:
            anomaly = False
        return cls(name, model, anomaly)

    def describe(self) -> dict:
        s = self.model.clip.sampling
        return {
            "name": self.name,
            "classes": len(self.model.classes),
            "anomaly": self.anomaly,
            "segments": s.segments,
            "frames": s.frames,
            "crop": self.model.clip.crop,
            "short_side": self.model.clip.short_side,  # the camera's frames are sent this size
            "precision": self.model.precision,
        }


def timeline_stride(num_frames: int) -> int:
    """Frames between timeline decisions: one window of 8 frames, or wider so that a long
    video gets at most ``TIMELINE_WINDOWS`` of them (each decision is a pass of the model)."""
    return max(MIN_STRIDE, math.ceil(num_frames / TIMELINE_WINDOWS))


def timeline(served: ServedModel, video: OpenVideo) -> list[dict]:
    """The streaming path's decisions over the file: ``[{t, frame, label, prob}]``, one per
    ``timeline_stride`` frames once a whole clip has been seen (none for a shorter video)."""
    decisions: list[dict] = []
    cfg = StreamConfig(stride=timeline_stride(video.info.num_frames))
    m = served.model
    try:
        run_stream(m.engine(), m.loaded, [video], cfg, emit=decisions.append)
    except EngineError as e:  # e.g. unshared weights: no one-clip-per-decision path
        log.info("no timeline for %s: %s", served.name, e)
        return []
    keys = ("t", "frame", "label", "prob")
    return [{k: d[k] for k in keys} for d in decisions]


def score_timeline(scores, fps: float, stride: int) -> list[dict]:
    """A ranking anomaly model's timeline: every ``stride`` frames, ``Anomaly`` when the frame
    scores above 0.5, else ``Normal``, with the probability of that label. Its classifier was
    never trained (the scorer was), so the streaming path's decisions would mean nothing."""
    out = []
    for frame in range(stride - 1, len(scores), stride):
        p = float(scores[frame])
        label, prob = ("Anomaly", p) if p > 0.5 else ("Normal", 1.0 - p)
        out.append({"t": round(frame / (fps or 25.0), 3), "frame": frame, "label": label,
                    "prob": round(prob, 4)})  # fmt: skip
    return out


def cam_gif(served: ServedModel, video: OpenVideo) -> dict:
    """The class activation map over the S segment clips as an animated GIF (a data URL)."""
    return _gif(cam_video(served.model, video, None, size=CAM_SIZE)) | {"kind": "cam"}


def _gif(r: dict) -> dict:
    """Heat-map frames (``images``, as :func:`cam_video` returns them) as an animated GIF."""
    frames = r["images"]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=CAM_FRAME_MS, loop=0)  # fmt: skip
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {
        "label": r["label"],
        "prob": r["prob"],
        "frames": len(frames),
        "frame_indices": r["frame_indices"],
        "gif": f"data:image/gif;base64,{data}",
    }


def _timed(timing: dict, name: str, work, *args) -> Any:
    """``work(*args)``, its seconds stored as ``timing[name]``."""
    t0 = time.perf_counter()
    result = work(*args)
    timing[name] = time.perf_counter() - t0
    return result


def _open_upload(path: Path) -> OpenVideo:
    try:
        video = open_video(path)
        video.info  # noqa: B018 - read the header now: a file without frames fails here
    except VideoReadError as e:
        raise UnreadableVideo(f"not a readable video: {e.reason}") from None
    return video


def _labels(served: ServedModel, video: OpenVideo, name: str, top: int) -> list[dict]:
    results = served.model.predict([video], top=top)
    for r in results:  # the user's file name, never the server's temporary path
        r["video"] = name
        if "error" in r:
            raise UnreadableVideo(f"not a readable video: {r['error']}")
    return results


def _analyse_open(served: ServedModel, video: OpenVideo, name: str, top: int, cam: bool):
    """Everything the page shows about the open ``video``: (the answer, its timings)."""
    timing: dict = {}
    results = _timed(timing, "labels_s", _labels, served, video, name, top)
    out: dict = {"results": results, "model": served.name}
    if served.model.loaded.anomaly_scorer is not None:  # a ranking model: its scorer decides
        heat = _timed(timing, "anomaly_s", scorer_heat, served.model, video)
        scores = heat["scores"]
        windows = score_timeline(scores, video.info.fps, timeline_stride(len(scores)))
        out["timeline_source"] = "anomaly scores"
        if cam:
            out["cam"] = _gif(heat) | {"kind": "anomaly scorer"}
    else:  # the T-C3D classifier decides: its streaming decisions and its heat map
        windows = _timed(timing, "timeline_s", timeline, served, video)
        out["timeline_source"] = "stream"
        if cam:
            out["cam"] = _timed(timing, "cam_s", cam_gif, served, video)
        if served.anomaly:
            scores = _timed(timing, "anomaly_s", frame_scores, served.model, video)
    if served.anomaly:
        out["anomaly"] = {"scores": [round(float(s), 4) for s in scores], "fps": video.info.fps}
    if len(windows) > 1:
        out["timeline"] = windows
    return out, timing


def analyse(served: ServedModel, path: Path, name: str, top: int = 5, cam: bool = False) -> dict:
    """Labels (+ ``timeline`` when the video spans several windows, + ``cam``, + ``anomaly``
    for an anomaly model) of the video at ``path``, reported under the user's file ``name``.

    Raises :class:`UnreadableVideo` when the file is not a readable video.
    """
    start = time.perf_counter()
    with served.lock:
        waited = time.perf_counter() - start
        with _open_upload(path) as video:
            out, timing = _analyse_open(served, video, name, top, cam)
        info = video.info
    seconds = time.perf_counter() - start - waited
    labels_s = timing["labels_s"]
    out.update(
        {
            "video": name,
            "frames": info.num_frames,
            "video_fps": info.fps,
            "duration": info.duration,
            "width": info.width,
            "height": info.height,
            "seconds": seconds,
            # the pipeline's fps, as tc3d predict counts it: input frames per second of labelling
            "fps": info.num_frames / labels_s if labels_s > 0 else 0.0,
            "timing": {"queued_s": waited, **timing},
        }
    )
    return out
