"""The Python API (``tc3d.load_model`` -> ``Model``): what the CLI, the page and the cluster
workers call. Real checkpoints, real encoded videos; bad input is reported, never raised."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import indexed_video, random_checkpoint

import tc3d
from tc3d.errors import TC3DError
from tc3d.modelfile.checkpoint import CheckpointError

TINY_CLASSES = ["RedThing", "GreenThing", "BlueThing"]  # conftest.make_tiny_dataset's


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A seeded checkpoint for the tiny set's classes, two real videos and a broken one."""
    root = tmp_path_factory.mktemp("api")
    checkpoint = random_checkpoint(root / "m.pt", TINY_CLASSES, segments=2, seed=7)
    videos = [str(indexed_video(root / f"v{i}.avi", n)) for i, n in enumerate((33, 48))]
    bad = root / "bad.mp4"
    bad.write_bytes(b"not a video")
    return checkpoint, videos, str(bad)


def test_load_model_reads_the_checkpoint_and_its_geometry(files):
    checkpoint, _, _ = files
    model = tc3d.load_model(checkpoint, device="cpu")
    assert model.classes == TINY_CLASSES and model.source == checkpoint
    assert (model.clip.sampling.segments, model.clip.sampling.frames, model.clip.crop) == (2, 4, 32)
    assert model.precision == "fp32" and model.device.type == "cpu"
    other = tc3d.load_model(checkpoint, device="cpu", segments=3, frames=8, crop=48)
    s = other.clip.sampling
    assert (s.segments, s.frames, s.offset, other.clip.crop) == (3, 8, 2, 48)


def test_precision_is_checked_when_loading(files):
    checkpoint, _, _ = files
    with pytest.raises(ValueError, match="precision"):
        tc3d.load_model(checkpoint, device="cpu", precision="fp16")


def test_a_file_that_is_no_model_is_a_one_line_checkpoint_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 300)
    with pytest.raises(CheckpointError) as info:
        tc3d.load_model(junk, device="cpu")
    assert isinstance(info.value, TC3DError) and "\n" not in str(info.value)


def test_predict_reports_bad_videos_in_place(files):
    checkpoint, videos, bad = files
    model = tc3d.load_model(checkpoint, device="cpu")
    results = model.predict([videos[0], bad, videos[1]], top=2)
    assert [r["video"] for r in results] == [videos[0], bad, videos[1]]
    assert set(results[1]) == {"video", "error"} and "cannot open" in results[1]["error"]
    for r in (results[0], results[2]):
        assert set(r) == {"video", "labels"} and len(r["labels"]) == 2
        assert r["labels"][0]["prob"] >= r["labels"][1]["prob"]
    full = model.predict(videos, top=10)  # top > K: every class once, summing to 1
    for r in full:
        assert sorted(x["label"] for x in r["labels"]) == sorted(TINY_CLASSES)
        assert sum(x["prob"] for x in r["labels"]) == pytest.approx(1.0, abs=1e-5)
    assert [r["labels"][:2] for r in full] == [results[0]["labels"], results[2]["labels"]]


def test_bf16_predicts_close_to_fp32(files):
    checkpoint, videos, _ = files
    probs = {}
    for precision in ("fp32", "bf16"):
        model = tc3d.load_model(checkpoint, device="cpu", precision=precision)
        results = model.predict(videos, top=3)
        probs[precision] = [{x["label"]: x["prob"] for x in r["labels"]} for r in results]
    for a, b in zip(probs["fp32"], probs["bf16"], strict=True):
        assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 0.1


def test_features_are_unit_rows_for_readable_videos(files):
    checkpoint, videos, bad = files
    model = tc3d.load_model(checkpoint, device="cpu")
    out = model.features([videos[0], bad, videos[1]], layers=("pool5",), names=["a", "x", "b"])
    assert out["videos"] == ["a", "b"]
    assert [f["video"] for f in out["failed"]] == [bad] and out["failed"][0]["error"]
    rows = out["pool5"]
    assert rows.dtype == np.float32 and rows.shape == (2, 128)  # width 0.25: 512 / 4
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(rows[0], rows[1])
    again = model.features(videos[::-1], layers=("pool5",))
    assert again["videos"] == videos[::-1] and again["failed"] == []
    np.testing.assert_allclose(again["pool5"], rows[::-1], atol=1e-6)


def test_evaluate_is_predict_counted_over_the_test_split(files, tiny_dataset):
    checkpoint, _, _ = files
    model = tc3d.load_model(checkpoint, device="cpu")
    result = model.evaluate(tiny_dataset, workers=0)
    assert result["precision"] == "fp32" and result["videos"] == 6 and result["skipped"] == []
    listed = (tiny_dataset / "splits" / "testlist01.txt").read_text().split()
    predicted = model.predict([str(tiny_dataset / rel) for rel in listed], top=1)
    correct = [
        r["labels"][0]["label"] == rel.split("/")[0]
        for r, rel in zip(predicted, listed, strict=True)
    ]
    assert result["top1"] == pytest.approx(100 * np.mean(correct))


def test_evaluate_refuses_a_data_set_with_other_classes(tmp_path, tiny_dataset):
    other = random_checkpoint(tmp_path / "o.pt", ["RedThing", "BlueThing", "GreenThing"])
    with pytest.raises(ValueError, match="classes differ"):
        tc3d.load_model(other, device="cpu").evaluate(tiny_dataset, workers=0)
