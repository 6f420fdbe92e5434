"""benchmarks/gpu_check.sh, the prepared run for a GPU machine, keeps working between GPU
sessions: its ``--device cpu`` version runs every step (small) and writes its figures, and a
failing step stops it loudly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["env", "tests", "synth", "train", "test", "predict", "stream", "cam", "bench_fp32",
         "bench_sweep_w1", "ddp", "ddp_backend"]  # fmt: skip


def gpu_check(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = ["bash", "benchmarks/gpu_check.sh", "--out", str(tmp_path / "out"),
           "--work", str(tmp_path / "work"), *args]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    done = gpu_check(tmp_path, "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["ok"] and report["failed"] == []
    assert list(report["steps"]) == STEPS
    assert all(s["rc"] == 0 for s in report["steps"].values())
    assert report["machine"]["device"] == "cpu" and report["machine"]["torch_in_window"]
    assert report["train"]["iters"] == 4 and report["test"]["videos"] > 0
    assert report["stream"]["decisions"] > 0
    assert report["steps"]["cam"]["result"]["files"]
    assert report["table4"]["fps"]["fp32"] > 0
    breakdown = report["bench"]["bench_fp32"]["breakdown"]
    assert breakdown["decode_seconds"] > 0 and breakdown["model_seconds"] > 0
    assert breakdown["bound"] in ("decode", "model")
    threads = report["decoder_threads"]
    assert [row["workers"] for row in threads["sweep"]] == [1, os.cpu_count()]
    assert threads["estimate_from_one_thread"] >= 1
    assert report["ddp"]["distributed"] == {"backend": "gloo", "world": 1}
    assert "== ddp" in (tmp_path / "out" / "gpu_check.log").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_failing_step_stops_the_run_with_exit_1(tmp_path):
    """On a machine without a GPU, --device cuda fails at its first step, says so, and still
    writes what it has."""
    done = gpu_check(tmp_path, "--device", "cuda", timeout=120)
    assert done.returncode == 1
    assert "FAILED: env" in done.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert not report["ok"] and report["failed"] == ["env"] and list(report["steps"]) == ["env"]
