"""tc3d tag: 50 videos with 2 broken -> 48 tagged, 2 listed; a re-run does no work; a torn
last line from an interrupted run is repaired without losing the whole lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_checkpoint, write_video

from tc3d.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("tag")
    rng = np.random.default_rng(0)
    videos = root / "videos"
    for i in range(48):
        frames = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
        write_video(videos / f"sub{i % 3}" / f"v{i:02d}.mp4", list(frames))
    (videos / "sub0" / "broken_empty.mp4").write_bytes(b"")
    (videos / "sub1" / "broken_garbage.avi").write_bytes(b"not a video at all" * 50)
    (videos / "notes.txt").write_text("not a video, not listed")
    model = random_checkpoint(root / "model.pt", ["a", "b", "c"])
    return videos, model


@pytest.fixture
def tag(capsys):
    def run(videos, model, out, *extra):
        args = ["tag", str(videos), "--model", str(model), "--out", str(out), "--top", "2"]
        assert main([*args, "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    return run


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_tag_resumes_and_lists_failures(folder, tmp_path, suffix, tag):
    videos, model = folder
    out = tmp_path / f"tags.{suffix}"
    first = tag(videos, model, out)
    assert (first["videos"], first["tagged"], first["skipped"]) == (50, 48, 0)
    errors = {f["path"].rsplit("/", 1)[1]: f["error"] for f in first["failed"]}
    assert sorted(errors) == ["broken_empty.mp4", "broken_garbage.avi"]
    assert errors["broken_empty.mp4"] == "empty file (0 bytes)"
    assert errors["broken_garbage.avi"].startswith("cannot open as video")
    text = out.read_text()
    if suffix == "csv":
        rows = text.splitlines()
        assert rows[0] == "video,label_1,prob_1,label_2,prob_2" and len(rows) == 49
        name, l1, p1, l2, p2 = rows[1].split(",")
        tagged = {"video": name, "labels": [(l1, float(p1)), (l2, float(p2))]}
    else:
        recs = [json.loads(line) for line in text.splitlines()]
        assert len(recs) == 48 and len({r["video"] for r in recs}) == 48
        labels = [(x["label"], x["prob"]) for x in recs[0]["labels"]]
        tagged = {"video": recs[0]["video"], "labels": labels}
    # a row holds what tc3d predict says about that video (6 decimals in the CSV)
    assert tagged["video"] == "sub0/v00.mp4"
    predicted = _predict(model, [videos / "sub0" / "v00.mp4"], top=2)[0]
    assert [label for label, _ in tagged["labels"]] == [x["label"] for x in predicted]
    for (_, prob), x in zip(tagged["labels"], predicted, strict=True):
        assert prob == pytest.approx(x["prob"], abs=1e-6)

    second = tag(videos, model, out)  # no work: everything tagged or known to fail
    assert (second["tagged"], second["skipped"], len(second["failed"])) == (0, 48, 2)
    assert out.read_text() == text

    # An interrupted run: a torn last line and two lost videos. The whole lines survive.
    lines = text.splitlines(keepends=True)
    out.write_text("".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])
    third = tag(videos, model, out)
    assert (third["tagged"], third["skipped"]) == (2, 46)
    assert sorted(out.read_text().splitlines()) == sorted(text.splitlines())


def test_tag_retries_a_fixed_file(folder, tmp_path, tag):
    videos, model = folder
    out = tmp_path / "tags.jsonl"
    out.write_text("")
    tag(videos, model, out)
    broken = videos / "sub0" / "broken_empty.mp4"
    write_video(broken, [np.zeros((32, 32, 3), np.uint8)] * 6)
    try:
        again = tag(videos, model, out)
        assert again["tagged"] == 1 and len(again["failed"]) == 1
    finally:
        broken.write_bytes(b"")


@pytest.mark.slow
def test_tag_runs_int8_through_the_engine(folder, tmp_path, tag):
    """--precision int8 calibrates once (on the videos to tag: the model has no training data)
    and tags the same 48 videos as fp32."""
    videos, model = folder
    r = tag(videos, model, tmp_path / "int8.jsonl", "--precision", "int8")
    assert (r["videos"], r["tagged"], len(r["failed"])) == (50, 48, 2)
    recs = [json.loads(line) for line in (tmp_path / "int8.jsonl").read_text().splitlines()]
    assert len({rec["video"] for rec in recs}) == 48
    # int8 moves each class probability a little from fp32's, never to another model's output
    names = [rec["video"] for rec in recs]
    fp32 = _predict(model, [videos / name for name in names], top=3)
    for rec, reference in zip(recs, fp32, strict=True):
        want = {x["label"]: x["prob"] for x in reference}
        probs = [x["prob"] for x in rec["labels"]]
        assert len(probs) == 2 and probs[0] >= probs[1]
        for x in rec["labels"]:
            assert x["prob"] == pytest.approx(want[x["label"]], abs=0.05), rec["video"]


def _predict(model, videos, top: int) -> list[list[dict]]:
    """fp32 labels of each video, as tc3d predict gives them."""
    import tc3d

    results = tc3d.load_model(model, device="cpu").predict(videos, top=top)
    return [r["labels"] for r in results]
