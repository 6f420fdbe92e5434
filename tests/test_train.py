"""Training: it learns, it checkpoints atomically, it resumes exactly, it survives bad files
and kill -9, and it runs under torchrun with two gloo processes."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import add_broken_files, tc3d_command

from tc3d.datasets.formats import load_dataset
from tc3d.device import resolve_device, set_rng_state
from tc3d.infer.evaluate import evaluate
from tc3d.modelfile.checkpoint import CheckpointError, load_checkpoint, load_model_file
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.training.config import TrainConfig, TrainError, learning_rate
from tc3d.training.loop import make_loader, train_one_epoch
from tc3d.training.train import train
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

# From scratch with SGD: these tests are about the training loop, not the shipped backbone
# (tests/test_weights.py covers --init motion).
SMALL = dict(
    width=0.25, crop=32, frames=4, batch_size=4, lr=0.01, dropout=0.2, workers=0, device="cpu",
    init="scratch", optimizer="sgd", fusion="avg", flip=True,
)  # fmt: skip
RUN_FILES = {"best.pt", "last.pt", "config.json", "log.jsonl"}


def test_learns_an_easy_task_and_writes_the_run_folder(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    result = train(
        TrainConfig(
            data=str(tiny_dataset), out=str(out), iters=30, eval_every=15, lr_steps=[25], **SMALL
        )
    )
    assert result["iters"] == 30 and result["skipped"] == []
    assert result["val_top1"] == 100.0  # red/green/blue squares: trivially separable
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert json.loads((out / "config.json").read_text())["iters"] == 30
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "val_top1" in r] == [15, 30]
    losses = [r["loss"] for r in records if "loss" in r]
    # below chance (ln 3 for 3 classes) by the end, and lower than where it started
    assert len(losses) == 3 and losses[-1] < min(math.log(3), losses[0])
    assert load_checkpoint(out / "last.pt")["iteration"] == 30
    loaded = load_model_file(out / "best.pt")
    split = load_dataset(tiny_dataset)
    metrics = evaluate(loaded, split.test, resolve_device("cpu"))
    assert metrics["top1"] == 100.0 and metrics["videos"] == 6


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    kw = dict(data=str(tiny_dataset), lr_steps=[5], eval_every=4, **SMALL)
    train(TrainConfig(out=str(tmp_path / "straight"), iters=8, **kw))
    train(TrainConfig(out=str(tmp_path / "halves"), iters=4, **kw))
    with open(tmp_path / "halves" / "log.jsonl", "a") as f:
        f.write('{"iter": 5, "lo')  # a write torn by a kill after the last checkpoint
    train(TrainConfig(out=str(tmp_path / "halves"), iters=8, resume=True, **kw))
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "halves" / "last.pt")
    assert b["iteration"] == 8
    assert set(b["rng"][0]) == {"cpu", "cuda"}  # device.rng_state: CUDA's generators too
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    log = [json.loads(x) for x in (tmp_path / "halves" / "log.jsonl").read_text().splitlines()]
    iters = [r["iter"] for r in log if "loss" in r]
    assert iters == sorted(set(iters))  # no step logged twice


def test_train_one_epoch_counts_steps_follows_the_schedule_and_stops_on_nan(tiny_dataset):
    split = load_dataset(tiny_dataset)  # 12 training videos: 3 batches of 4
    spec = ClipSpec(SamplingConfig(1, 4, "consecutive", 2), crop=32)
    device = resolve_device("cpu")
    loader = make_loader(split.train, spec, 4, 0, 0, device)
    torch.manual_seed(0)
    model = TC3D(ModelConfig(3, width=0.25, segments=1, dropout=0))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    skipped: dict[str, str] = {}
    loader.sampler.set_epoch(0, start_batch=1)  # resumed after the first batch
    steps = list(
        train_one_epoch(model, optimizer, loader, device, skipped, first=5, lr=lambda i: i / 100)
    )
    assert [s.iteration for s in steps] == [6, 7]
    assert [s.lr for s in steps] == [0.05, 0.06] and optimizer.param_groups[0]["lr"] == 0.06
    assert all(s.logits.shape == (4, 3) and math.isfinite(s.loss) for s in steps)
    assert skipped == {}

    def nan(logits, label):
        return logits.sum() * float("nan")

    loader.sampler.set_epoch(1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainError, match="loss became nan at iteration 8"):
        next(train_one_epoch(model, optimizer, loader, device, skipped, first=8, loss_fn=nan))
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True)
    )  # no update
    with pytest.raises(TrainError, match="12 training videos are fewer than one batch \\(13\\)"):
        make_loader(split.train, spec, 13, 0, 0, device)


def test_a_bare_cpu_rng_state_from_older_checkpoints_still_restores():
    state = torch.get_rng_state()
    expected = torch.rand(3)
    set_rng_state(state)  # train checkpoints held only this before they kept CUDA's state too
    assert torch.equal(torch.rand(3), expected)


def test_schedule():
    cfg = TrainConfig(data="", out="", lr=0.1, lr_steps=[10, 20], warmup=5)
    assert learning_rate(cfg, 0) == pytest.approx(0.02)
    assert learning_rate(cfg, 9) == pytest.approx(0.1)
    assert learning_rate(cfg, 10) == pytest.approx(0.01)
    assert learning_rate(cfg, 25) == pytest.approx(0.001)


def test_bad_videos_are_skipped_and_reported(tiny_dataset_copy, tmp_path):
    tiny_dataset = tiny_dataset_copy  # broken files are added to it
    names = add_broken_files(tiny_dataset)
    out = tmp_path / "run"
    result = train(
        TrainConfig(data=str(tiny_dataset), out=str(out), iters=16, eval_every=8, **SMALL)
    )
    assert result["iters"] == 16
    assert [Path(s["path"]).name for s in result["skipped"]] == [Path(names[0]).name]
    split = load_dataset(tiny_dataset)
    metrics = evaluate(load_model_file(out / "best.pt"), split.test, resolve_device("cpu"))
    assert metrics["videos"] == 8  # 6 good + truncated + 1-frame
    assert [Path(s["path"]).name for s in metrics["skipped"]] == [Path(names[0]).name]


def _train_args(data: Path, out: Path, iters: int) -> list[str]:
    flags = "--width 0.25 --crop 32 --frames 4 --batch-size 2 --workers 0 --eval-every 3"
    return ["train", "--data", str(data), "--out", str(out), *flags.split(),
            "--iters", str(iters), "--lr", "0.01", "--json"]  # fmt: skip


# A training process that SIGKILLs itself halfway through writing its second last.pt: the
# worst moment for a kill -9. Patching torch.save reaches the bytes wherever they are written.
KILLED_MID_WRITE = """
import io, os, signal, sys, torch
from tc3d.cli import main

