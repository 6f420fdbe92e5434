"""The ``tc3d`` command: parse flags, call library functions, print their results.

Conventions (DESIGN A2): human output (tables, progress) goes to stderr; ``--json`` prints one
JSON object as the last line of stdout. Exit 0 on success, 1 when the work failed (one line on
stderr, a traceback only with ``--debug``), 2 for usage errors such as a missing input file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from tc3d import __version__

log = logging.getLogger("tc3d")


class UsageError(Exception):
    """Bad invocation: exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the whole usage)
        sys.stderr.write(f"tc3d: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _console():
    from rich.console import Console

    # Under torchrun only rank 0 talks; the other ranks' consoles are silent.
    return Console(stderr=True, quiet=os.environ.get("RANK", "0") != "0")


def _progress(description: str):
    """A rich progress bar on stderr: ``with _progress(...) as update: update(done, total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    class _Bar:
        def __enter__(self):
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=_console(),
                transient=False,
            )
            self.progress.__enter__()
            self.task = self.progress.add_task(description, total=None, info="")
            return self.update

        def update(self, done: int, total: int, info: dict | None = None):
            text = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in (info or {}).items()
            )
            self.progress.update(self.task, completed=done, total=total, info=text)

        def __exit__(self, *exc):
            self.progress.__exit__(*exc)

    return _Bar()


def _model_file(name: str, what: str = "model file") -> Path:
    """A model file, or the file of a shipped model name (``tc3d models``)."""
    from tc3d.weights import SHIPPED, resolve

    path = resolve(name)
    if not path.exists():
        names = ", ".join(SHIPPED)
        raise UsageError(f"{what} not found: {name} (not a file, nor a shipped model: {names})")
    return path


def _cluster(args):
    """:mod:`tc3d.cluster` for ``--ray``; a usage error (exit 2) when Ray is not installed."""
    from tc3d import cluster

    _model_file(args.model)
    try:
        cluster.import_ray()
    except cluster.RayMissing as e:
        raise UsageError(str(e)) from None
    return cluster


def _existing(path: str, what: str = "path") -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found: {path}")
    return p


# ---------------------------------------------------------------------------------------------
# commands: each returns the JSON-able result and prints its human summary to stderr


def cmd_synth(args) -> dict:
    from tc3d.data.synth import make_synthetic_dataset

    if args.kind != "actions":
        return cmd_synth_kind(args)

    with _progress("writing videos") as update:
        summary = make_synthetic_dataset(
            args.out,
            classes=args.classes,
            per_class=args.per_class or 16,
            seed=args.seed,
            workers=args.workers,
            progress=update,
        )
    _console().print(
        f"wrote {summary.videos} videos of {len(summary.classes)} classes to "
        f"{summary.root} ({summary.train} train / {summary.test} test)"
    )
    return {
        "root": str(summary.root),
        "videos": summary.videos,
        "classes": len(summary.classes),
        "class_names": summary.classes,
        "train": summary.train,
        "test": summary.test,
        "tiers": summary.tiers,
    }


def cmd_data_check(args) -> dict:
    from tc3d.data.check import check_dataset

    _existing(args.data, "data set root")
    with _progress("reading videos") as update:
        report = check_dataset(
            args.data, args.format, args.split, args.splits, workers=args.workers, progress=update
        )
    c = _console()
    c.print(
        f"format {report['format']}: {report['classes']} classes, {report['train']} train "
        f"+ {report['test']} test listed, {report['ok']} readable"
    )
    f = report["frames"]
    if f["median"] is not None:
        c.print(f"frames per video: min {f['min']}, median {f['median']}, max {f['max']}")
    for u in report["unreadable"]:
        c.print(f"[red]unreadable[/red] {u['path']}: {u['error']}", highlight=False)
    for t in report["truncated"]:
        c.print(
            f"[yellow]truncated[/yellow] {t['path']}: {t['decodable']} of {t['frames']} "
            "frames decode (the rest repeat the last one)",
            highlight=False,
        )
    for t in report["short"]:
        c.print(
            f"[yellow]short[/yellow] {t['path']}: {t['frames']} frames, fewer than one "
            "S×k sample (frames repeat)",
            highlight=False,
        )
    for m in report["missing"][:20]:
        c.print(f"[yellow]missing[/yellow] {m}", highlight=False)
    if len(report["missing"]) > 20:
        c.print(f"... and {len(report['missing']) - 20} more missing")
    return report


def _train_config(args):
    """TrainConfig from the flags: the chosen ``--recipe``'s values, then every flag given."""
    from tc3d.train import RECIPES, TrainConfig

    values = dict(RECIPES[args.recipe])
    given = {
        "width": args.width,
        "crop": args.crop,
        "fusion": args.fusion,
        "flip": args.flip,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "iters": args.iters,
        "warmup": args.warmup,
        "dropout": args.dropout,
        "freeze": args.freeze,
        "head_lr_scale": args.head_lr_scale,
    }
    if args.lr_steps is not None:
        given["lr_steps"] = [int(s) for s in args.lr_steps.split(",") if s.strip()]
    values.update({k: v for k, v in given.items() if v is not None})
    return TrainConfig(
        data=args.data,
        out=args.out,
        format=args.format,
        split=args.split,
        splits=args.splits,
        arch=args.arch,
        segments=args.segments or 3,
        frames=args.frames,
        sampling=args.sampling,
        offset=args.offset,
        unshared=args.unshared,
        batch_size=args.batch_size,
        init=args.init,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        amp=args.amp,
        eval_every=args.eval_every,
        device=args.device,
        **values,
    )


def cmd_train(args) -> dict:
    return _run_training(_train_config(args), args)


def _run_training(cfg, args) -> dict:
    from tc3d.train import train

    _existing(args.data, "data set root")
    if args.init not in (None, "scratch"):
        _model_file(args.init, "--init weights")
    with _progress("training") as update:
        result = train(cfg, progress=update)
    c = _console()
    top1 = result["val_top1"]
    c.print(
        f"trained {result['iters']} iterations in {result['seconds']:.0f} s; "
        f"video top-1 {top1:.1f}%"
        if top1 is not None
        else "no test split to evaluate"
    )
    c.print(f"best checkpoint: {result['checkpoint']}")
    if result["skipped"]:
        c.print(f"[yellow]{len(result['skipped'])} unreadable videos skipped[/yellow]")
        for s in result["skipped"]:
            c.print(f"  {s['path']}: {s['error']}", highlight=False)
    return result


def _load(args):
    from tc3d.checkpoint import load_model
    from tc3d.device import resolve_device

    _model_file(args.model)
    loaded = load_model(args.model)
    overrides = {k: getattr(args, k, None) for k in ("segments", "frames", "sampling", "offset")}
    if any(v is not None for v in overrides.values()) or getattr(args, "crop", None):
        from dataclasses import replace

        from tc3d.data.sampling import SamplingConfig

        s = loaded.clip.sampling
        sampling = SamplingConfig(
            overrides["segments"] or s.segments,
            overrides["frames"] or s.frames,
            overrides["sampling"] or s.strategy,
            overrides["offset"] or s.offset,
        )
        loaded.clip = replace(loaded.clip, sampling=sampling, crop=args.crop or loaded.clip.crop)
    device = resolve_device(args.device)
    loaded.model.to(device)
    from tc3d.device import prepare_model

    prepare_model(loaded.model, device)
    if getattr(args, "precision", None) == "int8":
        _console().print("[dim]int8: loading or making the calibration...[/dim]")
    return loaded, device


def cmd_test(args) -> dict:
    from tc3d.data.formats import load_dataset
    from tc3d.evaluate import evaluate

    _existing(args.data, "data set root")
    loaded, device = _load(args)
    split = load_dataset(args.data, args.format, args.split, args.splits)
    if split.classes != loaded.classes:
        raise ValueError(
            f"the model's {len(loaded.classes)} classes differ from the data set's "
            f"{len(split.classes)} classes"
        )
    engine = _engine(args, loaded, device, [str(i.path) for i in split.train[::7]])
    with _progress("testing") as update:
        result = evaluate(
            loaded,
            split.test,
            device,
            args.protocol,
            args.crops,
            args.precision,
            args.batch_size,
            args.workers,
            update,
            engine,
        )
    result["precision"] = args.precision
    c = _console()
    c.print(
        f"{result['videos']} videos ({args.protocol}, {args.crops} crop"
        f"{'s' if args.crops > 1 else ''}): top-1 {result['top1']:.2f}%  "
        f"top-5 {result['top5']:.2f}%  mean class {result['mean_class_acc']:.2f}%  "
        f"{result['fps']:.0f} frames/s"
    )
    _print_skipped(c, result["skipped"])
    return result


def cmd_predict(args) -> dict:
    from tc3d.evaluate import predict

    for v in args.videos:
        _existing(v, "video")
    loaded, device = _load(args)
    engine = _engine(args, loaded, device, args.videos)
    results = predict(
        loaded, args.videos, device, args.top, args.precision, args.batch_size, None, engine
    )
    c = _console()
    for r in results:
        if "error" in r:
            c.print(f"[red]{r['video']}[/red]: {r['error']}", highlight=False)
        else:
            best = ", ".join(f"{x['label']} {100 * x['prob']:.1f}%" for x in r["labels"])
            c.print(f"{r['video']}: {best}", highlight=False)
    out = {"results": results}
    if any("error" in r for r in results):
        out["_exit"] = 1
    return out


# --- deep compression: tc3d compress, tc3d inspect ---------------------------------------------


def _print_skipped(c, skipped: list[dict]) -> None:
    """One line per unreadable video that a command left out."""
    for s in skipped:
        c.print(f"[yellow]skipped[/yellow] {s['path']}: {s['error']}", highlight=False)


def cmd_compress(args) -> dict:
    from tc3d.compress import report
    from tc3d.compress.pipeline import CompressConfig, compress, parse_stages

    _existing(args.model, "model file")
    if args.data:
        _existing(args.data, "data set root")
    cfg = CompressConfig(
        model=args.model,
        out=args.out,
        data=args.data,
        format=args.format,
        split=args.split,
        splits=args.splits,
        stages=parse_stages(args.stages),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        seed=args.seed,
        device=args.device,
    )
    result = compress(cfg, progress=_progress)
    out = Path(args.out)
    result["report"] = str(out.with_name(out.stem + ".compress.json"))
    result["plot"] = str(report.write_plot(result, out.with_name(out.stem + ".compress.png")))
    report.write_json(result, result["report"])
    c = _console()
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
    _print_skipped(c, result.get("skipped", []))  # only with --data
    return result


def cmd_inspect(args) -> dict:
    from tc3d.compress import report
    from tc3d.compress.encode import Tc3dError, read_tc3d

    path = _model_file(args.file, "file")
    try:
        contents = read_tc3d(path)
    except Tc3dError as e:  # still one JSON object for scripts, then exit 1
        sys.stderr.write(f"tc3d: error: {e}\n")
        return {"valid": False, "error": str(e), "file_bytes": path.stat().st_size, "_exit": 1}
    h = contents.header
    dense_bytes = sum(d["data"][1] for d in h["dense"])
    result = {
        "valid": True,
        "file": str(path),
        "file_bytes": contents.file_bytes,
        "layers": contents.layer_stats,
        "dense_bytes": dense_bytes,
        "weights": sum(x["nnz"] for x in contents.layer_stats),
        "classes": h["classes"],
        "model_config": h["model_config"],
        "clip": h["clip"],
    }
    c = _console()
    c.print(report.layer_table(contents.layer_stats, title=f"{path.name}: checksum OK"))
    c.print(
        f"{len(h['classes'])} classes, {h['model_config']['arch']} width "
        f"{h['model_config']['width']}, S={h['model_config']['segments']} "
        f"{h['model_config']['fusion']} fusion, crop {h['clip']['crop']}; "
        f"{result['weights']:,} shared weights, {dense_bytes:,} bytes of BatchNorm/bias/fusion; "
        f"{contents.file_bytes:,} bytes in all",
        highlight=False,
    )
    return result


# --- inference engine: tc3d bench, stream, export ---------------------------------------------


def _engine(args, loaded, device, fallback_videos):
    """The inference engine at ``--precision``; int8 calibrates on training videos (cached)."""
    from tc3d.infer.engine import make_engine

    return make_engine(loaded, device, args.precision, fallback_videos)


def cmd_bench(args) -> dict:
    from tc3d.infer.bench import BenchConfig, run_bench

    if args.model:
        _model_file(args.model)
    if args.videos:
        _existing(args.videos, "video folder")
    cfg = BenchConfig(
        model=args.model,
        width=args.width,
        num_classes=args.classes,
        videos=args.videos,
        synthetic=args.synthetic,
        synthetic_dir=args.synthetic_dir,
        precision=args.precision,
        baseline=args.baseline,
        protocol=args.protocol,
        crops=args.crops,
        batch_clips=args.batch_clips,
        workers=args.workers,
        warmup=args.warmup,
        device=args.device,
    )
    r = run_bench(cfg, progress=_progress)
    c = _console()
    c.print(
        f"{r['videos']} videos, {r['frames']} frames in {r['seconds']:.2f} s: "
        f"[bold]{r['fps']:.0f} frames/s[/bold], {r['videos_per_s']:.2f} videos/s, "
        f"{r['clips_per_s']:.1f} clips/s ({r['precision']}, {r['protocol']}, "
        f"{r['crops']} crop{'s' if r['crops'] > 1 else ''}); "
        f"{r['gflops_per_video']:.1f} GFLOPs/video",
        highlight=False,
    )
    if "baseline" in r:
        b = r["baseline"]
        c.print(
            f"conventional pipeline (decode all frames, fp32 eager): {b['fps']:.0f} frames/s, "
            f"{b['videos_per_s']:.2f} videos/s -> speedup [bold]{r['speedup']:.2f}x[/bold]",
            highlight=False,
        )
    if r.get("agreement") is not None:
        c.print(f"top-1 agreement with fp32: {r['agreement']:.1f}%")
    m = r["machine"]
    c.print(f"[dim]{m['cpu']}, {m['torch_threads']} threads, load {m['load_average']}[/dim]")
    if r["failed"]:
        c.print(f"[yellow]{len(r['failed'])} videos failed[/yellow]")
    return r


def cmd_stream(args) -> dict:
    from tc3d.infer.stream import StreamConfig, run_stream

    for s in args.sources:
        if "://" not in s and not s.startswith("/dev/"):
            _existing(s, "source")
    loaded, device = _load(args)
    engine = _engine(args, loaded, device, [s for s in args.sources if "://" not in s])
    cfg = StreamConfig(
        window=args.window,
        stride=args.stride,
        realtime=args.realtime,
        out=args.out,
        smoothing=args.smoothing,
        max_seconds=args.max_seconds,
    )
    emit = (lambda d: print(json.dumps(d), flush=True)) if args.json else None
    summary = run_stream(engine, loaded, args.sources, cfg, emit=emit, console=_console())
    s = summary["summary"]
    _console().print(
        f"{s['decisions']} decisions, latency p50 {s['latency_ms_p50']:.0f} ms, "
        f"p95 {s['latency_ms_p95']:.0f} ms, {s['dropped_frames']} dropped frames",
        highlight=False,
    )
    return summary


def cmd_export(args) -> dict:
    from tc3d.infer.export import export_model

    loaded, device = _load(args)
    r = export_model(loaded, args.format, args.out, batch=args.batch)
    _console().print(
        f"wrote {r['file']} ({r['format']}), max |diff| vs PyTorch {r['max_abs_diff']:.2e}",
        highlight=False,
    )
    return r


def cmd_pretrain(args) -> dict:
    from tc3d.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        out=args.out,
        width=args.width,
        frames=args.frames,
        offset=args.offset,
        crop=args.crop,
        model_crop=args.model_crop,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        iters=args.iters,
        stop_at=args.stop_at,
        warmup=args.warmup,
        curriculum=args.curriculum,
        dropout=args.dropout,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        eval_every=args.eval_every,
        device=args.device,
    )
    with _progress("pretraining") as update:
        result = pretrain(cfg, progress=update)
    c = _console()
    c.print(
        f"pretrained {result['iters']} iterations in {result['seconds']:.0f} s "
        f"({result['clips_per_s'] or 0:.1f} clips/s, model waited for data "
        f"{result['data_wait'] or 0:.1f}% of the time); validation accuracy "
        f"{result['val_top1'] or 0:.1f}%"
    )
    c.print(f"best checkpoint: {result['checkpoint']}")
    return result


