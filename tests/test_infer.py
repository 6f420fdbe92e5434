"""Inference engine, bench and stream on a tiny width-0.25 model and tiny real videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import indexed_video

from tc3d.cli import main
from tc3d.device import resolve_device
from tc3d.infer.calibration import make_engine
from tc3d.infer.engine import Engine
from tc3d.modelfile.checkpoint import load_model_file, save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.decode import read_all_frames
from tc3d.video.sampling import SamplingConfig

CLASSES = ["A", "B", "C", "D"]
SPEC = ClipSpec(SamplingConfig(segments=3, frames=4, offset=2), crop=32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A seeded width-0.25 checkpoint (k=4, crop 32) and three short real videos."""
    root = tmp_path_factory.mktemp("infer")
    torch.manual_seed(0)
    model = TC3D(ModelConfig(len(CLASSES), width=0.25, segments=3, fusion="weighted"))
    checkpoint = root / "tiny.pt"
    save_model(checkpoint, model, CLASSES, SPEC)
    videos = [indexed_video(root / f"v{i}.avi", n) for i, n in enumerate((40, 31, 52))]
    return checkpoint, videos


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    """A private int8 cache (bench's fresh models keep their calibration there)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TC3D_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _probs(engine: Engine, videos, **kw) -> list[np.ndarray]:
    """Probabilities in input order (the engine yields in completion order); fails unless
    every video was scored."""
    results = sorted(engine.run(videos, SPEC, **kw), key=lambda r: r.index)
    assert [r.index for r in results] == list(range(len(videos))) and videos
    assert [r.error for r in results] == [None] * len(videos)
    return [r.probs for r in results]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_engine_precisions_agree_with_fp32(tiny, precision, caplog):
    checkpoint, videos = tiny
    cpu = resolve_device("cpu")
    reference = _probs(Engine(load_model_file(checkpoint).model, cpu, "fp32"), videos)
    engine = make_engine(load_model_file(checkpoint), cpu, precision, fallback_videos=videos)
    got = _probs(engine, videos)
    for ref, p in zip(reference, got, strict=True):
        assert p.shape == (len(CLASSES),) and np.isfinite(p).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-4)
        # Reduced precision moves probabilities a little, not to another model's output.
        assert np.abs(p - ref).max() < 0.1
    if precision == "int8":  # no training set: calibrated on the videos given, and says so
        info = engine.calibration_info
        assert (info["videos"], info["source"], info["cached"]) == (3, "given videos", False)
        assert info["file"] == str(checkpoint) and "not reachable" in caplog.text
        # stored in the checkpoint: the next int8 run needs no videos and gives equal results
        again = make_engine(load_model_file(checkpoint), cpu, "int8")
        assert again.calibration_info["cached"] and again.calibration_info["file"] == str(
            checkpoint
        )
        for a, b in zip(got, _probs(again, videos), strict=True):
            np.testing.assert_array_equal(a, b)


def test_engine_fuses_through_the_model(tiny):
    """The engine has no fusion of its own: test-time and single-clip fusion are the model's."""
    checkpoint, videos = tiny
    loaded = load_model_file(checkpoint)
    with torch.no_grad():
        loaded.model.fusion.weight.normal_()  # weighted fusion, away from its average start
    engine = Engine(loaded.model, resolve_device("cpu"), "fp32")
    scores = torch.randn(2, 5, len(CLASSES))  # (crops, n, K)
    assert torch.equal(engine.fuse(scores), loaded.model.video_probs(scores))
    clip = torch.randn(4, len(CLASSES))
    with torch.no_grad():
        want = torch.softmax(loaded.model.fusion(clip[:, None].expand(4, 3, -1)), dim=-1)
        torch.testing.assert_close(engine.fuse_each(clip), want)
        (result,) = engine.run(videos[:1], SPEC)  # a whole video: its S clip scores, fused
        clips, _ = load_clips(videos[0], None, SPEC, None)  # (1 crop, S, 3, k, H, W)
        scores = engine.clip_scores(clips.flatten(0, 1)).view(1, 3, -1)
        expected = loaded.model.video_probs(scores)
    np.testing.assert_allclose(result.probs, expected.numpy(), atol=1e-6)


