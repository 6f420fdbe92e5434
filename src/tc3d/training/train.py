"""Training T-C3D end to end on video-level labels (paper Sections III-B and V-B).

Every step samples S clips from each of ``batch_size`` videos, runs the shared backbone on all
of them, fuses the S clip scores of each video and takes the cross-entropy of the fused score
(Eq. 2): the gradient reaches the backbone through the fusion (Eq. 3). SGD with momentum and a
multistep schedule, as the paper. The run directory holds ``config.json``, ``log.jsonl``,
``last.pt`` (everything needed to resume exactly) and ``best.pt`` (best video top-1 on the test
split). Launched under ``torchrun`` the same code trains with DistributedDataParallel.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tc3d.datasets.annotations import anomaly_binary
from tc3d.datasets.dataset import EpochSampler, VideoDataset, collate_train
from tc3d.datasets.formats import VideoItem, load_dataset
from tc3d.device import (
    prepare_model,
    resolve_device,
    rng_state,
    set_rng_state,
    set_threads,
    to_device,
)
from tc3d.errors import TC3DError
from tc3d.infer.evaluate import accuracy_metrics, score_items
from tc3d.io import atomic_write_text
from tc3d.modelfile.checkpoint import load_checkpoint, save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.training.init_weights import init_backbones, model_geometry
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

log = logging.getLogger(__name__)


class TrainError(TC3DError, RuntimeError):
    pass


DEFAULT_INIT = "motion"  # the shipped pretrained backbone (tc3d models)

# Fine-tuning from the shipped ``motion`` backbone on small data: the defaults. Measured in
# docs/RESULTS.md ("Fine-tuning recipe"): AdamW at a low learning rate, no flips (a mirror
# swaps left and right), weighted fusion (the only shared-weight fusion that learns order).
FINETUNE = dict(
    optimizer="adamw",
    lr=5e-4,
    momentum=0.9,
    weight_decay=0.05,
    iters=1000,
    lr_steps=None,  # 75% and 92% of iters
    warmup=20,
    dropout=0.5,
    flip=False,
    fusion="weighted",
    freeze=None,  # None: FROZEN_STAGES from a pretrained init, 0 from scratch
    head_lr_scale=None,  # None: HEAD_LR_SCALE from a pretrained init, 1 from scratch
)
FROZEN_STAGES = 1  # the stem keeps the pretrained weights; layer1-4 adapt (look too)
HEAD_LR_SCALE = 40.0  # the classifier and fusion start from nothing: they learn faster
# The paper's UCF101 recipe (Section V-B), fine-tuning from Kinetics on a GPU: --recipe paper.
PAPER = dict(
    optimizer="sgd",
    lr=0.005,
    momentum=0.9,
    weight_decay=5e-4,
    iters=20000,
    lr_steps=[8000, 15000],
    warmup=0,
    dropout=0.8,
    flip=True,
    fusion="avg",
    crop=112,
    freeze=0,
    head_lr_scale=1.0,
)
RECIPES = {"finetune": FINETUNE, "paper": PAPER}
OPTIMIZERS = ("sgd", "adamw")
# tc3d anomaly train: a short event in a long video needs more segments, and max fusion lets
# one of them decide (docs/RESULTS.md, Table VI analog).
ANOMALY = dict(segments=6, fusion="max")


@dataclass
class TrainConfig:
    """All ``tc3d train`` flags; defaults are the fine-tuning recipe (``FINETUNE``).

    ``width`` and ``crop`` left at None follow the ``init`` model (0.25 and 96 for ``motion``;
    1.0 and 112 from scratch). ``init`` None is ``motion``, or scratch when ``width`` is given
    and differs from motion's (see :func:`starting_point`).
    """

    data: str
    out: str
    format: str | None = None
    anomaly: bool = False  # ucfcrime as the binary normal-vs-anomalous task (tc3d anomaly train)
    split: int = 1
    splits: str | None = None
    arch: str = "res3d18"
    width: float | None = None
    segments: int = 3
    frames: int = 8
    sampling: str = "consecutive"
    offset: int = 2
    fusion: str = FINETUNE["fusion"]
    unshared: bool = False
    crop: int | None = None
    flip: bool = FINETUNE["flip"]
    batch_size: int = 8
    optimizer: str = FINETUNE["optimizer"]
    lr: float = FINETUNE["lr"]
    momentum: float = FINETUNE["momentum"]
    weight_decay: float = FINETUNE["weight_decay"]
    iters: int = FINETUNE["iters"]
    lr_steps: list[int] | None = None  # None: 75% and 92% of iters
    warmup: int = FINETUNE["warmup"]
    dropout: float = FINETUNE["dropout"]
    freeze: int | None = None  # backbone stages kept fixed; None: FINETUNE's, 0 from scratch
    head_lr_scale: float | None = None  # classifier + fusion lr / lr; None: as freeze
    init: str | None = None
    workers: int = 2
    seed: int = 0
    resume: bool = False
    amp: str | None = None
    eval_every: int = 1000
    eval_batch_size: int = 4
    device: str = "auto"


def make_config(recipe: str = "finetune", anomaly: bool = False, **flags) -> TrainConfig:
    """The config of a run: ``recipe``'s values, then the anomaly task's (``ANOMALY``, on
    ``ucfcrime``), then every flag that is not None, so a flag given always wins."""
    values = dict(RECIPES[recipe])
    if anomaly:
        values.update(ANOMALY)
    values.update({k: v for k, v in flags.items() if v is not None})
    if anomaly:
        values.update(format="ucfcrime", anomaly=True)
    return TrainConfig(**values)


def lr_steps(cfg: TrainConfig) -> list[int]:
    if cfg.lr_steps is not None:
        return list(cfg.lr_steps)
    return [int(cfg.iters * 0.75), int(cfg.iters * 0.92)]


def learning_rate(cfg: TrainConfig, iteration: int) -> float:
    """Multistep decay by 10× at each of ``lr_steps``, after an optional linear warm-up."""
    lr = cfg.lr * 0.1 ** sum(iteration >= s for s in lr_steps(cfg))
    if cfg.warmup and iteration < cfg.warmup:
        lr *= (iteration + 1) / cfg.warmup
    return lr


def starting_point(
    init: str | None, width: float | None, crop: int | None
) -> tuple[str, float, int, str | None]:
    """``(init, width, crop, note)`` of a run: unset width and crop follow the init model.

    With no ``init`` given, a ``width`` other than the shipped backbone's cannot start from it:
    the run starts from scratch and ``note`` says so (the CLI prints it on stderr).
    """
    note = None
    given = init
    init = DEFAULT_INIT if given is None else given
    init_width, init_crop = (None, None) if init == "scratch" else model_geometry(init)
    if given is None and width is not None and init_width is not None and width != init_width:
        init = "scratch"
        note = (
            f"--width {width:g} differs from the pretrained '{DEFAULT_INIT}' model's "
            f"{init_width:g}: training from scratch (give --init to choose)"
        )
    if init == "scratch":
        return init, width or 1.0, crop or 112, note
    return init, width or init_width or 1.0, crop or init_crop or 112, note


def _is_head(name: str) -> bool:
    """The layers a fine-tuning run makes anew: each backbone's classifier and the fusion."""
    return name.startswith("fusion.") or ".fc." in name


