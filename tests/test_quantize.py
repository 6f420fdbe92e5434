"""int8: the stored calibration rebuilds the same model, and it travels with the model file
(.pt at first int8 use, .tc3d from compress, a cache for read-only files)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import indexed_video, random_checkpoint, tc3d_without_openvino

from tc3d.cli import main
from tc3d.device import resolve_device
from tc3d.infer import openvino_runtime, quantize
from tc3d.infer.calibration import make_engine, training_videos
from tc3d.io import atomic_save
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.calibration import KEY
from tc3d.modelfile.checkpoint import load_checkpoint, load_model_file
from tc3d.models.res3d import res3d18

CPU = resolve_device("cpu")
CLASSES = ["RedThing", "GreenThing", "BlueThing"]  # tiny_dataset's classes


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private int8 cache that each test can check stays empty (or not)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TC3D_CACHE", str(folder))
    return folder


def _trained_checkpoint(path: Path, data: Path) -> Path:
    """A width-0.25 checkpoint whose ``train_config`` names ``data``, as ``tc3d train``
    writes it (the weights are random: calibration does not care)."""
    random_checkpoint(path, CLASSES, segments=2, frames=4, crop=32)
    ckpt = load_checkpoint(path)
    ckpt["train_config"] = {"data": str(data), "format": "ucf101", "split": 1}
    atomic_save(ckpt, path)
    return path


def _test_videos(data: Path) -> list[str]:
    return sorted(str(p) for p in data.rglob("*_g01_*.avi"))


def _int8_probs(model_path, videos, fallback=()) -> tuple[list[np.ndarray], dict]:
    """Every video's int8 probabilities, in order; fails unless each one was scored."""
    loaded = load_model_file(model_path)
    engine = make_engine(loaded, CPU, "int8", fallback_videos=fallback)
    results = sorted(engine.run(videos, loaded.clip), key=lambda r: r.index)
    assert [r.index for r in results] == list(range(len(videos))) and videos
    assert [r.error for r in results] == [None] * len(videos)
    return [r.probs for r in results], engine.calibration_info


def _logged(caplog) -> str:
    """What was logged (torch.export's own trace records make caplog.text unreliable)."""
    return "\n".join(r.getMessage() for r in caplog.records)


