"""fp32 and bf16 on OpenVINO: the same scores as PyTorch (bf16: within bf16's rounding),
converted once per model and clip shape, PyTorch where OpenVINO is absent, where the CPU has no
bf16 instructions (bf16), or where the user asks for it."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import indexed_video, random_checkpoint, tc3d_command, tc3d_without_openvino

import tc3d
from tc3d.device import resolve_device
from tc3d.infer import openvino_runtime
from tc3d.infer.calibration import make_engine
from tc3d.infer.engine import Engine, EngineError
from tc3d.infer.openvino_runtime import SUSTAINED_VIDEOS
from tc3d.modelfile.checkpoint import load_model_file
from tc3d.models.res3d import res3d18

CPU = resolve_device("cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TC3D_CACHE", str(folder))
    monkeypatch.delenv(openvino_runtime.RUNTIME_ENV, raising=False)
    return folder


def _converted(cache: Path) -> list[Path]:
    return sorted((cache / "openvino").glob("fp32-*.xml"))


def _probs(engine: Engine, videos: list[Path], clip) -> list[np.ndarray]:
    results = sorted(engine.run(videos, clip), key=lambda r: r.index)
    assert [r.error for r in results] == [None] * len(videos)
    return [r.probs for r in results]


def test_fp32_on_openvino_scores_videos_as_pytorch_does_and_converts_once(tmp_path, cache, caplog):
    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b", "c"], segments=2, crop=32)
    videos = [indexed_video(tmp_path / f"v{i}.avi", 24 + 8 * i) for i in range(3)]
    loaded = load_model_file(checkpoint)
    with caplog.at_level(logging.INFO, logger="tc3d.infer.openvino_runtime"):
        engine = make_engine(loaded, CPU, "fp32")
    assert engine.runtime == "openvino"
    assert len(_converted(cache)) == 1 and "converting the model for OpenVINO" in caplog.text
    eager = Engine(load_model_file(checkpoint).model, CPU, "fp32", runtime="torch")
    fast, reference = _probs(engine, videos, loaded.clip), _probs(eager, videos, loaded.clip)
    for a, b in zip(fast, reference, strict=True):
        assert a.shape == (3,)
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert a.argmax() == b.argmax()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tc3d.infer.openvino_runtime"):
        again = make_engine(load_model_file(checkpoint), CPU, "fp32")
    assert "converting" not in caplog.text and len(_converted(cache)) == 1
    for a, b in zip(_probs(again, videos, loaded.clip), fast, strict=True):
        np.testing.assert_array_equal(a, b)

    # Another clip shape (a --crop override) is converted at its first batch.
    clips = torch.randn(3, 3, 4, 48, 48)
    fmap, scores = engine.clip_maps(clips)
    ref_map, ref_scores = eager.clip_maps(clips)
    assert len(_converted(cache)) == 2
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fmap, ref_map, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(engine.clip_scores(clips), ref_scores, atol=1e-5, rtol=1e-4)


def test_the_environment_keeps_fp32_on_pytorch(tmp_path, cache, monkeypatch, caplog):
    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b"])
    monkeypatch.setenv(openvino_runtime.RUNTIME_ENV, "torch")
    assert make_engine(load_model_file(checkpoint), CPU, "fp32").runtime == "torch"
    assert not _converted(cache)
    monkeypatch.setenv(openvino_runtime.RUNTIME_ENV, "tensorflow")
    with caplog.at_level(logging.WARNING):
        assert openvino_runtime.float_runtime(CPU) == "openvino"
    assert "TC3D_FP32_RUNTIME=tensorflow" in caplog.text


def test_bf16_stays_on_pytorch_where_the_cpu_has_no_bf16_instructions(
    tmp_path, monkeypatch, caplog
):
    """OpenVINO would compute a bf16 request in fp32 there: not what --precision bf16 asks."""
    monkeypatch.setattr(openvino_runtime, "native_bf16", lambda: False)
    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b"])
    assert make_engine(load_model_file(checkpoint), CPU, "bf16").runtime == "torch"
    assert make_engine(load_model_file(checkpoint), CPU, "fp32").runtime == "openvino"
    with pytest.raises(EngineError, match="bf16 instructions"):
        Engine(load_model_file(checkpoint).model, CPU, "bf16", runtime="openvino")
    with pytest.raises(EngineError, match="runtime must be one of"):
        Engine(load_model_file(checkpoint).model, CPU, "fp32", runtime="onnx")
    monkeypatch.setenv(openvino_runtime.RUNTIME_ENV, "openvino")
    with caplog.at_level(logging.WARNING):
        assert openvino_runtime.float_runtime(CPU, None, "bf16") == "torch"
    assert "no bf16 instructions" in caplog.text


@pytest.mark.skipif(
    openvino_runtime.openvino_version() is None or not openvino_runtime.native_bf16(),
    reason="this CPU has no bf16 instructions (AVX-512 BF16 or AMX)",
)
def test_bf16_on_openvino_computes_in_bf16_from_the_fp32_conversion(tmp_path, cache):
    checkpoint = random_checkpoint(tmp_path / "m.pt", ["a", "b", "c"], segments=2, crop=32)
    videos = [indexed_video(tmp_path / f"v{i}.avi", 24 + 8 * i) for i in range(3)]
    loaded = load_model_file(checkpoint)
    fp32 = make_engine(loaded, CPU, "fp32")
    bf16 = make_engine(load_model_file(checkpoint), CPU, "bf16")
    assert (fp32.runtime, bf16.runtime) == ("openvino", "openvino")
    assert len(_converted(cache)) == 1  # one conversion, compiled at two precisions
    clips = torch.randn(4, 3, 4, 32, 32)
    exact, rounded = fp32.clip_scores(clips), bf16.clip_scores(clips)
    difference = (exact - rounded).abs().max().item()
    assert 1e-4 < difference < 0.05 * exact.abs().max().item()  # bf16, not fp32 in disguise
    for a, b in zip(
        _probs(bf16, videos, loaded.clip), _probs(fp32, videos, loaded.clip), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=0.02)


def test_a_damaged_cache_entry_is_converted_again_and_the_cache_is_bounded(cache):
    backbone = res3d18(num_classes=3, width=0.25).eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    first = openvino_runtime.float_backbone(backbone, clips)(clips)
    (xml,) = _converted(cache)
    xml.write_text("<net>not a model")
    again = openvino_runtime.float_backbone(backbone, clips)(clips)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert xml.read_text().startswith("<?xml")

    # The least recently used entries go first; reading an entry counts as using it.
    now = time.time()
    os.utime(xml, (now - 100,) * 2)
    old = [cache / "openvino" / f"fp32-old{i}.xml" for i in range(2)]
    for i, p in enumerate(old):
        p.write_text("<net/>")
        p.with_suffix(".bin").write_bytes(b"0")
        os.utime(p, (now - 50 + i,) * 2)  # both used after xml
    assert openvino_runtime.read_cached(xml) is not None  # now xml is the newest
    openvino_runtime._prune(cache / "openvino", "fp32", keep=2)
    assert _converted(cache) == sorted([xml, old[1]])
    assert not old[0].exists() and not old[0].with_suffix(".bin").exists()


def test_a_one_off_call_runs_on_pytorch_and_sustained_work_on_openvino(tmp_path, cache):
    model = tc3d.load_model(random_checkpoint(tmp_path / "m.pt", ["a", "b"]), "cpu")
    assert model.engine(videos=1).runtime == "torch" and not _converted(cache)
    assert model.engine(videos=SUSTAINED_VIDEOS).runtime == "openvino"  # remade, converted
    assert len(_converted(cache)) == 1
    assert model.engine(videos=1).runtime == "openvino"  # what is made is kept
    assert tc3d.load_model(model.source, "cpu").engine().runtime == "openvino"  # a stream


def test_predict_converts_only_when_asked_and_runs_without_openvino(tmp_path):
    """A one-off ``predict`` never waits for a conversion; ``TC3D_FP32_RUNTIME=openvino`` asks
    for one; without OpenVINO (the int8 extra) fp32 runs on PyTorch, as the help says."""
    video = indexed_video(tmp_path / "v.avi", 30)
    for hidden, wanted, converted in (
        (False, "", 0), (False, "openvino", 1), (True, "openvino", 0)
    ):  # fmt: skip
        cache = tmp_path / f"cache-{hidden}-{wanted}"
        args = ("predict", "--model", "motion", str(video), "--json")
        out = subprocess.run(
            tc3d_without_openvino(*args) if hidden else tc3d_command(*args),
            capture_output=True, text=True,
            env={**os.environ, "TC3D_CACHE": str(cache), openvino_runtime.RUNTIME_ENV: wanted},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert len(list(cache.glob("openvino/fp32-*.xml"))) == converted
        assert ("converting the model for OpenVINO" in out.stderr) == bool(converted)
        assert ("OpenVINO is not installed" in out.stderr) == hidden
