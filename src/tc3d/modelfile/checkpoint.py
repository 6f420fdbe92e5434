"""The one checkpoint schema: what a model file holds, how it is written and read.

A checkpoint is a plain dict: ``model`` (state dict), ``model_config``, ``clip`` (sampling and
crop the model was trained with) and ``classes``, written by :func:`save_model`; a training
run adds ``optimizer``, ``iteration``, ``rng``, ``train_config`` and the like for resuming.
Everything loads with ``torch.load(weights_only=True)``: opening a checkpoint never runs code
from the file. :func:`load_model_file` builds the model from a ``.pt`` checkpoint, a ``.tc3d`` file
(:mod:`tc3d.modelfile.tc3dfile`, whose header carries the same ``model_metadata``) or the name of
a shipped model. Writes are atomic (:mod:`tc3d.io`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from tc3d.errors import TC3DError, first_line
from tc3d.io import atomic_save
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.shipped import resolve
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec

SCHEMA = ("model", "model_config", "clip", "classes")
OPTIONAL = ("anomaly_scorer",)  # carried by a checkpoint and a .tc3d header when present


class CheckpointError(TC3DError, RuntimeError):
    """A model file that cannot be used; str(e) is one line for the user."""


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a tc3d model file (expected a .pt checkpoint or a .tc3d file)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(f"{path}: not a readable tc3d checkpoint ({first_line(e)})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a tc3d checkpoint (no dict inside)")
    return ckpt


@dataclass
class LoadedModel:
    """A model ready for inference with what is needed to feed it."""

    model: TC3D
    classes: list[str]
    clip: ClipSpec
    source: Path
    anomaly_scorer: dict | None = None  # tc3d anomaly train --objective ranking's scorer


def model_metadata(model: TC3D, classes: list[str], clip: ClipSpec) -> dict:
    """What rebuilds a model and feeds it: the keys a checkpoint and a ``.tc3d`` header share."""
    return {
        "classes": list(classes),
        "model_config": model.cfg.to_dict(),
        "clip": clip.to_dict(),
    }


def save_model(path: str | Path, model: TC3D, classes: list[str], clip: ClipSpec, **extra) -> None:
    """Write a checkpoint atomically; ``extra`` (resume state, ``train_config``) is stored
    beside the schema keys, which it may not replace."""
    clash = set(SCHEMA) & extra.keys()
    if clash:
        raise ValueError(f"save_model: {sorted(clash)} are written from the model itself")
    atomic_save(
        {"model": model.state_dict(), **model_metadata(model, classes, clip), **extra}, path
    )


_RANDOM_FILLS = frozenset(
    {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        nn.init.uniform_,
        nn.init.normal_,
        nn.init.trunc_normal_,
        nn.init.kaiming_uniform_,
        nn.init.kaiming_normal_,
        nn.init.xavier_uniform_,
        nn.init.xavier_normal_,
    }
)


class _WithoutRandomInit(TorchFunctionMode):
    """Build a model without drawing its random initial weights, for weights loaded next.

    Drawing 33 M random numbers costs 0.6 s for the full-width model, more than decoding a
    ``.tc3d`` file; inside this mode the random initialisers leave the tensor as allocated.
    A torch-function mode is local to the thread that enters it: unlike patching ``nn.init``,
    it cannot leave a model that another thread builds meanwhile uninitialised. (The meta
    device would do the same, but its first use imports ~2 s of symbolic-shape machinery.)
    ``load_state_dict(strict=True)`` then guarantees that every tensor was replaced.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS:  # nn.init dispatches with the tensor as a keyword
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def read_model_file(path: str | Path) -> dict:
    """A checkpoint dict from a ``.pt`` checkpoint, a ``.tc3d`` file or a shipped model name
    (``motion``); a ``.tc3d`` file is decoded to dense weights."""
    path = resolve(path)
    if path.is_file() and encode.is_tc3d(path):
        try:
            contents = encode.read_tc3d(path)
        except encode.Tc3dError as e:
            raise CheckpointError(str(e)) from None
        return {"model": encode.state_dict_from(contents)} | {
            k: contents.header.get(k) for k in (*SCHEMA[1:], *OPTIONAL)
        }
    return load_checkpoint(path)


def load_model_file(path: str | Path) -> LoadedModel:
    """Build the model stored in a training checkpoint, a ``.tc3d`` file or a shipped model
    (by name), in eval mode on the CPU. A ``.tc3d`` file (recognised by its magic bytes) is
    decoded to dense weights, so it runs exactly as fast as the checkpoint it came from."""
    ckpt = read_model_file(path)
    missing = set(SCHEMA) - ckpt.keys()
    if missing:
        raise CheckpointError(f"{path}: not a tc3d checkpoint (missing {sorted(missing)})")
    try:
        with _WithoutRandomInit():
            model = TC3D(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"], assign=True)
        clip = ClipSpec.from_dict(ckpt["clip"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as e:
        raise CheckpointError(
            f"{path}: checkpoint does not match the model ({first_line(e)})"
        ) from None
    scorer = ckpt.get("anomaly_scorer")
    return LoadedModel(model.eval(), list(ckpt["classes"]), clip, resolve(path), scorer)
