"""The run folder of ``tc3d train`` and ``tc3d pretrain``: ``config.json``, ``log.jsonl``,
``last.pt`` (everything needed to resume exactly) and ``best.pt`` (the best validated weights).

Only rank 0 writes; every rank takes part in a save, because the random generators and the
skipped videos of all ranks go into ``last.pt``. A resumed run cuts ``log.jsonl`` back to the
steps its checkpoint holds, so no step is logged twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.device import rng_state, set_rng_state
from tc3d.io import atomic_write_text
from tc3d.modelfile.checkpoint import load_checkpoint, save_model
from tc3d.training.distributed import gather, merged

if TYPE_CHECKING:
    import torch

    from tc3d.video.clips import ClipSpec

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """Where a run stands: what its checkpoints record besides weights and optimiser."""

    iteration: int = 0  # steps done
    best: float = -1.0  # best validation top-1 so far (-1: none yet)
    skipped: dict[str, str] = field(default_factory=dict)  # this rank's unreadable videos
    resumed: bool = False


@dataclass
class RunDir:
    out: Path
    rank: int = 0
    world: int = 1

    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    @property
    def last(self) -> Path:
        return self.out / "last.pt"

    @property
    def best(self) -> Path:
        return self.out / "best.pt"

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

    def start(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, resume: bool
    ) -> RunState:
        """Continue from ``last.pt`` (weights, optimiser, random generators, log) when
        ``resume`` and it exists; otherwise a fresh run folder with an empty log."""
        if resume and self.last.exists():
            ckpt = load_checkpoint(self.last)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            rng = ckpt["rng"]  # one state per rank (pretrain checkpoints once held a bare one)
            if isinstance(rng, list):
                rng = rng[self.rank] if self.rank < len(rng) else rng[0]
            set_rng_state(rng)
            self.truncate_log(ckpt["iteration"])
            log.info("resumed from %s at iteration %d", self.last, ckpt["iteration"])
            skipped = {s["path"]: s["error"] for s in ckpt["skipped"]}
            return RunState(ckpt["iteration"], ckpt["best_top1"], skipped, resumed=True)
        if resume:
            log.warning("--resume: no %s yet, starting from scratch", self.last)
        return self.fresh()

    def fresh(self) -> RunState:
        """A new run: the folder made, any old log removed."""
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log_path.unlink(missing_ok=True)
        return RunState()

    def write_config(self, config: dict) -> None:
        if self.rank == 0:
            atomic_write_text(json.dumps(config, indent=2) + "\n", self.out / "config.json")

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        classes: list[str],
        spec: ClipSpec,
        config: dict,
        state: RunState,
        top1: float | None,
    ) -> None:
        """Write ``last.pt``, and ``best.pt`` when ``top1`` (a new validation score) beats the
        best so far, or when there is none yet and nothing validated (``top1`` None)."""
        rng_states = gather(rng_state(), self.world)  # CPU and CUDA generators of every rank
        skipped = merged(state.skipped, self.world)
        if self.rank != 0:
            return
        record = {
            "train_config": config,
            "iteration": state.iteration,
            "best_top1": state.best,
            "rng": rng_states,
            "skipped": [{"path": p, "error": e} for p, e in skipped.items()],
        }
        improved = top1 is not None and top1 > state.best
        if improved:
            state.best = record["best_top1"] = top1
        if improved or (top1 is None and not self.best.exists()):
            save_model(self.best, model, classes, spec, **record)
        save_model(self.last, model, classes, spec, optimizer=optimizer.state_dict(), **record)
