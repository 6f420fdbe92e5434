"""``tc3d compress`` (deep compression into a .tc3d file), ``tc3d inspect`` (what a .tc3d file
holds) and ``tc3d models`` (the models that ship with the package)."""

from __future__ import annotations

import sys

from tc3d.cli._common import (
    common,
    config,
    console,
    existing,
    model_file,
    print_skipped,
    progress,
    split_flags,
)
from tc3d.compress.pipeline import STAGES, CompressConfig, compress, parse_stages
from tc3d.modelfile.shipped import list_models


def cmd_compress(args) -> dict:
    from tc3d.compress import report

    existing(args.model, "model file")
    if args.data:
        existing(args.data, "data set root")
    cfg = config(CompressConfig, args, stages=parse_stages(args.stages))
    with progress("compress", lazy=True) as update:  # each stage renames the bar
        result = compress(cfg, progress=update)
    report.write_reports(result, args.out)
    c = console()
    if result["layers"]:
        c.print(report.layer_table(result["layers"]))
    c.print(report.stage_table(result))
    if result["file"]:
        c.print(
            f"wrote {result['file']}: {result['file_bytes']:,} bytes "
            f"({result['file_bytes'] / 2**20:.3f} MiB), {result['ratio']:.1f}x smaller",
            highlight=False,
        )
    c.print(f"report: {result['report']}, plot: {result['plot']}", highlight=False)
    print_skipped(c, result.get("skipped", []))  # only with --data
    return result


def cmd_inspect(args) -> dict:
    from tc3d.compress import report

    path = model_file(args.file, "file")
    result = report.inspect_file(path)
    if not result["valid"]:  # still one JSON object for scripts, then exit 1
        sys.stderr.write(f"tc3d: error: {result['error']}\n")
        return result, 1
    m = result["model_config"]
    c = console()
    c.print(report.layer_table(result["layers"], title=f"{path.name}: checksum OK"))
    c.print(
        f"{len(result['classes'])} classes, {m['arch']} width {m['width']}, "
        f"S={m['segments']} {m['fusion']} fusion, crop {result['clip']['crop']}; "
        f"{result['weights']:,} shared weights, {result['dense_bytes']:,} bytes of "
        f"BatchNorm/bias/fusion; {result['file_bytes']:,} bytes in all",
        highlight=False,
    )
    return result


def cmd_models(args) -> dict:
    rows = list_models()
    c = console()
    if not rows:
        c.print("no models ship with this installation")
    for r in rows:
        c.print(
            f"[bold]{r['name']}[/bold]  {r['bytes'] / 2**20:.2f} MiB, width {r['width']:g}, "
            f"{r['classes']} classes, {r['clip']['frames']} frames of "
            f"{r['clip']['crop']}x{r['clip']['crop']}\n  {r['description']}\n  {r['file']}",
            highlight=False,
        )
    return {"models": rows}


def add_compress(sub) -> None:
    p = sub.add_parser(
        "compress",
        parents=[common()],
        help="deep compression into a .tc3d file",
        description="Deep compression (paper Section III-F, Table VIII): baseline -> sparse -> "
        "dense -> prune -> quantize -> huffman. With --data every stage is fine-tuned on the "
        "training split and tested on the test split; without it: one-shot prune (0.90 conv / "
        "0.95 fc) + k-means sharing + Huffman, sizes only. Finished stages are kept in "
        "FILE.work/ so an interrupted run resumes; the report is written beside FILE as "
        "NAME.compress.json and NAME.compress.png.",
    )
    p.add_argument("--model", required=True, help="training checkpoint (.pt) to compress")
    p.add_argument("--out", required=True, help="output .tc3d file")
    p.add_argument("--data", default=None, help="data set for fine-tuning and testing")
    split_flags(p)
    p.add_argument(
        "--stages",
        default=None,
        help=f"comma-separated subset of {','.join(STAGES)} (default: all; huffman needs quantize)",
    )
    p.add_argument(
        "--epochs",
        type=float,
        default=1.0,
        help="fine-tuning per schedule epoch, in passes over the training set (default 1; "
        "0 = no fine-tuning)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="videos per fine-tuning step")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning lr (default: train lr/10)")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_compress)


def add_inspect(sub) -> None:
    p = sub.add_parser(
        "inspect",
        parents=[common(True)],
        help="verify a .tc3d file and list its layers",
        description="Verify the checksum of a .tc3d file, decode it, and list every layer's "
        "shape, sparsity, centroids, bytes and bits per weight (exit 1 if damaged).",
    )
    p.add_argument("file", metavar="FILE.tc3d")
    p.set_defaults(func=cmd_inspect)


def add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        parents=[common(True)],
        help="list the models that ship inside the package",
        description="List the pretrained models installed with tc3d. Any --model or --init "
        "flag accepts their names, e.g. 'tc3d similarity --model motion ...'.",
    )
    p.set_defaults(func=cmd_models)
