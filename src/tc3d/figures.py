"""The one figure writer: every PNG plot tc3d draws (anomaly curves, ROC curves, compression
stages) is made and saved here, so they share a back end, a resolution and an atomic write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tc3d.io import atomic_write_with


def save_figure(
    path: str | Path, draw: Callable, size: tuple[float, float], dpi: int = 100
) -> Path:
    """Draw a one-axes figure with ``draw(fig, ax)`` and write it to ``path`` as a PNG.

    The file appears whole or not at all (:mod:`tc3d.io`); matplotlib runs headless (Agg), so
    plots work on servers and in CI. Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    try:
        draw(fig, ax)
        fig.tight_layout()
        atomic_write_with(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)
    return path
