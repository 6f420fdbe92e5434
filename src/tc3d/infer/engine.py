"""The inference engine: video files in, video-level class probabilities out, as fast as it goes.

Everything that runs a trained model (``test``, ``predict``, ``bench``, ``stream``, ``tag``,
``features``, ``similarity``, ``cam``, ``anomaly``) goes through here, so a speed-up lands
everywhere at once. The pipeline is the paper's fast path (Table IV,
"S clips per video"): the sampler asks for S×k frame indices, the reader seeks and decodes only
those (:mod:`tc3d.video.decode`), and the clips go through one shared Res3D-18. Three things
make it fast on a CPU:

* decoding and transforms run in background threads (PyAV and torch release the GIL) while
  the model works on the previous batch, so the model never waits for the file;
* clips of several videos are batched into one forward pass;
* ``precision``: ``fp32`` (on a CPU, OpenVINO's CPU plugin where it is installed, else
  PyTorch channels-last-3d; :mod:`tc3d.infer.openvino_runtime`), ``bf16`` (the same, on
  CPUs with bf16 instructions; else PyTorch's autocast) or ``int8`` (OpenVINO, quantised by
  NNCF, :mod:`tc3d.infer.quantize`, with the calibration stored with the model).

Video scores are fused by the model itself (:meth:`tc3d.models.tc3d.TC3D.video_probs`), the
same fusion it was trained through.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tc3d.device import PRECISIONS, autocast, memory_format, to_device
from tc3d.errors import TC3DError
from tc3d.infer import openvino_runtime
from tc3d.infer.quantize import Calibration, quantize_model
from tc3d.models.fusion import group_clips
from tc3d.models.tc3d import TC3D
from tc3d.progress import Progress
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.decode import VideoReadError, probe

log = logging.getLogger(__name__)

__all__ = ["BATCH_CLIPS", "PRECISIONS", "Engine", "EngineError", "VideoResult", "read_videos"]

BATCH_CLIPS = 12  # clips per forward pass: large enough to batch across videos, small latency


class EngineError(TC3DError, RuntimeError):
    """The engine cannot run as asked (e.g. int8 on a device without quantised kernels)."""


@dataclass
class VideoResult:
    """One video's outcome: probabilities, or an error for a file that could not be used."""

    index: int
    path: str
    probs: np.ndarray | None = None  # (K,)
    frames: int = 0
    clips: int = 0
    latency: float = 0.0  # seconds from starting to read the file to its fused result
    error: str | None = None


@dataclass
class _Pending:
    result: VideoResult
    shape: tuple[int, int]  # (crops, n)
    started: float
    scores: dict[int, torch.Tensor] = field(default_factory=dict)  # flat clip index -> (K,)


@dataclass
class _Clip:
    video: int  # index of its video
    flat: int  # its index among the video's crops·n clips
    position: int  # backbone position
    clip: torch.Tensor  # (3, k, H, W)


@dataclass
class ReadVideo:
    """A video as a reader thread hands it on: its clips, or why it could not be read."""

    index: int
    path: str
    started: float  # when reading began (latency counts from here)
    clips: torch.Tensor | None = None  # (crops, n, 3, k, H, W)
    frames: int = 0
    error: str | None = None

    def failure(self) -> VideoResult:
        """The :class:`VideoResult` of a video that could not be read."""
        latency = time.perf_counter() - self.started
        return VideoResult(self.index, self.path, frames=self.frames, latency=latency,
                           error=self.error)  # fmt: skip


def _read(index: int, path: str | Path, num_frames: int | None, spec: ClipSpec) -> ReadVideo:
    started = time.perf_counter()
    try:
        clips, frames = load_clips(path, num_frames, spec, None)
        return ReadVideo(index, str(path), started, clips, frames)
    except VideoReadError as e:
        return ReadVideo(index, str(path), started, error=e.reason)
    except Exception as e:  # noqa: BLE001 - one bad file never stops the run
        return ReadVideo(index, str(path), started, error=f"{type(e).__name__}: {e}")


def read_videos(
    paths: Sequence[str | Path],
    spec: ClipSpec,
    num_frames: Sequence[int | None] | None = None,
    workers: int = 1,
    ahead: int = 4,
) -> Iterator[ReadVideo]:
    """Each video's clips (:func:`~tc3d.video.clips.load_clips`), read by ``workers``
    background threads at most ``ahead`` videos in advance, in completion order (the input
    order with one worker). Close the iterator to stop the readers early."""
    num_frames = list(num_frames) if num_frames is not None else [None] * len(paths)
    ready: queue.Queue = queue.Queue(maxsize=ahead)  # bounded: never the whole data set
    stop = threading.Event()
    next_index = iter(range(len(paths)))
    lock = threading.Lock()

    def reader():
        while not stop.is_set():
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            item = _read(i, paths[i], num_frames[i], spec)
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
        ready.put(None)  # one end marker per reader

    readers = [threading.Thread(target=reader, daemon=True, name=f"tc3d-reader-{r}")
               for r in range(max(1, workers))]  # fmt: skip
    for t in readers:
        t.start()
    try:
        alive = len(readers)
        while alive:
            item = ready.get()
            if item is None:
                alive -= 1
            else:
                yield item
    finally:
        stop.set()
        for t in readers:  # drain, so no reader stays blocked on a full queue
            while t.is_alive():
                with contextlib.suppress(queue.Empty):
                    ready.get(timeout=0.05)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


