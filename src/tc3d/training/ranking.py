"""Training an anomaly scorer from video-level labels: multiple-instance ranking.

``tc3d anomaly train --objective ranking`` (the default). Sultani et al.'s objective over the
frames of whole videos: the top frames of an anomalous training video must outrank the top
frames of a normal one (hinge), every frame of a normal video is normal and the top frames of
an anomalous one are not (cross-entropy, which also makes 0.5 a usable threshold), and scores
inside an anomalous video stay sparse and smooth. The scorer is linear over
:func:`~tc3d.infer.anomaly_evidence.cell_features`, so the optimisation runs over features read
once, in seconds; reading the videos is the run's cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tc3d.infer.anomaly_evidence import LocalScorer, cell_features, read_evidence
from tc3d.modelfile.checkpoint import save_model
from tc3d.progress import Progress
from tc3d.training.config import TrainError
from tc3d.training.rundir import RunDir
from tc3d.video.decode import VideoReadError

log = logging.getLogger(__name__)


def _top_mean(logits: torch.Tensor, share: int = 16) -> torch.Tensor:
    """Mean of the top ``1/share`` of a video's frame logits (at least one)."""
    return logits.topk(max(1, len(logits) // share)).values.mean()


def fit_local_scorer(
    features: Sequence[np.ndarray],
    anomalous: Sequence[bool],
    iters: int = 300,
    seed: int = 0,
    progress=None,
) -> tuple[LocalScorer, list[float]]:
    """Learn a :class:`LocalScorer` from whole videos' :func:`cell_features` and video-level
    labels (multiple-instance ranking). Returns the scorer and the loss per iteration."""
    if not any(anomalous) or all(anomalous):
        raise ValueError("training needs both normal and anomalous videos")
    torch.manual_seed(seed)
    xs = [torch.from_numpy(f) for f in features]
    flat = torch.cat([x.reshape(-1, x.shape[-1]) for x in xs])
    mean, std = flat.mean(0), flat.std(0).clamp_min(1e-3)
    xs = [(x - mean) / std for x in xs]
    dims = flat.shape[-1]
    weights = torch.full((dims,), 1.0 / dims, requires_grad=True)
    bias = torch.tensor(-2.0, requires_grad=True)
    optimiser = torch.optim.Adam([weights, bias], lr=0.05)
    losses = []
    for i in range(iters):
        logits = [(x @ weights + bias).amax(1) for x in xs]
        tops = torch.stack([_top_mean(v) for v in logits])
        flags = torch.tensor(list(anomalous))
        top_a, top_n = tops[flags], tops[~flags]
        ranking = F.relu(1.0 - top_a[:, None] + top_n[None, :]).mean()
        normal = torch.cat([v for v, a in zip(logits, anomalous, strict=True) if not a])
        calibration = F.binary_cross_entropy_with_logits(
            normal, torch.zeros_like(normal)
        ) + F.binary_cross_entropy_with_logits(top_a, torch.ones_like(top_a))
        shaped = [torch.sigmoid(v) for v, a in zip(logits, anomalous, strict=True) if a]
        sparsity = torch.stack([s.mean() for s in shaped]).mean()
        smooth = torch.stack([(s[1:] - s[:-1]).pow(2).mean() for s in shaped]).mean()
        loss = ranking + calibration + 0.1 * sparsity + 1.0 * smooth
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if progress is not None:
            progress(i + 1, iters, {"loss": losses[-1]})
    scorer = LocalScorer(weights.detach().tolist(), bias.item(), mean.tolist(), std.tolist())
    return scorer, losses


def _read_all(items, progress: Progress | None, what: str, read) -> tuple[list, dict[str, str]]:
    """``(read(evidence), is anomalous)`` for each readable video; unreadable ones with their
    reason."""
    read_so, skipped = [], {}
    for i, item in enumerate(items):
        try:
            read_so.append((read(read_evidence(item.path)), item.label == 1))
        except VideoReadError as e:
            skipped[str(item.path)] = e.reason
        if progress is not None:
            progress(i + 1, len(items), {"reading": what})
    return read_so, skipped


def _training_features(evidence) -> np.ndarray:
    """Every other frame's features: plenty for eighteen weights, and half the memory."""
    return cell_features(evidence)[::2].copy()


def train_ranking(cfg, split, model, spec, progress: Progress | None = None) -> dict:
    """``tc3d anomaly train --objective ranking``: read the training videos once, fit the scorer,
    validate on the test split (video accuracy at 0.5), and write the run folder: ``last.pt``
    and ``best.pt`` hold the ``--init`` model and the scorer, ``log.jsonl`` the losses."""
    start = time.perf_counter()
    run = RunDir(Path(cfg.out).resolve())
    run.fresh()
    run.write_config(asdict(cfg))
    train, skipped = _read_all(split.train, progress, "training videos", _training_features)
    log.info("read %d training videos in %.1f s", len(train), time.perf_counter() - start)
    try:
        features, labels = zip(*train, strict=True) if train else ((), ())
        scorer, losses = fit_local_scorer(features, labels, cfg.iters, cfg.seed)
    except ValueError as e:
        raise TrainError(f"{cfg.data}: {e}") from None
    for i in range(10, len(losses) + 1, 10):
        run.log({"iter": i, "loss": round(losses[i - 1], 5)})

    def top_score(evidence) -> float:
        return float(scorer.frame_scores(evidence).max())

    tops, val_skipped = _read_all(split.test, progress, "test videos", top_score)
    hits = [(top > 0.5) == anomalous for top, anomalous in tops]
    top1 = 100.0 * float(np.mean(hits)) if hits else None
    run.log({"iter": len(losses), "val_top1": top1})
    unreadable = sorted((skipped | val_skipped).items())
    record = {
        "train_config": asdict(cfg),
        "iteration": len(losses),
        "best_top1": -1.0 if top1 is None else top1,
        "anomaly_scorer": scorer.to_dict(),
        "skipped": [{"path": p, "error": e} for p, e in unreadable],
    }
    for path in (run.best, run.last):
        save_model(path, model, split.classes, spec, **record)
    return {
        "checkpoint": str(run.best),
        "iters": len(losses),
        "val_top1": top1,
        "seconds": time.perf_counter() - start,
        "skipped": record["skipped"],
        "objective": "ranking",
    }
