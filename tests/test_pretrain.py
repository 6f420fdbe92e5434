"""tc3d pretrain: a few real steps on the procedural stream, an exact resume, and a run folder
whose checkpoint every --model and --init accepts."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from tc3d.modelfile.checkpoint import load_checkpoint, load_model_file
from tc3d.synthetic.procedural import class_names
from tc3d.training.pretrain import PretrainConfig, learning_rate, pretrain

TINY = dict(
    width=0.25, crop=32, model_crop=40, frames=4, batch_size=4, workers=0, device="cpu", val_clips=8
)


def test_pretrain_resumes_exactly_and_writes_a_usable_run(tmp_path):
    straight = pretrain(PretrainConfig(out=str(tmp_path / "a"), iters=6, eval_every=3, **TINY))
    assert straight["iters"] == 6
    # 6 steps of 4 clips, timed as the log's window of those steps (data_wait: % of that time)
    window = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    (steps,) = [r for r in window if "loss" in r]
    assert steps["iter"] == 6 and straight["clips_per_s"] == pytest.approx(steps["clips_per_s"])
    assert straight["data_wait"] == pytest.approx(100 * steps["data_wait"])
    assert straight["clips_per_s"] >= 6 * 4 / straight["seconds"]  # timed inside the run
    # the same run in two pieces: stopped at 3, resumed to 6
    half = PretrainConfig(out=str(tmp_path / "b"), iters=6, eval_every=3, **TINY)
    pretrain(PretrainConfig(**{**half.__dict__, "iters": 3}))
    pretrain(PretrainConfig(**{**half.__dict__, "resume": True}))
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["iteration"] == b["iteration"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    records = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "val_top1" in r] == [3, 6]
    assert {"clips_per_s", "data_wait", "loss"} <= set(records[0])
    loaded = load_model_file(tmp_path / "a" / "best.pt")
    assert loaded.classes == class_names()
    assert loaded.model.cfg.width == 0.25 and loaded.clip.crop == 40


def test_schedule_warms_up_then_decays_to_zero():
    cfg = PretrainConfig(out="", lr=1.0, iters=100, warmup=10)
    assert learning_rate(cfg, 0) == 0.1
    assert learning_rate(cfg, 10) == 1.0
    assert learning_rate(cfg, 55) == pytest.approx(0.5)  # half-way down the cosine
    assert abs(learning_rate(cfg, 100)) < 1e-12


@pytest.mark.slow
def test_cli_pretrain_then_train_from_it(tmp_path, tiny_dataset):
    run = tmp_path / "pre"
    out = run_cli(
        "pretrain", "--out", str(run), "--iters", "2", "--eval-every", "2", "--crop", "32",
        "--model-crop", "48", "--frames", "4", "--batch-size", "4", "--workers", "1", "--json",
    )  # fmt: skip
    assert out["iters"] == 2 and out["checkpoint"].endswith("best.pt")
    trained = run_cli(
        "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "ft"), "--init",
        out["checkpoint"], "--iters", "2", "--frames", "4", "--batch-size", "4", "--workers",
        "0", "--json",
    )  # fmt: skip
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert trained["iters"] == 2
    assert config["width"] == 0.25 and config["crop"] == 48  # followed the --init model