def test_batching_across_videos_matches_one_at_a_time(tiny):
    checkpoint, videos = tiny
    engine = Engine(load_model_file(checkpoint).model, resolve_device("cpu"), "fp32")
    alone = [_probs(engine, [v], batch_clips=3)[0] for v in videos]
    # 2 clips per pass: every video's clips are split over passes shared with its neighbours
    batched = _probs(engine, videos, batch_clips=2, workers=2)
    assert len(alone) == len(batched) == len(videos) == 3
    for a, b in zip(alone, batched, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_video_is_reported_not_fatal(tiny, tmp_path):
    checkpoint, videos = tiny
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video at all")
    engine = Engine(load_model_file(checkpoint).model, resolve_device("cpu"), "fp32")
    results = sorted(engine.run([videos[0], bad, videos[1]], SPEC), key=lambda r: r.index)
    assert [r.error is None for r in results] == [True, False, True]
    assert "cannot open" in results[1].error and results[1].probs is None
    assert results[0].frames == 40 and results[2].frames == 31


def test_bench_json_keys(tiny, tmp_path):
    import tc3d
    from tc3d.apps.bench import BenchConfig, run_bench
    from tc3d.models.complexity import count_flops, count_parameters
    from tc3d.models.res3d import res3d18

    checkpoint, videos = tiny  # bench --model on a folder: the three videos beside tiny.pt
    cfg = BenchConfig(model=str(checkpoint), videos=str(videos[0].parent), precision="bf16",
                      baseline=True, warmup=1, device="cpu")  # fmt: skip
    r = run_bench(cfg)
    keys = {"videos", "frames", "seconds", "videos_per_s", "fps", "clips_per_s", "latency_ms_p50",
            "gflops_per_video", "params", "precision", "baseline", "speedup"}  # fmt: skip
    assert keys <= r.keys() and {"videos_per_s", "fps"} <= r["baseline"].keys()
    assert r["videos"] == 3 and r["frames"] == r["baseline"]["frames"] == 40 + 31 + 52
    assert r["fps"] == pytest.approx(r["frames"] / r["seconds"])
    assert r["speedup"] == pytest.approx(r["fps"] / r["baseline"]["fps"])
    assert r["clips_per_s"] == pytest.approx(3 * r["videos_per_s"])
    assert r["precision"] == "bf16"
    # agreement: how often bf16's top-1 is fp32's, here from tc3d predict at both precisions
    top1 = {
        p: [x["labels"][0]["label"] for x in tc3d.load_model(checkpoint, "cpu", p).predict(videos)]
        for p in ("fp32", "bf16")
    }
    assert r["agreement"] == pytest.approx(
        100 * np.mean([a == b for a, b in zip(top1["fp32"], top1["bf16"], strict=True)])
    )
    model = load_model_file(checkpoint).model
    assert r["params"] == count_parameters(model.backbones)  # the network, not the fusion
    assert r["gflops_per_video"] == pytest.approx(count_flops(model, 4, 32) / 1e9)  # 3 clips

    # without a model: a fresh Res3D-18 of --width on synthetic videos
    fresh = run_bench(BenchConfig(width=0.25, num_classes=5, synthetic=2, frames=4, crop=32,
                                  synthetic_dir=str(tmp_path), warmup=0, device="cpu"))  # fmt: skip
    assert fresh["videos"] == 2 and fresh["frames"] == 2 * 175
    assert fresh["params"] == count_parameters(res3d18(num_classes=5, width=0.25))
    one_clip = count_flops(TC3D(ModelConfig(5, width=0.25)), frames=4, crop=32, clips=1)
    assert fresh["gflops_per_video"] == pytest.approx(3 * one_clip / 1e9)


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.strip().splitlines()]


def test_stream_json_lines_on_a_file(tiny, capsys):
    checkpoint, videos = tiny
    assert main(["stream", str(videos[0]), "--model", str(checkpoint), "--stride", "4",
                 "--device", "cpu", "--json"]) == 0  # fmt: skip
    lines = _lines(capsys.readouterr().out)
    decisions, summary = lines[:-1], lines[-1]["summary"]
    # k=4 frames 2 apart: a clip spans 7 frames; one decision every 4 frames once 7 are in.
    assert [d["frame"] for d in decisions] == list(range(7, 40, 4))
    loaded = load_model_file(checkpoint)
    for d in decisions:
        assert {"t", "frame", "label", "prob", "latency_ms"} <= d.keys() and "source" not in d
        assert d["t"] == pytest.approx(d["frame"] / 25, abs=1e-3)
        if d["frame"] < 7 + 2 * 4:
            continue  # fewer than S=3 clips seen so far
        # A decision is the model's fused prediction from the S newest clips, the last ending
        # at the decision frame: recomputed here from the frames as tc3d test reads them.
        ends = (d["frame"] - 8, d["frame"] - 4, d["frame"])
        probs = _model_probs(loaded, videos[0], [[e - 6, e - 4, e - 2, e] for e in ends])
        assert d["label"] == CLASSES[int(probs.argmax())]
        assert d["prob"] == pytest.approx(float(probs.max()), abs=2e-3)
    assert summary["decisions"] == len(decisions) and summary["dropped_frames"] == 0
    latencies = [d["latency_ms"] for d in decisions]
    assert summary["latency_ms_p50"] == pytest.approx(np.median(latencies), abs=0.01)
    assert summary["latency_ms_p95"] == pytest.approx(np.percentile(latencies, 95), abs=0.01)


def _model_probs(loaded, video: Path, clips: list[list[int]]) -> torch.Tensor:
    """Class probabilities of the model for the given clips (frame indices) of one video, read
    and cropped the way ``tc3d test`` does."""
    from tc3d.video.decode import read_frames
    from tc3d.video.transforms import centre_crop_box, crop_and_normalise

    tensors = []
    for indices in clips:
        frames = read_frames(video, indices, loaded.clip.short_side)
        box = centre_crop_box(*frames.shape[1:3])
        tensors.append(crop_and_normalise(frames, box, loaded.clip.crop))
    with torch.no_grad():
        return loaded.model.eval()(torch.stack(tensors)[None]).softmax(-1)[0]


