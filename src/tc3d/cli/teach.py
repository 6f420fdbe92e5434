"""``tc3d teach add`` and ``tc3d teach train``: the page's teach mode at the command line.

The teach folder is the one ``tc3d serve --teach-dir`` uses (default: tc3d's cache folder), so a
set started on the page can be finished here and the other way round.
"""

from __future__ import annotations

from tc3d.cli._common import Parser, common, console, existing, progress


def _dir_flag(p) -> None:
    p.add_argument("--dir", default=None,
                   help="teach folder (default: tc3d's cache folder, as tc3d serve)")  # fmt: skip


def _root(args):
    from tc3d.apps.teach import default_dir

    return args.dir or default_dir()


def cmd_teach_add(args) -> dict:
    from tc3d.apps.teach import TeachSet

    ts = TeachSet(_root(args))
    added = [str(ts.add(args.label, existing(v, "video"))) for v in args.videos]
    counts = ts.counts()
    held = ", ".join(f"{k}: {n}" for k, n in counts.items())
    console().print(f"{len(added)} clip(s) of {args.label!r} added; the set holds {held}",
                    highlight=False)  # fmt: skip
    return {"added": added, "classes": counts, "dir": str(ts.root)}


def cmd_teach_train(args) -> dict:
    from tc3d.apps.teach import teach, teach_commands

    flags = {"iters": args.iters, "init": args.init, "seed": args.seed, "device": args.device}
    c = console()
    name = args.name
    with progress("teaching") as update:
        result = teach(_root(args), name, progress=update, **flags)
    c.print(f"taught {', '.join(result['classes'])} in {result['seconds']:.0f} s: "
            f"{result['file']}", highlight=False)  # fmt: skip
    c.print("the same with tc3d train and tc3d compress:\n  "
            + "\n  ".join(teach_commands(_root(args), result["model"], **flags)),
            highlight=False)  # fmt: skip
    return result


def add_teach(sub) -> None:
    group = sub.add_parser(
        "teach", help="teach new actions from a few clips (as the page's teach mode)"
    ).add_subparsers(dest="teach_command", metavar="ACTION", parser_class=Parser)
    group.required = True
    p = group.add_parser("add", parents=[common(True)], help="add clips of one class",
                         description="Copy video clips into the teach folder as examples "
                         "of LABEL (ROOT/clips/LABEL/, the layout tc3d train --data "
                         "reads).")  # fmt: skip
    p.add_argument("label", help="the class the clips show")
    p.add_argument("videos", nargs="+", help="video files")
    _dir_flag(p)
    p.set_defaults(func=cmd_teach_add)
    p = group.add_parser("train", parents=[common()], help="fine-tune a model of the set",
                         description="Fine-tune from 'motion' on the teach folder's clips with "
                         "the teach recipe (tc3d train, then tc3d compress --stages "
                         "quantize,huffman) and write ROOT/models/NAME.tc3d. Needs two or "
                         "more classes.")  # fmt: skip
    _dir_flag(p)
    p.add_argument("--name", default=None, help="model name (default: taught-DATE-TIME-XXXX)")
    p.add_argument("--iters", type=int, default=None, help="training steps (default: recipe's)")
    p.add_argument("--init", default=None, help="starting weights (default: motion)")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_teach_train)
