"""Where do the bytes of a ``.tc3d`` file go, and how close is Huffman to the entropy bound?

For every coded layer: bits per surviving weight spent on centroid indices and on relative
positions (gaps + fillers), against the Shannon bound of each stream's empirical symbol
distribution (what an ideal arithmetic/ANS coder with the same per-layer statistics would
spend). Also the iid-position bound ``H(density) / density`` per weight. Totals are given in
MiB, as the compression report gives sizes.

Usage: python benchmarks/compress_entropy.py FILE.tc3d
"""

from __future__ import annotations

import argparse
import json
import math

from tc3d.modelfile import huffman
from tc3d.modelfile import tc3dfile as encode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    args = p.parse_args()
    contents = encode.read_tc3d(args.file)
    totals = {"weights": 0, "index_huffman": 0, "index_bound": 0, "gap_huffman": 0,
              "gap_bound": 0, "position_iid_bound": 0.0}  # fmt: skip
    for layer in contents.layers:
        bits = encode.GAP_BITS[layer.kind]
        k = len(layer.codebook)
        gaps = encode.positions_to_gaps(layer.positions, bits)
        n, numel = len(layer.positions), layer.numel
        density = n / numel
        totals["weights"] += n
        totals["index_huffman"] += 8 * len(huffman.encode(layer.indices, k).data)
        totals["index_bound"] += huffman.entropy_bits(layer.indices, k)
        totals["gap_huffman"] += 8 * len(huffman.encode(gaps, 1 << bits).data)
        totals["gap_bound"] += huffman.entropy_bits(gaps, 1 << bits)
        if 0 < density < 1:
            h = -(density * math.log2(density) + (1 - density) * math.log2(1 - density))
            totals["position_iid_bound"] += numel * h
    n = totals["weights"]
    other = contents.file_bytes - sum(x["bytes"] for x in contents.layer_stats)
    result = {
        "file_bytes": contents.file_bytes,
        "file_mib": contents.file_bytes / 2**20,
        "weights": n,
        "bits_per_weight": {k: v / n for k, v in totals.items() if k != "weights"},
        "streams_huffman_mib": (totals["index_huffman"] + totals["gap_huffman"]) / 8 / 2**20,
        "streams_bound_mib": (totals["index_bound"] + totals["gap_bound"]) / 8 / 2**20,
        "other_bytes": other,  # header, tables, codebooks, BatchNorm/bias, checksum
        "bound_file_mib": ((totals["index_bound"] + totals["gap_bound"]) / 8
                           + (contents.file_bytes - (totals["index_huffman"]
                                                     + totals["gap_huffman"]) / 8)) / 2**20,
    }  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
