"""The bookkeeping of benchmarks/gpu_check.sh and benchmarks/gpu_motion_full.sh.

Three subcommands, none of which imports tc3d (they run before it is installed):

* ``env --device D``: one JSON line about the machine: GPU, torch, CUDA and cuDNN versions,
  cores, Python, and whether the installed torch lies in the window pyproject.toml allows;
  exit 1 when ``--device cuda`` finds no GPU.
* ``record NAME RC SECONDS STDOUT``: one JSON line for a step's record: its exit code, wall
  time and result (the JSON its command printed last: the last line, or the whole output).
* ``summary STEPS.jsonl OUT.json --kind check|motion``: the figures in one JSON file, a short
  table on stdout; exit 1 when a step failed.

    python benchmarks/gpu_report.py summary WORK/steps.jsonl OUT/gpu_check.json --kind check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER_FPS = 969  # the paper's Table IV: T-C3D, S clips per video, on an NVIDIA K40
SIZE_BAR = 5 * 2**20  # the paper's "less than 5 MB", in MiB as docs/COMPRESSION.md counts
KEEP = 20  # longest list kept in a step's result
BENCH_KEYS = ("precision", "workers", "fps", "videos_per_s", "clips_per_s", "latency_ms_p50",
              "breakdown")  # fmt: skip


def torch_window() -> str:
    """The torch requirement of pyproject.toml, e.g. '>=2.11,<2.15'."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'"torch\s*([<>=!~][^"]*)"', text)
    return found.group(1).strip() if found else ""


def _in_window(version: str, window: str) -> bool | None:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return None
    return SpecifierSet(window).contains(version.split("+")[0])


def _reading(read) -> object:
    """A figure that must not stop the run when this torch reports it differently."""
    try:
        return read()
    except Exception as e:  # noqa: BLE001
        return f"unknown ({type(e).__name__}: {e})"


def env(device: str) -> dict:
    import torch

    window = torch_window()
    out = {
        "device": device,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_window": window,
        "torch_in_window": _in_window(torch.__version__, window),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": _reading(torch.backends.cudnn.version),
            "nccl": _reading(lambda: str(torch.cuda.nccl.version())),
            "tf32_convolutions": torch.backends.cudnn.allow_tf32,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    return out


def _trim(value):
    if isinstance(value, list):
        return [_trim(v) for v in value[:KEEP]]
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    return value


def record(name: str, rc: int, seconds: float, stdout: Path) -> dict:
    text = stdout.read_text(errors="replace").strip() if stdout.exists() else ""
    lines = text.splitlines()
    result = None
    for candidate in (lines[-1] if lines else "", text):
        try:
            result = json.loads(candidate)
            break
        except json.JSONDecodeError:
            continue
    out = {"step": name, "rc": rc, "seconds": round(seconds, 2), "result": _trim(result)}
    if result is None and lines:
        out["tail"] = lines[-1][-300:]
    return out


def _log(checkpoint: str | None) -> list[dict]:
    path = Path(checkpoint).parent / "log.jsonl" if checkpoint else None
    if not path or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_rates(result: dict | None) -> dict:
    """Steady training speed from a run's log.jsonl: the median over its log lines but the
    first (which holds the data loader's start)."""
    lines = [r for r in _log((result or {}).get("checkpoint")) if "steps_per_s" in r][1:]
    if not lines:
        return {}
    return {
        "steps_per_s": statistics.median(r["steps_per_s"] for r in lines),
        "data_wait": 100 * statistics.median(r["data_wait"] for r in lines),
    }


def decoder_threads(rows: dict[str, dict]) -> dict:
    """How many reader threads keep the model busy: the fewest swept whose decoding alone is
    faster than the model alone, and an estimate from one thread's rate when none is. The
    sweep is the rows ``bench_sweep_w*`` and the main row of their precision (a thread a core)."""
    swept = [r for n, r in rows.items() if n.startswith("bench_sweep_") and "breakdown" in r]
    if not swept:
        return {}
    main = rows.get(f"bench_{swept[0]['precision']}")
    sweep = sorted(
        ((r["workers"], i, r) for i, r in enumerate(swept + ([main] if main else []))),
        key=lambda t: t[:2],
    )
    sweep = [(w, r) for w, _, r in sweep]
    table = [
        {
            "workers": w,
            "fps": r["fps"],
            "decode_fps": r["breakdown"]["decode_fps"],
            "model_clips_per_s": r["breakdown"]["model_clips_per_s"],
            "bound": r["breakdown"]["bound"],
        }
        for w, r in sweep
    ]
    enough = [t["workers"] for t in table if t["bound"] == "model"]
    one = sweep[0][1]
    per_thread = one["breakdown"]["decode_videos_per_s"] / one["workers"]
    model_videos = one["breakdown"]["model_clips_per_s"] / max(1e-9, one["clips_per_video"])
    return {
        "sweep": table,
        "fewest_that_keep_the_model_busy": min(enough) if enough else None,
        "estimate_from_one_thread": math.ceil(model_videos / max(1e-9, per_thread)),
    }


def check_figures(steps: dict[str, dict]) -> dict:
    def result(name: str) -> dict:
        return (steps.get(name) or {}).get("result") or {}

    bench = {n: result(n) for n in steps if n.startswith("bench_") and result(n)}
    best = {p: max((r["fps"] for r in bench.values() if r.get("precision") == p), default=None)
            for p in ("fp32", "bf16")}  # fmt: skip
    train = result("train")
    return {
        "train": {k: train.get(k) for k in ("iters", "seconds", "val_top1")} | train_rates(train),
        "test": {k: result("test").get(k) for k in ("top1", "fps", "videos")},
        "stream": result("stream").get("summary"),
        "table4": {"fps": best, "paper_fps_k40": PAPER_FPS},
        "bench": {n: {k: r.get(k) for k in BENCH_KEYS} for n, r in bench.items()},
        "decoder_threads": decoder_threads(bench),
        "ddp": {k: result("ddp").get(k) for k in ("distributed", "iters", "seconds")},
    }


def _named(steps: dict[str, dict], prefix: str) -> list[str]:
    return [n for n in steps if n.startswith(prefix)]


def motion_figures(steps: dict[str, dict]) -> dict:
    def result(name: str) -> dict:
        return (steps.get(name) or {}).get("result") or {}

    compress = result("compress")
    size = compress.get("file_bytes")
    return {
        "pretrain": result("pretrain"),
        "file_bytes": size,
        "file_mib": size / 2**20 if size else None,
        "under_5_mib": size <= SIZE_BAR if size else None,
        "inspect_valid": result("inspect").get("valid"),
        "load": result("load"),
        "similarity_auc": {
            n.removeprefix("similarity_"): result(n).get("auc")
            for n in _named(steps, "similarity_")
        },
        "finetune": {
            n.removeprefix("finetune_"): {
                k: result(n).get(k) for k in ("iters", "val_top1", "seconds")
            }
            for n in _named(steps, "finetune_")
        },
    }


def summary(steps_file: Path, out: Path, kind: str) -> int:
    steps = {}
    for line in steps_file.read_text().splitlines():
        if line.strip():
            s = json.loads(line)
            steps[s["step"]] = s
    failed = [n for n, s in steps.items() if s["rc"] != 0]
    figures = check_figures(steps) if kind == "check" else motion_figures(steps)
    report = {
        "ok": not failed,
        "failed": failed,
        "machine": (steps.get("env") or {}).get("result"),
        "seconds": round(sum(s["seconds"] for s in steps.values()), 1),
        **figures,
        "steps": steps,
    }
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'step':28} {'rc':>4} {'seconds':>8}  result")
    for n, s in steps.items():
        r = s["result"] if isinstance(s["result"], dict) else {}
        brief = {k: r[k] for k in ("fps", "top1", "val_top1", "auc", "file_bytes", "iters")
                 if isinstance(r.get(k), int | float)}  # fmt: skip
        text = ", ".join(f"{k} {v:.4g}" for k, v in brief.items()) or s.get("tail", "")
        print(f"{n:28} {s['rc']:>4} {s['seconds']:>8.1f}  {text[:60]}")
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all steps passed'}; wrote {out}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("env")
    e.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    r = sub.add_parser("record")
    r.add_argument("name")
    r.add_argument("rc", type=int)
    r.add_argument("seconds", type=float)
    r.add_argument("stdout", type=Path)
    s = sub.add_parser("summary")
    s.add_argument("steps", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--kind", choices=("check", "motion"), default="check")
    args = p.parse_args(argv)
    if args.command == "env":
        info = env(args.device)
        print(json.dumps(info))
        if args.device == "cuda" and not info["cuda_available"]:
            print("--device cuda: torch sees no CUDA device", file=sys.stderr)
            return 1
        return 0
    if args.command == "record":
        print(json.dumps(record(args.name, args.rc, args.seconds, args.stdout)))
        return 0
    return summary(args.steps, args.out, args.kind)


if __name__ == "__main__":
    raise SystemExit(main())
