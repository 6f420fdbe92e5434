"""``tc3d bench``: frames per second of the whole pipeline on real video files.

The timed span of each pass starts before the first file is opened and ends after the last
video's argmax, so ``fps`` counts what a user waits for: open, decode, sample S clips,
transform, model, fusion. Model loading, int8 calibration and a warm-up on a few videos come
before it (a server pays them once; fp32 on OpenVINO converts the model then, or reads it from
the cache). ``--baseline`` runs the conventional pipeline in the same process right after:
decode every frame of the file, then take the same clips and crops, and run the fp32 model
eagerly in PyTorch one video at a time. Its top-1 predictions are the fp32 reference for
``agreement``. Rows of the paper's Table IV are ``--protocol sclips|allclips`` ×
``--crops 1|10``.

An application of the model like ``tag``: it times a :class:`tc3d.api.Model`'s engine and
checks its top-1 against the same model's fp32 engine.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tc3d.api import Model, load_model
from tc3d.datasets.files import list_videos
from tc3d.device import resolve_device
from tc3d.infer.calibration import make_engine, weights_calibration
from tc3d.infer.engine import BATCH_CLIPS, Engine, read_videos
from tc3d.modelfile.calibration import cache_dir
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.models.complexity import count_flops, count_parameters
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec, clips_from_frames
from tc3d.video.decode import VideoReadError, read_all_frames
from tc3d.video.sampling import SamplingConfig, eval_indices

log = logging.getLogger(__name__)

SYNTH_FRAMES = 175  # ~7 s at 25 fps: UCF101's mean clip length


@dataclass
class BenchConfig:
    model: str | None = None  # a checkpoint; None: a fresh Res3D-18 of ``width``
    width: float = 1.0
    num_classes: int = 101
    videos: str | None = None  # a folder of video files
    synthetic: int | None = None  # or write this many synthetic videos first
    synthetic_dir: str | None = None  # where (default: the tc3d cache)
    precision: str = "fp32"
    baseline: bool = False
    protocol: str = "sclips"
    crops: int = 1
    segments: int = 3  # for a fresh model
    frames: int = 8
    crop: int = 112
    batch_clips: int = BATCH_CLIPS
    workers: int = 1  # reader threads
    warmup: int = 2  # videos run before the clock starts
    device: str = "auto"
    breakdown: bool = False  # also time decoding alone and the model alone


def synthetic_videos(count: int, folder: str | Path, frames: int = SYNTH_FRAMES) -> list[Path]:
    """``count`` synthetic 320×240 25-fps mpeg4 videos of ``frames`` frames (kept for reuse)."""
    from tc3d.synthetic.synth import VideoSpec, class_names, write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = class_names()
    paths = []
    for i in range(count):
        spec = VideoSpec(names[i % len(names)], 1 + i // len(names), 1, seed=0, frames=frames)
        path = folder / f"bench_{i:04d}_{frames}f.avi"
        if not path.exists():
            write_video(spec, path)
        paths.append(path)
    return paths


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": [round(x, 2) for x in load],
    }


def _conventional_clips(path: Path, spec: ClipSpec) -> tuple[torch.Tensor, int]:
    """The conventional reader: decode every frame, then pick the sampled ones.

    Same indices, scale and crops as the fast path, through the same clip builder (only the
    sampled frames are resized, which favours the baseline); returns
    ``(crops, n, 3, k, H, W)`` and the frame count.
    """
    frames = read_all_frames(path)  # (T, H, W, 3): every frame, decoded and converted to RGB
    indices = eval_indices(len(frames), spec.sampling, spec.protocol)  # (n, k)
    return clips_from_frames(frames, indices, spec), len(frames)


def baseline_pass(
    engine: Engine, paths: Sequence[Path], spec: ClipSpec, progress=None
) -> tuple[dict[int, np.ndarray], int, float]:
    """Conventional pipeline, timed: one video at a time, every frame decoded, fp32 eager.

    ``engine`` must be an fp32 engine on PyTorch (``runtime="torch"``); returns
    ``(probs by index, frames, seconds)``.
    """
    probs, frames = {}, 0
    start = time.perf_counter()
    for i, path in enumerate(paths):
        try:
            video, num = _conventional_clips(path, spec)
        except VideoReadError:
            continue
        crops, n = video.shape[:2]
        positions = engine._positions(n)
        flat = video.flatten(0, 1)
        scores = torch.stack(
            [engine.clip_scores(flat[j : j + 1], positions[j % n])[0] for j in range(len(flat))]
        )
        probs[i] = engine.fuse(scores.view(crops, n, -1)).numpy()
        frames += num
        if progress:
            progress(i + 1, len(paths))
    return probs, frames, time.perf_counter() - start


def fast_pass(engine: Engine, paths: Sequence[Path], spec: ClipSpec, cfg: BenchConfig, progress):
    start = time.perf_counter()  # the clock includes reading each file's header (probe)
    results = list(engine.run(paths, spec, None, cfg.workers, cfg.batch_clips, progress=progress))
    seconds = time.perf_counter() - start
    return results, seconds


def _model(cfg: BenchConfig, paths: Sequence[Path]) -> Model:
    """The model to time, its engine prepared: a checkpoint's (int8: the calibration stored
    with it, made if none), or a fresh seeded Res3D-18 (int8: calibrated on the bench videos,
    cached by its weights)."""
    if cfg.model:
        model = load_model(cfg.model, cfg.device, cfg.precision)
        model.engine(paths)
        return model
    device = resolve_device(cfg.device)
    torch.manual_seed(0)
    net = TC3D(ModelConfig(cfg.num_classes, width=cfg.width, segments=cfg.segments)).eval()
    spec = ClipSpec(sampling=SamplingConfig(cfg.segments, cfg.frames), crop=cfg.crop)
    calibration = weights_calibration(net, spec, paths) if cfg.precision == "int8" else None
    loaded = LoadedModel(net, [str(i) for i in range(cfg.num_classes)], spec, Path())
    engine = make_engine(loaded, device, cfg.precision, calibration=calibration)
    return Model(loaded, device, cfg.precision, _engine=engine)


def _videos(cfg: BenchConfig) -> list[Path]:
    if cfg.videos:
        paths = list_videos(cfg.videos)
        if not paths:
            raise ValueError(f"no video files under {cfg.videos}")
        return paths
    folder = cfg.synthetic_dir or cache_dir() / "bench_videos"
    return synthetic_videos(cfg.synthetic or 20, folder)


def run_bench(
    cfg: BenchConfig, progress: Callable[[str], Callable] | None = None, console=None
) -> dict:
    """Time the fast pipeline (and the baseline); returns the JSON of ``tc3d bench``."""
    paths = _videos(cfg)
    info = machine()  # before the model is loaded and calibrated
    model = _model(cfg, paths)
    spec = replace(model.clip, protocol=cfg.protocol, crops=cfg.crops)
    engine = model.engine()
    warm = paths[: max(0, cfg.warmup)]
    if warm:
        list(engine.run(warm, spec, None, cfg.workers, cfg.batch_clips))

    def bar(name):
        return progress(name) if progress else _NoBar()

    with bar(f"timing {cfg.precision} pipeline") as update:
        results, seconds = fast_pass(engine, paths, spec, cfg, update)
    out = _figures(model, results, seconds, spec, cfg)
    out["machine"] = {**info, **_accelerator(model.device)}
    if cfg.breakdown:
        out["breakdown"] = stage_times(engine, paths, spec, cfg, seconds)
    out["calibration"] = engine.calibration_info
    top1 = {r.index: int(np.argmax(r.probs)) for r in results if r.error is None}
    reference = fp32 = replace(model, precision="fp32", _engine=None)
    if cfg.baseline:
        eager = Engine(model.loaded.model, model.device, "fp32", runtime="torch")
        with bar("timing the conventional pipeline") as update:
            out["baseline"], reference = _baseline(eager, paths, spec, update)
        out["speedup"] = out["fps"] / out["baseline"]["fps"]
    elif cfg.precision != "fp32":
        reference = {
            r.index: int(np.argmax(r.probs))
            for r in fp32.engine().run(paths, spec, None, cfg.workers, cfg.batch_clips)
            if r.error is None
        }
    else:
        reference = None
    out["agreement"] = _agreement(top1, reference)
    out["load_average_after"] = machine()["load_average"]
    return out


def _figures(model: Model, results, seconds: float, spec: ClipSpec, cfg: BenchConfig) -> dict:
    """The timed pass's figures, in the order ``tc3d bench --json`` prints them."""
    net = model.loaded.model
    ok = [r for r in results if r.error is None]
    frames = sum(r.frames for r in ok)
    clips = sum(r.clips for r in ok)
    latencies = sorted(1000 * r.latency for r in ok)
    flops_clip = count_flops(net, spec.sampling.frames, spec.crop, clips=1)
    return {
        "videos": len(ok),
        "frames": frames,
        "seconds": seconds,
        "videos_per_s": len(ok) / seconds,
        "fps": frames / seconds,
        "clips_per_s": clips / seconds,
        "latency_ms_p50": float(np.median(latencies)) if latencies else None,
        "gflops_per_video": flops_clip * clips / max(1, len(ok)) / 1e9,
        "params": count_parameters(net.backbone) * len(net.backbones),
        "precision": cfg.precision,
        "runtime": model.engine().runtime,
        "protocol": cfg.protocol,
        "crops": cfg.crops,
        "clips_per_video": clips / max(1, len(ok)),
        "width": net.cfg.width,
        "segments": net.cfg.segments,
        "batch_clips": cfg.batch_clips,
        "workers": cfg.workers,
        "failed": [{"path": r.path, "error": r.error} for r in results if r.error is not None],
    }


