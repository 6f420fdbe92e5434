"""int8 inference on OpenVINO: NNCF's post-training quantisation and its calibration record.

Why OpenVINO: measured against PyTorch's FX int8 (being deleted), torchao's PT2E with inductor,
and onnxruntime's QDQ int8 on the same clips (``benchmarks/cpu_backends.py``, figures in
docs/BENCHMARKS.md), OpenVINO's CPU plugin ran the int8 Res3D-18 fastest, with no compiler and
no compile stall, from a wheel on the registry.

The backbone is exported (``torch.export``), converted to an OpenVINO model, and NNCF puts
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
import copy
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.errors import first_line
from tc3d.infer.export import dynamic_batch_program
from tc3d.infer.int8_graph import (
    CalibrationError,
    CalibrationMismatch,
    read_ranges,
    write_ranges,
)
from tc3d.io import atomic_write_files
from tc3d.modelfile.calibration import cache_dir
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
    try:
        import openvino

        nncf = importlib.metadata.version("nncf")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        raise CalibrationError(f"--precision int8 needs OpenVINO: {INSTALL_HINT}") from None
    return {"openvino": openvino.__version__.split("-")[0], "nncf": nncf}


# ---------------------------------------------------------------------------------------------
# conversion, NNCF quantisation and the activation ranges


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


def _openvino_model(backbone: nn.Module, example: torch.Tensor):
    """The fp32 OpenVINO model of ``x -> (res5b map, scores)`` with a dynamic batch, converted
    from ``torch.export`` (not from TorchScript, which PyTorch has deprecated)."""
    import openvino as ov

    net = copy.deepcopy(_MapsAndScores(backbone)).cpu().float().eval()
    net = net.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        program = dynamic_batch_program(net, example[:1].float(), max_batch=4096)
    with warnings.catch_warnings():
        # OpenVINO's reader of exported programs still uses torch.utils._pytree names that
        # torch has deprecated; that is OpenVINO's call to make, not the user's to read.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ov.convert_model(program)


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


@functools.cache
def _core():
    """One OpenVINO runtime per process (reading and compiling models)."""
    import openvino as ov

    return ov.Core()


def _compile(model):
    """Compiled for this CPU: fp32 wherever the graph is not int8 (OpenVINO would otherwise
    run those parts in bf16 on CPUs that have it, and figures would differ between machines)."""
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
    return _core().compile_model(model, "CPU", config)


class Int8Backbone:
    """An int8 backbone compiled by OpenVINO, called like the float one it came from:
    clips ``(N, 3, k, H, W)`` -> (res5b maps, class scores), float32 torch tensors.

    Each thread gets its own inference request (a request runs one call at a time), so the
    page's connections and the stream workers can share one engine.
    """

    def __init__(self, compiled):
        self.compiled = compiled
        self._local = threading.local()

    def __call__(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: clips.detach().float().contiguous().numpy()})
        fmap, scores = (request.get_output_tensor(i).data.copy() for i in range(2))
        return torch.from_numpy(fmap), torch.from_numpy(scores)


def calibrate_backbone(backbone: nn.Module, clips: Sequence[torch.Tensor]) -> dict:
    """The activation ranges NNCF measures on ``clips`` (batches ``(N, 3, k, H, W)``, one per
    calibration video)."""
    versions = backend_versions()
    model = _openvino_model(backbone, clips[0])
    quantized = _nncf_quantize(model, [c.float().numpy() for c in clips])
    ranges = read_ranges(quantized, model)
    # the very model quantize_backbone would rebuild from these ranges: keep it for the run
    _write_cached(_cache_path(backbone, ranges, clips[0][:1], versions), quantized)
    return ranges


def _build(backbone: nn.Module, ranges: dict, example: torch.Tensor):
    model = _openvino_model(backbone, example)
    g = torch.Generator().manual_seed(0)
    placeholder = torch.rand(example[:1].shape, generator=g).numpy()  # every range is replaced
    quantized = _nncf_quantize(model, [placeholder], correct_bias=False)
    write_ranges(quantized, ranges)
    return quantized


def _cache_path(backbone: nn.Module, ranges: dict, example: torch.Tensor, versions: dict) -> Path:
    """Where the int8 model of these weights, ranges, clip shape and backend versions is kept."""
    h = hashlib.sha256(json.dumps([ranges, list(example.shape), versions]).encode())
    for k, v in backbone.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return cache_dir() / "openvino" / f"int8-{h.hexdigest()[:24]}.xml"


def _read_cached(path: Path):
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        return None
    try:
        return _core().read_model(str(path))
    except Exception as e:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
        log.warning("int8: rebuilding the damaged cached model %s (%s)", path, first_line(e))
        return None


def _write_cached(path: Path, model) -> None:
    """The IR pair, written atomically with the .xml last, so a reader never sees an .xml
    without its .bin. A cache that cannot be written is only slower."""
    import openvino as ov

    def save(folder: Path) -> None:
        ov.save_model(model, str(folder / path.name), compress_to_fp16=False)

    try:
        atomic_write_files([path.with_suffix(".bin"), path], save)
    except OSError as e:
        log.info("int8: cannot cache the converted model in %s (%s)", path.parent, e)


def quantize_backbone(backbone: nn.Module, ranges: dict, example: torch.Tensor):
    """:class:`Int8Backbone` of a Res3D backbone with the activation ``ranges`` of
    :func:`calibrate_backbone`: bit for bit the model NNCF made on the calibration clips.

    Exporting, converting and placing quantisers takes seconds; the result is kept in tc3d's
    cache (``openvino/`` in :func:`~tc3d.modelfile.calibration.cache_dir`), so a later run
    of the same model reads it back and compiles in a fraction of a second."""
    path = _cache_path(backbone, ranges, example, backend_versions())
    quantized = _read_cached(path)
    if quantized is None:
        quantized = _build(backbone, ranges, example)
        _write_cached(path, quantized)
    return Int8Backbone(_compile(quantized))


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
        spec = ClipSpec.from_dict(self.clip)
        return torch.zeros(1, 3, spec.sampling.frames, spec.crop, spec.crop)


def calibrate(model: TC3D, spec: ClipSpec, paths: Sequence[str | Path], source: str):
    """Run up to :data:`CALIBRATION_VIDEOS` videos (their test clips, centre crop) through
    NNCF for every backbone; unreadable videos are skipped with a warning."""
    versions = backend_versions()
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
    ranges = [calibrate_backbone(b, clips) for b in model.backbones]
    calibration = Calibration(ranges, spec.to_dict(), len(clips), source, versions)
    calibration.seconds = time.perf_counter() - start
    return calibration


def quantize_model(model: TC3D, calibration: Calibration) -> list[Int8Backbone]:
    """The int8 backbones of ``model`` (one per segment position when weights are unshared)."""
    if len(calibration.ranges) != len(model.backbones):
        raise CalibrationMismatch("the stored int8 calibration is for another model")
    example = calibration.example()
    return [
        quantize_backbone(b, r, example)
        for b, r in zip(model.backbones, calibration.ranges, strict=True)
    ]
