"""Multi-node training: ``torchrun --nnodes 2 --rdzv-backend c10d`` with one process per node,
the two nodes on loopback inside a private network namespace (as the Ray tests are). Both
ranks must end with the same parameters, changed by training, and equal to the one checkpoint,
which only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ddp_node import digest
from netns import Namespace

import tc3d
from tc3d.modelfile.checkpoint import load_checkpoint, load_model_file

PORT = 29531
ITERS = 4


@pytest.mark.slow
def test_two_nodes_train_one_model(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    train = ["train", "--data", str(tiny_dataset), "--out", str(out), "--init", "scratch",
             "--width", "0.25", "--crop", "32", "--frames", "4", "--batch-size", "2",
             "--workers", "0", "--iters", str(ITERS), "--eval-every", str(ITERS),
             "--lr", "0.01", "--json"]  # fmt: skip
    src = str(Path(tc3d.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    node_script = str(Path(__file__).with_name("ddp_node.py"))
    with Namespace() as ns:
        nodes = [
            ns.popen(
                [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--nnodes",
                    "2",
                    "--nproc-per-node",
                    "1",
                    "--rdzv-backend",
                    "c10d",
                    "--rdzv-endpoint",
                    f"127.0.0.1:{PORT}",
                    "--rdzv-id",
                    "tc3d-test",
                    "--node-rank",
                    str(rank),
                    "--max-restarts",
                    "0",
                    node_script,
                    *train,
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for rank in (0, 1)
        ]
        done = [p.communicate(timeout=600) for p in nodes]
    for p, (_, err) in zip(nodes, done, strict=True):
        assert p.returncode == 0, err[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["node"] for r in ranks) == [0, 1] and {r["world"] for r in ranks} == {2}
    assert ranks[0]["end"] == ranks[1]["end"] != ranks[0]["start"]  # one model, trained
    assert ranks[0]["files"] and ranks[1]["files"] == []  # one writer: rank 0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["iteration"] == ITERS and len(ckpt["rng"]) == 2  # an RNG state per rank
    assert digest(load_model_file(out / "last.pt").model) == ranks[0]["end"]
    written = {p.name for p in out.iterdir()}
    assert written == {"last.pt", "best.pt", "config.json", "log.jsonl", "rank0.json", "rank1.json"}
