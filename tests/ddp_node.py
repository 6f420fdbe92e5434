"""One process of tests/test_ddp_multinode.py, started by torchrun: ``tc3d train`` exactly as
``python -m tc3d train`` runs it, then a record of what this rank did in ``OUT/rank<R>.json``:
a digest of its parameters at the start and at the end, and the files it wrote with
``torch.save`` (only rank 0 may write checkpoints)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

import tc3d.training.train
from tc3d.cli import main


def digest(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's name and values (layout-independent)."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _file_name(f) -> str | None:
    """The file ``torch.save`` writes to (a path or an open file); None for a memory buffer."""
    if isinstance(f, (str, os.PathLike)):
        return str(f)
    try:
        return os.readlink(f"/proc/self/fd/{f.fileno()}")
    except (OSError, AttributeError, ValueError):  # io.BytesIO has no file descriptor
        return None


def run(argv: list[str]) -> int:
    seen: dict = {"files": []}
    build, save = tc3d.training.train.build_model, torch.save

    def build_model(*args, **kwargs):
        seen["model"] = build(*args, **kwargs)
        seen["start"] = digest(seen["model"])
        return seen["model"]

    def recorded_save(obj, f, *args, **kwargs):
        name = _file_name(f)
        if name:
            seen["files"].append(Path(name).name)
        return save(obj, f, *args, **kwargs)

    tc3d.training.train.build_model, torch.save = build_model, recorded_save
    code = main(argv)
    out = Path(argv[argv.index("--out") + 1])
    record = {
        "rank": int(os.environ["RANK"]),
        "node": int(os.environ["GROUP_RANK"]),  # the torchrun agent (node) it ran under
        "world": int(os.environ["WORLD_SIZE"]),
        "start": seen["start"],
        "end": digest(seen["model"]),
        "files": seen["files"],
    }
    (out / f"rank{record['rank']}.json").write_text(json.dumps(record))
    return code


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
