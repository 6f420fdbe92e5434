"""The inference engine: video files in, video-level class probabilities out, as fast as it goes.

Everything that runs a trained model (``test``, ``predict``, ``bench``, ``stream``, ``tag``,
``features``, ``similarity``, ``cam``, ``anomaly``) goes through here, so a speed-up lands
everywhere at once. The pipeline is the paper's fast path (Table IV,
"S clips per video"): the sampler asks for S×k frame indices, the reader seeks and decodes only
those (:mod:`tc3d.data.video`), and the clips go through one shared Res3D-18. Three things
make it fast on a CPU:

* decoding and transforms run in background threads (PyAV and torch release the GIL) while
  the model works on the previous batch, so the model never waits for the file;
* clips of several videos are batched into one forward pass;
* ``precision``: ``fp32`` (channels-last-3d), ``bf16`` (autocast) or ``int8`` (PyTorch's x86
  static quantisation through FX graph mode: quantised conv3d kernels, observers calibrated
  on a few videos; the calibration is cached on disk, keyed by the weights and the videos, so
  it is done once).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.data.dataset import ClipSpec, load_clips
from tc3d.data.sampling import group_clips
from tc3d.data.video import VideoReadError, probe
from tc3d.device import autocast, memory_format, to_device
from tc3d.models.tc3d import TC3D

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
BATCH_CLIPS = 12  # clips per forward pass: large enough to batch across videos, small latency
CALIBRATION_VIDEOS = 8
CACHE_VERSION = 2  # 2: the quantised graph also returns the res5b map (_MapsAndScores)


class EngineError(RuntimeError):
    """The engine cannot run as asked (e.g. int8 on a device without quantised kernels)."""


def cache_dir() -> Path:
    """Where int8 calibrations are kept: ``$TC3D_CACHE`` or ``~/.cache/tc3d``."""
    if os.environ.get("TC3D_CACHE"):
        return Path(os.environ["TC3D_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "tc3d"


# ---------------------------------------------------------------------------------------------
# int8: FX graph-mode static quantisation (x86 backend: fbgemm + oneDNN kernels)


class _MapsAndScores(nn.Module):
    """A Res3D backbone that returns its last conv map (res5b) beside the class scores.

    Quantised in this form, one int8 graph serves both the classifier commands and those
    that need the map (``features``, ``cam``); the extra output costs one dequantisation of
    a small tensor. In eval mode the scores equal ``backbone(x)`` (dropout is the identity).
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.net = backbone

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.res5b(x)
        return fmap, self.net.fc(self.net.avgpool(fmap).flatten(1))


