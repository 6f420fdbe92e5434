"""Compare what two versions of tc3d wrote in ``compare_versions.sh``'s OUT/old and OUT/new.

    python benchmarks/compare_outputs.py OUT OLD_SRC NEW_SRC

Each command's JSON must be identical once timings and each side's own paths (its output folder,
its source tree) are taken out; weights and training logs bit for bit (timing fields aside); the
synthetic videos, the feature file, the .tc3d files and the tag file byte for byte; the ONNX
files in their graph and weights (the exporter also stores each node's source location, which
names the side's source tree). Prints one line per comparison; exits 1 if any differs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

TIMING = re.compile(r"seconds|fps|latency|per_s|wait|_ms|^calibration$|_s$")
# the ONNX file's size follows the source paths the exporter stores; its graph is compared below
NOT_COMPARED = {"export": ("file_bytes",)}


def strip(value, replace: dict[str, str]):
    """Timings, and this side's own folders in paths, differ by construction."""
    if isinstance(value, dict):
        return {k: strip(v, replace) for k, v in value.items() if not TIMING.search(k)}
    if isinstance(value, list):
        return [strip(x, replace) for x in value]
    if isinstance(value, str):
        for a, b in replace.items():
            value = value.replace(a, b)
    return value


def json_lines(path: Path, replace: dict[str, str]) -> list:
    lines = path.read_text().splitlines() if path.exists() else []
    return [strip(json.loads(line), replace) for line in lines if line.strip()]


def onnx_graph(path: Path) -> bytes:
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.metadata_props[:]
    return model.SerializeToString()


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def main(out: Path, old_src: str, new_src: str) -> int:
    sides = {"old": out / "old", "new": out / "new"}
    replace = {s: {str(d): "SIDE", {"old": old_src, "new": new_src}[s]: "SRC"}
               for s, d in sides.items()}  # fmt: skip
    rows: list[tuple[str, bool]] = []
    for path in sorted((sides["new"] / "json").iterdir()):
        a, b = (json_lines(sides[s] / "json" / path.name, replace[s]) for s in sides)
        for key in NOT_COMPARED.get(path.stem, ()):
            for d in a + b:
                d.pop(key, None)
        rows.append((path.stem, bool(a) and a == b))
    old, new = sides["old"], sides["new"]
    rows.append(("synthetic videos", (old / "videos.sha256").read_text()
                 == (new / "videos.sha256").read_text()))  # fmt: skip
    for run in ("run", "anomaly", "pre"):
        a, b = weights(old / run / "last.pt"), weights(new / run / "last.pt")
        rows.append(
            (f"{run} weights", a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a))
        )
        logs = [json_lines(side / run / "log.jsonl", replace[s]) for s, side in sides.items()]
        rows.append((f"{run} log", bool(logs[0]) and logs[0] == logs[1]))
    fa, fb = np.load(old / "feats.npz"), np.load(new / "feats.npz")
    rows.append(("feature file", fa.files == fb.files
                 and all(np.array_equal(fa[k], fb[k]) for k in fa.files)))  # fmt: skip
    for name in ("run.tc3d", "oneshot.tc3d", "tags.csv"):
        rows.append((name, (old / name).read_bytes() == (new / name).read_bytes()))
    rows.append(
        ("model.onnx graph", onnx_graph(old / "model.onnx") == onnx_graph(new / "model.onnx"))
    )
    for name, same in rows:
        print(f"{name:20s} {'identical' if same else 'DIFFERENT'}")
    return 0 if all(same for _, same in rows) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
