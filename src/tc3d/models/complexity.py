"""Parameter and FLOP counts (FLOPs by fvcore; a multiply-add counts as 2 FLOPs)."""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from tc3d.models.tc3d import TC3D


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: TC3D, frames: int = 8, crop: int = 112, clips: int | None = None) -> int:
    """FLOPs (2 × multiply-adds) for one video of ``clips`` clips (default: S) of k×crop²."""
    with warnings.catch_warnings():
        # fvcore scripts its focal loss when imported: torch's deprecation of torch.jit.script
        # is fvcore's to fix, and tc3d calls no TorchScript here (tests/test_deprecations.py).
        # torch 2.13 says it as a DeprecationWarning, 2.14 as a FutureWarning.
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", category)
        from fvcore.nn import FlopCountAnalysis

    clips = clips or model.cfg.segments
    backbone = model.backbone.eval()
    x = torch.zeros(1, 3, frames, crop, crop)
    analysis = FlopCountAnalysis(backbone, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        macs_per_clip = analysis.total()
    return int(2 * macs_per_clip * clips)
