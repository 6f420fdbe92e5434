"""Device handling on the device under test: TC3D_TEST_DEVICE (cpu by default, cuda on a GPU
machine, as benchmarks/gpu_check.sh runs them). Every test here runs on either; those marked
``cuda`` only make sense on a GPU and are skipped without one. Each compares the device's
result with the CPU's, so a test cannot pass by producing nothing."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import indexed_video, run_cli

from tc3d.device import (
    DeviceError,
    autocast,
    memory_format,
    prepare_model,
    resolve_device,
    rng_state,
    set_rng_state,
    to_device,
)
from tc3d.infer.engine import Engine
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.training.loop import train_step

LAYOUTS = {"channels_last": torch.channels_last_3d, "contiguous": torch.contiguous_format}


def tiny_model(segments: int = 1, classes: int = 5) -> TC3D:
    torch.manual_seed(0)
    return TC3D(ModelConfig(num_classes=classes, width=0.25, segments=segments, dropout=0))


def test_the_device_under_test_resolves(device_name):
    device = resolve_device(device_name)
    assert device.type == device_name
    assert torch.zeros(1, device=device).device.type == device_name


@pytest.mark.cuda
def test_auto_picks_the_gpu_of_the_local_rank(monkeypatch):
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count()))  # wraps around
    assert resolve_device("cuda") == torch.device("cuda", 0)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_memory_format_override_sets_model_and_clip_layout(device_name, layout, monkeypatch):
    device = resolve_device(device_name)
    monkeypatch.setenv("TC3D_MEMORY_FORMAT", layout)
    assert memory_format(device) == LAYOUTS[layout]
    conv = prepare_model(torch.nn.Conv3d(3, 8, 3), device)
    assert conv.weight.device.type == device_name
    assert conv.weight.is_contiguous(memory_format=LAYOUTS[layout])
    clips = to_device(torch.randn(2, 3, 4, 8, 8), device)
    assert clips.is_contiguous(memory_format=LAYOUTS[layout])
    monkeypatch.setenv("TC3D_MEMORY_FORMAT", "nhwc")
    with pytest.raises(DeviceError, match="TC3D_MEMORY_FORMAT"):
        memory_format(device)


def test_bf16_autocast_on_the_device(device_name):
    device = resolve_device(device_name)
    conv = torch.nn.Conv3d(3, 4, 3).to(device)
    x = torch.randn(1, 3, 4, 8, 8, device=device)
    with autocast(device, "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast(device, "fp32"):
        assert conv(x).dtype == torch.float32


@pytest.mark.parametrize("precision, tolerance", [("fp32", 0.02), ("bf16", 0.1)])
def test_engine_scores_match_the_cpu(device_name, precision, tolerance):
    """The engine on the device gives the CPU's fp32 scores (within TF32 or bf16 rounding),
    as float32 tensors on the CPU, for shared and unshared backbones."""
    for shared in (True, False):
        model = tiny_model(segments=2)
        if not shared:  # two backbones: position picks one
            model = TC3D(ModelConfig(5, width=0.25, segments=2, shared=False, dropout=0))
        reference = Engine(copy.deepcopy(model), torch.device("cpu"), "fp32")
        engine = Engine(model, resolve_device(device_name), precision)
        clips = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
        for position in range(2 if not shared else 1):
            want = reference.clip_scores(clips, position)
            got = engine.clip_scores(clips, position)
            assert got.device.type == "cpu" and got.dtype == torch.float32
            assert got.shape == want.shape == (3, 5)
            scale = want.abs().max().item()
            assert scale > 0
            assert (got - want).abs().max().item() <= tolerance * scale + 1e-4
        probs = engine.fuse(engine.clip_scores(clips)[None, :2])  # one crop of S=2 clips
        assert probs.device.type == "cpu" and abs(float(probs.sum()) - 1) < 1e-4


@pytest.mark.parametrize("amp", [None, "bf16"])
def test_a_training_step_on_the_device_in_channels_last(device_name, amp, monkeypatch):
    """One step (bf16 autocast or fp32) in channels-last: finite loss, weights move, and they
    stay fp32, on the device, in their layout."""
    monkeypatch.setenv("TC3D_MEMORY_FORMAT", "channels_last")
    device = resolve_device(device_name)
    model = prepare_model(tiny_model(segments=2), device)
    before = copy.deepcopy(model.backbone.layer1[0].conv1[0].weight.detach())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    video = to_device(torch.randn(2, 2, 3, 4, 32, 32), device)  # (N, S, 3, k, H, W)
    label = torch.tensor([0, 3], device=device)
    autocasting = torch.autocast(device.type, dtype=torch.bfloat16) if amp else None
    loss, logits = train_step(model, optimizer, video, label, autocasting)
    assert torch.isfinite(torch.tensor(loss)) and logits.shape == (2, 5)
    weight = model.backbone.layer1[0].conv1[0].weight
    assert weight.device.type == device_name and weight.dtype == torch.float32
    assert weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not torch.equal(weight.detach(), before)


@pytest.mark.cuda
def test_rng_state_keeps_the_gpu_generator():
    device = torch.device("cuda", 0)
    torch.manual_seed(5)
    state = rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    first = torch.nn.functional.dropout(torch.ones(1000, device=device), 0.5)
    torch.rand(10, device=device)  # move on
    set_rng_state(state)
    again = torch.nn.functional.dropout(torch.ones(1000, device=device), 0.5)
    assert torch.equal(first, again)


def test_predict_on_the_device_agrees_with_the_cpu(device_name, trained_model, tmp_path):
    _, checkpoint, _ = trained_model
    video = str(indexed_video(tmp_path / "v.avi", 30))
    runs = {
        dev: run_cli("predict", video, "--model", str(checkpoint), "--device", dev, "--json")
        for dev in ("cpu", device_name)
    }
    labels = {dev: r["results"][0]["labels"] for dev, r in runs.items()}
    assert labels["cpu"] and [x["label"] for x in labels[device_name]] == [
        x["label"] for x in labels["cpu"]
    ]
    for a, b in zip(labels["cpu"], labels[device_name], strict=True):
        assert abs(a["prob"] - b["prob"]) < 0.02


@pytest.mark.cuda
def test_int8_on_the_gpu_is_a_one_line_error(trained_model, tmp_path):
    _, checkpoint, _ = trained_model
    video = str(indexed_video(tmp_path / "v.avi", 20))
    out = run_cli("predict", video, "--model", str(checkpoint), "--device", "cuda",
                  "--precision", "int8", "--json", expect=1)  # fmt: skip
    assert "CPU only" in out["stderr"] and len(out["stderr"].strip().splitlines()) == 1


def test_bench_breakdown_on_the_device(device_name, tmp_path):
    """--breakdown times decoding alone and the model alone on the same videos."""
    for i in range(3):
        indexed_video(tmp_path / "v" / f"{i}.avi", 40)
    r = run_cli("bench", "--width", "0.25", "--classes", "5", "--videos", str(tmp_path / "v"),
                "--warmup", "1", "--workers", "2", "--breakdown", "--device", device_name,
                "--json")  # fmt: skip
    d = r["breakdown"]
    assert r["videos"] == 3 and d["decode_videos_per_s"] > 0 and d["model_clips_per_s"] > 0
    assert d["decode_fps"] == pytest.approx(r["frames"] / d["decode_seconds"])
    assert d["model_share"] == pytest.approx(100 * d["model_seconds"] / r["seconds"])
    assert d["bound"] == ("decode" if d["decode_seconds"] > d["model_seconds"] else "model")
    assert ("gpu" in r["machine"]) == (device_name == "cuda")
    assert "-bound" in r["stderr"]  # the human line names the limit