def _fx_prepare(backbone: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = "x86"
    float_model = copy.deepcopy(backbone).float().eval().to(memory_format=torch.contiguous_format)
    return prepare_fx(float_model, get_default_qconfig_mapping("x86"), (example,))


def _observer_state(prepared: nn.Module) -> dict[str, torch.Tensor]:
    """Only the activation observers' statistics: weight ranges come from the weights."""
    return {k: v for k, v in prepared.state_dict().items() if "activation_post_process" in k}


def quantize_backbone(
    backbone: nn.Module,
    calibration: Sequence[torch.Tensor],
    observers: dict[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """int8 copy of a Res3D backbone (a ``_MapsAndScores``: ``x -> (res5b map, scores)``);
    returns it and the observer statistics (for the cache).

    ``calibration`` holds clip batches ``(N, 3, k, H, W)``; with ``observers`` from an earlier
    calibration they are not run at all (only the first one's shape is used for tracing).
    """
    from torch.ao.quantization.quantize_fx import convert_fx

    # torch 2.13 marks torch.ao's FX API deprecated in favour of torchao's pt2e, which it no
    # longer ships; FX is still the x86 int8 path that works out of the box, so its notices
    # are silenced here rather than shown on every command.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = _fx_prepare(_MapsAndScores(backbone), calibration[0][:1])
        if observers is None:
            with torch.no_grad():
                for clips in calibration:
                    prepared(clips.float())
            observers = _observer_state(prepared)
        else:
            missing = prepared.load_state_dict(observers, strict=False).missing_keys
            if any("activation_post_process" in k for k in missing):
                raise EngineError("cached int8 calibration does not match the model")
        return convert_fx(prepared).eval(), observers


def _weights_digest(model: nn.Module, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _files_digest(paths: Sequence[str | Path]) -> str:
    parts = []
    for p in paths:
        st = Path(p).stat()
        parts.append(f"{Path(p).resolve()}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(parts)


# ---------------------------------------------------------------------------------------------
# the engine


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


class Engine:
    """A model ready to score clips and videos at a given precision on a given device."""

    def __init__(
        self,
        model: TC3D,
        device: torch.device,
        precision: str = "fp32",
        calibration: Sequence[str | Path] = (),
        spec: ClipSpec | None = None,
        use_cache: bool = True,
    ):
        if precision not in PRECISIONS:
            raise EngineError(f"--precision must be one of {PRECISIONS}, not {precision!r}")
        self.model = model.eval()
        self.device = device
        self.precision = precision
        self.calibration_info: dict | None = None
        self.backbones: list[nn.Module] = list(model.backbones)
        if precision == "int8":
            if device.type != "cpu":
                raise EngineError("--precision int8 runs on the CPU only (x86 quantised kernels)")
            if spec is None or not calibration:
                raise EngineError("int8 needs a few videos to calibrate on")
            self._quantize(spec, calibration, use_cache)
        else:
            self.model.to(device=device, memory_format=memory_format(device))

    @property
    def cfg(self):
        return self.model.cfg

    def _quantize(self, spec: ClipSpec, paths: Sequence[str | Path], use_cache: bool) -> None:
        paths = list(paths)[:CALIBRATION_VIDEOS]
        key = _weights_digest(self.model, f"{CACHE_VERSION}|{spec}|{_files_digest(paths)}")
        cache = cache_dir() / f"int8-{key}.pt"
        cached = None
        if use_cache and cache.is_file():
            try:
                cached = torch.load(cache, map_location="cpu", weights_only=True)
            except Exception as e:  # a damaged cache is recomputed, never fatal
                log.warning("ignoring unreadable int8 cache %s (%s)", cache, e)
        clips = []
        if cached is None:
            for p in paths:
                try:
                    video, _ = load_clips(p, None, spec, None)  # (crops, n, 3, k, H, W)
                except VideoReadError as e:
                    log.warning("calibration skips %s: %s", e.path, e.reason)
                    continue
                clips.append(video.flatten(0, 1))
            if not clips:
                raise EngineError("int8 calibration: none of the calibration videos is readable")
        else:
            k, crop = spec.sampling.frames, spec.crop
            clips = [torch.zeros(1, 3, k, crop, crop)]
        quantized, states = [], []
        start = time.perf_counter()
        for i, backbone in enumerate(self.backbones):
            observers = cached["observers"][i] if cached is not None else None
            q, obs = quantize_backbone(backbone, clips, observers)
            quantized.append(q)
            states.append(obs)
        if cached is None and use_cache:
            from tc3d.io import atomic_save

            try:
                atomic_save({"observers": states, "calibration": [str(p) for p in paths]}, cache)
            except OSError as e:
                log.warning("could not write the int8 cache %s (%s)", cache, e)
        self.backbones = quantized
        self.calibration_info = {
            "videos": len(paths),
            "cached": cached is not None,
            "file": str(cache),
            "seconds": time.perf_counter() - start,
        }

    # -- clips ------------------------------------------------------------------------------

    @torch.no_grad()
    def clip_scores(self, clips: torch.Tensor, position: int = 0) -> torch.Tensor:
        """Class scores ``(N, K)`` (float32, CPU) for clips ``(N, 3, k, H, W)``.

        ``position`` picks the backbone of a model with unshared weights (segment position).
        """
        backbone = self.backbones[position if len(self.backbones) > 1 else 0]
        if self.precision == "int8":
            return backbone(clips.float())[1].float()
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
        if self.precision == "int8":
            fmap, scores = backbone(clips.float())
            return fmap.float(), scores.float()
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
        """Clip scores of one video ``(crops, n, K)`` -> class probabilities ``(K,)``.

        The clips are grouped into S contiguous groups and averaged within each (allclips
        gives more than S), fused per crop, softmaxed, and the crops averaged.
        """
        groups = group_clips(scores.shape[1], self.cfg.segments)
        per_segment = torch.stack([scores[:, g].mean(1) for g in groups], dim=1)  # (crops,S,K)
        fusion_param = next(self.model.fusion.parameters(), None)
        if fusion_param is not None:
            per_segment = per_segment.to(fusion_param.device)
        fused = self.model.fuse(per_segment)
        return torch.softmax(fused.float().cpu(), dim=-1).mean(0)

    # -- videos -----------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[str | Path],
        spec: ClipSpec,
        num_frames: Sequence[int | None] | None = None,
        workers: int = 1,
        batch_clips: int = BATCH_CLIPS,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[VideoResult]:
        """Score videos; yields each :class:`VideoResult` as soon as its clips are fused.

        ``workers`` threads read and transform videos ahead of the model (at most a few videos
        ahead, so memory stays bounded); clips of consecutive videos share forward passes.
        Results come in completion order, which is the input order for shared backbones.
        """
        total = len(paths)
        num_frames = list(num_frames) if num_frames is not None else [None] * total
        # Bounded: readers stay a few videos ahead of the model, never the whole data set.
        ready: queue.Queue = queue.Queue(maxsize=max(4, 2 * workers + batch_clips // 3))
        stop = threading.Event()
        next_index = iter(range(total))
        lock = threading.Lock()

        def load(i: int):
            started = time.perf_counter()
            try:
                video, frames = load_clips(paths[i], num_frames[i], spec, None)
                return i, started, video, frames, None
            except VideoReadError as e:
                return i, started, None, 0, e.reason
            except Exception as e:  # noqa: BLE001 - one bad file never stops the run
                return i, started, None, 0, f"{type(e).__name__}: {e}"

        def reader():
            while not stop.is_set():
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                item = load(i)
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            ready.put(None)  # one end marker per reader

        readers = [
            threading.Thread(target=reader, daemon=True, name=f"tc3d-reader-{r}")
            for r in range(max(1, workers))
        ]
        for t in readers:
            t.start()
        alive = len(readers)
        pending: dict[int, _Pending] = {}
        # Queued clips: (video index, flat clip index, backbone position, clip tensor)
        clips: list[tuple[int, int, int, torch.Tensor]] = []
        done = 0
        finished = False
        try:
            while not finished or clips:
                if not finished:
                    item = ready.get()
                    if item is None:
                        alive -= 1
                        finished = alive == 0
                    else:
                        i, started, video, frames, error = item
                        result = VideoResult(i, str(paths[i]), frames=frames)
                        if error is not None:
                            result.error = error
                            result.latency = time.perf_counter() - started
                            done += 1
                            if progress:
                                progress(done, total)
                            yield result
                            continue
                        crops, n = video.shape[:2]
                        result.clips = crops * n
                        pending[i] = _Pending(result, (crops, n), started)
                        position = self._positions(n)
                        flat = video.flatten(0, 1)  # (crops·n, 3, k, H, W)
                        clips += [(i, j, position[j % n], flat[j]) for j in range(crops * n)]
                # Run a batch when enough clips wait, or when no more videos will come.
                if len(clips) < batch_clips and not finished:
                    continue
                batch, clips = clips[:batch_clips], clips[batch_clips:]
                for pos in sorted({c[2] for c in batch}):
                    part = [c for c in batch if c[2] == pos]
                    scores = self.clip_scores(torch.stack([c[3] for c in part]), pos)
                    for (vi, j, _, _), s in zip(part, scores):
                        pending[vi].scores[j] = s
                for vi in sorted({c[0] for c in batch}):
                    p = pending[vi]
                    crops, n = p.shape
                    if len(p.scores) < crops * n:
                        continue
                    scores = torch.stack([p.scores[j] for j in range(crops * n)])
                    p.result.probs = self.fuse(scores.view(crops, n, -1)).numpy()
                    p.result.latency = time.perf_counter() - p.started
                    del pending[vi]
                    done += 1
                    if progress:
                        progress(done, total)
                    yield p.result
        finally:
            stop.set()
            for t in readers:  # drain, so no reader stays blocked on a full queue
                while t.is_alive():
                    with contextlib.suppress(queue.Empty):
                        ready.get(timeout=0.05)

    def _positions(self, n: int) -> list[int]:
        """Backbone index of each of n time-ordered clips (0 for shared weights)."""
        if len(self.backbones) == 1:
            return [0] * n
        position = [0] * n
        for s, g in enumerate(group_clips(n, self.cfg.segments)):
            for j in g:
                position[int(j)] = s
        return position


def calibration_videos(loaded, fallback: Sequence[str | Path] = ()) -> list[str]:
    """A few training videos of the data set a checkpoint was trained on, else ``fallback``.

    int8 observers should see the kind of video the model will see; the training list is the
    natural source. When it is gone (a model copied elsewhere), the videos being processed are
    used instead.
    """
    from tc3d.checkpoint import load_checkpoint
    from tc3d.data.formats import load_dataset

    paths: list[str] = []
    try:
        cfg = load_checkpoint(loaded.source).get("train_config") or {}
        if cfg.get("data") and Path(cfg["data"]).exists():
            split = load_dataset(cfg["data"], cfg.get("format"), cfg.get("split", 1))
            items = list(split.train)
            step = max(1, len(items) // CALIBRATION_VIDEOS)
            paths = [str(it.path) for it in items[::step][:CALIBRATION_VIDEOS]]
    except Exception as e:  # noqa: BLE001 - any problem: fall back to the given videos
        log.info("no training videos for calibration (%s); using the input videos", e)
    if not paths:
        paths = [str(p) for p in list(fallback)[:CALIBRATION_VIDEOS]]
    return [p for p in paths if Path(p).exists()]


def make_engine(
    loaded,
    device: torch.device,
    precision: str = "fp32",
    fallback_videos: Sequence[str | Path] = (),
    calibration: Sequence[str | Path] | None = None,
) -> Engine:
    """The engine for a loaded checkpoint; int8 calibrates on its training videos (cached)."""
    if precision == "int8" and calibration is None:
        calibration = calibration_videos(loaded, fallback_videos)
    return Engine(loaded.model, device, precision, calibration or (), loaded.clip)


def frame_counts(paths: Sequence[str | Path]) -> list[int | None]:
    """Header frame counts (no decoding), None where the header cannot be read."""
    out: list[int | None] = []
    for p in paths:
        try:
            out.append(probe(p).num_frames)
        except VideoReadError:
            out.append(None)
    return out
