"""The applications: ``tc3d anomaly test|score``, ``tag``, ``features``, ``similarity``,
``cam``. Each loads a model and hands it to the library function that does the work."""

from __future__ import annotations

from pathlib import Path

from tc3d.apps.features import feature_videos, write_feature_file, write_features
from tc3d.apps.similarity import run_similarity
from tc3d.cli._common import (
    UsageError,
    add_command,
    console,
    existing,
    load,
    model_file,
    print_skipped,
    progress,
    split_flags,
)
from tc3d.infer.features import DESCRIPTORS, LAYERS


def _auc(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def cmd_anomaly_test(args) -> dict:
    from tc3d.apps.anomaly import evaluate_anomaly

    existing(args.data, "data set root")
    m = load(args)
    with progress("scoring frames") as update:
        result = evaluate_anomaly(m, args.data, args.splits, args.stride, update)
    c = console()
    c.print(
        f"{result['videos']} test videos, {result['frames']} frames: frame-level AUC "
        f"{_auc(result['frame_auc'])}  video-level AUC {_auc(result['video_auc'])}"
    )
    print_skipped(c, result["skipped"])
    return result


def cmd_anomaly_score(args) -> dict:
    from tc3d.apps.anomaly import score_video

    existing(args.video, "video")
    if args.annotations:
        existing(args.annotations, "annotation file")
    m = load(args)
    result = score_video(m, args.video, args.plot, args.annotations, args.stride)
    s = result["scores"]
    c = console()
    c.print(
        f"{result['video']}: {len(s)} frames, max score {max(s):.3f}, mean {sum(s) / len(s):.3f}"
    )
    if result.get("frame_auc") is not None:
        c.print(f"frame-level AUC against the annotation: {result['frame_auc']:.2f}")
    if result["plot"]:
        c.print(f"timeline: {result['plot']}")
    return result


RAY_HELP = (
    "run on this Ray cluster (auto, HOST:PORT or ray://HOST:PORT): one model per worker, "
    "videos and model readable at the same path on every node (pip install 'tc3d[ray]')"
)


def _cluster(args):
    """:mod:`tc3d.cluster` for ``--ray``; a usage error (exit 2) when Ray is not installed."""
    from tc3d import cluster

    model_file(args.model)
    try:
        cluster.import_ray()
    except cluster.RayMissing as e:
        raise UsageError(str(e)) from None
    return cluster


def _cluster_line(info: dict) -> str:
    return "Ray cluster {address}: {nodes} nodes, {workers} workers".format(**info)


def cmd_tag(args) -> dict:
    from tc3d.apps.tag import tag_folder

    if not Path(args.folder).is_dir():
        raise UsageError(f"folder not found: {args.folder}")
    c = console()
    if args.ray:
        cluster = _cluster(args)
        with progress("tagging on Ray") as update:
            result = cluster.tag_on_ray(args.ray, *cluster.model_options(args), args.folder,
                                        args.out, args.top, args.retry_failed, update)  # fmt: skip
        c.print(_cluster_line(result["cluster"]))
    else:
        m = load(args)
        with progress("tagging") as update:
            result = tag_folder(m, args.folder, args.out, args.top, args.retry_failed, update)
    c.print(
        f"{result['videos']} videos: {result['tagged']} tagged now, {result['skipped']} "
        f"already tagged, {len(result['failed'])} failed -> {result['file']}"
    )
    print_skipped(c, result["failed"], "failed")
    return result


def cmd_features(args) -> dict:
    existing(args.data, "data set root")
    layers = LAYERS if args.layer == "all" else tuple(args.layer.split(","))
    c = console()
    if args.ray:
        from tc3d.api import load_model

        cluster = _cluster(args)  # before any work is done
        classes = load_model(args.model, device="cpu").classes  # a bad model fails here
        paths, names = feature_videos(args.data, args.format, args.split, args.splits)
        with progress("extracting features on Ray") as update:
            feats, info = cluster.features_on_ray(
                args.ray, *cluster.model_options(args), paths, names, layers, update
            )
        result = {**write_feature_file(feats, args.out, classes, layers), "cluster": info}
        c.print(_cluster_line(info))
    else:
        m = load(args)
        with progress("extracting features", lazy=True) as update:
            result = write_features(m, args.data, args.out, layers, args.format, args.split,
                                    args.splits, update)  # fmt: skip
    c.print(f"{result['videos']} videos, layers {result['dims']} -> {result['file']}")
    print_skipped(c, result["failed"], "failed")
    return result


def cmd_similarity(args) -> dict:
    existing(args.pairs, "pairs file")
    if not Path(args.videos).is_dir():
        raise UsageError(f"videos folder not found: {args.videos}")
    m = load(args)
    with progress("extracting features") as update:
        result = run_similarity(m, args.pairs, args.videos, args.folds, args.roc, update)
    c = console()
    c.print(f"{result['pairs']} pairs, {result['folds']} folds (linear SVM):")
    rows = {**result["layers"], "combined": result["combined"]}
    for name, r in rows.items():
        c.print(f"  {name:9s} AUC {r['auc']:.2f} ± {r['auc_std']:.2f}   accuracy "
                f"{r['accuracy']:.2f} ± {r['accuracy_std']:.2f}")  # fmt: skip
    c.print(f"headline (auc, accuracy in --json): {result['descriptor']}; combined: the "
            "paper's res5b, pool5 and prob side by side")  # fmt: skip
    if result["roc"]:
        c.print(f"ROC plot: {result['roc']}")
    print_skipped(c, result["failed"], "failed")
    return result


def cmd_cam(args) -> dict:
    from tc3d.apps.cam import cam_video

    existing(args.video, "video")
    m = load(args)
    result = cam_video(m, args.video, args.out, size=args.size, gif=not args.no_gif)
    console().print(
        f"{result['video']}: {result['label']} ({100 * result['prob']:.1f}%); "
        f"{len(result['files'])} files in {args.out}"
    )
    return result


def add_anomaly_test(anomaly) -> None:
    p = add_command(
        anomaly,
        "test",
        cmd_anomaly_test,
        help="frame-level and video-level ROC AUC on Anomaly_Test.txt",
        description="Score every frame of every test video with sliding clips; frame-level "
        "AUC over all test frames concatenated (labels from Temporal_Anomaly_Annotation.txt), "
        "video-level AUC from the fused S-clip prediction. AUCs are 0-100.",
        prog="tc3d anomaly test",
    )
    p.add_argument("--data", required=True, help="UCF-Crime-layout data set root")
    p.add_argument("--splits", default=None, help="folder holding Anomaly_Test.txt etc.")
    p.add_argument("--stride", type=int, default=None, help="frames between sliding clips")


def add_anomaly_score(anomaly) -> None:
    p = add_command(
        anomaly,
        "score",
        cmd_anomaly_score,
        help="per-frame anomaly scores of one video, and a timeline plot",
        description="One anomaly score per decoded frame (mean over the sliding clips that "
        "hold it). With --plot, a PNG timeline with the annotated anomaly intervals shaded "
        "(from --annotations, or the data set's own file when the video sits in one).",
        prog="tc3d anomaly score",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a timeline plot here")
    p.add_argument("--annotations", default=None, help="Temporal_Anomaly_Annotation.txt")
    p.add_argument("--stride", type=int, default=None, help="frames between sliding clips")


def add_tag(sub) -> None:
    p = add_command(
        sub,
        "tag",
        cmd_tag,
        help="label every video under a folder (CSV or JSONL)",
        description="Write the top-K labels and probabilities of every video under FOLDER "
        "to FILE (.csv or .jsonl), one line per video as it is done. Re-running skips videos "
        "already in FILE; unreadable videos are listed (and remembered in FILE.failed.jsonl, "
        "retried only when they change or with --retry-failed), never fatal.",
    )
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--out", required=True, metavar="FILE", help="output .csv or .jsonl")
    p.add_argument("--top", type=int, default=5, help="labels per video (default 5)")
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed before")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)


def add_features(sub) -> None:
    p = add_command(
        sub,
        "features",
        cmd_features,
        help="clip features averaged per video, L2-normalised (.npz)",
        description="Average the res5b (last conv block, flattened), pool5 (its global "
        "average) or prob (softmax) outputs over every non-overlapping clip of each video and "
        "L2-normalise them, as the paper does for ASLAN. DATA is a data set root (train and "
        "test videos) or any folder of videos. The .npz holds one array per layer, 'videos' "
        "and 'classes'.",
    )
    p.add_argument("--data", required=True, help="data set root or folder of videos")
    split_flags(p, "data set layout (default: detect; a plain folder of videos also works)")
    p.add_argument(
        "--layer",
        default="pool5",
        help=f"{', '.join(DESCRIPTORS)} (pool5's mean and standard deviation over the "
        "clips), a comma list, or 'all' (the first three; default pool5)",
    )
    p.add_argument("--out", required=True, metavar="F.npz", help="output file")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)


def add_similarity(sub) -> None:
    p = add_command(
        sub,
        "similarity",
        cmd_similarity,
        help="ASLAN-style same/different action (linear SVM, k-fold)",
        description="Features (res5b, pool5, prob averaged over a video's clips, and pool5+std: "
        "pool5's mean and standard deviation over the clips) of every video in the pairs file, "
        "six distances per descriptor and pair, a linear SVM under k-fold cross-validation: AUC "
        "and accuracy (0-100, mean over folds) per descriptor and for the paper's three layers "
        "combined; the headline auc and accuracy are pool5+std's. Pairs lines: 'video_a "
        "video_b same(0|1) [fold]', paths relative to --videos.",
    )
    p.add_argument("--pairs", required=True, metavar="FILE", help="pairs file")
    p.add_argument("--videos", required=True, metavar="DIR", help="folder the paths start in")
    p.add_argument("--folds", type=int, default=10, help="folds when the file has no column")
    p.add_argument("--roc", default=None, metavar="PNG", help="write the ROC curves here")


def add_cam(sub) -> None:
    p = add_command(
        sub,
        "cam",
        cmd_cam,
        help="class activation heat maps over a video's frames (PNG + GIF)",
        description="Class activation maps (last conv stage weighted by the classifier's "
        "weights for the predicted class), upsampled in time and space and blended onto the "
        "frames of the S segment clips, with the predicted label written on each frame: "
        "DIR/cam_<clip>_<frame>.png and DIR/cam.gif.",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=224, help="output image size in pixels")
    p.add_argument("--no-gif", action="store_true", help="PNG frames only")
