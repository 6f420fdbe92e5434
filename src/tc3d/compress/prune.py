"""Magnitude pruning with masks that hold during fine-tuning (paper Section III-F, [19], [36]).

Every convolution and the classifier of the backbone are pruned layer by layer: the weights
with the smallest magnitude are set to zero until the layer reaches its sparsity. The
schedule raises sparsity by 0.1 per epoch up to the stage's target (sparse: 0.85 conv / 0.90
fc; prune: 0.90 conv / 0.95 fc, followed by more epochs at that sparsity: see :func:`plan`).

Deliberate exceptions:

* the **first layer** (the 3×7×7 stem convolution) is capped at ``STEM_SPARSITY``: it sees raw
  pixels through only 3 input channels, so each weight carries much more of the signal
  (Han et al. likewise kept most of AlexNet's conv1), and it holds < 0.1% of the weights;
* the **last layer** (the classifier) is pruned at the fc rate, as the paper does;
* **BatchNorm**, biases and fusion weights are never pruned or shared: they are a few
  thousand numbers that scale whole channels, stored as fp32 in the ``.tc3d`` file.

A mask holds when (1) pruned weights are zero after every step, (2) their gradients are zeroed
before the optimizer sees them and (3) their optimizer state (SGD momentum, Adam moments) is
zeroed whenever a mask changes, so nothing pushes them away from zero later.
"""

from __future__ import annotations

import torch
from torch import nn

STEM_SPARSITY = 0.5
SPARSE_TARGETS = {"conv": 0.85, "fc": 0.90}
PRUNE_TARGETS = {"conv": 0.90, "fc": 0.95}


def prunable_layers(model: nn.Module) -> dict[str, tuple[str, nn.Parameter]]:
    """``{state-dict name: (kind, weight)}`` for every conv and linear weight.

    kind is ``"stem"``, ``"conv"`` or ``"fc"``. Names match ``model.state_dict()``.
    """
    out = {}
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            if isinstance(module, nn.Linear):
                kind = "fc"
            elif module_name.endswith("stem.0"):
                kind = "stem"
            else:
                kind = "conv"
            out[f"{module_name}.weight"] = (kind, module.weight)
    return out


def layer_sparsity(kind: str, targets: dict[str, float]) -> float:
    if kind == "stem":
        return min(targets["conv"], STEM_SPARSITY)
    return targets[kind]


def schedule(epoch: int, targets: dict[str, float], step: float = 0.1) -> dict[str, float]:
    """Sparsity targets after ``epoch`` (0-based) epochs of progressive pruning: +0.1 each."""
    return {k: min(v, round(step * (epoch + 1), 6)) for k, v in targets.items()}


def epochs_to_reach(targets: dict[str, float], step: float = 0.1) -> int:
    return max(int(-(-round(v / step, 6) // 1)) for v in targets.values())


def plan(
    targets: dict[str, float], final_epochs: int = 0, step: float = 0.1
) -> list[tuple[dict[str, float], float, int]]:
    """A progressive pruning stage as ``(sparsity targets, lr scale, epochs)`` phases.

    One epoch per +0.1 step, then ``final_epochs`` more at the final sparsity: the first half
    at the fine-tuning rate, the second at a tenth of it. The last step does the most damage
    (0.8 -> 0.9 halves the surviving weights), so one epoch after it does not recover the
    loss; and a stage that ends at its full rate leaves the weights mid-stride, where the
    model's own training ended at a small rate.
    """
    phases = [(schedule(e, targets, step), 1.0, 1) for e in range(epochs_to_reach(targets, step))]
    final = phases[-1][0]
    at_rate, at_tenth = final_epochs - final_epochs // 2, final_epochs // 2
    phases += [(final, 1.0, at_rate)] if at_rate else []
    phases += [(final, 0.1, at_tenth)] if at_tenth else []
    return phases


@torch.no_grad()
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the ``round((1 - sparsity) * n)`` largest-magnitude weights (ties: lower index)."""
    n = weight.numel()
    keep = n - int(round(sparsity * n))
    mask = torch.zeros(n, dtype=torch.bool, device=weight.device)
    if keep > 0:
        order = torch.argsort(weight.detach().abs().flatten(), descending=True, stable=True)
        mask[order[:keep]] = True
    return mask.view_as(weight)


def make_masks(model: nn.Module, targets: dict[str, float]) -> dict[str, torch.Tensor]:
    return {
        name: magnitude_mask(w, layer_sparsity(kind, targets))
        for name, (kind, w) in prunable_layers(model).items()
    }


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    for name, (_, w) in prunable_layers(model).items():
        if name in masks:
            w.mul_(masks[name])


def mask_gradients(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    for name, (_, w) in prunable_layers(model).items():
        if name in masks and w.grad is not None:
            w.grad.mul_(masks[name])


@torch.no_grad()
def mask_optimizer_state(
    optimizer: torch.optim.Optimizer, model: nn.Module, masks: dict[str, torch.Tensor]
) -> None:
    """Zero every per-weight state (momentum, Adam moments) of pruned weights."""
    for name, (_, w) in prunable_layers(model).items():
        state = optimizer.state.get(w, {})
        for value in state.values():
            if torch.is_tensor(value) and value.shape == w.shape and name in masks:
                value.mul_(masks[name])


def sparsity_report(model: nn.Module) -> dict:
    """Fraction of exactly-zero weights over the prunable layers (0-100)."""
    layers = prunable_layers(model)
    total = sum(w.numel() for _, w in layers.values())
    zeros = sum(int((w == 0).sum()) for _, w in layers.values())
    return {"sparsity": 100.0 * zeros / total if total else 0.0, "weights": total}
