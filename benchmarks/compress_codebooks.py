"""What would fewer convolution centroids buy? One-shot file size (and top-1) per codebook size.

tc3d compress fixes 256 centroids per convolution layer (8-bit indices, as the paper). This script
measures the alternative that the full-width size target would need: the same one-shot path as
``tc3d compress`` without ``--data`` (prune to 0.90 conv / 0.95 fc, linear-init k-means,
Huffman-coded ``.tc3d``), with ``k`` conv centroids for each ``k`` asked for (fc keeps 32).
With ``--work DIR --data ROOT`` it starts instead from the fine-tuned prune stage of a finished
``tc3d compress`` run (``DIR/prune.pt``) and also tests each file, without centroid fine-tuning.

    python benchmarks/compress_codebooks.py random101.pt --k 256 128 64
    python benchmarks/compress_codebooks.py best.pt --k 256 128 64 --work s3.tc3d.work --data D
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tc3d.compress import prune, share
from tc3d.compress.pipeline import write_compressed
from tc3d.datasets.formats import load_dataset
from tc3d.device import prepare_model, resolve_device
from tc3d.infer.evaluate import evaluate
from tc3d.modelfile.checkpoint import load_checkpoint, load_model_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="training checkpoint (.pt)")
    p.add_argument("--k", type=int, nargs="+", default=[256, 128, 64], help="conv centroids")
    p.add_argument("--work", help="work folder of a finished `tc3d compress --data` run")
    p.add_argument("--data", help="data set to test each file on (with --work)")
    args = p.parse_args()
    loaded = load_model_file(args.checkpoint)
    model = loaded.model
    if args.work:
        saved = load_checkpoint(Path(args.work) / "prune.pt")
        model.load_state_dict(saved["model"])
        masks = saved["masks"]
    else:
        masks = prune.make_masks(model, prune.PRUNE_TARGETS)
        prune.apply_masks(model, masks)
    split = load_dataset(args.data, None, 1, None) if args.data else None
    device = resolve_device("auto")
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.k:
            layers = share.share_model(model, masks, conv_k=k)
            out = Path(tmp) / f"k{k}.tc3d"
            written = write_compressed(out, model, layers, loaded, {"model": args.checkpoint})
            row = {"conv_k": k, "file_bytes": written["file_bytes"]}
            row["file_mib"] = row["file_bytes"] / 2**20
            if split is not None:
                quantized = load_model_file(out)
                prepare_model(quantized.model, device)
                row["top1"] = evaluate(quantized, split.test, device)["top1"]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