def stage_times(
    engine: Engine, paths: Sequence[Path], spec: ClipSpec, cfg: BenchConfig, seconds: float
) -> dict:
    """Each stage of the pipeline alone on the same videos, against the whole pipeline's
    ``seconds``: the readers (open, seek, decode, transform) with ``cfg.workers`` threads and no
    model, then the model alone on the clips they read (batches of ``cfg.batch_clips``, moved
    to the device and back as in the pipeline). The pipeline overlaps the two, so the slower
    one sets its pace: a share near 100% names the limit (on a fast GPU, decoding)."""
    ahead = max(4, 2 * cfg.workers + cfg.batch_clips // 3)  # as Engine.run reads ahead
    start = time.perf_counter()
    read = [v for v in read_videos(paths, spec, None, cfg.workers, ahead) if v.error is None]
    decode_s = time.perf_counter() - start
    clips = torch.cat([v.clips.flatten(0, 1) for v in read])  # (N, 3, k, H, W)
    start = time.perf_counter()
    for i in range(0, len(clips), cfg.batch_clips):
        engine.clip_scores(clips[i : i + cfg.batch_clips])  # returns on the CPU: synchronised
    model_s = time.perf_counter() - start
    return {
        "decode_seconds": decode_s,
        "decode_fps": sum(v.frames for v in read) / decode_s,
        "decode_videos_per_s": len(read) / decode_s,
        "model_seconds": model_s,
        "model_clips_per_s": len(clips) / model_s,
        "decode_share": 100.0 * decode_s / seconds,
        "model_share": 100.0 * model_s / seconds,
        "bound": "decode" if decode_s > model_s else "model",
    }


def _accelerator(device: torch.device) -> dict:
    """The GPU the model ran on (none on the CPU)."""
    if device.type != "cuda":
        return {}
    return {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}


def _baseline(engine: Engine, paths: Sequence[Path], spec: ClipSpec, update):
    """The conventional pipeline's figures and its top-1 per video (after a warm-up)."""
    baseline_pass(engine, paths[:1], spec)  # warm-up
    probs, frames, seconds = baseline_pass(engine, paths, spec, update)
    figures = {
        "videos_per_s": len(probs) / seconds,
        "fps": frames / seconds,
        "seconds": seconds,
        "frames": frames,
        "precision": "fp32",
        "runtime": engine.runtime,
    }
    return figures, {i: int(np.argmax(p)) for i, p in probs.items()}


def _agreement(top1: dict[int, int], reference: dict[int, int] | None) -> float | None:
    """How often (%) the timed run's top-1 is the fp32 reference's; fp32 is its own."""
    if reference is None:
        return 100.0
    both = [i for i in top1 if i in reference]
    return 100.0 * sum(top1[i] == reference[i] for i in both) / len(both) if both else None


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
