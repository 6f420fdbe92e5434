"""Training T-C3D end to end on video-level labels (paper Sections III-B and V-B).

Every step samples S clips from each of ``batch_size`` videos, runs the shared backbone on all
of them, fuses the S clip scores of each video and takes the cross-entropy of the fused score
(Eq. 2): the gradient reaches the backbone through the fusion (Eq. 3). SGD with momentum and a
multistep schedule, as the paper. The run folder (:mod:`tc3d.training.rundir`) holds
``config.json``, ``log.jsonl``, ``last.pt`` and ``best.pt`` (best video top-1 on the test
split). Launched under ``torchrun`` the same code trains with DistributedDataParallel.

The flags and recipes are in :mod:`tc3d.training.config`, the loop in :mod:`tc3d.training.loop`;
what is particular to this command is here: a labelled data set, the multistep schedule, the
test split as validation.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from tc3d.datasets.annotations import anomaly_binary
from tc3d.datasets.formats import DataSplit, load_dataset
from tc3d.device import prepare_model, resolve_device, set_threads
from tc3d.infer.evaluate import accuracy_metrics, score_items
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.progress import Progress
from tc3d.training import distributed
from tc3d.training.config import TrainConfig, TrainError, learning_rate, settle
from tc3d.training.init_weights import init_backbones
from tc3d.training.loop import Fit, Step, Window, fit, make_loader, make_optimizer, steps
from tc3d.training.ranking import train_ranking
from tc3d.training.rundir import RunDir
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

log = logging.getLogger(__name__)


def build_model(cfg: TrainConfig, num_classes: int) -> TC3D:
    return TC3D(
        ModelConfig(
            num_classes=num_classes,
            arch=cfg.arch,
            width=cfg.width,
            segments=cfg.segments,
            fusion=cfg.fusion,
            shared=not cfg.unshared,
            dropout=cfg.dropout,
        )
    )


def _validate(
    model: TC3D, split: DataSplit, spec: ClipSpec, cfg: TrainConfig, device, rank: int, world: int
) -> dict | None:
    """Video top-1, top-5 and mean class accuracy on the test split (None without one), each
    rank scoring its share of the videos."""
    if not split.test:
        return None
    positions = list(range(rank, len(split.test), world))
    items = [split.test[i] for i in positions]
    scores = score_items(
        model,
        items,
        spec,
        device,
        batch_size=cfg.eval_batch_size,
        workers=min(cfg.workers, 2),
        positions=positions,
    )
    probs, skipped = {}, []
    for part in distributed.gather((scores.probs, scores.skipped), world):
        probs.update(part[0])
        skipped += part[1]
    labels = {i: item.label for i, item in enumerate(split.test)}
    m = accuracy_metrics(probs, labels, split.classes)
    return {"val_top1": m["top1"], "val_top5": m["top5"], "val_mean_class_acc": m["mean_class_acc"]}


def _log_line(batches_per_epoch: int, step: Step, window: Window) -> dict:
    return {
        "epoch": (step.iteration - 1) // batches_per_epoch,
        "lr": step.lr,
        "loss": window.loss / window.seen,
        "train_video_top1": window.top1,
        # the window's own time: steps over (data wait + step), and the share spent waiting
        "steps_per_s": window.steps / max(1e-9, window.wait + window.busy),
        "data_wait": window.wait / max(1e-9, window.wait + window.busy),
    }


def _join(cfg: TrainConfig) -> tuple[torch.device, int, int]:
    """(device, rank, world size): the device, and the process group under torchrun."""
    device = resolve_device(cfg.device)
    rank, world = distributed.join(device)
    if device.type == "cpu":
        set_threads(None, world)
    if cfg.amp == "bf16" and device.type == "cpu":
        warnings.warn(
            "--amp bf16 on CPU: conv3d backward is much slower in bf16 than fp32; "
            "use bf16 for inference only",
            stacklevel=3,
        )
    return device, rank, world


def _split(cfg: TrainConfig) -> DataSplit:
    split = load_dataset(cfg.data, cfg.format, cfg.split, cfg.splits)
    if cfg.anomaly:
        split = anomaly_binary(split)
    if not split.train:
        raise TrainError(f"{cfg.data}: the training split has no readable entries")
    return split


def _model(cfg: TrainConfig, classes: int, device: torch.device) -> TC3D:
    """The model at its starting point: seeded, ``--init`` weights, frozen stages."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, classes)
    if cfg.init != "scratch":
        init_backbones(model, cfg.init)
    for backbone in model.backbones:
        backbone.freeze(cfg.freeze)
    return prepare_model(model, device)


def train(cfg: TrainConfig, progress: Progress | None = None) -> dict:
    """Train, checkpointing as it goes.

    Returns ``{checkpoint, iters, val_top1, seconds, skipped}``: the JSON of ``tc3d train``.
    """
    start_time = time.perf_counter()
    device, rank, world = _join(cfg)
    cfg, note = settle(cfg)
    if note:
        log.warning(note)
    run = RunDir(Path(cfg.out).resolve(), rank, world)
    split = _split(cfg)
    sampling = SamplingConfig(cfg.segments, cfg.frames, cfg.sampling, cfg.offset)
    spec = ClipSpec(sampling, cfg.crop, flip=cfg.flip)
    model = _model(cfg, len(split.classes), device)
    if cfg.objective == "ranking":
        return train_ranking(cfg, split, model, spec, progress)
    optimizer = make_optimizer(model, cfg, cfg.head_lr_scale)
    state = run.start(model, optimizer, cfg.resume)
    if not state.resumed:
        torch.manual_seed(cfg.seed + rank)  # dropout differs per rank, reproducibly
    run.write_config(asdict(cfg))
    net = model
    if distributed.active():  # under torchrun, also with one process
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    loader = make_loader(
        split.train, spec, cfg.batch_size, cfg.workers, cfg.seed, device, rank, world
    )
    per_epoch = loader.sampler.batches_per_epoch
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp == "bf16" else None
    stream = steps(
        net, optimizer, loader, device, state.skipped, state.iteration, cfg.iters,
        lambda done: loader.sampler.set_epoch(*divmod(done, per_epoch)),
        lr=partial(learning_rate, cfg), amp=amp,
    )  # fmt: skip
    plan = Fit(
        cfg.iters, cfg.iters, cfg.eval_every,
        validate=lambda: _validate(model, split, spec, cfg, device, rank, world),
        save=partial(run.save, model, optimizer, split.classes, spec, asdict(cfg), state),
        log_line=partial(_log_line, per_epoch), start_time=start_time,
    )  # fmt: skip
    fitted = fit(stream, plan, run, state, progress)
    skipped = distributed.merged(state.skipped, world)
    distributed.barrier(world)
    best = state.best if state.best >= 0 else None
    return {
        "checkpoint": str(run.best),
        "iters": state.iteration,
        "val_top1": fitted.metrics.get("val_top1", best),
        "seconds": time.perf_counter() - start_time,
        "skipped": [{"path": p, "error": e} for p, e in sorted(skipped.items())],
        **({"distributed": distributed.active()} if distributed.active() else {}),
    }
