"""Print the markdown tables of docs/RESULTS.md from the runs of synthetic_tables.sh.

Usage: python benchmarks/results_table.py [WORKDIR]   (default runs/synthetic)
Each row: video top-1 over all test videos and per class tier (appearance, short-term motion,
long-term), and the order-only pair (HopThenSpin / SpinThenHop) on its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER_PAIR = ("HopThenSpin", "SpinThenHop")
ROWS = {
    "Table I (S = 3)": [
        ("s3_max", "max pooling"),
        ("s3_avg", "average pooling"),
        ("s3_weighted", "weighted pooling"),
        ("s3_attention", "attention pooling"),
        ("s3_avg_unshared", "average pooling, unshared weights"),
    ],
    "Table II (weighted fusion)": [
        ("s1", "S = 1 (single clip)"),
        ("s3_weighted", "S = 3"),
        ("s6_weighted", "S = 6"),
    ],
}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/synthetic")
    tiers = json.loads((work / "data" / "tiers.json").read_text())
    for title, rows in ROWS.items():
        print(f"\n{title}\n")
        print("| model | top-1 | appearance | motion | long-term | order-only pair |")
        print("|---|---:|---:|---:|---:|---:|")
        for run, label in rows:
            path = work / run / "test.json"
            if not path.exists():
                print(f"| {label} | (not run) | | | | |")
                continue
            result = json.loads(path.read_text())
            per_class = result["per_class"]
            cells = [mean([per_class[c] for c in tiers[t]]) for t in tiers]
            cells.append(mean([per_class[c] for c in ORDER_PAIR]))
            print(
                f"| {label} | {result['top1']:.1f} | "
                + " | ".join(f"{c:.1f}" for c in cells)
                + " |"
            )


if __name__ == "__main__":
    main()
