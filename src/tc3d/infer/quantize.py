"""int8 inference on OpenVINO: NNCF's post-training quantisation and its calibration record.

Why OpenVINO: measured against PyTorch's FX int8 (being deleted), torchao's PT2E with inductor,
and onnxruntime's QDQ int8 on the same clips (``benchmarks/cpu_backends.py``, figures in
docs/BENCHMARKS.md), OpenVINO's CPU plugin ran the int8 Res3D-18 fastest, with no compiler and
no compile stall, from a wheel on the registry.

The backbone is converted to an OpenVINO model (:mod:`tc3d.infer.openvino_runtime`, which also
compiles and caches it), and NNCF puts
FakeQuantize nodes on it: per-channel ranges for the weights, which come from the weights, and
one range per activation tensor, which comes from the calibration clips and so decides the int8
figures, and so does NNCF's bias correction, which shifts the biases after convolutions and the
classifier to undo the mean error int8 adds (on the demo's model it takes int8 from two changed
predictions in 64 to none). :class:`Calibration` holds exactly those numbers, the activation
ranges and the corrected biases (about 1 KB of JSON); with them, :func:`quantize_backbone`
rebuilds the same int8 model bit for bit without the videos: NNCF places its quantisers again
(placement depends on the graph only) and each range and bias is set to the stored one.
:mod:`tc3d.infer.calibration` says where a calibration is kept.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.infer.int8_graph import (
    CalibrationError,
    CalibrationMismatch,
    read_ranges,
    write_ranges,
)
from tc3d.infer.openvino_runtime import (
    OpenVinoBackbone,
    cache_path,
    compiled_from_cache,
    convert,
    openvino_version,
    write_cached,
)
from tc3d.models.tc3d import TC3D
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.decode import VideoReadError

log = logging.getLogger(__name__)

CALIBRATION_VIDEOS = 8
FORMAT = 3  # of the stored calibration; 1 was PyTorch FX's scale/zero-point pairs
INSTALL_HINT = "pip install 'tc3d[int8]' (OpenVINO and NNCF)"


def backend_versions() -> dict:
    """Versions of the int8 backend, or raise :class:`CalibrationError` saying how to get it.

    NNCF is only looked up here (importing it takes about a second): it is imported when a
    model is quantised, not when a cached int8 model is read back."""
    openvino = openvino_version()
    try:
        nncf = importlib.metadata.version("nncf")
    except importlib.metadata.PackageNotFoundError:
        openvino = None
    if openvino is None:
        raise CalibrationError(f"--precision int8 needs OpenVINO: {INSTALL_HINT}")
    return {"openvino": openvino, "nncf": nncf}


# ---------------------------------------------------------------------------------------------
# conversion, NNCF quantisation and the activation ranges


def _nncf_quantize(model, samples: Sequence[np.ndarray], correct_bias: bool = True):
    """NNCF's post-training quantisation with its full (not fast) bias correction, or none
    when the stored biases are put in afterwards (see the module doc)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    logging.getLogger("nncf").setLevel(logging.ERROR)  # (not nncf.set_log_level: it also
    # lowers the handlers it finds, which can be the application's own)
    params = AdvancedQuantizationParameters(disable_bias_correction=not correct_bias)
    # NNCF draws progress bars on stdout, which belongs to --json; a few seconds' work needs none.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # NNCF's notices about optional packages
        return nncf.quantize(model, nncf.Dataset(list(samples)), subset_size=len(samples),
                             fast_bias_correction=False, advanced_parameters=params)  # fmt: skip


def calibrate_backbone(backbone: nn.Module, clips: Sequence[torch.Tensor]) -> dict:
    """The activation ranges NNCF measures on ``clips`` (batches ``(N, 3, k, H, W)``, one per
    calibration video)."""
    versions = backend_versions()
    model = convert(backbone, clips[0])
    quantized = _nncf_quantize(model, [c.float().numpy() for c in clips])
    ranges = read_ranges(quantized, model)
    # the very model quantize_backbone would rebuild from these ranges: keep it for the run
    write_cached(_cache_path(backbone, ranges, clips[0][:1], versions), quantized)
    return ranges


def _build(backbone: nn.Module, ranges: dict, example: torch.Tensor):
    model = convert(backbone, example)
    g = torch.Generator().manual_seed(0)
    placeholder = torch.rand(example[:1].shape, generator=g).numpy()  # every range is replaced
    quantized = _nncf_quantize(model, [placeholder], correct_bias=False)
    write_ranges(quantized, ranges)
    return quantized


