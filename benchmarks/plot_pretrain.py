"""The learning curve of a ``tc3d pretrain`` run: training loss and validation accuracy (the
(motion, change) class and each factor) against steps, with the curriculum's share of fully
random looks, written as a PNG for docs/RESULTS.md.

Usage: python benchmarks/plot_pretrain.py runs/motion [--out docs/img/pretrain_motion.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/img/pretrain_motion.png"))
    args = parser.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    records = [json.loads(x) for x in (args.run / "log.jsonl").read_text().splitlines() if x]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_top1" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    left.plot([r["iter"] for r in train], [r["loss"] for r in train], lw=0.8)
    left.set_xlabel("step (32 clips)")
    left.set_ylabel("training loss (class + motion + change)")
    ramp = config.get("curriculum", 0)
    if ramp:
        twin = left.twinx()
        steps = list(range(0, config["iters"] + 1, 50))
        twin.plot(steps, [min(1.0, s / ramp) ** 2 for s in steps], color="grey", ls="--", lw=0.8)
        twin.set_ylabel("share of fully random looks", color="grey")
    for key, label in (("val_top1", "class (49)"), ("val_motion", "motion (7)"),
                       ("val_change", "change (7)")):  # fmt: skip
        right.plot([r["iter"] for r in val], [r[key] for r in val], marker="o", ms=3, label=label)
    right.set_xlabel("step")
    right.set_ylabel("validation accuracy (%), full clutter")
    right.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
