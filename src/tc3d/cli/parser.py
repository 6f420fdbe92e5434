"""The ``tc3d`` command: the top-level parser, logging, exit codes and the ``--json`` line.

Conventions: human output (tables, progress) goes to stderr; ``--json`` prints one JSON object
as the last line of stdout. Exit 0 on success, 1 when the work failed (one line on stderr, a
traceback only with ``--debug``), 2 for usage errors such as a missing input file, 130 when
interrupted. Each command is a function ``cmd_*(args)`` in its group's module that returns its
result, or ``(result, 1)`` to fail after printing its JSON: library results never carry exit
codes. Command modules import at the top
only what their flags need (choice lists); the work is imported inside each command so that
every invocation, ``--help`` included, stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

from tc3d import __version__
from tc3d.cli._common import Parser, UsageError
from tc3d.cli.apps import (
    add_anomaly_score,
    add_anomaly_test,
    add_cam,
    add_features,
    add_similarity,
    add_tag,
)
from tc3d.cli.compress import add_compress, add_inspect, add_models
from tc3d.cli.data import add_data, add_synth
from tc3d.cli.demo import add_demo
from tc3d.cli.evaluate import add_predict, add_test
from tc3d.cli.infer import add_bench, add_export, add_stream
from tc3d.cli.serve import add_serve
from tc3d.cli.teach import add_teach
from tc3d.cli.train import add_anomaly_train, add_pretrain, add_train
from tc3d.errors import first_line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tc3d", description="Real-time video action recognition with T-C3D.")
    parser.add_argument("--version", action="version", version=f"tc3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    # the order of 'tc3d --help'
    add_synth(sub)
    add_data(sub)
    add_train(sub)
    add_models(sub)
    add_pretrain(sub)
    add_test(sub)
    add_predict(sub)
    add_compress(sub)
    add_inspect(sub)
    add_bench(sub)
    add_stream(sub)
    add_export(sub)
    add_demo(sub)
    anomaly = sub.add_parser(
        "anomaly", help="anomaly detection in surveillance video (UCF-Crime)"
    ).add_subparsers(dest="anomaly_command", metavar="ACTION", parser_class=Parser)
    anomaly.required = True
    add_anomaly_train(anomaly)
    add_anomaly_test(anomaly)
    add_anomaly_score(anomaly)
    add_tag(sub)
    add_features(sub)
    add_similarity(sub)
    add_cam(sub)
    add_serve(sub)
    add_teach(sub)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (kill, a scheduler's pre-emption) stops work like Ctrl-C does, so training saves
    # the steps done; SIGINT is re-armed because a shell starts background jobs ignoring it.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="tc3d: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    if not args.debug:  # say why the first fp32 run of a model pauses for seconds
        logging.getLogger("tc3d.infer.openvino_runtime").setLevel(logging.INFO)
    try:
        result = args.func(args)
    except UsageError as e:
        sys.stderr.write(f"tc3d: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("tc3d: interrupted\n")
        return 130
    except Exception as e:  # every failure: one line, unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"tc3d: error: {first_line(e)}\n")
        return 1
    # A command returns its result, or (result, exit code) when the work partly failed (some
    # videos unreadable, a source lost): the JSON still prints, and the code tells the shell.
    result, code = result if isinstance(result, tuple) else (result, 0)
    if args.json and os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 speaks
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    return code
