"""How long does a ``.tc3d`` file take to load, and does it then run at dense speed?

For a ``.tc3d`` file and the ``.pt`` checkpoint it came from, in one run and interleaved so
machine noise hits both alike:

* ``load_model_file`` wall time (verify the SHA-256, Huffman-decode every layer, rebuild the dense
  model), median of ``--repeats`` loads after one warm-up; each load is also timed in a fresh
  process (``--fresh``) to include first-call costs;
* one forward pass over a batch of clips with each loaded model (the decoded model is an
  ordinary dense model, so the ratio should be ~1.0).

Usage: python benchmarks/compress_load.py FILE.tc3d CHECKPOINT.pt [--repeats 5] [--fresh 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from tc3d.device import prepare_model
from tc3d.modelfile.checkpoint import load_model_file


def timed_load(path: str) -> float:
    start = time.perf_counter()
    load_model_file(path)
    return time.perf_counter() - start


def fresh_load(path: str) -> float:
    code = (
        "import time, tc3d.modelfile.checkpoint as c; t = time.perf_counter(); "
        f"c.load_model_file({path!r}); print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def forward_seconds(path: str, clips: torch.Tensor, repeats: int) -> float:
    loaded = load_model_file(path)
    model = prepare_model(loaded.model, torch.device("cpu"))
    times = []
    with torch.no_grad():
        model.clip_scores(clips)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model.clip_scores(clips)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tc3d")
    p.add_argument("checkpoint")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fresh", type=int, default=3, help="loads in fresh processes")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    timed_load(args.tc3d), timed_load(args.checkpoint)  # warm-up: imports, page cache
    loads = {"tc3d": [], "pt": []}
    for _ in range(args.repeats):
        loads["tc3d"].append(timed_load(args.tc3d))
        loads["pt"].append(timed_load(args.checkpoint))
    fresh = {"tc3d": [], "pt": []}
    for _ in range(args.fresh):
        fresh["tc3d"].append(fresh_load(args.tc3d))
        fresh["pt"].append(fresh_load(args.checkpoint))
    crop = load_model_file(args.checkpoint).clip.crop
    clips = torch.randn(3, 3, 8, crop, crop).contiguous(memory_format=torch.channels_last_3d)
    fwd = {k: forward_seconds(path, clips, args.repeats)
           for k, path in (("tc3d", args.tc3d), ("pt", args.checkpoint))}  # fmt: skip
    result = {
        "load_seconds_median": {k: statistics.median(v) for k, v in loads.items()},
        "load_seconds_max": {k: max(v) for k, v in loads.items()},
        "fresh_process_load_seconds": fresh,
        "forward_seconds_median": fwd,
        "forward_ratio_tc3d_over_pt": fwd["tc3d"] / fwd["pt"],
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
