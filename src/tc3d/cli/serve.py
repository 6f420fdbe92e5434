"""``tc3d serve``: the local web page. The server lives in :mod:`tc3d.serve` (extra ``serve``);
this module checks the flags, loads nothing itself and prints where the page is."""

from __future__ import annotations

import logging
import sys

from tc3d.cli._common import common, console, model_file, precision_flag


def cmd_serve(args) -> dict:
    """Load the models, then serve the page until Ctrl-C."""
    try:
        from tc3d.serve.app import ServeConfig, serve
    except ImportError as e:
        raise RuntimeError(f"tc3d serve needs its extra: pip install 'tc3d[serve]' ({e})") from None
    models = args.model or ["motion"]
    for m in models:
        model_file(m)
    logging.getLogger("tc3d.serve").setLevel(logging.INFO)  # one line per request on stderr
    c = console()
    cfg = ServeConfig(models, args.host, args.port, args.max_upload_mb, args.device,
                      args.precision, args.top, args.teach_dir, args.teach_iters)  # fmt: skip
    try:
        url = serve(cfg, announce=lambda line: (c.print(line, highlight=False), sys.stderr.flush()))
    except OSError as e:
        raise RuntimeError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return {"url": url}


def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common(True)],
        help="a local web page: drop a video, see its labels, timeline and heat map",
        description="Serve one page (and POST /api/predict, multipart field 'video') that "
        "analyses a video with the model: top labels, labels over time, class activation "
        "map, anomaly curve for an anomaly model, and how long it took. Loopback only unless "
        "--host says otherwise; nothing is fetched from the internet; uploads are deleted "
        "once analysed. One log line per request on stderr.",
    )
    p.add_argument(
        "--model", action="append", default=None,
        help="model to offer (repeat for a picker on the page; default: motion)",
    )  # fmt: skip
    precision_flag(p)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="where to run the model (default: cpu)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--max-upload-mb", type=float, default=500.0, metavar="MB",
                   help="largest upload accepted, MiB (larger: HTTP 413; default 500)")  # fmt: skip
    p.add_argument("--top", type=int, default=5, help="labels shown per video (default 5)")
    p.add_argument("--teach-dir", default=None, metavar="DIR",
                   help="where teach mode keeps its clips, runs and models (a folder "
                   "tc3d train --data DIR/clips reads; default: tc3d's cache folder)")  # fmt: skip
    p.add_argument("--teach-iters", type=int, default=None, metavar="N",
                   help="training steps of a teach run (default: the teach recipe's)")  # fmt: skip
    p.set_defaults(func=cmd_serve)