real_save, resumable_saves = torch.save, 0

def torn_save(obj, f, *args, **kwargs):
    global resumable_saves
    if isinstance(obj, dict) and "optimizer" in obj:  # last.pt (best.pt has no optimizer)
        resumable_saves += 1
        if resumable_saves == 2:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)

torch.save = torn_save
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_minus_9_mid_write_keeps_the_last_whole_checkpoint_and_resumes(tiny_dataset, tmp_path):
    """The guarantee: after kill -9 at any moment, RUN/last.pt is a whole checkpoint (the
    previous one if the kill hit its rewrite) and --resume continues from it. A torn write can
    survive only as a hidden temp file that no ``*.pt`` glob and no resume ever reads."""
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, *_train_args(tiny_dataset, out, 9)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    torn = list(out.glob(".last.pt.*.tmp"))
    assert len(torn) == 1  # the kill did land inside the write of the second last.pt
    with pytest.raises(CheckpointError):
        load_checkpoint(torn[0])  # what was torn is unreadable, and it is only the temp file
    assert {p.name for p in out.glob("*.pt")} == {"best.pt", "last.pt"}
    for path in out.iterdir():  # besides the run's files, only hidden temp files named after them
        hidden_temp = any(path.name.startswith(f".{name}.") for name in RUN_FILES)
        assert path.name in RUN_FILES or (hidden_temp and path.suffix == ".tmp"), path.name
    assert load_checkpoint(out / "last.pt")["iteration"] == 3  # the previous save, whole
    assert load_model_file(out / "last.pt").classes == ["RedThing", "GreenThing", "BlueThing"]

    done = subprocess.run(
        tc3d_command(*_train_args(tiny_dataset, out, 9), "--resume", "--debug"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr and "at iteration 3" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["iters"] == 9
    assert load_checkpoint(out / "last.pt")["iteration"] == 9
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log if "val_top1" in r] == [3, 6, 9]  # 6 again, once


@pytest.mark.slow
def test_ddp_with_two_gloo_processes(tiny_dataset, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "tc3d",
        *_train_args(tiny_dataset, out, 6),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["iteration"] == 6 and len(ckpt["rng"]) == 2  # one RNG state per rank
    assert not torch.equal(ckpt["rng"][0]["cpu"], ckpt["rng"][1]["cpu"])
    # Each rank takes its own half of every epoch: 12 train videos, batch 2 × 2 ranks.
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "epoch" in r][-1] == 1
    shutil.rmtree(out)


def _ignore_sigint():  # as a non-interactive shell starts a background job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_the_steps_done(tiny_dataset, tmp_path, signum):
    out = tmp_path / "run"
    args = _train_args(tiny_dataset, out, 400)
    args[args.index("--eval-every") + 1] = "1000"  # no periodic checkpoint before the signal
    proc = subprocess.Popen(
        tc3d_command(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=_ignore_sigint,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "log.jsonl").exists():
        time.sleep(0.2)  # the log gets its first line after 10 steps
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert load_checkpoint(out / "last.pt")["iteration"] >= 10