def cmd_models(args) -> dict:
    from tc3d.weights import list_models

    rows = list_models()
    c = _console()
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


def cmd_demo(args) -> dict:
    from tc3d.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=args.out,
        classes=args.classes,
        per_class=args.per_class,
        iters=args.iters,
        iters_s1=args.iters_s1,
        seed=args.seed,
        workers=args.workers,
    )
    return run_demo(cfg, console=_console(), progress=_progress)


# ---------------------------------------------------------------------------------------------
# --- applications: synth --kind, anomaly, features, similarity, cam, tag


def cmd_synth_kind(args) -> dict:
    """``synth --kind surveillance|pairs``; the default kind is :func:`cmd_synth`."""
    if args.kind == "surveillance":
        from tc3d.data.synth_surveillance import make_surveillance_dataset

        with _progress("writing videos") as update:
            summary = make_surveillance_dataset(
                args.out, args.per_class or 8, args.seed, args.workers, update
            )
        _console().print(
            f"wrote {summary.videos} surveillance videos ({summary.frames} frames) to "
            f"{summary.root} ({summary.train} train / {summary.test} test)"
        )
        return {
            "root": str(summary.root),
            "videos": summary.videos,
            "classes": len(summary.classes),
            "class_names": summary.classes,
            "train": summary.train,
            "test": summary.test,
            "frames": summary.frames,
        }
    from tc3d.data.synth_pairs import make_pairs_dataset

    with _progress("writing videos") as update:
        summary = make_pairs_dataset(
            args.out, args.per_class or 10, args.seed, args.workers, update
        )
    _console().print(
        f"wrote {summary.videos} videos of {len(summary.classes)} unseen classes and "
        f"{summary.pairs} pairs to {summary.root}"
    )
    return {
        "root": str(summary.root),
        "videos": summary.videos,
        "classes": len(summary.classes),
        "class_names": summary.classes,
        "train": 0,
        "test": summary.videos,
        "pairs": summary.pairs,
        "pairs_file": str(summary.pairs_file),
    }


