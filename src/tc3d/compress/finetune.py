"""Fine-tuning between compression stages: the training loop of :mod:`tc3d.training.loop` on
the model's own training set and recipe, at a lower learning rate, with hooks that keep pruned
weights at zero and shared weights on their centroids.

Its state (data epoch, random generators) is saved with each finished stage, so a resumed
``tc3d compress`` continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from tc3d.compress import prune
from tc3d.datasets.formats import load_dataset
from tc3d.device import rng_state, set_rng_state
from tc3d.errors import TC3DError
from tc3d.infer.evaluate import check_classes, evaluate
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.progress import Progress, report
from tc3d.training.config import TrainConfig
from tc3d.training.loop import make_loader, make_optimizer, steps

if TYPE_CHECKING:
    from tc3d.compress.pipeline import CompressConfig


class CompressError(TC3DError, RuntimeError):
    pass


class FineTuner:
    """Fine-tuning with the training code's data loader, loop and optimizer."""

    def __init__(
        self,
        cfg: CompressConfig,
        ckpt: dict,
        loaded: LoadedModel,
        device,
        progress: Progress | None,
    ):
        self.cfg, self.device, self.progress = cfg, device, progress
        # the model's own training recipe (optimizer, weight decay), at a lower learning rate
        saved = ckpt.get("train_config") or {}
        kept = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
        base = TrainConfig(**{**kept, "data": cfg.data or "", "out": ""})
        self.base_lr = cfg.lr if cfg.lr is not None else base.lr / 10
        self.train_cfg = replace(base, lr=self.base_lr, batch_size=cfg.batch_size)
        self.split = load_dataset(cfg.data, cfg.format, cfg.split, cfg.splits)
        check_classes(loaded.classes, self.split.classes)
        if not self.split.train:
            raise CompressError(f"{cfg.data}: no training videos to fine-tune on")
        self.spec = loaded.clip
        self.loader = make_loader(
            self.split.train, self.spec, cfg.batch_size, cfg.workers, cfg.seed, device
        )
        self.sampler = self.loader.sampler
        self.epoch = 0
        self.skipped: dict[str, str] = {}

    def state_dict(self) -> dict:
        """Where the data order and the dropout draws stand, so a resumed run continues exactly.

        Items are drawn from the sampler's epoch number (each item carries its own
        augmentation seed); dropout draws from the global generator; the loader's own
        generator seeds its workers.
        """
        return {
            "epoch": self.epoch,
            "skipped": dict(self.skipped),
            "rng": rng_state(),
            "loader_rng": self.loader.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.skipped.update(state["skipped"])
        set_rng_state(state["rng"])
        self.loader.generator.set_state(state["loader_rng"])

    @property
    def iters_per_epoch(self) -> int:
        return max(0, round(self.cfg.epochs * self.sampler.batches_per_epoch))

    def optimizer(self, params: list, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(nn.ParameterList(params), replace(self.train_cfg, lr=lr))

    def run(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        iters: int,
        stage: str,
        after_backward: Callable[[], None] = lambda: None,
        after_step: Callable[[], None] = lambda: None,
    ) -> None:
        if iters <= 0:
            return
        # Pruning or sharing changes every layer's output statistics at once; with momentum
        # 0.1 the BatchNorm running estimates need ~20 steps to forget the old network, more
        # than a short fine-tuning has. Restarted as a plain average over this run's batches,
        # they match the weights after a few steps.
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        # masks and shared weights act between backward and update, and after the update
        hooks = [
            optimizer.register_step_pre_hook(lambda *_: after_backward()),
            optimizer.register_step_post_hook(lambda *_: after_step()),
        ]
        try:
            stream = steps(
                model, optimizer, self.loader, self.device, self.skipped, 0, iters,
                self._next_epoch,
            )  # fmt: skip
            for step in stream:
                report(self.progress, step.iteration, iters, {"stage": stage, "loss": step.loss})
        finally:
            for hook in hooks:
                hook.remove()
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()

    def _next_epoch(self, done: int) -> None:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1

    def evaluate(self, loaded: LoadedModel, stage: str) -> float:
        def update(done: int, total: int, info: dict | None = None) -> None:
            report(self.progress, done, total, {"stage": stage, **(info or {})})

        result = evaluate(
            loaded, self.split.test, self.device, workers=self.cfg.workers, progress=update
        )
        for e in result["skipped"]:  # unreadable test videos: left out of top-1, reported
            self.skipped[e["path"]] = e["error"]
        return result["top1"]

    def prune_progressively(
        self, model: nn.Module, targets: dict[str, float], stage: str, final_epochs: int = 0
    ) -> dict[str, torch.Tensor]:
        """Follow :func:`prune.plan`: masks are remade when the sparsity rises, held otherwise."""
        optimizer = self.optimizer(list(model.parameters()), self.base_lr)
        masks: dict[str, torch.Tensor] = {}
        phases = prune.plan(targets, final_epochs)
        rising = prune.epochs_to_reach(targets)
        previous = None
        for i, (now, lr_scale, epochs) in enumerate(phases):
            if now != previous:
                masks = prune.make_masks(model, now)
                prune.apply_masks(model, masks)
                prune.mask_optimizer_state(optimizer, model, masks)
                previous = now
            for group in optimizer.param_groups:
                group["lr"] = self.base_lr * lr_scale
            where = f"{i + 1}/{rising}" if i < rising else "final"
            self.run(
                model,
                optimizer,
                epochs * self.iters_per_epoch,
                f"{stage} {where}: conv {now['conv']:.2f} fc {now['fc']:.2f} "
                f"lr {self.base_lr * lr_scale:.0e}",
                after_backward=lambda m=masks: prune.mask_gradients(model, m),
                after_step=lambda m=masks: prune.apply_masks(model, m),
            )
        return masks
