"""Store the shipped model's int8 calibration in its own file, made on its pretraining clips.

A model's int8 calibration is made on its training videos (see "int8 calibration" in
docs/REFERENCE.md). ``motion`` was pretrained on procedural clips rendered on the fly, so no
training video exists on a user's machine; without a stored calibration, its first int8 run
calibrated on whatever videos it was given, with a warning, and its int8 figures then depended
on them. This renders ``--clips`` clips of the pretraining stream ``--seed`` (the generator and
look it was trained on, at the model's own frames and crop), calibrates every backbone on them,
and adds the calibration to the ``.tc3d`` header; the weights and the rest of the file are left
as they are. ``benchmarks/pretrain_motion.sh`` runs it before copying the file into the package.

    python benchmarks/calibrate_motion.py MODEL.tc3d [--seed 0] [--clips 8]
"""

from __future__ import annotations

import argparse
import sys

from tc3d.infer.quantize import Calibration, calibrate_on_clips
from tc3d.modelfile.calibration import KEY, ModelFile, store_in_file
from tc3d.modelfile.checkpoint import load_model_file
from tc3d.synthetic.procedural import ProceduralConfig, recipe, render


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="the .tc3d file to calibrate (written in place, atomically)")
    p.add_argument("--seed", type=int, default=0, help="the procedural stream (pretraining: 0)")
    p.add_argument("--clips", type=int, default=8)
    args = p.parse_args()

    loaded = load_model_file(args.model)
    spec = loaded.clip
    render_cfg = ProceduralConfig(frames=spec.sampling.frames, size=spec.crop)
    clips = [render(recipe(args.seed, i, render_cfg), render_cfg)[None] for i in range(args.clips)]
    source = f"procedural pretraining clips (stream {args.seed})"
    calibration = calibrate_on_clips(loaded.model, spec, clips, source)
    if not store_in_file(ModelFile.read(loaded.source), calibration.to_dict()):
        print(f"{args.model}: the calibration could not be stored", file=sys.stderr)
        return 1
    stored = Calibration.from_dict(ModelFile.read(loaded.source).contents.get(KEY))
    if stored.ranges != calibration.ranges:
        print(f"{args.model}: the stored calibration does not read back", file=sys.stderr)
        return 1
    print(f"{args.model}: {KEY} stored ({len(clips)} clips of {source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