def _cache_path(backbone: nn.Module, ranges: dict, example: torch.Tensor, versions: dict) -> Path:
    """Where the int8 model of these weights, ranges, clip shape and backend versions is kept."""
    return cache_path("int8", backbone, example[:1], [ranges, versions])


def quantize_backbone(backbone: nn.Module, ranges: dict, example: torch.Tensor):
    """The int8 :class:`~tc3d.infer.openvino_runtime.OpenVinoBackbone` of a Res3D backbone with
    the activation ``ranges`` of :func:`calibrate_backbone`: bit for bit the model NNCF made
    on the calibration clips.

    Exporting, converting and placing quantisers takes seconds; the result is kept in tc3d's
    cache (``openvino/`` in :func:`~tc3d.modelfile.calibration.cache_dir`), so a later run
    of the same model reads it back and compiles in a fraction of a second."""
    path = _cache_path(backbone, ranges, example, backend_versions())
    return compiled_from_cache(path, lambda: _build(backbone, ranges, example))


# ---------------------------------------------------------------------------------------------
# the calibration record


@dataclass
class Calibration:
    """Activation ranges of every backbone of a model and how they were made."""

    ranges: list[dict]  # per backbone: its activation quantisers' layout and ranges (_ranges)
    clip: dict  # ClipSpec.to_dict() of the clips it saw (k and crop also shape the graph)
    videos: int  # how many videos it saw
    source: str  # "training videos" or "given videos"
    versions: dict = field(default_factory=dict)  # openvino and nncf that made it
    # where it lives in this run (not stored)
    file: str | None = None
    stored: bool = False  # read from the model file or the cache rather than made now
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "backend": "openvino",
            "ranges": self.ranges,
            "clip": self.clip,
            "videos": self.videos,
            "source": self.source,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        if not isinstance(d, dict):
            raise ValueError("unreadable int8 calibration")
        if d.get("format") == 1:
            raise ValueError("made for PyTorch's old FX int8, which tc3d no longer uses")
        if d.get("format") != FORMAT:
            raise ValueError(f"unknown int8 calibration format {d.get('format')!r}")
        ranges = [
            {
                "layout": str(b["layout"]),
                "values": [[float(v) for v in r] for r in b["values"]],
                "biases": {str(i): [float(v) for v in r] for i, r in b["biases"].items()},
            }
            for b in d["ranges"]
        ]
        ClipSpec.from_dict(d["clip"])  # validates
        return cls(ranges, dict(d["clip"]), int(d["videos"]), str(d["source"]),
                   dict(d.get("versions", {})))  # fmt: skip

    def example(self) -> torch.Tensor:
        """An input of the calibrated clip shape, to convert the backbone with."""
        return torch.zeros(1, *ClipSpec.from_dict(self.clip).clip_shape)


def calibrate(model: TC3D, spec: ClipSpec, paths: Sequence[str | Path], source: str):
    """Run up to :data:`CALIBRATION_VIDEOS` videos (their test clips, centre crop) through
    NNCF for every backbone; unreadable videos are skipped with a warning."""
    backend_versions()  # before any video is read: one line if the backend is not installed
    start = time.perf_counter()
    clips = []
    for p in list(paths)[:CALIBRATION_VIDEOS]:
        try:
            video, _ = load_clips(p, None, spec, None)  # (crops, n, 3, k, H, W)
        except VideoReadError as e:
            log.warning("int8 calibration skips %s: %s", e.path, e.reason)
            continue
        clips.append(video.flatten(0, 1))
    if not clips:
        raise CalibrationError("int8 calibration: none of the calibration videos is readable")
    calibration = calibrate_on_clips(model, spec, clips, source)
    calibration.seconds = time.perf_counter() - start
    return calibration


def calibrate_on_clips(
    model: TC3D, spec: ClipSpec, clips: Sequence[torch.Tensor], source: str
) -> Calibration:
    """The calibration of every backbone on ``clips`` (one batch ``(N, 3, k, H, W)`` per
    video, shaped by ``spec``), made without reading videos: ``source`` says what they are."""
    ranges = [calibrate_backbone(b, clips) for b in model.backbones]
    return Calibration(ranges, spec.to_dict(), len(clips), source, backend_versions())


def quantize_model(model: TC3D, calibration: Calibration) -> list[OpenVinoBackbone]:
    """The int8 backbones of ``model`` (one per segment position when weights are unshared)."""
    if len(calibration.ranges) != len(model.backbones):
        raise CalibrationMismatch("the stored int8 calibration is for another model")
    example = calibration.example()
    return [
        quantize_backbone(b, r, example)
        for b, r in zip(model.backbones, calibration.ranges, strict=True)
    ]
