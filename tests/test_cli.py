"""The tc3d command as users run it: JSON keys (docs/REFERENCE.md), exit codes, one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import tc3d
from tc3d.cli import main
from tc3d.infer.engine import Engine
from tc3d.modelfile.checkpoint import load_model_file


def test_train_json(trained_model):
    _, checkpoint, result = trained_model
    assert {"checkpoint", "iters", "val_top1", "seconds", "skipped"} <= result.keys()
    assert checkpoint.exists() and result["iters"] == 12


def _video_accuracy(checkpoint: Path, videos: list[str], labels: list[str], **protocol):
    """(top-1, mean class accuracy) in percent, computed here from the engine's video
    probabilities under ``protocol`` (the ClipSpec fields ``protocol`` and ``crops``)."""
    model = tc3d.load_model(checkpoint, device="cpu")
    spec = replace(model.clip, **protocol)
    results = sorted(Engine(model.loaded.model, model.device, "fp32").run(videos, spec),
                     key=lambda r: r.index)  # fmt: skip
    assert [r.error for r in results] == [None] * len(videos)
    predicted = np.array([model.classes[int(np.argmax(r.probs))] for r in results])
    correct = predicted == np.array(labels)
    per_class = [correct[np.array(labels) == c].mean() for c in sorted(set(labels))]
    return 100 * correct.mean(), 100 * np.mean(per_class)


def test_test_json(trained_model):
    data, checkpoint, _ = trained_model
    listed = (data / "splits" / "testlist01.txt").read_text().split()
    videos, labels = [str(data / rel) for rel in listed], [rel.split("/")[0] for rel in listed]
    # tc3d predict scores a video as tc3d test's default protocol does: the same top-1
    predicted = run_cli("predict", *videos, "--model", str(checkpoint), "--top", "1",
                        "--json")["results"]  # fmt: skip
    assert [r["video"] for r in predicted] == videos
    correct = np.array(
        [r["labels"][0]["label"] == y for r, y in zip(predicted, labels, strict=True)]
    )
    per_class = [correct[np.array(labels) == c].mean() for c in ("RedThing", "GreenThing")]
    expected = {"sclips": (100 * correct.mean(), 100 * np.mean(per_class))}
    # allclips with 10 crops: the same videos scored here, straight from the engine
    expected["allclips"] = _video_accuracy(checkpoint, videos, labels, protocol="allclips",
                                           crops=10)  # fmt: skip
    assert expected["sclips"] == _video_accuracy(checkpoint, videos, labels)
    for protocol, crops in [("sclips", "1"), ("allclips", "10")]:
        result = run_cli("test", "--model", str(checkpoint), "--data", str(data),
                         "--protocol", protocol, "--crops", crops, "--json")  # fmt: skip
        keys = {"top1", "top5", "mean_class_acc", "videos", "skipped", "seconds", "fps"}
        assert keys <= result.keys()
        assert result["videos"] == 4 and result["skipped"] == []
        assert (result["protocol"], result["crops"]) == (protocol, int(crops))
        assert result["top5"] == 100.0  # two classes: the true one is always among the top 5
        assert result["top1"] == pytest.approx(expected[protocol][0])
        assert result["mean_class_acc"] == pytest.approx(expected[protocol][1])
        assert result["frames"] == 4 * 24  # every frame of every test video, read or not
        assert result["fps"] == pytest.approx(result["frames"] / result["seconds"])


def test_predict_reports_failures_and_exits_1(trained_model, tmp_path):
    data, checkpoint, _ = trained_model
    good = next(data.glob("RedThing/*.avi"))
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"\x00" * 100)
    done = run_cli(
        "predict", str(good), str(bad), "--model", str(checkpoint), "--top", "2", "--json", expect=1
    )
    results = done["results"]
    assert results[0]["video"] == str(good) and len(results[0]["labels"]) == 2
    labels = results[0]["labels"]  # both classes of the model: their probabilities sum to 1
    assert {x["label"] for x in labels} == {"RedThing", "GreenThing"}
    assert labels[0]["prob"] >= labels[1]["prob"]
    assert labels[0]["prob"] + labels[1]["prob"] == pytest.approx(1.0, abs=1e-5)
    assert results[1]["video"] == str(bad) and "cannot open" in results[1]["error"]
    # the Python API gives exactly the command's results, the broken file included
    assert (
        tc3d.load_model(checkpoint, device="cpu").predict([str(good), str(bad)], top=2) == results
    )


def test_data_check_json(trained_model, tmp_path):
    data, _, _ = trained_model
    result = run_cli("data", "check", "--data", str(data), "--json")
    assert {
        "format",
        "classes",
        "train",
        "test",
        "ok",
        "unreadable",
        "missing",
        "frames",
    } <= result.keys()
    assert (result["format"], result["classes"], result["ok"]) == ("ucf101", 2, 12)
    assert result["frames"] == {"min": 24, "median": 24.0, "max": 24}


def test_data_check_reports_broken_files(tiny_dataset_copy):
    from conftest import add_broken_files

    zero, cut, one = add_broken_files(tiny_dataset_copy)
    result = run_cli("data", "check", "--data", str(tiny_dataset_copy), "--json")
    assert result["ok"] == 20 and result["train"] == 15 and result["test"] == 9
    assert [Path(u["path"]).name for u in result["unreadable"]] == [Path(zero).name]
    assert result["unreadable"][0]["error"] == "empty file (0 bytes)"
    assert [Path(t["path"]).name for t in result["truncated"]] == [Path(cut).name]
    assert Path(one).name in {Path(s["path"]).name for s in result["short"]}
    assert result["frames"]["min"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "/nonexistent/v.mp4", "--model", "/nonexistent/m.pt"],
        ["test", "--model", "/nonexistent/m.pt", "--data", "/nonexistent"],
        ["train", "--data", "/nonexistent", "--out", "/tmp/x"],
        ["data", "check", "--data", "/nonexistent"],
        ["train", "--data", "x", "--out", "y", "--no-such-flag"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(args)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tc3d: error:")


def test_corrupt_model_exits_1_with_one_line(trained_model, tmp_path):
    data, checkpoint, _ = trained_model
    broken = tmp_path / "broken.pt"
    broken.write_bytes(checkpoint.read_bytes()[:5000])
    done = run_cli("test", "--model", str(broken), "--data", str(data), "--json", expect=1)
    assert len(done["stderr"].strip().splitlines()) == 1 and "Traceback" not in done["stderr"]


def test_help_explains_every_command(capsys):
    # In this process: the parser is the one `tc3d` builds (the CLI's own start-up is
    # exercised by every other test here).
    from tc3d.cli import main

    for command in ("synth", "train", "test", "predict", "demo", "data"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "usage: tc3d " + command in text
        assert ("check" if command == "data" else "--json") in text


@pytest.mark.slow
def test_demo_runs_end_to_end_with_its_json_keys(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), *"--classes 3 --per-class 6 --iters 3 --json".split()]
    result = run_cli(*args)
    assert {
        "top1",
        "top1_s1",
        "top1_scratch",
        "fps",
        "size_bytes",
        "compressed_bytes",
        "compressed_top1",
    } <= result.keys()
    assert (out / "s3" / "best.pt").exists() and (out / "s1" / "best.pt").exists()
    # The figures are those of the files it wrote: tc3d test gives the same top-1s
    tested = {
        name: run_cli("test", "--model", str(out / model), "--data", str(out / "data"), "--json")[
            "top1"
        ]
        for name, model in (("s3", "s3/best.pt"), ("s1", "s1/best.pt"), ("tc3d", "s3.tc3d"))
    }
    assert (result["top1"], result["top1_s1"]) == (tested["s3"], tested["s1"])
    assert result["compressed_top1"] == tested["tc3d"]
    params = sum(p.numel() for p in load_model_file(out / "s3" / "best.pt").model.parameters())
    assert result["size_bytes"] == 4 * params  # fp32
    # fps is int8's when int8 is within 0.5 point of fp32's top-1, else fp32's
    int8_ok = abs(result["top1_int8"] - result["top1"]) <= 0.5
    assert result["fps_precision"] == ("int8" if int8_ok else "fp32")
    assert result["fps"] == result[f"fps_{result['fps_precision']}"] > 0
    runs = {
        name: json.loads((out / name / "config.json").read_text()) for name in ("s3", "s3_scratch")
    }
    assert runs["s3"]["init"] == "motion" and runs["s3_scratch"]["init"] == "scratch"
    assert len(result["predictions"]) == 3  # one test video of each tier
    assert result["compressed_bytes"] == (out / "s3.tc3d").stat().st_size < result["size_bytes"]
    again = run_cli(*args)  # a second run reuses the data and the finished trainings
    assert again["top1"] == result["top1"] and again["seconds"] < result["seconds"]


@pytest.mark.slow
def test_training_on_only_broken_videos_fails_with_one_line(tmp_path):
    from conftest import make_ucf_dataset

    root = make_ucf_dataset(
        tmp_path / "d",
        {
            "A": [[[np.zeros((48, 64, 3), np.uint8)] * 20]] * 3,
            "B": [[[np.ones((48, 64, 3), np.uint8)] * 20]] * 3,
        },
    )
    for video in root.glob("*/*.avi"):
        video.write_bytes(b"")  # every file unreadable
    done = run_cli(
        "train",
        "--data",
        str(root),
        "--out",
        str(tmp_path / "run"),
        "--width",
        "0.25",
        "--crop",
        "32",
        "--batch-size",
        "2",
        "--iters",
        "2",
        "--workers",
        "1",
        expect=1,
    )
    lines = done["stderr"].strip().splitlines()
    assert lines[-1].startswith("tc3d: error:") and "unreadable videos in a row" in lines[-1]
    assert "Traceback" not in done["stderr"]