def cmd_anomaly_train(args) -> dict:
    args.format = "ucfcrime"
    # a short event in a long video: more segments, and max fusion lets one of them decide
    # (docs/RESULTS.md, Table VI analog); flags given win
    args.segments = args.segments or 6
    args.fusion = args.fusion or "max"
    cfg = _train_config(args)
    cfg.anomaly = True
    return _run_training(cfg, args)


def cmd_anomaly_test(args) -> dict:
    from tc3d.apps.anomaly import evaluate_anomaly

    _existing(args.data, "data set root")
    loaded, device = _load(args)
    with _progress("scoring frames") as update:
        result = evaluate_anomaly(
            loaded, args.data, device, args.splits, args.precision, args.stride, update
        )
    c = _console()
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    c.print(
        f"{result['videos']} test videos, {result['frames']} frames: frame-level AUC "
        f"{fmt(result['frame_auc'])}  video-level AUC {fmt(result['video_auc'])}"
    )
    _print_skipped(c, result["skipped"])
    return result


def cmd_anomaly_score(args) -> dict:
    from tc3d.apps.anomaly import score_video

    _existing(args.video, "video")
    if args.annotations:
        _existing(args.annotations, "annotation file")
    loaded, device = _load(args)
    result = score_video(
        loaded, args.video, device, args.plot, args.annotations, args.precision, args.stride
    )
    s = result["scores"]
    c = _console()
    c.print(
        f"{result['video']}: {len(s)} frames, max score {max(s):.3f}, mean {sum(s) / len(s):.3f}"
    )
    if result.get("frame_auc") is not None:
        c.print(f"frame-level AUC against the annotation: {result['frame_auc']:.2f}")
    if result["plot"]:
        c.print(f"timeline: {result['plot']}")
    return result


