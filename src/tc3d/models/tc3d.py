"""T-C3D: one Res3D-18 over each of S clips, fused into a video-level prediction (Eq. 1).

``Y = H(Q(F(C_1; W), ..., F(C_S; W)))``: F is the backbone up to its class scores, Q a fusion
from :mod:`tc3d.models.fusion`, H the softmax inside the cross-entropy loss. By default the
S clips share one backbone (the paper's choice: fewer parameters, less over-fitting);
``shared=False`` gives each segment position its own weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from tc3d.models.fusion import group_clips, make_fusion
from tc3d.models.res3d import res3d18

ARCHS = ("res3d18",)


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    arch: str = "res3d18"
    width: float = 1.0
    segments: int = 3
    fusion: str = "avg"
    shared: bool = True
    dropout: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)


class TC3D(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, not {cfg.arch!r}")
        self.cfg = cfg
        copies = 1 if cfg.shared else cfg.segments
        self.backbones = nn.ModuleList(
            res3d18(cfg.num_classes, cfg.width, cfg.dropout) for _ in range(copies)
        )
        self.fusion = make_fusion(cfg.fusion, cfg.segments, cfg.num_classes)

    @property
    def backbone(self) -> nn.Module:
        """The (first) Res3D-18: the only one when weights are shared."""
        return self.backbones[0]

    def clip_scores(self, clips: torch.Tensor, segment: int = 0) -> torch.Tensor:
        """Class scores ``(N, K)`` for clips ``(N, 3, T, H, W)`` seen at segment position."""
        return self.backbones[segment if len(self.backbones) > 1 else 0](clips)

    def fuse(self, scores: torch.Tensor) -> torch.Tensor:
        """``(N, n, K)`` scores of n time-ordered clips per video -> ``(N, K)`` video scores.

        The one fusion path, for training (n = S) and every inference front end alike, so the
        two cannot drift apart. Any n is accepted because inference meets other counts:
        ``allclips`` scores more clips than segments, a stream fuses the few clips it has seen
        so far, anomaly scoring fuses one sliding clip at a time. The clips are split into S
        contiguous groups, averaged within each (a group of one is that clip; with fewer clips
        than segments each segment takes the nearest clip, so a lone clip fills all S), and
        the groups go through the fusion Q, so position-aware fusions always see S inputs in
        time order.
        """
        segments = self.cfg.segments
        if scores.shape[1] != segments:
            groups = group_clips(scores.shape[1], segments)
            scores = torch.stack([scores[:, g].mean(1) for g in groups], dim=1)  # (N, S, K)
        return self.fusion(scores)

    def video_probs(self, scores: torch.Tensor) -> torch.Tensor:
        """Test-time prediction of one video: clip scores ``(crops, n, K)`` -> class
        probabilities ``(K,)``, each crop fused (:meth:`fuse`) and softmaxed, then the crops
        averaged (the paper's multi-crop test)."""
        return torch.softmax(self.fuse(scores).float(), dim=-1).mean(0)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        n, s = video.shape[:2]  # video: (N, S, 3, T, H, W)
        if len(self.backbones) == 1:
            scores = self.backbone(video.flatten(0, 1)).view(n, s, -1)  # (N·S, K) -> (N, S, K)
        else:
            scores = torch.stack([self.clip_scores(video[:, i], i) for i in range(s)], dim=1)
        return self.fuse(scores)
