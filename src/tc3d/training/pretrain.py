"""``tc3d pretrain``: a Res3D-18 backbone pretrained on procedural video (as ``motion`` was).

The clips come from :mod:`tc3d.synthetic.procedural`, rendered on the fly by DataLoader workers,
each labelled by its object's (motion, change) pair: supervised on what the generator knows,
which is cheap, needs no pair mining, and makes the features encode motion and change while the
look is drawn independently. The run directory is a ``tc3d train`` run (``last.pt`` with the
optimiser and iteration for ``--resume``, ``best.pt``, ``config.json``, ``log.jsonl``), so its
checkpoints work with every ``--model`` and ``--init``.

The learning rate warms up linearly, then follows a cosine to zero at ``iters``: a function of
the iteration alone, so a run stopped and resumed in pieces follows the same schedule.
Validation is a fixed set of clips from another seed; ``log.jsonl`` records the loss, the
validation accuracy (class, motion and change separately), clips per second and the share of
time the model waited for data.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tc3d.device import prepare_model, resolve_device, set_threads, to_device
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.progress import Progress
from tc3d.synthetic.procedural import (
    CHANGES,
    CountFrom,
    ProceduralBatches,
    ProceduralConfig,
    class_names,
)
from tc3d.training.loop import Fit, Step, Window, fit, make_optimizer, steps
from tc3d.training.rundir import RunDir
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

VAL_SEED_OFFSET = 1_000_003  # the validation clips come from a stream training never reads


@dataclass
class PretrainConfig:
    """``tc3d pretrain`` flags. The clip geometry is what the shipped model is used with:
    8 frames, 2 apart in video (``offset``), rendered at 64×64, used at ``model_crop``."""

    out: str
    width: float = 0.25
    frames: int = 8
    offset: int = 2
    crop: int = 64  # size the clips are rendered at
    # The crop the model is then used with, stored in its clip spec (predict, features,
    # similarity and --init follow it). Larger than the rendered clips: on the unseen-action
    # pairs of 'tc3d synth --kind pairs', frozen features scored AUC 92.0 at 64, 93.6 at 96 and
    # 94.2 at 112 (96: nearly all of the gain at half of 112's cost).
    model_crop: int = 96
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9  # for --optimizer sgd
    weight_decay: float = 0.05
    iters: int = 3600  # the length of the schedule (warm-up, then a cosine to zero)
    stop_at: int | None = None  # end this piece of the run here; --resume continues it
    warmup: int = 100
    curriculum: int = 2000  # steps over which clutter rises from none to full (procedural.py)
    dropout: float = 0.0
    workers: int = 1
    seed: int = 0
    resume: bool = False
    eval_every: int = 250
    val_clips: int = 512
    device: str = "auto"


def learning_rate(cfg: PretrainConfig, iteration: int) -> float:
    if iteration < cfg.warmup:
        return cfg.lr * (iteration + 1) / cfg.warmup
    progress = (iteration - cfg.warmup) / max(1, cfg.iters - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def factored_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the (motion, change) class plus that of each factor alone.

    The factor terms read the same 49 scores, marginalised (log-sum-exp over the other
    factor), so the model keeps one classifier; they give a gradient for "it moves in a
    circle" before the network can also tell how the object changes.
    """
    n_changes = len(CHANGES)
    log_p = torch.log_softmax(logits, dim=1).view(len(logits), -1, n_changes)  # (N, M, C)
    motion = F.nll_loss(torch.logsumexp(log_p, dim=2), label // n_changes)
    change = F.nll_loss(torch.logsumexp(log_p, dim=1), label % n_changes)
    return F.cross_entropy(logits, label) + motion + change


def build_model(cfg: PretrainConfig) -> TC3D:
    return TC3D(
        ModelConfig(
            num_classes=len(class_names()),
            width=cfg.width,
            segments=1,
            fusion="avg",
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def validate(model: TC3D, batches: list[dict], device: torch.device) -> dict:
    """Accuracy (0-100) on the fixed validation clips: the (motion, change) class, and each
    factor alone."""
    model.eval()
    hits = {"top1": 0, "motion": 0, "change": 0}
    seen = 0
    n_changes = len(CHANGES)
    for batch in batches:
        pred = model(to_device(batch["video"], device)).argmax(1).cpu()
        label = batch["label"]
        hits["top1"] += int((pred == label).sum())
        hits["motion"] += int((pred // n_changes == label // n_changes).sum())
        hits["change"] += int((pred % n_changes == label % n_changes).sum())
        seen += len(label)
    return {f"val_{k}": 100.0 * v / seen for k, v in hits.items()}


def _log_line(step: Step, window: Window) -> dict:
    elapsed = window.wait + window.busy
    return {
        "lr": step.lr,
        "loss": window.loss / window.seen,
        "train_top1": window.top1,
        "clips_per_s": window.seen / elapsed,
        "data_wait": window.wait / elapsed,
    }


def _loader(cfg: PretrainConfig, render: ProceduralConfig, first: int, device) -> DataLoader:
    """Batches ``first`` to the end of this piece, rendered by the workers on the fly."""
    return DataLoader(
        ProceduralBatches(cfg.batch_size, cfg.seed, render, ramp=cfg.curriculum),
        batch_size=None,
        sampler=CountFrom(first, min(cfg.iters, cfg.stop_at or cfg.iters)),
        num_workers=cfg.workers,
        prefetch_factor=4 if cfg.workers else None,
        pin_memory=device.type == "cuda",
    )


def pretrain(cfg: PretrainConfig, progress: Progress | None = None) -> dict:
    """Pretrain, checkpointing every ``eval_every`` steps; returns ``{checkpoint, iters,
    seconds, clips_per_s, data_wait, val_top1}``: the JSON of ``tc3d pretrain``."""
    start_time = time.perf_counter()
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        set_threads()
    run = RunDir(Path(cfg.out).resolve())
    run.out.mkdir(parents=True, exist_ok=True)
    render = ProceduralConfig(frames=cfg.frames, size=cfg.crop)
    sampling = SamplingConfig(1, cfg.frames, "consecutive", cfg.offset)
    spec = ClipSpec(sampling, cfg.model_crop or cfg.crop, flip=False)
    torch.manual_seed(cfg.seed)
    model = prepare_model(build_model(cfg), device)
    optimizer = make_optimizer(model, cfg)
    state = run.start(model, optimizer, cfg.resume)
    run.write_config(asdict(cfg))
    val_stream = ProceduralBatches(cfg.batch_size, cfg.seed + VAL_SEED_OFFSET, render)
    val_batches = [val_stream[i] for i in range(max(1, cfg.val_clips // cfg.batch_size))]
    stop = min(cfg.iters, cfg.stop_at or cfg.iters)
    stream = steps(
        model, optimizer, _loader(cfg, render, state.iteration, device), device, state.skipped,
        state.iteration, stop, lambda done: None,
        lr=partial(learning_rate, cfg), loss_fn=factored_loss,
    )  # fmt: skip
    plan = Fit(
        cfg.iters, cfg.stop_at or cfg.iters, cfg.eval_every,
        validate=lambda: validate(model, val_batches, device),
        save=partial(run.save, model, optimizer, class_names(), spec, asdict(cfg), state),
        log_line=_log_line, start_time=start_time,
    )  # fmt: skip
    fitted = fit(stream, plan, run, state, progress)
    totals, metrics = fitted.totals, fitted.metrics
    if not totals.seen:  # resumed at the end: validate, and rewrite with this config
        metrics = validate(model, val_batches, device)
        plan.save(metrics["val_top1"])
    elapsed = totals.wait + totals.busy
    best = state.best if state.best >= 0 else None
    return {
        "checkpoint": str(run.best),
        "last": str(run.last),
        "iters": state.iteration,
        "seconds": time.perf_counter() - start_time,
        "clips_per_s": totals.seen / elapsed if elapsed else None,
        "data_wait": 100.0 * totals.wait / elapsed if elapsed else None,
        "val_top1": metrics.get("val_top1", best),
    }