def cmd_tag(args) -> dict:
    from tc3d.apps.tag import tag_folder

    if not Path(args.folder).is_dir():
        raise UsageError(f"folder not found: {args.folder}")
    # --- --ray ADDRESS: the same job on a Ray cluster (tc3d.cluster) -------------------------
    if args.ray:
        cluster = _cluster(args)
        with _progress("tagging on Ray") as update:
            result = cluster.tag_on_ray(args.ray, *cluster.model_options(args), args.folder,
                                        args.out, args.top, args.retry_failed, update)  # fmt: skip
        _console().print("Ray cluster {address}: {nodes} nodes, {workers} workers"
                         .format(**result["cluster"]))  # fmt: skip
    # --- end --ray ----------------------------------------------------------------------------
    else:
        loaded, device = _load(args)
        with _progress("tagging") as update:
            result = tag_folder(
                loaded,
                args.folder,
                args.out,
                device,
                args.top,
                args.precision,
                args.batch_size,
                args.retry_failed,
                update,
            )
    c = _console()
    c.print(
        f"{result['videos']} videos: {result['tagged']} tagged now, {result['skipped']} "
        f"already tagged, {len(result['failed'])} failed -> {result['file']}"
    )
    for f in result["failed"]:
        c.print(f"[yellow]failed[/yellow] {f['path']}: {f['error']}", highlight=False)
    return result


def cmd_features(args) -> dict:
    from tc3d.apps.similarity import LAYERS, extract_features, save_features
    from tc3d.data.formats import DatasetFormatError, load_dataset

    root = _existing(args.data, "data set root")
    layers = LAYERS if args.layer == "all" else tuple(args.layer.split(","))
    cluster = _cluster(args) if args.ray else None  # --ray: before any work is done
    try:  # a data set: its train and test videos; else every video under the folder
        split = load_dataset(root, args.format, args.split, args.splits)
        paths = [i.path for i in split.train + split.test]
    except DatasetFormatError:
        if args.format:
            raise
        from tc3d.apps.tag import list_videos

        paths = list_videos(root)
    if not paths:
        raise ValueError(f"no videos under {root}")
    names = [Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
             if Path(p).resolve().is_relative_to(Path(root).resolve()) else str(p)
             for p in paths]  # fmt: skip
    # --- --ray ADDRESS: the same features computed on a Ray cluster (tc3d.cluster) ----------
    if cluster:
        with _progress("extracting features on Ray") as update:
            feats, ray_info = cluster.features_on_ray(
                args.ray, *cluster.model_options(args), paths, names, layers, update
            )
        from tc3d.checkpoint import load_model

        classes = load_model(args.model).classes  # for the file, as a local run stores them
    # --- end --ray ----------------------------------------------------------------------------
    else:
        loaded, device = _load(args)
        classes = loaded.classes
        with _progress("extracting features") as update:
            feats = extract_features(
                loaded, paths, device, layers, args.precision, args.batch_size, names, update
            )
    if not feats.videos:
        raise ValueError("no video could be read")
    file = save_features(feats, args.out, classes)
    dims = {k: int(v.shape[1]) for k, v in feats.layers.items()}
    c = _console()
    c.print(f"{len(feats.videos)} videos, layers {dims} -> {file}")
    for f in feats.failed:
        c.print(f"[yellow]failed[/yellow] {f['path']}: {f['error']}", highlight=False)
    return {
        "videos": len(feats.videos),
        "dim": dims[layers[0]],
        "dims": dims,
        "layers": list(layers),
        "file": str(file),
        "failed": feats.failed,
        **({"cluster": ray_info} if cluster else {}),  # --ray
    }