def test_stream_decisions_are_the_files_clips_fused_by_the_model(tiny):
    """A stream builds its clips from the frames it holds with the clip builder every other
    command uses, and fuses the last S clip scores with the model's own fusion: its decisions
    are what the same clips read from the file give."""
    from tc3d.infer.stream import StreamConfig, run_stream
    from tc3d.video.clips import read_clips

    checkpoint, videos = tiny
    loaded = load_model_file(checkpoint)
    engine = Engine(loaded.model, resolve_device("cpu"), "fp32")
    decisions: list[dict] = []
    run_stream(engine, loaded, [str(videos[0])], StreamConfig(stride=4), emit=decisions.append)
    assert [d["frame"] for d in decisions[:4]] == [7, 11, 15, 19]
    ends = np.array([7, 11, 15, 19])
    indices = ends[:, None] - np.arange(6, -1, -2)  # k=4 frames 2 apart, ending at each frame
    with torch.no_grad():
        scores = engine.clip_scores(read_clips(videos[0], indices, SPEC)[0])  # (4, K)
    for i, d in enumerate(decisions[:4]):
        recent = scores[max(0, i - 2) : i + 1]  # the last S = 3 clips, oldest first
        probs = engine.fuse(recent[None])
        assert d["label"] == CLASSES[int(probs.argmax())]
        assert d["prob"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_stream_several_sources_share_one_model(tiny, capsys, tmp_path):
    checkpoint, videos = tiny
    out = tmp_path / "overlay.mp4"
    args = ["stream", *map(str, videos), "--model", str(checkpoint), "--stride", "8",
            "--precision", "int8", "--out", str(out), "--device", "cpu", "--json"]  # fmt: skip
    assert main(args) == 0
    lines = _lines(capsys.readouterr().out)
    decisions, summary = lines[:-1], lines[-1]["summary"]
    per_source = {str(v): [d["frame"] for d in decisions if d["source"] == str(v)] for v in videos}
    for v, n in zip(videos, (40, 31, 52), strict=True):
        assert per_source[str(v)] == list(range(7, n, 8))
    assert summary["decisions"] == len(decisions) == sum(len(f) for f in per_source.values())
    assert [s["frames"] for s in summary["sources"]] == [40, 31, 52]
    # --out: the first source's frames, the current label drawn in a black band at the top
    # once the first decision is in
    overlay = read_all_frames(out)
    source = read_all_frames(videos[0])
    assert overlay.shape == source.shape == (40, 48, 64, 3)
    band, below = (slice(0, 14), slice(40, 64)), (slice(20, 48), slice(40, 64))
    assert abs(overlay[5][band].mean() - source[5][band].mean()) < 8  # no label before frame 7
    assert source[39][band].mean() > 150 and overlay[39][band].mean() < 60  # the band
    assert abs(overlay[39][below].mean() - source[39][below].mean()) < 8  # the frame untouched


def test_stream_paced_sources_are_staggered_over_the_stride(tiny, capsys):
    """Two paced sources decide 2 frames apart, so the model meets one clip at a time."""
    checkpoint, videos = tiny
    args = ["stream", str(videos[0]), str(videos[1]), "--model", str(checkpoint), "--stride", "4",
            "--realtime", "--device", "cpu", "--json"]  # fmt: skip
    assert main(args) == 0
    lines = _lines(capsys.readouterr().out)
    decisions, summary = lines[:-1], lines[-1]["summary"]
    frames = [[d["frame"] for d in decisions if d["source"] == str(v)] for v in videos[:2]]
    # a clip spans 7 frames; source 0 decides at 7, 11, ...; source 1 (phase 2) at 9, 13, ...
    # (on a loaded machine a paced reader may skip a decision: it is counted, not shifted)
    assert frames[0] and set(frames[0]) <= set(range(7, 40, 4))
    assert frames[1] and set(frames[1]) <= set(range(9, 31, 4))
    due = len(range(7, 40, 4)) + len(range(9, 31, 4))
    assert summary["decisions"] == len(decisions) <= due


def test_stream_reads_an_http_url(tiny, capsys):
    """A URL source goes through FFmpeg's network input (here a local HTTP server): it is
    treated as live, decoded as it arrives, and gives the same decisions as the file."""
    import functools
    import http.server
    import threading

    checkpoint, videos = tiny
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(videos[0].parent)
    )
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{videos[0].name}"
        assert main(["stream", url, "--model", str(checkpoint), "--stride", "4",
                     "--device", "cpu", "--json"]) == 0  # fmt: skip
    finally:
        server.shutdown()
    lines = _lines(capsys.readouterr().out)
    decisions, summary = lines[:-1], lines[-1]["summary"]
    assert summary["frames"] == 40 and summary["sources"][0]["source"] == url
    assert decisions and {d["frame"] for d in decisions} <= set(range(7, 40, 4))
    assert summary["decisions"] + summary["dropped_frames"] // 4 == len(range(7, 40, 4))
