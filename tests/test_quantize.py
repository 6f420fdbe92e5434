"""int8: the stored calibration rebuilds the same model, and it travels with the model file
(.pt at first int8 use, .tc3d from compress, a cache for read-only files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import indexed_video, random_checkpoint

from tc3d.cli import main
from tc3d.device import resolve_device
from tc3d.infer import quantize
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


def _assert_same_probs(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    """Bit for bit, video by video; something must have been compared."""
    assert first and len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a is not None and a.ndim == 1 and len(a) >= 2
        np.testing.assert_array_equal(a, b)


def test_fixed_ranges_rebuild_the_calibrated_model_bit_for_bit():
    """The stored numbers alone (no videos) give exactly the model the observers made."""
    from torch.ao.quantization.quantize_fx import convert_fx

    torch.manual_seed(0)
    backbone = res3d18(num_classes=3, width=0.25).eval()
    clips = [torch.randn(3, 3, 4, 32, 32) for _ in range(2)]
    qparams = quantize.calibrate_backbone(backbone, clips)
    assert len(qparams) == 47 and all(s > 0 and 0 <= z <= 127 for s, z in qparams)
    with quantize._quiet(), torch.no_grad():
        observed = quantize._fx_prepare(backbone, clips[0][:1])
        for c in clips:
            observed(c)
        direct = convert_fx(observed)
    rebuilt = quantize.quantize_backbone(backbone, qparams, torch.zeros(1, 3, 4, 32, 32))
    x = torch.randn(2, 3, 4, 32, 32)
    for a, b in zip(direct(x), rebuilt(x), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(quantize.CalibrationMismatch):
        quantize.quantize_backbone(backbone, qparams[:-1], torch.zeros(1, 3, 4, 32, 32))


@pytest.mark.slow
def test_checkpoint_keeps_its_calibration_when_moved_away_from_its_data(
    tiny_dataset_copy, tmp_path, cache, caplog
):
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
    assert info["file"] == str(checkpoint) and "not reachable" not in caplog.text
    stored = load_checkpoint(checkpoint)[KEY]
    assert stored["source"] == "training videos" and len(stored["qparams"]) == 1
    assert checkpoint.stat().st_mtime_ns == mtime  # weights unchanged: compress may resume
    assert not cache.exists() or not any(cache.iterdir())

    # Another machine: the model file alone, its training set out of reach.
    moved = tmp_path / "machine2" / "best.pt"
    moved.parent.mkdir()
    shutil.move(checkpoint, moved)
    data_elsewhere = tiny_dataset.rename(tmp_path / "gone")
    videos = [v.replace(str(tiny_dataset), str(data_elsewhere)) for v in videos]
    there, info = _int8_probs(moved, videos, fallback=elsewhere)
    assert info["cached"] and info["file"] == str(moved) and "not reachable" not in caplog.text
    _assert_same_probs(here, there)

    # What the stored calibration prevents: the same model calibrated on what it is given.
    _, info = _int8_probs(untouched, videos, fallback=elsewhere)
    assert info["source"] == "given videos" and "not reachable" in caplog.text
    assert load_checkpoint(untouched)[KEY]["qparams"] != stored["qparams"]


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
    assert again.qparams == header[KEY]["qparams"]

    videos = _test_videos(tiny_dataset)
    here, info = _int8_probs(out, videos)
    assert info["cached"] and info["file"] == str(out)
    assert not cache.exists() or not any(cache.iterdir())
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
    assert KEY not in encode.read_header(out) and "carries no int8 calibration" in caplog.text
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


def test_shipped_model_is_never_written_and_uses_the_cache(tmp_path, cache, caplog):
    from tc3d.modelfile.shipped import shipped_path

    shipped = shipped_path("motion")
    before = shipped.read_bytes()
    videos = [str(indexed_video(tmp_path / f"v{i}.avi", 30)) for i in range(2)]
    first, info = _int8_probs("motion", videos, fallback=videos)
    assert info["source"] == "given videos" and "not reachable" in caplog.text
    assert Path(info["file"]).parent == cache and Path(info["file"]).is_file()
    assert shipped.read_bytes() == before
    second, info = _int8_probs("motion", videos)
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