def cmd_similarity(args) -> dict:
    from tc3d.apps.similarity import run_similarity

    _existing(args.pairs, "pairs file")
    if not Path(args.videos).is_dir():
        raise UsageError(f"videos folder not found: {args.videos}")
    loaded, device = _load(args)
    with _progress("extracting features") as update:
        result = run_similarity(
            loaded, args.pairs, args.videos, device, args.folds, args.precision,
            args.batch_size, args.roc, update,
        )  # fmt: skip
    c = _console()
    c.print(f"{result['pairs']} pairs, {result['folds']} folds (linear SVM):")
    for name, r in {**result["layers"], "combined": result}.items():
        c.print(f"  {name:9s} AUC {r['auc']:.2f} ± {r['auc_std']:.2f}   accuracy "
                f"{r['accuracy']:.2f} ± {r['accuracy_std']:.2f}")  # fmt: skip
    if result["roc"]:
        c.print(f"ROC plot: {result['roc']}")
    for f in result["failed"]:
        c.print(f"[yellow]failed[/yellow] {f['path']}: {f['error']}", highlight=False)
    return result


def cmd_cam(args) -> dict:
    from tc3d.apps.cam import cam_video

    _existing(args.video, "video")
    loaded, device = _load(args)
    result = cam_video(loaded, args.video, args.out, device, args.precision, size=args.size,
                       gif=not args.no_gif)  # fmt: skip
    _console().print(
        f"{result['video']}: {result['label']} ({100 * result['prob']:.1f}%); "
        f"{len(result['files'])} files in {args.out}"
    )
    return result


# ---------------------------------------------------------------------------------------------
# parser


def _common(json_only: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    if not json_only:
        p.add_argument(
            "--device",
            default="auto",
            choices=("auto", "cpu", "cuda"),
            help="where to run the model (default: cuda if available)",
        )
    return p


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="data set root (or list file)")
    p.add_argument(
        "--format",
        choices=("ucf101", "hmdb51", "kinetics", "ucfcrime", "folder", "list"),
        default=None,
        help="data set layout (default: detect)",
    )
    p.add_argument("--split", type=int, default=1, help="official split number (default 1)")
    p.add_argument("--splits", default=None, help="folder holding the split files")


def _precision_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "int8"),
        default="fp32",
        help="inference precision: fp32; bf16 autocast; int8 (x86 static quantisation, "
        "calibrated once on a few training videos and cached in ~/.cache/tc3d)",
    )


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="checkpoint (.pt), compressed model (.tc3d) or a shipped model name ('motion'; "
        "see 'tc3d models')",
    )
    _precision_flag(p)
    p.add_argument("--batch-size", type=int, default=4, help="videos per forward pass")
    p.add_argument("--segments", type=int, default=None, help="override the model's S")
    p.add_argument("--frames", type=int, default=None, help="override the model's k")
    p.add_argument(
        "--sampling",
        choices=("consecutive", "uniform"),
        default=None,
        help="override the model's sampling strategy",
    )
    p.add_argument("--offset", type=int, default=None, help="override the model's frame step")
    p.add_argument("--crop", type=int, default=None, help="override the model's crop size")


