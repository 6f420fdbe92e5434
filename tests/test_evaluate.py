"""tc3d.infer.evaluate: the metrics by hand, the class check, predict and evaluate on real tiny
videos (a seeded untrained model: these tests are about the bookkeeping, not learning)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import indexed_video, random_checkpoint

from tc3d.datasets.formats import load_dataset
from tc3d.device import resolve_device
from tc3d.infer.evaluate import accuracy_metrics, check_classes, evaluate, predict, top_labels
from tc3d.modelfile.checkpoint import load_model_file

CPU = resolve_device("cpu")
TINY_CLASSES = ["RedThing", "GreenThing", "BlueThing"]  # conftest.make_tiny_dataset's


def test_accuracy_metrics_by_hand():
    p = np.array(
        [
            [0.50, 0.20, 0.10, 0.10, 0.05, 0.05],  # label 0: top-1
            [0.30, 0.25, 0.20, 0.15, 0.10, 0.00],  # label 5: last, outside the top 5
            [0.10, 0.20, 0.40, 0.10, 0.10, 0.10],  # label 2: top-1
            [0.40, 0.30, 0.10, 0.10, 0.05, 0.05],  # label 1: second, inside the top 5
        ]
    )
    probs = {10: p[0], 11: p[1], 12: p[2], 13: p[3]}  # keys need not start at 0
    labels = {10: 0, 11: 5, 12: 2, 13: 1, 99: 3}  # a label without scores (skipped) is ignored
    got = accuracy_metrics(probs, labels, list("abcdef"))
    assert got["top1"] == 50.0 and got["top5"] == 75.0
    assert got["per_class"] == {"a": 100.0, "c": 100.0, "b": 0.0, "f": 0.0}
    assert got["mean_class_acc"] == 50.0


def test_mean_class_accuracy_weighs_classes_not_videos():
    probs = {i: np.eye(2)[0] for i in range(4)}  # always class 0
    got = accuracy_metrics(probs, {0: 0, 1: 0, 2: 0, 3: 1}, ["x", "y"])
    assert got["top1"] == 75.0 and got["mean_class_acc"] == 50.0


def test_no_scored_video_gives_zeros():
    assert accuracy_metrics({}, {0: 1}, ["x", "y"]) == {
        "top1": 0.0, "top5": 0.0, "mean_class_acc": 0.0, "per_class": {}
    }  # fmt: skip


def test_check_classes_wants_the_same_names_in_the_same_order():
    check_classes(["a", "b"], ("a", "b"))
    for other in (["b", "a"], ["a"], ["a", "b", "c"]):
        with pytest.raises(ValueError, match="classes differ"):
            check_classes(["a", "b"], other)


def test_top_labels_best_first_and_at_least_one():
    probs = np.array([0.1, 0.6, 0.3])
    assert [x["label"] for x in top_labels(["a", "b", "c"], probs, 2)] == ["b", "c"]
    assert top_labels(["a", "b", "c"], probs, 0) == [{"label": "b", "prob": pytest.approx(0.6)}]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("eval") / "m.pt", TINY_CLASSES, seed=5)


def test_predict_on_real_videos_in_order_with_errors_in_place(model, tmp_path):
    videos = [str(indexed_video(tmp_path / f"v{i}.avi", n)) for i, n in enumerate((30, 45))]
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 64)
    paths = [videos[0], str(bad), videos[1]]
    results = predict(load_model_file(model), paths, CPU, top_k=3)
    assert [r["video"] for r in results] == paths
    assert "cannot open" in results[1]["error"] and "labels" not in results[1]
    for r in (results[0], results[2]):
        probs = [x["prob"] for x in r["labels"]]
        assert {x["label"] for x in r["labels"]} == set(TINY_CLASSES)
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
    assert results[0]["labels"] != results[2]["labels"]  # two videos, two scores
    assert predict(load_model_file(model), videos, CPU, top_k=1) == [
        {"video": r["video"], "labels": r["labels"][:1]} for r in (results[0], results[2])
    ]


def test_evaluate_agrees_with_predict_on_the_same_videos(model, tiny_dataset):
    split = load_dataset(tiny_dataset)
    assert split.classes == TINY_CLASSES and len(split.test) == 6
    loaded = load_model_file(model)
    result = evaluate(loaded, split.test, CPU)
    predicted = predict(loaded, [str(i.path) for i in split.test], CPU, top_k=1)
    correct = [
        r["labels"][0]["label"] == TINY_CLASSES[i.label]
        for r, i in zip(predicted, split.test, strict=True)
    ]
    assert result["videos"] == 6 and result["skipped"] == []
    assert result["top1"] == pytest.approx(100 * np.mean(correct))
    assert result["top5"] == 100.0  # three classes
    assert (result["protocol"], result["crops"]) == ("sclips", 1)
    assert result["frames"] == sum(_frames(i.path) for i in split.test)
    assert result["fps"] == pytest.approx(result["frames"] / result["seconds"])


def _frames(path) -> int:
    import av

    with av.open(str(path)) as f:
        return sum(1 for _ in f.decode(video=0))
