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

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import tc3d.device  # rng_state / set_rng_state, by their module: "device" is a local here
from tc3d.device import prepare_model, resolve_device, set_threads, to_device
from tc3d.io import atomic_write_text
from tc3d.modelfile.checkpoint import load_checkpoint, save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.synthetic.procedural import (
    CHANGES,
    CountFrom,
    ProceduralBatches,
    ProceduralConfig,
    class_names,
)
from tc3d.training.train import TrainError, _Run, make_optimizer, train_step
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

log = logging.getLogger(__name__)

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


def pretrain(cfg: PretrainConfig, progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Pretrain, checkpointing every ``eval_every`` steps; returns ``{checkpoint, iters,
    seconds, clips_per_s, data_wait, val_top1}``: the JSON of ``tc3d pretrain``."""
    start_time = time.perf_counter()
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        set_threads()
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    render_cfg = ProceduralConfig(frames=cfg.frames, size=cfg.crop)
    sampling = SamplingConfig(1, cfg.frames, "consecutive", cfg.offset)
    spec = ClipSpec(sampling, cfg.model_crop or cfg.crop, flip=False)
    torch.manual_seed(cfg.seed)
    model = prepare_model(build_model(cfg), device)
    optimizer = make_optimizer(model, cfg)
    iteration, best = 0, -1.0
    last_path, best_path = out / "last.pt", out / "best.pt"
    run = _Run(out, rank=0)  # log.jsonl, cut back to the checkpoint on resume, as train's
    if cfg.resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        iteration, best = ckpt["iteration"], ckpt["best_top1"]
        tc3d.device.set_rng_state(ckpt["rng"])
        run.truncate_log(iteration)
        log.info("resumed from %s at iteration %d", last_path, iteration)
    else:
        if cfg.resume:
            log.warning("--resume: no %s yet, starting from scratch", last_path)
        run.log_path.unlink(missing_ok=True)
    atomic_write_text(json.dumps(asdict(cfg), indent=2) + "\n", out / "config.json")

    val_stream = ProceduralBatches(cfg.batch_size, cfg.seed + VAL_SEED_OFFSET, render_cfg)
    val_batches = [val_stream[i] for i in range(max(1, cfg.val_clips // cfg.batch_size))]
    loader = DataLoader(
        ProceduralBatches(cfg.batch_size, cfg.seed, render_cfg, ramp=cfg.curriculum),
        batch_size=None,
        sampler=CountFrom(iteration, min(cfg.iters, cfg.stop_at or cfg.iters)),
        num_workers=cfg.workers,
        prefetch_factor=4 if cfg.workers else None,
        pin_memory=device.type == "cuda",
    )

    def checkpoint(metrics: dict | None) -> None:
        nonlocal best
        state = {
            "train_config": asdict(cfg),
            "iteration": iteration,
            "best_top1": best,
            "rng": tc3d.device.rng_state(),
            "skipped": [],
        }
        if metrics is not None and metrics["val_top1"] > best:
            best = state["best_top1"] = metrics["val_top1"]
            save_model(best_path, model, class_names(), spec, **state)
        save_model(last_path, model, class_names(), spec, optimizer=optimizer.state_dict(), **state)

    window = {"loss": 0.0, "correct": 0, "seen": 0, "wait": 0.0, "busy": 0.0}
    totals = {"clips": 0, "wait": 0.0, "busy": 0.0}
    metrics: dict = {}
    waited_since = time.perf_counter()
    try:
        for batch in loader:
            got_batch = time.perf_counter()
            lr = learning_rate(cfg, iteration)
            for group in optimizer.param_groups:
                group["lr"] = lr
            video = to_device(batch["video"], device)  # (B, 1, 3, T, H, W)
            label = batch["label"].to(device)
            loss, logits = train_step(model, optimizer, video, label, loss_fn=factored_loss)
            if not math.isfinite(loss):
                raise TrainError(f"loss became {loss} at iteration {iteration}; lower --lr")
            iteration += 1
            done = time.perf_counter()
            wait, busy = got_batch - waited_since, done - got_batch
            waited_since = done
            window["loss"] += loss * len(label)
            window["correct"] += int((logits.argmax(1) == label).sum())
            window["seen"] += len(label)
            window["wait"] += wait
            window["busy"] += busy
            totals["clips"] += len(label)
            totals["wait"] += wait
            totals["busy"] += busy
            if progress:
                progress(iteration, cfg.iters, {"loss": loss, "lr": lr})
            if iteration % 10 == 0 or iteration == cfg.iters:
                elapsed = window["wait"] + window["busy"]
                run.log(
                    {
                        "iter": iteration,
                        "lr": lr,
                        "loss": window["loss"] / window["seen"],
                        "train_top1": 100.0 * window["correct"] / window["seen"],
                        "clips_per_s": window["seen"] / elapsed,
                        "data_wait": window["wait"] / elapsed,
                        "seconds": round(time.perf_counter() - start_time, 2),
                    }
                )
                window = dict.fromkeys(window, 0)
            if iteration % cfg.eval_every == 0 or iteration in (cfg.iters, cfg.stop_at):
                metrics = validate(model, val_batches, device)
                run.log({"iter": iteration, **metrics})
                checkpoint(metrics)
                waited_since = time.perf_counter()  # validation is not data wait
    except KeyboardInterrupt:
        checkpoint(None)
        log.warning("interrupted: saved %s at iteration %d", last_path, iteration)
        raise
    elapsed = totals["wait"] + totals["busy"]
    if not totals["clips"]:  # resumed at the end: validate, and rewrite with this config
        metrics = validate(model, val_batches, device)
        checkpoint(metrics)
    return {
        "checkpoint": str(best_path),
        "last": str(last_path),
        "iters": iteration,
        "seconds": time.perf_counter() - start_time,
        "clips_per_s": totals["clips"] / elapsed if elapsed else None,
        "data_wait": 100.0 * totals["wait"] / elapsed if elapsed else None,
        "val_top1": metrics.get("val_top1", best if best >= 0 else None),
    }