def _train_flags(p: argparse.ArgumentParser) -> None:
    """The training flags of DESIGN A4 (shared by train and anomaly train).

    Flags whose default depends on ``--recipe`` default to None here; ``_train_config`` fills
    them from the recipe, so ``--help`` shows the fine-tuning defaults and the paper's values.
    """
    from tc3d.train import FINETUNE as F
    from tc3d.train import PAPER as P

    def both(key: str) -> str:
        return f"default {F[key]}; --recipe paper: {P[key]}"

    p.add_argument("--out", required=True, help="run folder (checkpoints, config, log)")
    p.add_argument(
        "--recipe",
        choices=("finetune", "paper"),
        default="finetune",
        help="default values of the flags below: 'finetune' (measured to work from the shipped "
        "'motion' backbone on small data) or 'paper' (the paper's UCF101 recipe: SGD lr 0.005, "
        "dropout 0.8, crop 112, flips, 20000 iterations, steps 8000,15000); flags given win",
    )
    p.add_argument(
        "--init",
        default=None,
        help="starting weights: 'motion' (the shipped pretrained backbone, default), 'scratch', "
        "a tc3d checkpoint or .tc3d file, or a torchvision r3d_18 state dict",
    )
    p.add_argument("--arch", default="res3d18", choices=("res3d18",))
    p.add_argument(
        "--width",
        type=float,
        default=None,
        help="channel multiplier (default: the --init model's, 0.25 for motion; 1.0 from "
        "scratch). A width other than motion's with no --init trains from scratch",
    )
    p.add_argument(
        "--segments", type=int, default=None,
        help="S: segments (clips) per video (default 3; anomaly train: 6)",
    )  # fmt: skip
    p.add_argument("--frames", type=int, default=8, help="k: frames per clip")
    p.add_argument(
        "--sampling",
        choices=("consecutive", "uniform"),
        default="consecutive",
        help="clip sampling: paper's strategy B (consecutive) or A (uniform)",
    )
    p.add_argument("--offset", type=int, default=2, help="o: frame step in a consecutive clip")
    p.add_argument(
        "--fusion", choices=("avg", "max", "weighted", "attention"), default=None,
        help=f"segment fusion ({both('fusion')}; anomaly train: max)",
    )  # fmt: skip
    p.add_argument("--unshared", action="store_true", help="separate weights per segment")
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        help="input size (default: the --init model's, 96 for motion; 112 from scratch or "
        "with --recipe paper)",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips; off by default because a mirror swaps classes such as "
        "left vs right (--recipe paper: on)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="videos per step (per process)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default=None, help=both("optimizer"))
    p.add_argument("--lr", type=float, default=None, help=f"learning rate ({both('lr')})")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum (0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help=both("weight_decay"))
    p.add_argument("--iters", type=int, default=None, help=f"training steps ({both('iters')})")
    p.add_argument(
        "--lr-steps",
        default=None,
        help="iterations where lr drops 10x (default: 75%% and 92%% of --iters; --recipe "
        "paper: 8000,15000)",
    )
    p.add_argument(
        "--warmup", type=int, default=None, help=f"linear warm-up steps ({both('warmup')})"
    )
    p.add_argument("--dropout", type=float, default=None, help=both("dropout"))
    p.add_argument(
        "--freeze", type=int, default=None, choices=range(6), metavar="N",
        help="keep the first N backbone stages (stem, layer1-4) fixed (default 4 from a "
        "pretrained --init, 0 from scratch or with --recipe paper)",
    )  # fmt: skip
    p.add_argument(
        "--head-lr-scale", type=float, default=None, metavar="X",
        help="the classifier and fusion learn at X times --lr (default 40 from a pretrained "
        "--init, 1 from scratch or with --recipe paper)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument(
        "--amp",
        choices=("bf16",),
        default=None,
        help="bf16 autocast (fast on GPU; slow for training on CPU)",
    )
    p.add_argument("--eval-every", type=int, default=1000, help="evaluate + checkpoint period")


