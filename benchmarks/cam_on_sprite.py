"""Does the CAM heat sit on the moving object? A measurement on the synthetic benchmark.

In the synthetic videos the sprite is the only saturated thing in the frame, so its pixels are
known from the decoded frames alone. For each test video (``--per-class`` per class), each of
the S segment clips gets its CAM (one map per clip: the last stage has one time step at k=8),
and the sprite mask is the union of the clip's frames' saturated pixels (the path it moved
along). Printed: the share of the heat inside the mask divided by the mask's share of the
area ("lift"; 1 = heat spread evenly, higher = concentrated on the object), and how often the
heat's peak lies inside the mask.

Usage: python benchmarks/cam_on_sprite.py --model RUN/best.pt --data DATA [--per-class 1]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace

import numpy as np

from tc3d.apps.cam import clip_cams
from tc3d.datasets.formats import load_dataset
from tc3d.device import resolve_device
from tc3d.infer.calibration import make_engine
from tc3d.modelfile.checkpoint import load_model_file
from tc3d.video.clips import clips_from_frames
from tc3d.video.decode import probe, read_frames
from tc3d.video.sampling import eval_indices
from tc3d.video.transforms import centre_crop_box


def saturation(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    hi, lo = rgb.max(-1), rgb.min(-1)
    return (hi - lo) / np.maximum(hi, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--per-class", type=int, default=1)
    ap.add_argument("--threshold", type=float, default=0.45, help="sprite saturation threshold")
    args = ap.parse_args()
    loaded, device = load_model_file(args.model), resolve_device("cpu")
    spec = replace(loaded.clip, protocol="sclips", crops=1)
    engine = make_engine(loaded, device)
    split = load_dataset(args.data)
    taken: dict[int, int] = defaultdict(int)
    lifts, peaks, rows = [], [], []
    for item in split.test:
        if taken[item.label] >= args.per_class:
            continue
        taken[item.label] += 1
        idx = eval_indices(probe(item.path).num_frames, spec.sampling, "sclips")
        n, k = idx.shape
        frames = read_frames(item.path, idx.reshape(-1), spec.short_side)  # (n·k, H, W, 3)
        x = clips_from_frames(frames, np.arange(n * k).reshape(n, k), spec)[0]  # model input
        _, cams = clip_cams(loaded, x, engine)
        box = centre_crop_box(*frames.shape[1:3])  # the box the clip builder took
        crops = frames[:, box.y : box.y + box.h, box.x : box.x + box.w]
        for c in range(n):
            heat = cams[c, 0]  # (crop, crop): one map per clip
            mask = (saturation(crops[c * k : (c + 1) * k]) > args.threshold).any(0)
            # the crop box is 0.875 of the short side, resized to the model's crop
            ys = (np.arange(spec.crop) * box.h / spec.crop).astype(int)
            xs = (np.arange(spec.crop) * box.w / spec.crop).astype(int)
            mask = mask[ys][:, xs]
            if heat.sum() <= 0 or not mask.any():
                continue
            lift = float(heat[mask].sum() / heat.sum() / mask.mean())
            peak = bool(mask.flat[int(heat.argmax())])
            lifts.append(lift)
            peaks.append(peak)
            rows.append({"video": item.path.name, "clip": c, "lift": lift, "peak_on_object": peak,
                         "object_area": float(mask.mean())})  # fmt: skip
    summary = {
        "clips": len(lifts),
        "lift_median": float(np.median(lifts)),
        "lift_mean": float(np.mean(lifts)),
        "peak_on_object": 100.0 * float(np.mean(peaks)),
        "clips_lift_above_1": 100.0 * float(np.mean(np.array(lifts) > 1)),
    }
    for r in rows:
        print(json.dumps(r))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
