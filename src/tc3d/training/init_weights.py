"""Starting a training run from pretrained weights (``--init``).

The weights come from a tc3d checkpoint, a ``.tc3d`` file, the name of a shipped model
(``motion``) or a torchvision-style ``r3d_18`` state dict; every backbone of the new model
receives them, and a classifier made for another number of classes starts fresh. The files are
read through :func:`tc3d.modelfile.checkpoint.read_model_file`, so this module sits beside
``checkpoint`` rather than in ``models/``, which reads no files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tc3d.modelfile.checkpoint import CheckpointError, read_model_file
from tc3d.models.tc3d import TC3D

log = logging.getLogger(__name__)


def model_geometry(path: str | Path) -> tuple[float | None, int | None]:
    """(width, crop) a pretrained model was made with, or None where the file does not say
    (a torchvision ``r3d_18`` state dict): the defaults of a run that starts from it."""
    ckpt = read_model_file(path)
    width = (ckpt.get("model_config") or {}).get("width")
    crop = (ckpt.get("clip") or {}).get("crop")
    return width, crop


def backbone_state_from_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Res3D-18 weights from a tc3d checkpoint, a ``.tc3d`` file, a shipped model name or a
    torchvision-style ``r3d_18`` state dict."""
    ckpt = read_model_file(path)
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
