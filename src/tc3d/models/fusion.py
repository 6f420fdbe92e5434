"""Fusion functions Q: S clip outputs -> one video-level output (paper Section III-E, Table I).

All four take clip class scores ``(N, S, K)`` and return ``(N, K)``; the paper fuses the last
fully-connected layer's outputs by default. avg, max and attention treat the segments as a set,
so with shared backbone weights they cannot tell "A then B" from "B then A"; weighted fusion
has a weight per segment position and can.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FUSIONS = ("avg", "max", "weighted", "attention")


class AvgFusion(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class MaxFusion(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1)


class WeightedFusion(nn.Module):
    """Learned linear weights over segments: the paper's S×1 convolution.

    One weight per segment *and class* (a depthwise S×1 convolution): a single weight per
    segment shared by all classes cannot favour the start for one class and the end for
    another. Starts at 1/S, i.e. at average pooling.
    """

    def __init__(self, segments: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((segments, num_classes), 1.0 / segments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).sum(dim=1)


class AttentionFusion(nn.Module):
    """Memory-attention pooling, Eq. 5: ``w_s = softmax_s(q·F_s)``, output ``sum_s w_s F_s``.

    ``q`` starts at zero, so training starts from average pooling.
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(x @ self.query, dim=1)  # (N, S)
        return (weights.unsqueeze(-1) * x).sum(dim=1)


def make_fusion(name: str, segments: int, num_classes: int) -> nn.Module:
    if name == "avg":
        return AvgFusion()
    if name == "max":
        return MaxFusion()
    if name == "weighted":
        return WeightedFusion(segments, num_classes)
    if name == "attention":
        return AttentionFusion(num_classes)
    raise ValueError(f"fusion must be one of {FUSIONS}, not {name!r}")


def group_clips(num_clips: int, segments: int) -> list[np.ndarray]:
    """Split ``num_clips`` time-ordered clips into ``segments`` contiguous groups.

    Used when more clips than segments are scored (``allclips``): each group stands for one
    segment, so position-aware fusions (weighted, unshared backbones) still see S inputs.
    """
    if num_clips >= segments:
        return np.array_split(np.arange(num_clips), segments)
    # Fewer clips than segments: reuse the nearest clip for each segment.
    return [np.array([min(num_clips - 1, s * num_clips // segments)]) for s in range(segments)]
