"""Print the markdown tables of docs/RESULTS.md from the runs of synthetic_tables.sh.

Usage: python benchmarks/results_table.py [WORKDIR]   (default runs/synthetic)
Each row: video top-1 over all test videos and per class tier (appearance, short-term motion,
long-term), the order-only pair (HopThenSpin / SpinThenHop) on its own, and the paper's
UCF101 figure for the same row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER_PAIR = ("HopThenSpin", "SpinThenHop")
# (run, row label, the paper's UCF101 split-1 top-1 for the same setting, Tables I and II)
ROWS = {
    "Table I (S = 3)": [
        ("s3_max", "max pooling", 88.1),
        ("s3_avg", "average pooling", 89.4),
        ("s3_weighted", "weighted pooling", 89.1),
        ("s3_attention", "attention pooling", 89.5),
    ],
    "Table II (weighted fusion)": [
        ("s1", "S = 1 (single clip)", 85.7),
        ("s3_weighted", "S = 3", 89.4),
        ("s6_weighted", "S = 6", 89.6),
    ],
}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/synthetic")
    tiers = json.loads((work / "data" / "tiers.json").read_text())
    for title, rows in ROWS.items():
        print(f"\n{title}\n")
        print("| model | top-1 | appearance | motion | long-term | order-only pair | paper |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for run, label, paper in rows:
            path = work / run / "test.json"
            if not path.exists():
                print(f"| {label} | (not run) | | | | | {paper} |")
                continue
            result = json.loads(path.read_text())
            per_class = result["per_class"]
            cells = [mean([per_class[c] for c in tiers[t]]) for t in tiers]
            cells.append(mean([per_class[c] for c in ORDER_PAIR]))
            print(
                f"| {label} | {result['top1']:.1f} | "
                + " | ".join(f"{c:.1f}" for c in cells)
                + f" | {paper} |"
            )


if __name__ == "__main__":
    main()
