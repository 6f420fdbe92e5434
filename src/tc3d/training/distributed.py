"""The few collective operations a run needs under ``torchrun``; with one process they are
plain pass-throughs, so the same training code runs alone and with DistributedDataParallel."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """Whether torchrun (or another env:// launcher) started this process."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def join(device: torch.device | None = None) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun: nccl for a CUDA
    ``device``, gloo for the CPU. One process joins too (``torchrun --nproc-per-node 1``), so
    that it runs DistributedDataParallel exactly as N would."""
    if not launched():
        return 0, 1
    if not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(device)  # this rank's GPU, before NCCL picks one
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def active() -> dict | None:
    """``{backend, world}`` of the joined process group, None outside one."""
    if not dist.is_initialized():
        return None
    return {"backend": str(dist.get_backend()), "world": dist.get_world_size()}


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