RAY_HELP = (
    "run on this Ray cluster (auto, HOST:PORT or ray://HOST:PORT): one model per worker, "
    "videos and model readable at the same path on every node (pip install 'tc3d[ray]')"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tc3d", description="Real-time video action recognition with T-C3D.")
    parser.add_argument("--version", action="version", version=f"tc3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "synth",
        parents=[_common(True)],
        help="write the synthetic action benchmark (UCF101 layout)",
        description="Write a synthetic action data set of real encoded videos "
        "(320x240, 25 fps, mpeg4 .avi) in UCF101 layout: appearance, short-term "
        "motion and long-term order classes.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: all 16)")
    p.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="videos per class (default 16; surveillance: 8 per event; pairs: 10)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument(
        "--kind",
        choices=("actions", "surveillance", "pairs"),
        default="actions",
        help="actions: the 16-class benchmark (UCF101 layout); surveillance: long static-camera "
        "videos with short anomalies (UCF-Crime layout); pairs: same/different pairs of "
        "classes the benchmark does not have (ASLAN-style)",
    )
    p.set_defaults(func=cmd_synth)

    data = sub.add_parser("data", help="data set tools").add_subparsers(
        dest="data_command", metavar="ACTION", parser_class=_Parser
    )
    data.required = True
    p = data.add_parser(
        "check",
        parents=[_common(True)],
        prog="tc3d data check",
        help="read every listed video; report counts and problems",
        description="Parse the split files, open every listed video and report "
        "counts, unreadable and missing files, and frame statistics.",
    )
    _data_flags(p)
    p.add_argument("--workers", type=int, default=4, help="parallel readers")
    p.set_defaults(func=cmd_data_check)

    p = sub.add_parser(
        "train",
        parents=[_common()],
        help="train T-C3D on a data set",
        description="Train T-C3D end to end (S=3 segments of k=8 frames, consecutive "
        "sampling). By default it fine-tunes the shipped pretrained backbone 'motion' (width "
        "0.25, 96-pixel crops) with a recipe measured to work on small data; --recipe paper "
        "gives the paper's values, --init scratch starts from random weights.",
    )
    _data_flags(p)
    _train_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "models",
        parents=[_common(True)],
        help="list the models that ship inside the package",
        description="List the pretrained models installed with tc3d. Any --model or --init "
        "flag accepts their names, e.g. 'tc3d similarity --model motion ...'.",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "pretrain",
        parents=[_common()],
        help="pretrain a backbone on procedural video rendered on the fly",
        description="Pretrain a Res3D-18 on an endless stream of procedurally generated clips "
        "(moving, turning, growing, splitting, recolouring shapes and photo crops over varied "
        "backgrounds), each labelled by its motion and its change (49 classes); nothing is "
        "read from disk. Writes a run folder like 'tc3d train' (last.pt, best.pt, config.json, "
        "log.jsonl); stop it any time and continue with --resume. The shipped 'motion' model "
        "was made this way (benchmarks/pretrain_motion.sh).",
    )
    p.add_argument("--out", required=True, help="run folder (checkpoints, config, log)")
    p.add_argument("--width", type=float, default=0.25, help="channel multiplier of Res3D-18")
    p.add_argument("--frames", type=int, default=8, help="k: frames per clip")
    p.add_argument("--offset", type=int, default=2, help="frame step the model is used with")
    p.add_argument("--crop", type=int, default=64, help="size the clips are rendered at")
    p.add_argument(
        "--model-crop",
        type=int,
        default=96,
        help="crop the model is used with afterwards (stored with it; predict, features and "
        "--init follow it): larger crops keep more detail of small actors",
    )
    p.add_argument("--batch-size", type=int, default=32, help="clips per step")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="adamw")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--iters", type=int, default=3600, help="training steps (the schedule's length)")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="end this piece of the run at this step (the schedule still spans --iters); "
        "--resume continues it",
    )
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument(
        "--curriculum",
        type=int,
        default=2000,
        help="steps over which the share of fully random looks (textures, photos, distractors, "
        "noise, camera pans) rises from none (plain grey scenes) to all",
    )
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--workers", type=int, default=1, help="rendering processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--eval-every", type=int, default=250, help="validate + checkpoint period")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser(
        "test",
        parents=[_common()],
        help="video-level evaluation",
        description="Evaluate a model on the test split: top-1, top-5, mean "
        "class accuracy, and frames per second over the whole pipeline.",
    )
    _model_flags(p)
    _data_flags(p)
    p.add_argument(
        "--protocol",
        choices=("sclips", "allclips"),
        default="sclips",
        help="S segment-centre clips, or every non-overlapping clip",
    )
    p.add_argument("--crops", type=int, choices=(1, 10), default=1, help="centre or 10 crops")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser(
        "predict",
        parents=[_common()],
        help="classify video files",
        description="Print the top-K labels of each video.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    _model_flags(p)
    p.add_argument("--top", type=int, default=5, help="labels per video")
    p.set_defaults(func=cmd_predict)

    # --- deep compression ----------------------------------------------------------------------
    p = sub.add_parser(
        "compress",
        parents=[_common()],
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
    p.add_argument(
        "--format",
        choices=("ucf101", "hmdb51", "kinetics", "folder", "list"),
        default=None,
        help="data set layout (default: detect)",
    )
    p.add_argument("--split", type=int, default=1, help="official split number (default 1)")
    p.add_argument("--splits", default=None, help="folder holding the split files")
    p.add_argument(
        "--stages",
        default=None,
        help="comma-separated subset of baseline,sparse,dense,prune,quantize,huffman "
        "(default: all; huffman needs quantize)",
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

    p = sub.add_parser(
        "inspect",
        parents=[_common(True)],
        help="verify a .tc3d file and list its layers",
        description="Verify the checksum of a .tc3d file, decode it, and list every layer's "
        "shape, sparsity, centroids, bytes and bits per weight (exit 1 if damaged).",
    )
    p.add_argument("file", metavar="FILE.tc3d")
    p.set_defaults(func=cmd_inspect)
    # --- inference engine, bench, stream, export -------------------------------------------------
    p = sub.add_parser(
        "bench",
        parents=[_common()],
        help="frames per second of the whole pipeline (DESIGN A7)",
        description="Time the whole pipeline (open, decode, sample, transform, model, "
        "fusion) on real video files; --baseline also times the conventional pipeline "
        "(decode every frame, fp32 eager) in the same run.",
    )
    p.add_argument("--model", default=None, help="checkpoint (default: a fresh Res3D-18)")
    p.add_argument("--width", type=float, default=1.0, help="width of the fresh model")
    p.add_argument("--classes", type=int, default=101, help="classes of the fresh model")
    p.add_argument("--videos", default=None, help="folder of video files to time")
    p.add_argument(
        "--synthetic", type=int, default=None, help="write N synthetic 7 s 320x240 videos"
    )
    p.add_argument("--synthetic-dir", default=None, help="where (default: ~/.cache/tc3d)")
    _precision_flag(p)
    p.add_argument("--baseline", action="store_true", help="also time the conventional pipeline")
    p.add_argument("--protocol", choices=("sclips", "allclips"), default="sclips")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--batch-clips", type=int, default=12, help="clips per forward pass")
    p.add_argument("--workers", type=int, default=1, help="reader threads")
    p.add_argument("--warmup", type=int, default=2, help="videos run before timing")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "stream",
        parents=[_common()],
        help="online recognition from files, URLs or cameras",
        description="Recognise actions online: a decision every --stride frames from the "
        "last S clips (each clip's scores computed once). Several sources share one model "
        "with batched inference. With --json, one JSON line per decision and a summary.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="file, http/rtsp URL, /dev/videoN")
    _model_flags(p)
    p.add_argument("--window", type=int, default=None, help="frames per clip (default: k)")
    p.add_argument("--stride", type=int, default=4, help="frames between decisions")
    p.add_argument("--realtime", action="store_true", help="pace files at their frame rate")
    p.add_argument("--out", default=None, help="write the (first) source with labels overlaid")
    p.add_argument("--smoothing", type=float, default=0.5, help="EMA factor of the smoothed label")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser(
        "export",
        parents=[_common()],
        help="export to ONNX or TorchScript",
        description="Write the model as ONNX or TorchScript (input: a batch of S clips, "
        "dynamic batch size) and check it against PyTorch on one clip.",
    )
    p.add_argument("--model", required=True, help="trained checkpoint (.pt)")
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--batch", type=int, default=1, help="batch size of the check input")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "demo",
        parents=[_common(True)],
        help="the whole pipeline, end to end",
        description="Generate the synthetic benchmark, fine-tune T-C3D (S=3) and a "
        "single-clip model (S=1) from the shipped 'motion' backbone, train the S=3 model "
        "from scratch beside them, test all three, compress, time and predict a few files.",
    )
    p.add_argument("--out", default="demo_run", help="working folder")
    p.add_argument("--classes", type=int, default=None, help="classes (default: all 16)")
    p.add_argument("--per-class", type=int, default=16, help="videos per class")
    p.add_argument("--iters", type=int, default=300, help="training iterations per model")
    p.add_argument("--iters-s1", type=int, default=None, help="for S=1 (default: --iters)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_demo)

    # --- applications
    anomaly = sub.add_parser(
        "anomaly", help="anomaly detection in surveillance video (UCF-Crime)"
    ).add_subparsers(dest="anomaly_command", metavar="ACTION", parser_class=_Parser)
    anomaly.required = True
    p = anomaly.add_parser(
        "train",
        parents=[_common()],
        prog="tc3d anomaly train",
        help="train a normal-vs-anomalous T-C3D on video-level labels",
        description="Train T-C3D as a binary classifier of untrimmed videos (normal vs "
        "anomalous) from Anomaly_Train.txt, video-level labels only, S segments spread over "
        "each long video (paper Section IV-A). Flags as 'tc3d train'.",
    )
    _data_flags(p)
    _train_flags(p)
    p.set_defaults(func=cmd_anomaly_train)
    p = anomaly.add_parser(
        "test",
        parents=[_common()],
        prog="tc3d anomaly test",
        help="frame-level and video-level ROC AUC on Anomaly_Test.txt",
        description="Score every frame of every test video with sliding clips; frame-level "
        "AUC over all test frames concatenated (labels from Temporal_Anomaly_Annotation.txt), "
        "video-level AUC from the fused S-clip prediction. AUCs are 0-100.",
    )
    _model_flags(p)
    p.add_argument("--data", required=True, help="UCF-Crime-layout data set root")
    p.add_argument("--splits", default=None, help="folder holding Anomaly_Test.txt etc.")
    p.add_argument("--stride", type=int, default=None, help="frames between sliding clips")
    p.set_defaults(func=cmd_anomaly_test)
    p = anomaly.add_parser(
        "score",
        parents=[_common()],
        prog="tc3d anomaly score",
        help="per-frame anomaly scores of one video, and a timeline plot",
        description="One anomaly score per decoded frame (mean over the sliding clips that "
        "hold it). With --plot, a PNG timeline with the annotated anomaly intervals shaded "
        "(from --annotations, or the data set's own file when the video sits in one).",
    )
    p.add_argument("video", metavar="VIDEO")
    _model_flags(p)
    p.add_argument("--plot", default=None, metavar="PNG", help="write a timeline plot here")
    p.add_argument("--annotations", default=None, help="Temporal_Anomaly_Annotation.txt")
    p.add_argument("--stride", type=int, default=None, help="frames between sliding clips")
    p.set_defaults(func=cmd_anomaly_score)

    p = sub.add_parser(
        "tag",
        parents=[_common()],
        help="label every video under a folder (CSV or JSONL)",
        description="Write the top-K labels and probabilities of every video under FOLDER "
        "to FILE (.csv or .jsonl), one line per video as it is done. Re-running skips videos "
        "already in FILE; unreadable videos are listed (and remembered in FILE.failed.jsonl, "
        "retried only when they change or with --retry-failed), never fatal.",
    )
    p.add_argument("folder", metavar="FOLDER")
    _model_flags(p)
    p.add_argument("--out", required=True, metavar="FILE", help="output .csv or .jsonl")
    p.add_argument("--top", type=int, default=5, help="labels per video (default 5)")
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed before")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser(
        "features",
        parents=[_common()],
        help="clip features averaged per video, L2-normalised (.npz)",
        description="Average the res5b (last conv block, flattened), pool5 (its global "
        "average) or prob (softmax) outputs over every non-overlapping clip of each video and "
        "L2-normalise them, as the paper does for ASLAN. DATA is a data set root (train and "
        "test videos) or any folder of videos. The .npz holds one array per layer, 'videos' "
        "and 'classes'.",
    )
    _model_flags(p)
    p.add_argument("--data", required=True, help="data set root or folder of videos")
    p.add_argument(
        "--format",
        choices=("ucf101", "hmdb51", "kinetics", "ucfcrime", "folder", "list"),
        default=None,
        help="data set layout (default: detect; a plain folder of videos also works)",
    )
    p.add_argument("--split", type=int, default=1, help="official split number (default 1)")
    p.add_argument("--splits", default=None, help="folder holding the split files")
    p.add_argument(
        "--layer",
        default="pool5",
        help="res5b, pool5, prob, a comma list, or 'all' (default pool5)",
    )
    p.add_argument("--out", required=True, metavar="F.npz", help="output file")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser(
        "similarity",
        parents=[_common()],
        help="ASLAN-style same/different action (linear SVM, k-fold)",
        description="Features (res5b, pool5, prob) of every video in the pairs file, six "
        "distances per layer and pair, a linear SVM under k-fold cross-validation: AUC and "
        "accuracy (0-100, mean over folds) per layer and for the layers combined. Pairs "
        "lines: 'video_a video_b same(0|1) [fold]', paths relative to --videos.",
    )
    _model_flags(p)
    p.add_argument("--pairs", required=True, metavar="FILE", help="pairs file")
    p.add_argument("--videos", required=True, metavar="DIR", help="folder the paths start in")
    p.add_argument("--folds", type=int, default=10, help="folds when the file has no column")
    p.add_argument("--roc", default=None, metavar="PNG", help="write the ROC curves here")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser(
        "cam",
        parents=[_common()],
        help="class activation heat maps over a video's frames (PNG + GIF)",
        description="Class activation maps (last conv stage weighted by the classifier's "
        "weights for the predicted class), upsampled in time and space and blended onto the "
        "frames of the S segment clips, with the predicted label written on each frame: "
        "DIR/cam_<clip>_<frame>.png and DIR/cam.gif.",
    )
    p.add_argument("video", metavar="VIDEO")
    _model_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=224, help="output image size in pixels")
    p.add_argument("--no-gif", action="store_true", help="PNG frames only")
    p.set_defaults(func=cmd_cam)
    return parser


def _failure_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (kill, a scheduler's pre-emption) stops work like Ctrl-C does, so training saves
    # the steps done; SIGINT is re-armed because a shell starts background jobs ignoring it.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="tc3d: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("fvcore").setLevel(logging.ERROR)
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
        sys.stderr.write(f"tc3d: error: {_failure_line(e)}\n")
        return 1
    code = result.pop("_exit", 0) if isinstance(result, dict) else 0
    if args.json and os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 speaks
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