def _assert_same_probs(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    """Bit for bit, video by video; something must have been compared."""
    assert first and len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a is not None and a.ndim == 1 and len(a) >= 2
        np.testing.assert_array_equal(a, b)


def test_stored_ranges_rebuild_the_calibrated_model_bit_for_bit(cache):
    """The stored numbers alone (no videos) give exactly the model NNCF made on the clips."""
    torch.manual_seed(0)
    backbone = res3d18(num_classes=3, width=0.25).eval()
    clips = [torch.randn(3, 3, 4, 32, 32) for _ in range(2)]
    ranges = quantize.calibrate_backbone(backbone, clips)
    assert len(ranges["values"]) >= 20 and all(v[0] < v[1] for v in ranges["values"])
    model = openvino_runtime.convert(backbone, clips[0])
    direct = openvino_runtime.OpenVinoBackbone(
        openvino_runtime.compile_for_cpu(quantize._nncf_quantize(model, [c.numpy() for c in clips]))
    )
    shutil.rmtree(cache)  # rebuilt from the numbers, not read back from the cache
    rebuilt = quantize.quantize_backbone(backbone, ranges, torch.zeros(1, 3, 4, 32, 32))
    assert len(list((cache / "openvino").glob("*.xml"))) == 1
    cached = quantize.quantize_backbone(backbone, ranges, torch.zeros(1, 3, 4, 32, 32))
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        fp32 = backbone(x)
    for a, b, c in zip(direct(x), rebuilt(x), cached(x), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    scores = rebuilt(x)[1]
    assert not torch.equal(scores, fp32) and torch.allclose(scores, fp32, atol=0.05)
    with pytest.raises(quantize.CalibrationMismatch):
        fewer = {"layout": ranges["layout"], "values": ranges["values"][:-1]}
        quantize.quantize_backbone(backbone, fewer, torch.zeros(1, 3, 4, 32, 32))
    with pytest.raises(quantize.CalibrationMismatch):
        moved = {"layout": "0" * 16, "values": ranges["values"]}  # quantisers placed elsewhere
        quantize.quantize_backbone(backbone, moved, torch.zeros(1, 3, 4, 32, 32))


def test_a_damaged_cached_model_is_rebuilt(cache):
    backbone = res3d18(num_classes=3, width=0.25).eval()
    clips = [torch.randn(2, 3, 4, 32, 32)]
    ranges = quantize.calibrate_backbone(backbone, clips)
    (xml,) = (cache / "openvino").glob("*.xml")
    x = torch.randn(2, 3, 4, 32, 32)
    good = quantize.quantize_backbone(backbone, ranges, torch.zeros(1, 3, 4, 32, 32))(x)
    xml.write_text("<net>not a model")
    again = quantize.quantize_backbone(backbone, ranges, torch.zeros(1, 3, 4, 32, 32))(x)
    assert all(torch.equal(a, b) for a, b in zip(good, again, strict=True))
    assert xml.read_text().startswith("<?xml")


def test_a_calibration_of_the_old_fx_backend_is_refused_in_one_line():
    old = {"format": 1, "qparams": [[[0.1, 0]]], "clip": {}, "videos": 8, "source": "x"}
    with pytest.raises(ValueError, match="old FX int8"):
        quantize.Calibration.from_dict(old)


@pytest.mark.slow
def test_checkpoint_keeps_its_calibration_when_moved_away_from_its_data(
    tiny_dataset_copy, tmp_path, cache, caplog
):
    caplog.set_level(logging.INFO, logger="tc3d")
    tiny_dataset = tiny_dataset_copy  # renamed below
    checkpoint = _trained_checkpoint(tmp_path / "run" / "best.pt", tiny_dataset)
    untouched = tmp_path / "copy" / "best.pt"  # the same model, never run at int8
    untouched.parent.mkdir()
    shutil.copy(checkpoint, untouched)
    mtime = checkpoint.stat().st_mtime_ns
    videos = _test_videos(tiny_dataset)
    elsewhere = [str(indexed_video(tmp_path / "other" / f"o{i}.avi", 30)) for i in range(2)]

    here, info = _int8_probs(checkpoint, videos, fallback=elsewhere)
    assert (info["source"], info["videos"], info["cached"]) == ("training videos", 8, False)
    assert info["file"] == str(checkpoint) and "not reachable" not in _logged(caplog)
    stored = load_checkpoint(checkpoint)[KEY]
    assert stored["source"] == "training videos" and len(stored["ranges"]) == 1
    assert checkpoint.stat().st_mtime_ns == mtime  # weights unchanged: compress may resume
    assert not list(cache.glob("int8-*.json"))  # the calibration is not in the cache

    # Another machine: the model file alone, its training set out of reach.
    moved = tmp_path / "machine2" / "best.pt"
    moved.parent.mkdir()
    shutil.move(checkpoint, moved)
    data_elsewhere = tiny_dataset.rename(tmp_path / "gone")
    videos = [v.replace(str(tiny_dataset), str(data_elsewhere)) for v in videos]
    there, info = _int8_probs(moved, videos, fallback=elsewhere)
    assert info["cached"] and info["file"] == str(moved) and "not reachable" not in _logged(caplog)
    _assert_same_probs(here, there)

    # What the stored calibration prevents: the same model calibrated on what it is given.
    _, info = _int8_probs(untouched, videos, fallback=elsewhere)
    assert info["source"] == "given videos" and "not reachable" in _logged(caplog)
    assert load_checkpoint(untouched)[KEY]["ranges"] != stored["ranges"]


@pytest.mark.slow
def test_compress_writes_the_calibration_into_the_tc3d_file(tiny_dataset_copy, tmp_path, cache):
    tiny_dataset = tiny_dataset_copy  # renamed below
    checkpoint = _trained_checkpoint(tmp_path / "best.pt", tiny_dataset)
    out = tmp_path / "m.tc3d"
    assert main(["compress", "--model", str(checkpoint), "--out", str(out), "--json"]) == 0
    header = encode.read_header(out)
    assert header[KEY]["source"] == "training videos" and header[KEY]["videos"] == 8
    # made on the compressed weights (not the checkpoint's), from the training videos
    loaded = load_model_file(out)
    paths = training_videos(load_checkpoint(checkpoint)["train_config"])
    again = quantize.calibrate(loaded.model, loaded.clip, paths, "training videos")
    assert again.ranges == header[KEY]["ranges"]

    videos = _test_videos(tiny_dataset)
    here, info = _int8_probs(out, videos)
    assert info["cached"] and info["file"] == str(out)
    assert not list(cache.glob("int8-*.json"))  # the calibration is not in the cache
    moved = tmp_path / "machine2" / "m.tc3d"
    moved.parent.mkdir()
    shutil.copy(out, moved)
    data_elsewhere = tiny_dataset.rename(tmp_path / "gone")
    videos = [v.replace(str(tiny_dataset), str(data_elsewhere)) for v in videos]
    there, _ = _int8_probs(moved, videos)
    _assert_same_probs(here, there)


@pytest.mark.slow
def test_tc3d_without_calibration_gets_one_at_its_first_int8_use(tmp_path, caplog):
    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b"], segments=2, frames=4, crop=32)
    out = tmp_path / "m.tc3d"
    assert main(["compress", "--model", str(checkpoint), "--out", str(out), "--json"]) == 0
    assert KEY not in encode.read_header(out) and "carries no int8 calibration" in _logged(caplog)
    weights = load_model_file(out).model.state_dict()
    videos = [str(indexed_video(tmp_path / f"v{i}.avi", 30)) for i in range(2)]
    first, info = _int8_probs(out, videos, fallback=videos)
    assert info["source"] == "given videos" and info["file"] == str(out)
    contents = encode.read_tc3d(out)  # still a valid file, checksum and all
    assert contents.header[KEY]["videos"] == 2
    for k, v in load_model_file(out).model.state_dict().items():
        assert torch.equal(v, weights[k])
    second, info = _int8_probs(out, videos)
    assert info["cached"]
    _assert_same_probs(first, second)


def test_motion_carries_its_own_calibration(tmp_path, cache, caplog):
    """The shipped model's int8 needs no videos of the user's: its calibration, made on its own
    pretraining clips, is in the file, which stays untouched; int8 stays close to fp32 on real
    footage it was not calibrated on."""
    from live_harness import real_clips

    from tc3d.modelfile.shipped import shipped_path

    caplog.set_level(logging.INFO, logger="tc3d")
    shipped = shipped_path("motion")
    before = shipped.read_bytes()
    folder = real_clips()
    videos = (
        sorted(str(p) for p in folder.glob("v_*.avi"))[:3]
        if folder
        else [str(indexed_video(tmp_path / f"v{i}.avi", 30)) for i in range(2)]
    )
    int8, info = _int8_probs("motion", videos)  # no fallback videos: none are needed
    assert info["cached"] and info["source"].startswith("procedural pretraining clips")
    assert info["videos"] == 8 and Path(info["file"]) == shipped
    assert "not reachable" not in _logged(caplog) and not list(cache.glob("int8-*.json"))
    assert shipped.read_bytes() == before
    loaded = load_model_file("motion")
    fp32 = make_engine(loaded, CPU, "fp32", videos=1)
    reference = sorted(fp32.run(videos, loaded.clip), key=lambda r: r.index)
    for a, b in zip(int8, reference, strict=True):
        assert np.abs(a - b.probs).max() < 0.15  # int8 moved these by at most 0.05 here
        top2 = np.sort(b.probs)[-2:]
        if top2[1] - top2[0] > 0.05:  # off-domain footage: near ties may flip on other CPUs
            assert a.argmax() == b.probs.argmax()


def test_a_model_inside_the_package_is_never_written_and_uses_the_cache(
    tmp_path, cache, caplog, monkeypatch
):
    """A model shipped without a calibration: it is made on the videos given and cached."""
    from tc3d.modelfile import calibration

    package = tmp_path / "package" / "weights"
    package.mkdir(parents=True)
    shipped = random_checkpoint(package / "m.pt", ["a", "b"], segments=2, frames=4, crop=32)
    monkeypatch.setattr(calibration, "PACKAGE_WEIGHTS", package.resolve())
    before = shipped.read_bytes()
    videos = [str(indexed_video(tmp_path / f"v{i}.avi", 30)) for i in range(2)]
    first, info = _int8_probs(shipped, videos, fallback=videos)
    assert info["source"] == "given videos" and "not reachable" in _logged(caplog)
    assert Path(info["file"]).parent == cache and Path(info["file"]).is_file()
    assert shipped.read_bytes() == before
    second, info = _int8_probs(shipped, videos)
    assert info["cached"] and Path(info["file"]).parent == cache
    _assert_same_probs(first, second)


def test_a_checkpoint_rewritten_during_calibration_is_not_overwritten(tmp_path, monkeypatch):
    """A training run saving best.pt while int8 calibrates: its new file wins."""
    from tc3d.infer import calibration

    checkpoint = random_checkpoint(tmp_path / "best.pt", ["a", "b"], segments=2, frames=4)
    newer = random_checkpoint(tmp_path / "newer.pt", ["a", "b"], segments=2, frames=4, seed=1)
    real = calibration.calibrate

    def calibrate_while_training_saves(*args, **kwargs):
        out = real(*args, **kwargs)
        shutil.copy(newer, checkpoint)
        return out

    monkeypatch.setattr(calibration, "calibrate", calibrate_while_training_saves)
    videos = [str(indexed_video(tmp_path / "v.avi", 30))]
    _, info = _int8_probs(checkpoint, videos, fallback=videos)
    assert checkpoint.read_bytes() == newer.read_bytes()
    assert Path(info["file"]).parent == tmp_path / "cache"


def test_int8_without_openvino_stops_in_one_line_and_fp32_still_runs(tmp_path):
    """The fallback the help promises: a hint for int8, fp32 unaffected."""
    import subprocess

    video = indexed_video(tmp_path / "v.avi", 30)
    for precision, code in (("int8", 1), ("fp32", 0)):
        out = subprocess.run(
            tc3d_without_openvino("predict", "--model", "motion", "--precision", precision,
                                  str(video), "--json"),
            capture_output=True, text=True, env={**os.environ, "TC3D_CACHE": str(tmp_path)},
        )  # fmt: skip
        assert out.returncode == code, out.stderr[-2000:]
        if precision == "int8":
            lines = [ln for ln in out.stderr.splitlines() if "int8" in ln]
            assert lines and "pip install 'tc3d[int8]'" in lines[-1]
            assert "Traceback" not in out.stderr


def test_compress_without_openvino_writes_a_file_without_calibration(tmp_path):
    """int8 is an extra: compression works without it and says what the file lacks."""
    import subprocess

    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b"], segments=2, frames=4, crop=32)
    out = tmp_path / "m.tc3d"
    done = subprocess.run(
        tc3d_without_openvino("compress", "--model", str(checkpoint), "--out", str(out),
                              "--json"),
        capture_output=True, text=True, env={**os.environ, "TC3D_CACHE": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert KEY not in encode.read_header(out) and "tc3d[int8]" in done.stderr