class Engine:
    """A model ready to score clips and videos at a given precision on a given device."""

    def __init__(
        self,
        model: TC3D,
        device: torch.device,
        precision: str = "fp32",
        calibration: Calibration | None = None,
        runtime: str = "torch",
        clip_shape: tuple[int, ...] | None = None,
    ):
        """``runtime`` runs fp32 and bf16 on PyTorch (``"torch"``) or OpenVINO (``"openvino"``,
        CPU only, bf16 only on CPUs with bf16 instructions;
        :func:`~tc3d.infer.openvino_runtime.float_runtime` says which is right here); int8
        always runs on OpenVINO. ``clip_shape`` ``(3, k, H, W)`` is converted for OpenVINO
        now rather than at the first batch."""
        if precision not in PRECISIONS:
            raise EngineError(f"--precision must be one of {PRECISIONS}, not {precision!r}")
        if runtime not in openvino_runtime.RUNTIMES:
            raise EngineError(
                f"the runtime must be one of {openvino_runtime.RUNTIMES}, not {runtime!r}"
            )
        if runtime == "openvino" and device.type != "cpu":
            raise EngineError("OpenVINO runs on the CPU only")
        if runtime == "openvino" and precision == "bf16" and not openvino_runtime.native_bf16():
            raise EngineError("bf16 on OpenVINO needs a CPU with bf16 instructions "
                              "(AVX-512 BF16 or AMX); run it on PyTorch")  # fmt: skip
        self.model = model.eval()
        self.device = device
        self.precision = precision
        self.runtime = "openvino" if precision == "int8" else runtime
        self.calibration_info: dict | None = None
        self.backbones: list = list(model.backbones)
        if precision == "int8":
            check_int8_device(device)
            if calibration is None:
                raise EngineError("int8 needs a calibration (tc3d.infer.quantize)")
            start = time.perf_counter()
            self.backbones = quantize_model(model, calibration)
            self.calibration_info = {
                "videos": calibration.videos,
                "source": calibration.source,
                "cached": calibration.stored,
                "file": calibration.file,
                "seconds": calibration.seconds + time.perf_counter() - start,
            }
        elif self.runtime == "openvino":
            self.model.to(device=device)  # the fusion runs in PyTorch
            self.backbones = [
                openvino_runtime.FloatOnOpenVino(b, precision) for b in model.backbones
            ]
            if clip_shape is not None:
                for b in self.backbones:
                    b.prepare(tuple(clip_shape))
        else:
            self.model.to(device=device, memory_format=memory_format(device))

    @property
    def cfg(self):
        return self.model.cfg

    # -- clips ------------------------------------------------------------------------------

    @torch.no_grad()
    def clip_scores(self, clips: torch.Tensor, position: int = 0) -> torch.Tensor:
        """Class scores ``(N, K)`` (float32, CPU) for clips ``(N, 3, k, H, W)``.

        ``position`` picks the backbone of a model with unshared weights (segment position).
        """
        backbone = self.backbones[position if len(self.backbones) > 1 else 0]
        if self.runtime == "openvino":
            return backbone(clips.float())[1]
        with autocast(self.device, "bf16" if self.precision == "bf16" else "fp32"):
            out = backbone(self._input(clips))
        return out[: len(clips)].float().cpu()

    @torch.no_grad()
    def clip_maps(
        self, clips: torch.Tensor, position: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(res5b maps ``(N, C, T', H', W')``, class scores ``(N, K)``), float32 on the CPU,
        for clips ``(N, 3, k, H, W)``: what ``features`` and ``cam`` need."""
        backbone = self.backbones[position if len(self.backbones) > 1 else 0]
        if self.runtime == "openvino":
            return backbone(clips.float())
        with autocast(self.device, "bf16" if self.precision == "bf16" else "fp32"):
            fmap = backbone.res5b(self._input(clips))[: len(clips)]
            scores = backbone.fc(backbone.avgpool(fmap).flatten(1))
        return fmap.float().cpu(), scores.float().cpu()

    def _input(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips on the model's device and layout; on the CPU a lone clip goes in twice.

        For a batch of one, PyTorch's CPU convolution skips oneDNN for 3×3×3 kernels on
        narrow inputs and runs its reference ``slow_conv3d`` (what a width-0.25 model's layers
        are), which is many times slower than two clips through oneDNN.
        """
        x = to_device(clips, self.device)
        if self.device.type == "cpu" and x.shape[0] == 1:
            x = torch.cat([x, x]).contiguous(memory_format=memory_format(self.device))
        return x

    @torch.no_grad()
    def fuse(self, scores: torch.Tensor) -> torch.Tensor:
        """Clip scores of one video ``(crops, n, K)`` -> class probabilities ``(K,)``, by the
        model's own fusion (:meth:`~tc3d.models.tc3d.TC3D.video_probs`) on its device."""
        return self.model.video_probs(scores.to(self._fusion_device)).cpu()

    @torch.no_grad()
    def fuse_each(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, K)`` of N clips -> ``(N, K)`` probabilities, each clip fused alone as a
        video of one clip (the model's :meth:`~tc3d.models.tc3d.TC3D.fuse` repeats it over the
        S segments), so weighted and attention fusions give calibrated single-clip outputs."""
        fused = self.model.fuse(scores[:, None].to(self._fusion_device))  # (N, K)
        return torch.softmax(fused.float(), dim=-1).cpu()

    @property
    def _fusion_device(self) -> torch.device:
        param = next(self.model.fusion.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    # -- videos -----------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[str | Path],
        spec: ClipSpec,
        num_frames: Sequence[int | None] | None = None,
        workers: int = 1,
        batch_clips: int = BATCH_CLIPS,
        progress: Progress | None = None,
    ) -> Iterator[VideoResult]:
        """Score videos; yields each :class:`VideoResult` as soon as its clips are fused.

        ``workers`` threads read and transform videos ahead of the model (at most a few videos
        ahead, so memory stays bounded); clips of consecutive videos share forward passes.
        Results come in completion order, which is the input order for shared backbones.
        """
        total, done = len(paths), 0
        pending: dict[int, _Pending] = {}
        clips: list[_Clip] = []  # queued, waiting for a forward pass
        ahead = max(4, 2 * workers + batch_clips // 3)
        with contextlib.closing(read_videos(paths, spec, num_frames, workers, ahead)) as reads:
            finished = False
            while not finished or clips:
                if not finished:
                    video = next(reads, None)
                    finished = video is None
                    if video is not None and video.error is not None:
                        done += 1
                        _report(progress, done, total)
                        yield video.failure()
                        continue
                    if video is not None:
                        clips += self._queue(video, pending)
                # Run a batch when enough clips wait, or when no more videos will come.
                if len(clips) < batch_clips and not finished:
                    continue
                batch, clips = clips[:batch_clips], clips[batch_clips:]
                for result in self._score_batch(batch, pending):
                    done += 1
                    _report(progress, done, total)
                    yield result

    def _queue(self, video: ReadVideo, pending: dict[int, _Pending]) -> list[_Clip]:
        """Note a read video as pending and return its clips, each with its backbone."""
        crops, n = video.clips.shape[:2]
        result = VideoResult(video.index, video.path, frames=video.frames, clips=crops * n)
        pending[video.index] = _Pending(result, (crops, n), video.started)
        position = self._positions(n)
        flat = video.clips.flatten(0, 1)  # (crops·n, 3, k, H, W)
        return [_Clip(video.index, j, position[j % n], flat[j]) for j in range(crops * n)]

    def _score_batch(self, batch: list[_Clip], pending: dict[int, _Pending]) -> list[VideoResult]:
        """One forward pass per backbone over ``batch``; the videos it completes, fused."""
        for pos in sorted({c.position for c in batch}):
            part = [c for c in batch if c.position == pos]
            scores = self.clip_scores(torch.stack([c.clip for c in part]), pos)
            for c, s in zip(part, scores, strict=True):
                pending[c.video].scores[c.flat] = s
        complete = []
        for vi in sorted({c.video for c in batch}):
            p = pending[vi]
            crops, n = p.shape
            if len(p.scores) < crops * n:
                continue
            scores = torch.stack([p.scores[j] for j in range(crops * n)])
            p.result.probs = self.fuse(scores.view(crops, n, -1)).numpy()
            p.result.latency = time.perf_counter() - p.started
            del pending[vi]
            complete.append(p.result)
        return complete

    def _positions(self, n: int) -> list[int]:
        """Backbone index of each of n time-ordered clips (0 for shared weights)."""
        if len(self.backbones) == 1:
            return [0] * n
        position = [0] * n
        for s, g in enumerate(group_clips(n, self.cfg.segments)):
            for j in g:
                position[int(j)] = s
        return position


def check_int8_device(device: torch.device) -> None:
    if device.type != "cpu":
        raise EngineError("--precision int8 runs on the CPU only (OpenVINO's CPU plugin)")


def frame_counts(paths: Sequence[str | Path]) -> list[int | None]:
    """Header frame counts (no decoding), None where the header cannot be read."""
    out: list[int | None] = []
    for p in paths:
        try:
            out.append(probe(p).num_frames)
        except VideoReadError:
            out.append(None)
    return out
