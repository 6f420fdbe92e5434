"""Checkpoints: plain dicts of tensors and JSON-able config, written atomically, loaded safely.

A checkpoint holds ``model`` (state dict), ``model_config``, ``clip`` (sampling and crop the
model was trained with), ``classes``, and, for resuming, ``optimizer``, ``iteration``,
``rng`` and ``train_config``. Everything loads with ``torch.load(weights_only=True)``: opening
a checkpoint never runs code from the file.

Writes go to a temporary file in the same directory, are flushed to disk, then renamed over the
target: a crash or ``kill -9`` mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tc3d.data.clips import ClipSpec
from tc3d.models.tc3d import TC3D, ModelConfig

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A model file that cannot be used; str(e) is one line for the user."""


def _atomic_write(path: str | Path, mode: str, write) -> None:
    """Write through ``write(file)`` into a temp file beside ``path``, fsync, then rename.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path: str | Path) -> None:
    _atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    _atomic_write(path, "w", lambda f: f.write(text))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    _atomic_write(path, "wb", lambda f: f.write(data))


def atomic_write_with(path: str | Path, write) -> None:
    """Any binary writer (``fig.savefig``, ``PIL.Image.save``) given the open temp file."""
    _atomic_write(path, "wb", write)


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
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable tc3d checkpoint ({first_line})") from None
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


@contextlib.contextmanager
def _skip_init():
    """Build a model without its random initialisation, for weights that are loaded next.

    Drawing 33 M random numbers costs 0.6 s for the full-width model, more than decoding a
    ``.tc3d`` file. (The meta device would do the same, but its first use imports ~2 s of
    symbolic-shape machinery.) ``load_state_dict(strict=True)`` then guarantees that every
    tensor was replaced.
    """
    names = ("kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "ones_", "zeros_")
    saved = {n: getattr(nn.init, n) for n in names}
    for n in names:
        setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


def _read_any(path: str | Path) -> dict:
    """A checkpoint dict from a ``.pt`` checkpoint, a ``.tc3d`` file or a shipped model name
    (``motion``); a ``.tc3d`` file is decoded to dense weights."""
    from tc3d.compress import encode  # lazy: the compression code imports this module
    from tc3d.weights import resolve

    path = resolve(path)
    if path.is_file() and encode.is_tc3d(path):
        contents = encode.read_tc3d(path)
        return {
            "model": encode.state_dict_from(contents),
            "model_config": contents.header.get("model_config"),
            "classes": contents.header.get("classes"),
            "clip": contents.header.get("clip"),
        }
    return load_checkpoint(path)


def load_model(path: str | Path) -> LoadedModel:
    """Build the model stored in a training checkpoint, a ``.tc3d`` file or a shipped model
    (by name), in eval mode on the CPU. A ``.tc3d`` file (recognised by its magic bytes) is
    decoded to dense weights, so it runs exactly as fast as the checkpoint it came from."""
    ckpt = _read_any(path)
    missing = {"model", "model_config", "classes", "clip"} - ckpt.keys()
    if missing:
        raise CheckpointError(f"{path}: not a tc3d checkpoint (missing {sorted(missing)})")
    try:
        with _skip_init():
            model = TC3D(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"], assign=True)
        clip = ClipSpec.from_dict(ckpt["clip"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: checkpoint does not match the model ({first_line})"
        ) from None
    from tc3d.weights import resolve

    return LoadedModel(model.eval(), list(ckpt["classes"]), clip, resolve(path))


def model_geometry(path: str | Path) -> tuple[float | None, int | None]:
    """(width, crop) a pretrained model was made with, or None where the file does not say
    (a torchvision ``r3d_18`` state dict): the defaults of a run that starts from it."""
    ckpt = _read_any(path)
    width = (ckpt.get("model_config") or {}).get("width")
    crop = (ckpt.get("clip") or {}).get("crop")
    return width, crop


def backbone_state_from_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Res3D-18 weights from a tc3d checkpoint, a ``.tc3d`` file, a shipped model name or a
    torchvision-style ``r3d_18`` state dict."""
    ckpt = _read_any(path)
    state = ckpt.get("model", ckpt)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    for prefix in ("backbones.0.", "module.backbones.0.", "module."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    if not any(k.startswith("stem.0.") for k in state):
        raise CheckpointError(f"{path}: no Res3D-18 weights inside (expected r3d_18 key names)")
    return state


def init_backbones(model: TC3D, path: str | Path) -> list[str]:
    """Load pretrained backbone weights into every backbone; re-initialise a mismatched fc.

    Returns the names of the parameters that were left at their fresh initialisation.
    """
    state = backbone_state_from_file(path)
    fresh: list[str] = []
    for backbone in model.backbones:
        own = backbone.state_dict()
        usable = {}
        for k, v in state.items():
            if k in own and own[k].shape == v.shape:
                usable[k] = v
            elif k in own:
                fresh.append(k)  # e.g. fc for a different number of classes
        backbone.load_state_dict(usable, strict=False)
        fresh += [k for k in own if k not in state]
    width_mismatch = [k for k in fresh if not k.startswith("fc.")]
    if width_mismatch:
        raise CheckpointError(
            f"{path}: weights do not fit this model (e.g. {width_mismatch[0]}); check --width"
        )
    if fresh:
        log.info("re-initialised %s (class count differs)", sorted(set(fresh)))
    return sorted(set(fresh))
