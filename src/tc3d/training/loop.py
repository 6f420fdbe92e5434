"""The one training loop: ``tc3d train``, ``tc3d pretrain`` and the fine-tuning stages of
``tc3d compress`` all step through :func:`steps`, and the two run-folder commands through
:func:`fit`, which logs, validates, checkpoints and saves the steps done on an interrupt.

What differs between them is data: the stream of batches, the schedule, the loss, what is
validated and what is logged; they pass it in.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tc3d.datasets.dataset import EpochSampler, VideoDataset, collate_train
from tc3d.datasets.formats import VideoItem
from tc3d.device import to_device
from tc3d.progress import Progress
from tc3d.training.config import TrainConfig, TrainError
from tc3d.training.rundir import RunDir, RunState
from tc3d.video.clips import ClipSpec

log = logging.getLogger(__name__)


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
    wait: float = 0.0  # seconds the step waited for its batch
    busy: float = 0.0  # seconds of the step itself


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
    waited_since = time.perf_counter()
    for iteration, batch in enumerate(loader, first):
        fetched = time.perf_counter()
        step_lr = None
        if lr is not None:
            step_lr = lr(iteration)
            for group in optimizer.param_groups:  # a fine-tuning head has its own scale
                group["lr"] = step_lr * group.get("lr_scale", 1.0)
        if "fatal" in batch:
            raise TrainError(batch["fatal"])
        for e in batch.get("errors", ()):
            if e["path"] not in skipped:
                log.warning("skipped unreadable video %s: %s", e["path"], e["error"])
            skipped[e["path"]] = e["error"]
        video = to_device(batch["video"], device)  # (N, S, 3, k, H, W)
        label = batch["label"].to(device)
        loss, logits = train_step(net, optimizer, video, label, amp, loss_fn)
        if not math.isfinite(loss):
            raise TrainError(f"loss became {loss} at iteration {iteration}; lower --lr")
        wait, busy = fetched - waited_since, time.perf_counter() - fetched
        yield Step(iteration + 1, loss, logits, label, step_lr, wait, busy)
        waited_since = time.perf_counter()  # what the caller does in between is not data wait


def steps(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    skipped: dict[str, str],
    first: int,
    stop: int,
    start_pass: Callable[[int], None],
    **step_options,
) -> Iterator[Step]:
    """Steps ``first + 1`` to ``stop``, in as many passes over ``loader`` as that takes:
    ``start_pass(steps_done)`` places the sampler before each pass (the epoch, the batch).
    ``step_options`` (``lr``, ``amp``, ``loss_fn``) go to :func:`train_one_epoch`."""
    iteration = first
    while iteration < stop:
        start_pass(iteration)
        before = iteration
        for step in train_one_epoch(
            net, optimizer, loader, device, skipped, iteration, **step_options
        ):
            iteration = step.iteration
            yield step
            if iteration >= stop:
                return
        if iteration == before:  # the loader had nothing left
            return


@dataclass
class Window:
    """Training figures summed over a stretch of steps (a log line's, or the whole run's)."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    wait: float = 0.0
    busy: float = 0.0
    steps: int = 0

    def add(self, step: Step) -> None:
        n = len(step.label)
        self.steps += 1
        self.loss += step.loss * n
        self.correct += int((step.logits.argmax(1) == step.label).sum())
        self.seen += n
        self.wait += step.wait
        self.busy += step.busy

    @property
    def top1(self) -> float:
        return 100.0 * self.correct / self.seen


@dataclass
class Fit:
    """What :func:`fit` does between steps, per command: when it validates, how, what a
    training log line holds, and what a checkpoint saves."""

    iters: int  # the schedule's length: progress total, the last log line
    stop: int  # where this piece of the run ends (``iters`` unless stopped early)
    eval_every: int
    validate: Callable[[], dict | None]  # validation log fields, "val_top1" first; None: none
    save: Callable[[float | None], None]  # checkpoint, with a new validation top-1 or None
    log_line: Callable[[Step, Window], dict]  # a training log line (after "iter")
    log_every: int = 10
    start_time: float = field(default_factory=time.perf_counter)


@dataclass
class Fitted:
    """What a :func:`fit` leaves: the last validation fields and the whole run's figures."""

    metrics: dict = field(default_factory=dict)
    totals: Window = field(default_factory=Window)


def fit(
    stream: Iterator[Step],
    plan: Fit,
    run: RunDir,
    state: RunState,
    progress: Progress | None = None,
) -> Fitted:
    """Step through ``stream``, logging every ``log_every`` steps, validating and saving every
    ``eval_every`` and at the end. On an interrupt (Ctrl-C, or SIGTERM as the CLI maps it) a
    single process saves the steps done since the last checkpoint, then re-raises."""
    out, window = Fitted(), Window()
    try:
        for step in stream:
            state.iteration = i = step.iteration
            window.add(step)
            out.totals.add(step)
            if progress and run.rank == 0:
                progress(i, plan.iters, {"loss": step.loss, "lr": step.lr})
            if i % plan.log_every == 0 or i == plan.iters:
                seconds = round(time.perf_counter() - plan.start_time, 2)
                run.log({"iter": i, **plan.log_line(step, window), "seconds": seconds})
                window = Window()
            if i % plan.eval_every == 0 or i in (plan.iters, plan.stop):
                metrics = plan.validate()
                if metrics is not None:
                    out.metrics = metrics
                    run.log({"iter": i, **metrics})
                plan.save(metrics["val_top1"] if metrics is not None else None)
    except KeyboardInterrupt:
        if run.world == 1:  # keep the steps done since the last checkpoint
            plan.save(None)
            log.warning("interrupted: saved %s at iteration %d", run.last, state.iteration)
        raise
    return out