def make_optimizer(
    model: torch.nn.Module, cfg: TrainConfig, head_lr_scale: float = 1.0
) -> torch.optim.Optimizer:
    """SGD with momentum (the paper), or AdamW, over the trainable parameters.

    Measured on the synthetic benchmark from scratch (width 0.25, 600 steps of 8 videos):
    AdamW at lr 5e-4 reaches ~84% video top-1 where the best SGD setting reaches ~65%; the
    paper fine-tunes from Kinetics, where SGD is the usual choice. With ``head_lr_scale`` != 1
    the classifier and the fusion (the layers a fine-tuning run makes anew) form a second
    group whose ``lr_scale`` the training loop applies; each group carries its ``lr_scale``.
    """
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if head_lr_scale == 1.0:
        groups = [{"params": [p for _, p in trainable], "lr_scale": 1.0}]
    else:
        groups = [
            {"params": [p for n, p in trainable if not _is_head(n)], "lr_scale": 1.0},
            {"params": [p for n, p in trainable if _is_head(n)], "lr_scale": head_lr_scale},
        ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise TrainError(f"--optimizer must be sgd or adamw, not {cfg.optimizer!r}")


def _distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _gather(obj, world: int) -> list:
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


class _Run:
    """The files of a run directory; only rank 0 writes."""

    def __init__(self, out: Path, rank: int):
        self.out, self.rank = out, rank
        self.log_path = out / "log.jsonl"

    def log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def truncate_log(self, iteration: int) -> None:
        """After a resume, drop log lines from steps the checkpoint does not include."""
        if self.rank != 0 or not self.log_path.exists():
            return
        keep = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # blank, or torn by a kill in the middle of a write
                continue
            if isinstance(record, dict) and record.get("iter", 0) <= iteration:
                keep.append(line)
        atomic_write_text("".join(line + "\n" for line in keep), self.log_path)


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


def train_step(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    video: torch.Tensor,
    label: torch.Tensor,
    amp: torch.autocast | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> tuple[float, torch.Tensor]:
    """One step on a batch ``(N, S, 3, k, H, W)``: video-level cross-entropy of the fused
    scores (Eq. 2), backward through the fusion (Eq. 3), update. Returns (loss, logits)."""
    net.train()
    if amp:
        with amp:
            logits = net(video)
    else:
        logits = net(video)
    loss = loss_fn(logits.float(), label)
    optimizer.zero_grad(set_to_none=True)
    if math.isfinite(loss.item()):
        loss.backward()
        optimizer.step()
    return loss.item(), logits.detach()


def make_loader(
    items: list[VideoItem],
    spec: ClipSpec,
    batch_size: int,
    workers: int,
    seed: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """The training DataLoader: workers decode and augment ``batch_size`` videos per step, in
    the seeded order of ``loader.sampler`` (:class:`EpochSampler`), which a resumed run
    repeats from any batch."""
    sampler = EpochSampler(len(items), batch_size, seed, rank, world)
    if sampler.batches_per_epoch == 0:
        processes = f" × {world} processes" if world > 1 else ""
        raise TrainError(
            f"{len(items)} training videos are fewer than one batch ({batch_size}{processes}); "
            "lower --batch-size"
        )
    return DataLoader(
        VideoDataset(items, spec, train=True),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_train,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader off the global RNG (exact resume)
    )


@dataclass
class Step:
    """One optimiser step of :func:`train_one_epoch`."""

    iteration: int  # steps done, this one included
    loss: float
    logits: torch.Tensor  # (N, K) fused video scores, detached
    label: torch.Tensor  # (N,)
    lr: float | None  # the learning rate it used, when ``lr`` set it


def train_one_epoch(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    skipped: dict[str, str],
    first: int = 0,
    lr: Callable[[int], float] | None = None,
    amp: torch.autocast | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> Iterator[Step]:
    """One pass over ``loader`` (from the batch its sampler starts at), one :func:`train_step`
    per batch, yielding after each: schedules here count steps, not epochs, so the caller logs,
    evaluates, checkpoints or stops between any two steps (``break`` ends the pass).

    ``first`` is the number of steps done before this pass; ``lr(iteration)``, when given, sets
    the learning rate of each step. Unreadable videos are logged once and recorded in
    ``skipped`` (path -> error); a non-finite loss stops training with :class:`TrainError`.
    """
    for iteration, batch in enumerate(loader, first):
        step_lr = None
        if lr is not None:
            step_lr = lr(iteration)
            for group in optimizer.param_groups:  # a fine-tuning head has its own scale
                group["lr"] = step_lr * group.get("lr_scale", 1.0)
        if "fatal" in batch:
            raise TrainError(batch["fatal"])
        for e in batch["errors"]:
            if e["path"] not in skipped:
                log.warning("skipped unreadable video %s: %s", e["path"], e["error"])
            skipped[e["path"]] = e["error"]
        video = to_device(batch["video"], device)  # (N, S, 3, k, H, W)
        label = batch["label"].to(device)
        loss, logits = train_step(net, optimizer, video, label, amp, loss_fn)
        if not math.isfinite(loss):
            raise TrainError(f"loss became {loss} at iteration {iteration}; lower --lr")
        yield Step(iteration + 1, loss, logits, label, step_lr)


def _evaluate(
    model: TC3D, split, spec: ClipSpec, cfg: TrainConfig, device, rank: int, world: int
) -> dict:
    """Video top-1 on the test split, each rank scoring its share of the videos."""
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
    for part in _gather((scores.probs, scores.skipped), world):
        probs.update(part[0])
        skipped += part[1]
    labels = {i: item.label for i, item in enumerate(split.test)}
    metrics = accuracy_metrics(probs, labels, split.classes)
    metrics["skipped"] = skipped
    return metrics


def train(cfg: TrainConfig, progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train, checkpointing as it goes.

    Returns ``{checkpoint, iters, val_top1, seconds, skipped}``: the JSON of ``tc3d train``.
    """
    start_time = time.perf_counter()
    rank, world = _distributed()
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        set_threads(None, world)
    if cfg.amp == "bf16" and device.type == "cpu":
        warnings.warn(
            "--amp bf16 on CPU: conv3d backward is much slower in bf16 than fp32; "
            "use bf16 for inference only",
            stacklevel=2,
        )
    init, width, crop, note = starting_point(cfg.init, cfg.width, cfg.crop)
    if note:
        log.warning(note)
    pretrained = init != "scratch"
    cfg = replace(
        cfg,
        init=init,
        width=width,
        crop=crop,
        freeze=cfg.freeze if cfg.freeze is not None else (FROZEN_STAGES if pretrained else 0),
        head_lr_scale=cfg.head_lr_scale
        if cfg.head_lr_scale is not None
        else (HEAD_LR_SCALE if pretrained else 1.0),
    )
    out = Path(cfg.out).resolve()
    run = _Run(out, rank)
    split = load_dataset(cfg.data, cfg.format, cfg.split, cfg.splits)
    if cfg.anomaly:
        split = anomaly_binary(split)
    if not split.train:
        raise TrainError(f"{cfg.data}: the training split has no readable entries")
    sampling = SamplingConfig(cfg.segments, cfg.frames, cfg.sampling, cfg.offset)
    spec = ClipSpec(sampling, cfg.crop, flip=cfg.flip)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(split.classes))
    if cfg.init != "scratch":
        init_backbones(model, cfg.init)
    for backbone in model.backbones:
        backbone.freeze(cfg.freeze)
    model = prepare_model(model, device)
    optimizer = make_optimizer(model, cfg, cfg.head_lr_scale)

    iteration, best, skipped = 0, -1.0, {}
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        iteration, best = ckpt["iteration"], ckpt["best_top1"]
        skipped = {s["path"]: s["error"] for s in ckpt["skipped"]}
        set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
        run.truncate_log(iteration)
        log.info("resumed from %s at iteration %d", last_path, iteration)
    else:
        if cfg.resume:
            log.warning("--resume: no %s yet, starting from scratch", last_path)
        torch.manual_seed(cfg.seed + rank)  # dropout differs per rank, reproducibly
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            run.log_path.unlink(missing_ok=True)
    if rank == 0:
        atomic_write_text(json.dumps(asdict(cfg), indent=2) + "\n", out / "config.json")

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    loader = make_loader(
        split.train, spec, cfg.batch_size, cfg.workers, cfg.seed, device, rank, world
    )
    sampler = loader.sampler

    def all_skipped() -> dict[str, str]:
        merged: dict[str, str] = {}
        for part in _gather(skipped, world):
            merged.update(part)
        return merged

    def checkpoint(metrics: dict | None) -> None:
        nonlocal best
        rng_states = _gather(rng_state(), world)  # CPU and CUDA generators of every rank
        everything_skipped = all_skipped()
        if rank != 0:
            return
        state = {
            "train_config": asdict(cfg),
            "iteration": iteration,
            "best_top1": best,
            "rng": rng_states,
            "skipped": [{"path": p, "error": e} for p, e in everything_skipped.items()],
        }
        improved = metrics is not None and metrics["top1"] > best
        if improved:
            best = state["best_top1"] = metrics["top1"]
        if improved or (metrics is None and not best_path.exists()):
            save_model(best_path, model, split.classes, spec, **state)
        save_model(last_path, model, split.classes, spec, optimizer=optimizer.state_dict(), **state)

    val_top1 = None
    running = {"loss": 0.0, "correct": 0, "seen": 0}
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp == "bf16" else None

    try:
        while iteration < cfg.iters:
            epoch, start_batch = divmod(iteration, sampler.batches_per_epoch)
            sampler.set_epoch(epoch, start_batch)
            schedule = partial(learning_rate, cfg)
            steps = train_one_epoch(
                net, optimizer, loader, device, skipped, first=iteration, lr=schedule, amp=amp
            )
            for step in steps:
                iteration, lr, loss, label = step.iteration, step.lr, step.loss, step.label
                running["loss"] += loss * len(label)
                running["correct"] += (step.logits.argmax(1) == label).sum().item()
                running["seen"] += len(label)
                if progress and rank == 0:
                    progress(iteration, cfg.iters, {"loss": loss, "lr": lr})
                if iteration % 10 == 0 or iteration == cfg.iters:
                    run.log(
                        {
                            "iter": iteration,
                            "epoch": epoch,
                            "lr": lr,
                            "loss": running["loss"] / running["seen"],
                            "train_video_top1": 100.0 * running["correct"] / running["seen"],
                            "seconds": round(time.perf_counter() - start_time, 2),
                        }
                    )
                    running = {"loss": 0.0, "correct": 0, "seen": 0}
                if iteration % cfg.eval_every == 0 or iteration == cfg.iters:
                    metrics = (
                        _evaluate(model, split, spec, cfg, device, rank, world)
                        if split.test
                        else None
                    )
                    if metrics is not None:
                        val_top1 = metrics["top1"]
                        run.log(
                            {
                                "iter": iteration,
                                "val_top1": val_top1,
                                "val_top5": metrics["top5"],
                                "val_mean_class_acc": metrics["mean_class_acc"],
                            }
                        )
                    checkpoint(metrics)
                if iteration >= cfg.iters:
                    break
    except KeyboardInterrupt:
        if world == 1:  # keep the steps done since the last checkpoint
            checkpoint(None)
            log.warning("interrupted: saved %s at iteration %d", last_path, iteration)
        raise
    skipped = all_skipped()
    if world > 1:
        dist.barrier()
    return {
        "checkpoint": str(best_path),
        "iters": iteration,
        "val_top1": val_top1 if val_top1 is not None else (best if best >= 0 else None),
        "seconds": time.perf_counter() - start_time,
        "skipped": [{"path": p, "error": e} for p, e in sorted(skipped.items())],
    }
