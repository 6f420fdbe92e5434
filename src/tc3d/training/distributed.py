"""The few collective operations a run needs under ``torchrun``; with one process they are
plain pass-throughs, so the same training code runs alone and with DistributedDataParallel."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def join() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def gather(obj, world: int) -> list:
    """``obj`` of every rank, in rank order."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def merged(part: dict, world: int) -> dict:
    """The union of every rank's ``part``."""
    out: dict = {}
    for p in gather(part, world):
        out.update(p)
    return out


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
