"""Write a full-width (width 1.0) T-C3D checkpoint with fresh (random) weights.

There is no trained full-width model on this machine (training one on 2 CPU cores is out of
reach), so the one-shot size table of docs/RESULTS.md uses the project's own initialisation
(torchvision's: Kaiming-normal convolutions). Sizes depend on the weight distribution: see the
notes in docs/RESULTS.md.

    python benchmarks/make_fullwidth_checkpoint.py OUT.pt [--classes 101] [--seed 0] [--width 1]
"""

from __future__ import annotations

import argparse

import torch

from tc3d.modelfile.checkpoint import save_model
from tc3d.models.complexity import count_parameters
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=101, help="101 = UCF101, as Table VIII")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    model = TC3D(ModelConfig(num_classes=args.classes, width=args.width, segments=3))
    spec = ClipSpec(SamplingConfig(3, 8, "consecutive", 2), crop=112)
    save_model(args.out, model, [f"class{i:03d}" for i in range(args.classes)], spec)
    print(f"{args.out}: {count_parameters(model):,} parameters (random init, seed {args.seed})")


if __name__ == "__main__":
    main()
