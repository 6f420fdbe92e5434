"""Device, threads, memory layout and precision: the one place that knows about hardware.

On CPU, 3D convolutions run about twice as fast in ``channels_last_3d`` (measured: one
width-0.25 training step on 24 clips, 1.7 s -> 1.0 s), so models and inputs use it there.
bf16 autocast halves inference time on CPUs with AVX-512 bf16 but its conv3d backward is very
slow, so training on CPU stays fp32 unless asked otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from tc3d.errors import TC3DError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "int8")  # int8: inference only (tc3d.infer.quantize)
AUTOCAST = ("fp32", "bf16")  # what a forward pass under autocast takes (training too)


class DeviceError(TC3DError, RuntimeError):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    if name not in DEVICES:
        raise DeviceError(f"--device must be one of {DEVICES}, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda asked for, but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def set_threads(threads: int | None = None, world_size: int = 1) -> int:
    """Use all cores, split among the processes of a distributed run."""
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // max(1, world_size))
    torch.set_num_threads(threads)
    return threads


# TC3D_MEMORY_FORMAT overrides the layout per device (a knob for measuring, e.g. channels-last on
# a GPU, where cuDNN's bf16 convolutions may prefer it; not yet measured there).
MEMORY_FORMATS = {"channels_last": torch.channels_last_3d, "contiguous": torch.contiguous_format}


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last_3d on CPU, contiguous elsewhere, unless TC3D_MEMORY_FORMAT names one."""
    asked = os.environ.get("TC3D_MEMORY_FORMAT", "")
    if asked:
        if asked not in MEMORY_FORMATS:
            raise DeviceError(
                f"TC3D_MEMORY_FORMAT must be one of {tuple(MEMORY_FORMATS)}, not {asked!r}"
            )
        return MEMORY_FORMATS[asked]
    return torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return model.to(device=device, memory_format=memory_format(device))


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a clip batch ``(N, 3, T, H, W)`` (or more leading dims) in the right layout."""
    x = x.to(device, non_blocking=True)
    if x.dim() == 5:
        x = x.contiguous(memory_format=memory_format(device))
    return x


def autocast(device: torch.device, precision: str = "fp32"):
    """Context for a forward pass at ``precision`` (fp32: no autocast)."""
    if precision not in AUTOCAST:
        raise DeviceError(f"--precision must be one of {AUTOCAST}, not {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def rng_state() -> dict:
    """The global random generators (dropout draws from CUDA's on a GPU), for exact resumes."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict | torch.Tensor) -> None:
    """Restore what :func:`rng_state` returned; a bare tensor is the CPU generator alone (what
    ``tc3d train`` checkpoints held before they kept CUDA's too)."""
    if isinstance(state, torch.Tensor):
        state = {"cpu": state, "cuda": []}
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
