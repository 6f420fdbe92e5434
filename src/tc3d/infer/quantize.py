"""int8 inference: PyTorch's x86 static quantisation (FX graph mode) and its calibration record.

The backbone is traced, observers are put on its activations, a few videos are run through
them, and ``convert_fx`` turns the model into one with quantised conv3d kernels (fbgemm and
oneDNN). Weight ranges come from the weights; the *activation* ranges, a scale and a zero
point per observed tensor (47 pairs for a Res3D-18), come from the calibration videos and so
decide the int8 figures. :class:`Calibration` holds exactly those numbers, about 1.3 KB of JSON,
that rebuild the same int8 model bit for bit without the videos (each observer is replaced by
one fixed at the stored values before converting), which is what lets the calibration travel
with the model (:mod:`tc3d.infer.calibration` says where it is kept).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tc3d.errors import TC3DError
from tc3d.models.tc3d import TC3D
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.decode import VideoReadError

log = logging.getLogger(__name__)

CALIBRATION_VIDEOS = 8
FORMAT = 1  # of the stored calibration


class CalibrationError(TC3DError, RuntimeError):
    """No usable int8 calibration; str(e) is one line."""


class CalibrationMismatch(CalibrationError):
    """A stored calibration whose observers do not match the traced model."""


# ---------------------------------------------------------------------------------------------
# FX graph-mode static quantisation (x86 backend)


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
    float_model = copy.deepcopy(_MapsAndScores(backbone)).cpu().float().eval()
    float_model = float_model.to(memory_format=torch.contiguous_format)
    return prepare_fx(float_model, get_default_qconfig_mapping("x86"), (example,))


def _activation_observers(prepared: nn.Module) -> list[tuple[str, nn.Module]]:
    """The per-tensor observers, in graph order: those that see activations (the per-channel
    ones measure weights, which convert reads from the weights themselves)."""
    found = [
        (name, m)
        for name, m in prepared.named_children()
        if name.startswith("activation_post_process_")
        and m.qscheme in (torch.per_tensor_affine, torch.per_tensor_symmetric)
    ]
    return sorted(found, key=lambda x: int(x[0].rsplit("_", 1)[1]))


@contextlib.contextmanager
def _quiet():
    """torch 2.13 marks torch.ao's FX API deprecated in favour of torchao's pt2e, which it no
    longer ships; FX is still the x86 int8 path that works out of the box, so its notices are
    silenced rather than shown on every command."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def calibrate_backbone(backbone: nn.Module, clips: Sequence[torch.Tensor]) -> list[list]:
    """``[scale, zero_point]`` of every activation observer after running ``clips`` (batches
    ``(N, 3, k, H, W)``) through the observed backbone."""
    with _quiet(), torch.no_grad():
        prepared = _fx_prepare(backbone, clips[0][:1].float())
        for batch in clips:
            prepared(batch.float())
        out = []
        for _, observer in _activation_observers(prepared):
            scale, zero_point = observer.calculate_qparams()
            out.append([float(scale), int(zero_point)])
    return out


def quantize_backbone(backbone: nn.Module, qparams: list[list], example: torch.Tensor):
    """int8 copy of a Res3D backbone (``x -> (res5b map, scores)``) with the activation
    ``qparams`` of :func:`calibrate_backbone`: each observer is replaced by one that holds
    those values, so the converted model is bit for bit the one the calibration run made."""
    from torch.ao.quantization.observer import FixedQParamsObserver
    from torch.ao.quantization.quantize_fx import convert_fx

    with _quiet():
        prepared = _fx_prepare(backbone, example)
        observers = _activation_observers(prepared)
        if len(observers) != len(qparams):
            raise CalibrationMismatch(
                f"the stored int8 calibration has {len(qparams)} activation ranges, the traced "
                f"model {len(observers)} (made by another torch version?)"
            )
        for (name, o), (scale, zero_point) in zip(observers, qparams, strict=True):
            fixed = FixedQParamsObserver(scale, zero_point, dtype=o.dtype, qscheme=o.qscheme,
                                         quant_min=o.quant_min, quant_max=o.quant_max)  # fmt: skip
            setattr(prepared, name, fixed)
        return convert_fx(prepared).eval()


# ---------------------------------------------------------------------------------------------
# the calibration record


@dataclass
class Calibration:
    """Activation ranges of every backbone of a model and how they were made."""

    qparams: list[list[list]]  # per backbone: [scale, zero_point] per activation observer
    clip: dict  # ClipSpec.to_dict() of the clips it saw (k and crop also shape the tracing)
    videos: int  # how many videos it saw
    source: str  # "training videos" or "given videos"
    # where it lives in this run (not stored)
    file: str | None = None
    stored: bool = False  # read from the model file or the cache rather than made now
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "qparams": self.qparams,
            "clip": self.clip,
            "videos": self.videos,
            "source": self.source,
            "torch": torch.__version__.split("+")[0],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("unknown int8 calibration format")
        qparams = [[[float(s), int(z)] for s, z in b] for b in d["qparams"]]
        ClipSpec.from_dict(d["clip"])  # validates
        return cls(qparams, dict(d["clip"]), int(d["videos"]), str(d["source"]))

    def example(self) -> torch.Tensor:
        """An input of the calibrated clip shape, to trace the backbone with."""
        spec = ClipSpec.from_dict(self.clip)
        return torch.zeros(1, 3, spec.sampling.frames, spec.crop, spec.crop)


def calibrate(model: TC3D, spec: ClipSpec, paths: Sequence[str | Path], source: str):
    """Run up to :data:`CALIBRATION_VIDEOS` videos (their test clips, centre crop) through
    the observers of every backbone; unreadable videos are skipped with a warning."""
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
    qparams = [calibrate_backbone(b, clips) for b in model.backbones]
    calibration = Calibration(qparams, spec.to_dict(), len(clips), source)
    calibration.seconds = time.perf_counter() - start
    return calibration


def quantize_model(model: TC3D, calibration: Calibration) -> list[nn.Module]:
    """The int8 backbones of ``model`` (one per segment position when weights are unshared)."""
    if len(calibration.qparams) != len(model.backbones):
        raise CalibrationMismatch("the stored int8 calibration is for another model")
    example = calibration.example()
    return [
        quantize_backbone(b, q, example)
        for b, q in zip(model.backbones, calibration.qparams, strict=True)
    ]
