"""The compression report: Table VIII as rows, a per-layer table, JSON and a PNG plot.

Rows are plain dicts (what :func:`tc3d.compress.pipeline.compress` returns) so the CLI, tests
and scripts share them; rendering is kept here, printing stays in the CLI. Sizes are MiB
(2**20 bytes), the unit in which 33.2 M fp32 weights are the paper's "127 MB".
"""

from __future__ import annotations

import json
from pathlib import Path

from tc3d.figures import save_figure
from tc3d.io import atomic_write_text
from tc3d.modelfile.tc3dfile import Tc3dError, read_tc3d

STAGE_TITLES = {
    "baseline": "Baseline T-C3D",
    "sparse": "Sparse",
    "dense": "Dense",
    "prune": "Prune",
    "quantize": "Quantization",
    "huffman": "Huffman Coding",
}


def stage_table(result: dict, title: str = "deep compression (paper Table VIII)"):
    from rich.table import Table

    table = Table(title=title)
    for name in ("stage", "top-1 %", "size MiB", "sparsity %", "ratio"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for r in result["stages"]:
        table.add_row(
            STAGE_TITLES.get(r["stage"], r["stage"]),
            f"{r['top1']:.2f}" if r.get("top1") is not None else "-",
            f"{r['size_bytes'] / 2**20:.3f}",
            f"{r['sparsity']:.1f}",
            f"{r['ratio']:.1f}x" if r.get("ratio") else "-",
        )
    return table


def layer_table(layers: list[dict], title: str = "layers of the .tc3d file"):
    """Per layer: shape, sparsity, centroids, coded bits per weight and Eq. 6's rate."""
    from rich.table import Table

    table = Table(title=title)
    for name in ("layer", "shape", "sparsity %", "k", "bytes", "bits/weight", "Eq.6 r"):
        table.add_column(name, justify="left" if name in ("layer", "shape") else "right")
    for x in layers:
        table.add_row(
            x["name"].replace("backbones.0.", ""),
            "×".join(str(d) for d in x["shape"]),
            f"{x['sparsity']:.1f}",
            str(x["k"]),
            f"{x['bytes']:,}",
            f"{x['bits_per_weight']:.2f}",
            f"{x['rate']:.1f}",
        )
    return table


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(json.dumps(result, indent=1, default=str) + "\n", path)
    return path


def write_plot(result: dict, path: str | Path) -> Path:
    """Bars: size per stage (MiB, log scale); line: video top-1 per stage (when measured)."""
    rows = result["stages"]
    names = [STAGE_TITLES.get(r["stage"], r["stage"]) for r in rows]
    sizes = [r["size_bytes"] / 2**20 for r in rows]

    def draw(fig, ax) -> None:
        bars = ax.bar(names, sizes, color="#4c72b0")
        ax.set_yscale("log")
        ax.set_ylabel("model size (MiB, log scale)")
        for bar, size in zip(bars, sizes, strict=True):
            ax.annotate(f"{size:.2f}", (bar.get_x() + bar.get_width() / 2, size), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
        accuracies = [r.get("top1") for r in rows]
        if any(a is not None for a in accuracies):
            ax2 = ax.twinx()
            xs = [i for i, a in enumerate(accuracies) if a is not None]
            ax2.plot(xs, [accuracies[i] for i in xs], "o-", color="#dd8452")
            ax2.set_ylabel("video top-1 (%)", color="#dd8452")
            low = min(accuracies[i] for i in xs)
            ax2.set_ylim(max(0, low - 10), 100.5)
        ax.set_title("deep compression: size and accuracy per stage")
        ax.tick_params(axis="x", labelsize=8)

    return save_figure(path, draw, (8, 4.2), dpi=110)


def write_reports(result: dict, out: str | Path) -> dict:
    """Write a compression run's report beside its ``.tc3d`` file ``out``: NAME.compress.json
    (``result``, holding both paths) and NAME.compress.png; ``result`` gains ``report`` and
    ``plot``."""
    out = Path(out)
    result["report"] = str(out.with_name(out.stem + ".compress.json"))
    result["plot"] = str(write_plot(result, out.with_name(out.stem + ".compress.png")))
    write_json(result, result["report"])
    return result


def inspect_file(path: str | Path) -> dict:
    """``tc3d inspect``: check a ``.tc3d`` file's checksum, decode it and total its sizes.

    A damaged file is data, not an exception: ``{"valid": False, "error", "file_bytes"}``."""
    path = Path(path)
    try:
        contents = read_tc3d(path)
    except Tc3dError as e:
        return {"valid": False, "error": str(e), "file_bytes": path.stat().st_size}
    h = contents.header
    return {
        "valid": True,
        "file": str(path),
        "file_bytes": contents.file_bytes,
        "layers": contents.layer_stats,
        "dense_bytes": sum(d["data"][1] for d in h["dense"]),  # BatchNorm, biases, fusion
        "weights": sum(x["nnz"] for x in contents.layer_stats),
        "classes": h["classes"],
        "model_config": h["model_config"],
        "clip": h["clip"],
    }
