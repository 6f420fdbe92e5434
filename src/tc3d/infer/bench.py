"""``tc3d bench``: frames per second of the whole pipeline on real video files.

The timed span of each pass starts before the first file is opened and ends after the last
video's argmax, so ``fps`` counts what a user waits for: open, decode, sample S clips,
transform, model, fusion. Model loading, int8 calibration and a warm-up on a few videos come
before it (a server pays them once). ``--baseline`` runs the conventional pipeline in the same
process right after: decode every frame of the file, then take the same clips and crops, and
run the fp32 model eagerly one video at a time. Its top-1 predictions are the fp32 reference
for ``agreement``. Rows of the paper's Table IV are ``--protocol sclips|allclips`` ×
``--crops 1|10``.
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

from tc3d.datasets.files import list_videos
from tc3d.infer.engine import BATCH_CLIPS, Engine
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

    ``engine`` must be an fp32 engine; returns ``(probs by index, frames, seconds)``.
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


def _model(cfg: BenchConfig):
    """The model to time and how to feed it: a checkpoint's, or a fresh seeded Res3D-18."""
    if cfg.model:
        from tc3d.modelfile.checkpoint import load_model_file

        loaded = load_model_file(cfg.model)
        return loaded.model, loaded.clip, loaded
    torch.manual_seed(0)
    model = TC3D(ModelConfig(cfg.num_classes, width=cfg.width, segments=cfg.segments)).eval()
    sampling = SamplingConfig(cfg.segments, cfg.frames)
    return model, ClipSpec(sampling=sampling, crop=cfg.crop), None


def run_bench(
    cfg: BenchConfig, progress: Callable[[str], Callable] | None = None, console=None
) -> dict:
    """Time the fast pipeline (and the baseline); returns the JSON of ``tc3d bench``."""
    from tc3d.device import resolve_device
    from tc3d.infer.calibration import cache_dir, weights_calibration
    from tc3d.infer.engine import make_engine

    device = resolve_device(cfg.device)
    if cfg.videos:
        paths = list_videos(cfg.videos)
        if not paths:
            raise ValueError(f"no video files under {cfg.videos}")
    else:
        folder = cfg.synthetic_dir or cache_dir() / "bench_videos"
        paths = synthetic_videos(cfg.synthetic or 20, folder)
    model, spec, loaded = _model(cfg)
    spec = replace(spec, protocol=cfg.protocol, crops=cfg.crops)
    info = machine()

    if loaded is not None:  # int8: the calibration stored with the model (made if none)
        engine = make_engine(loaded, device, cfg.precision, fallback_videos=paths)
    else:
        calibration = None
        if cfg.precision == "int8":
            own = replace(spec, protocol="sclips", crops=1)  # as a model file's calibration
            calibration = weights_calibration(model, own, paths)
        engine = Engine(model, device, cfg.precision, calibration)
    warm = paths[: max(0, cfg.warmup)]
    if warm:
        list(engine.run(warm, spec, None, cfg.workers, cfg.batch_clips))

    def bar(name):
        return progress(name) if progress else _NoBar()

    with bar(f"timing {cfg.precision} pipeline") as update:
        results, seconds = fast_pass(engine, paths, spec, cfg, update)
    ok = [r for r in results if r.error is None]
    frames = sum(r.frames for r in ok)
    clips = sum(r.clips for r in ok)
    latencies = sorted(1000 * r.latency for r in ok)
    flops_clip = count_flops(model, spec.sampling.frames, spec.crop, clips=1)
    out = {
        "videos": len(ok),
        "frames": frames,
        "seconds": seconds,
        "videos_per_s": len(ok) / seconds,
        "fps": frames / seconds,
        "clips_per_s": clips / seconds,
        "latency_ms_p50": float(np.median(latencies)) if latencies else None,
        "gflops_per_video": flops_clip * clips / max(1, len(ok)) / 1e9,
        "params": count_parameters(model.backbone) * len(model.backbones),
        "precision": cfg.precision,
        "protocol": cfg.protocol,
        "crops": cfg.crops,
        "clips_per_video": clips / max(1, len(ok)),
        "width": model.cfg.width,
        "segments": model.cfg.segments,
        "batch_clips": cfg.batch_clips,
        "workers": cfg.workers,
        "failed": [{"path": r.path, "error": r.error} for r in results if r.error is not None],
        "machine": info,
        "calibration": engine.calibration_info,
    }
    top1 = {r.index: int(np.argmax(r.probs)) for r in ok}
    reference = None
    if cfg.baseline:
        reference_engine = Engine(model, device, "fp32")
        one = paths[:1]
        baseline_pass(reference_engine, one, spec)  # warm-up
        with bar("timing the conventional pipeline") as update:
            probs, base_frames, base_seconds = baseline_pass(reference_engine, paths, spec, update)
        out["baseline"] = {
            "videos_per_s": len(probs) / base_seconds,
            "fps": base_frames / base_seconds,
            "seconds": base_seconds,
            "frames": base_frames,
            "precision": "fp32",
        }
        out["speedup"] = out["fps"] / out["baseline"]["fps"]
        reference = {i: int(np.argmax(p)) for i, p in probs.items()}
    elif cfg.precision != "fp32":
        reference_engine = Engine(model, device, "fp32")
        reference = {
            r.index: int(np.argmax(r.probs))
            for r in reference_engine.run(paths, spec, None, cfg.workers, cfg.batch_clips)
            if r.error is None
        }
    if reference is not None:
        both = [i for i in top1 if i in reference]
        agree = sum(top1[i] == reference[i] for i in both)
        out["agreement"] = 100.0 * agree / len(both) if both else None
    else:
        out["agreement"] = 100.0  # fp32 is its own reference
    out["load_average_after"] = machine()["load_average"]
    return out


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
