"""Weight sharing: per-layer k-means on the surviving weights, then centroid fine-tuning.

Paper Section III-F (quantization, Eq. 6) after Han et al. [19]: the non-zero weights of each
layer are clustered into k values (256 for convolutions, 32 for the classifier) and each
weight stores only its cluster index. Centroids start spread linearly across [min, max] (as
[19]'s code does: it keeps the rare large weights represented, which matter most), and are
then fine-tuned: every centroid moves by the *sum* of its members' gradients, and pruned
positions stay zero.

k-means is one-dimensional here, where Lloyd's algorithm needs no distance matrix: on the
sorted values each cluster is a contiguous run, the boundaries are the midpoints between
neighbouring centroids (one ``searchsorted``), and the means come from a prefix sum. An
iteration costs O(k log n), so running to convergence takes milliseconds even for the
full-width model, where a general n-D k-means (e.g. scikit-learn's) would compute n×k
distances per iteration.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tc3d.compress.prune import prunable_layers
from tc3d.modelfile.tc3dfile import SharedLayer

CLUSTERS = {"stem": 256, "conv": 256, "fc": 32}


def kmeans_1d(values: np.ndarray, k: int, max_iters: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm with linear initialisation; returns ``(centroids, labels)``.

    Centroids stay sorted (1-D Lloyd's preserves order; empty clusters keep their place).
    """
    x = np.asarray(values, np.float64).ravel()
    if len(x) == 0:
        return np.zeros(k, np.float32), np.zeros(0, np.int64)
    xs = np.sort(x)
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    centroids = np.linspace(xs[0], xs[-1], k)
    bounds = None
    for _ in range(max_iters):
        mid = (centroids[1:] + centroids[:-1]) / 2
        # cluster j holds xs[edges[j]:edges[j+1]]; ties go to the lower cluster
        new_bounds = np.searchsorted(xs, mid, side="right")
        if bounds is not None and np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        edges = np.concatenate([[0], bounds, [len(xs)]])
        counts = np.diff(edges)
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled]
    centroids = centroids.astype(np.float32)
    mid = (centroids[1:].astype(np.float64) + centroids[:-1]) / 2
    return centroids, np.searchsorted(mid, x, side="left").astype(np.int64)


def share_layer(
    name: str, kind: str, weight: torch.Tensor, mask: torch.Tensor, k: int | None = None
) -> SharedLayer:
    """Cluster a layer's surviving weights into ``k`` values (default: ``CLUSTERS``)."""
    flat = weight.detach().cpu().reshape(-1).numpy()  # logical (row-major) order
    positions = np.flatnonzero(mask.detach().cpu().reshape(-1).numpy())
    codebook, indices = kmeans_1d(flat[positions], k or CLUSTERS[kind])
    return SharedLayer(
        name, tuple(weight.shape), "fc" if kind == "fc" else "conv", codebook, positions, indices
    )


def share_model(
    model: nn.Module, masks: dict[str, torch.Tensor], conv_k: int | None = None
) -> list[SharedLayer]:
    """Every pruned layer shared; ``conv_k`` overrides the convolution codebook size (256)."""
    return [
        share_layer(n, kind, w, masks[n], None if kind == "fc" else conv_k)
        for n, (kind, w) in prunable_layers(model).items()
    ]


class SharedWeights:
    """Trainable codebooks standing behind the pruned layers of a model.

    The layers' weights stay ordinary parameters (so forward and backward are unchanged) but
    are not given to the optimizer; after each backward pass their gradients are summed per
    cluster into the codebook gradients, and after each step the weights are rewritten as
    ``codebook[index]`` at the surviving positions and zero elsewhere.
    """

    def __init__(self, model: nn.Module, layers: list[SharedLayer]):
        self.model = model
        weights = {name: w for name, (_, w) in prunable_layers(model).items()}
        self.layers = {layer.name: layer for layer in layers}
        self.weights = {name: weights[name] for name in self.layers}
        device = next(iter(self.weights.values())).device if self.weights else "cpu"
        self.codebooks = nn.ParameterDict(
            {
                _key(n): nn.Parameter(torch.from_numpy(layer.codebook.copy()).to(device))
                for n, layer in self.layers.items()
            }
        )
        self.positions = {
            n: torch.from_numpy(layer.positions).to(device) for n, layer in self.layers.items()
        }
        self.indices = {
            n: torch.from_numpy(layer.indices).to(device) for n, layer in self.layers.items()
        }
        self.write_weights()

    def other_parameters(self) -> list[nn.Parameter]:
        """Parameters trained as usual: BatchNorm, biases, fusion weights."""
        shared = {id(w) for w in self.weights.values()}
        return [p for p in self.model.parameters() if id(p) not in shared]

    def accumulate_gradients(self) -> None:
        """codebook.grad[c] = sum of the gradients of the weights in cluster c."""
        for n, w in self.weights.items():
            cb = self.codebooks[_key(n)]
            grad = torch.zeros_like(cb)
            if w.grad is not None:
                member_grads = w.grad.reshape(-1)[self.positions[n]]
                grad.index_add_(0, self.indices[n], member_grads)
            cb.grad = grad
            w.grad = None

    @torch.no_grad()
    def write_weights(self) -> None:
        for n, w in self.weights.items():
            flat = torch.zeros(w.numel(), dtype=w.dtype, device=w.device)
            flat[self.positions[n]] = self.codebooks[_key(n)][self.indices[n]]
            w.copy_(flat.view(w.shape))  # copy_ keeps the parameter's memory format

    def to_layers(self) -> list[SharedLayer]:
        out = []
        for n, layer in self.layers.items():
            codebook = self.codebooks[_key(n)].detach().cpu().numpy().astype(np.float32)
            out.append(
                SharedLayer(n, layer.shape, layer.kind, codebook, layer.positions, layer.indices)
            )
        return out


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys may not contain dots
