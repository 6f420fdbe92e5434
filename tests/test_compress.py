"""Deep compression: lossless Huffman, sparse gaps, k-means, masks, the .tc3d file and CLI."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import run_cli

from tc3d.compress import prune, share
from tc3d.compress.pipeline import STAGES, write_compressed
from tc3d.modelfile import huffman
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.checkpoint import CheckpointError, load_model_file, save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads; on a busy machine idle OpenMP threads spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Huffman


@pytest.mark.parametrize(
    "symbols,alphabet",
    [
        (np.random.default_rng(0).integers(0, 256, 20000), 256),  # uniform random
        (np.full(3000, 7), 256),  # a single symbol
        (np.arange(256).repeat(5), 256),  # every symbol of the alphabet
        (np.random.default_rng(1).geometric(0.1, 50000).clip(max=255) - 1, 256),  # gaps
        (np.random.default_rng(2).zipf(1.2, 30000) % 32, 32),  # heavy skew
        (np.array([0, 1]), 2),
        (np.array([], np.int64), 32),  # empty
    ],
)
def test_huffman_is_lossless(symbols, alphabet):
    for block in (huffman.BLOCK, 7):  # 7: many short blocks, a partial last block
        enc = huffman.encode(symbols, alphabet, block)
        assert np.array_equal(huffman.decode(enc, block), symbols)
        assert len(enc.data) * 8 <= huffman.entropy_bits(symbols, alphabet) + len(symbols) + 8


def test_code_lengths_are_capped_and_prefix_free():
    fib = [1, 1]
    while len(fib) < 25:
        fib.append(fib[-1] + fib[-2])
    counts = np.array(fib)  # Fibonacci counts: the Huffman tree is a 24-deep chain
    assert huffman._tree_depths(counts).max() > huffman.MAX_CODE_LENGTH
    lengths = huffman.code_lengths(counts)
    assert lengths.max() <= huffman.MAX_CODE_LENGTH
    assert sum(2.0 ** -int(n) for n in lengths) <= 1.0  # Kraft: a prefix code exists
    symbols = np.random.default_rng(0).permutation(np.repeat(np.arange(25), counts))
    assert np.array_equal(huffman.decode(huffman.encode(symbols, 25)), symbols)


def test_decode_many_streams_in_lock_step():
    rng = np.random.default_rng(3)
    streams = [rng.integers(0, a, n) for a, n in [(256, 5000), (32, 1), (4, 3000), (256, 0)]]
    encoded = [huffman.encode(s, a) for s, a in zip(streams, (256, 32, 4, 256), strict=True)]
    for got, want in zip(huffman.decode_many(encoded), streams, strict=True):
        assert np.array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# relative indices


@pytest.mark.parametrize("bits", [5, 8])
def test_gaps_round_trip_with_fillers(bits):
    rng = np.random.default_rng(bits)
    positions = np.unique(np.concatenate([[0, 1, 2], rng.integers(0, 100000, 300), [99999]]))
    symbols = encode.positions_to_gaps(positions, bits)
    assert symbols.max() <= (1 << bits) - 1
    fillers = int((symbols == (1 << bits) - 1).sum())
    assert fillers > 0 and len(symbols) == len(positions) + fillers  # long gaps need fillers
    assert np.array_equal(encode.gaps_to_positions(symbols, bits), positions)
    far = np.array([(1 << bits) - 2, 2 * ((1 << bits) - 1) - 1])  # the boundary cases
    assert np.array_equal(encode.gaps_to_positions(encode.positions_to_gaps(far, bits), bits), far)


def test_compression_rate_is_eq6():
    assert encode.compression_rate(1000, 256) == pytest.approx(32000 / (8000 + 256 * 32))


# ---------------------------------------------------------------------------------------------
# k-means


def test_kmeans_1d_linear_init_and_nearest_assignment():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 0.1, 500), rng.normal(2, 0.1, 500)])
    centroids, labels = share.kmeans_1d(x, 8)
    assert np.all(np.diff(centroids) >= 0)
    nearest = np.abs(x[:, None] - centroids[None, :]).argmin(1)
    assert np.array_equal(centroids[labels], centroids[nearest])
    exact, lab = share.kmeans_1d(np.array([0.5, -1.0, 3.0, 0.5]), 3)
    assert np.array_equal(exact[lab], np.float32([0.5, -1.0, 3.0, 0.5]))


def test_share_layer_keeps_only_the_masked_weights_in_k_clusters():
    torch.manual_seed(0)
    weight = torch.randn(8, 4, 3, 3, 3)
    mask = prune.magnitude_mask(weight, 0.9)
    for k, expected in ((None, 256), (16, 16)):
        layer = share.share_layer("w", "conv", weight, mask, k)
        assert len(layer.codebook) == expected and layer.indices.max() < expected
        assert np.array_equal(layer.positions, np.flatnonzero(mask.reshape(-1).numpy()))


# ---------------------------------------------------------------------------------------------
# masks and centroids hold during fine-tuning


def _tiny_model(classes: int = 3, dropout: float = 0.0) -> TC3D:
    torch.manual_seed(0)
    return TC3D(ModelConfig(num_classes=classes, width=0.125, segments=2, dropout=dropout))


def _steps(model, optimizer, n, after_backward, after_step):
    for _ in range(n):
        video = torch.randn(2, 2, 3, 4, 16, 16)  # (N, S, 3, k, H, W)
        loss = torch.nn.functional.cross_entropy(model(video), torch.tensor([0, 1]))
        optimizer.zero_grad()
        loss.backward()
        after_backward()
        optimizer.step()
        after_step()


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_masks_hold_gradients_and_momentum(opt):
    model = _tiny_model()
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
        "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
    }[opt]
    optimizer = make(model.parameters())
    layers = prune.prunable_layers(model)
    for targets in ({"conv": 0.3, "fc": 0.3}, {"conv": 0.9, "fc": 0.95}):  # progressive
        masks = prune.make_masks(model, targets)
        prune.apply_masks(model, masks)
        prune.mask_optimizer_state(optimizer, model, masks)
        _steps(model, optimizer, 3, lambda m=masks: prune.mask_gradients(model, m), lambda: None)
        for name, (kind, w) in layers.items():
            off = ~masks[name]
            assert torch.all(w[off] == 0) and torch.all(w.grad[off] == 0)
            for state in optimizer.state[w].values():
                if torch.is_tensor(state) and state.shape == w.shape:
                    assert torch.all(state[off] == 0)  # momentum / Adam moments
            expected = prune.layer_sparsity(kind, targets)
            assert off.float().mean().item() == pytest.approx(expected, abs=0.5 / w.numel())
    stem = masks["backbones.0.stem.0.weight"]
    assert (~stem).float().mean().item() == pytest.approx(prune.STEM_SPARSITY, abs=1e-3)


def test_prune_plan_rises_by_a_tenth_then_holds_the_final_sparsity():
    phases = prune.plan(prune.PRUNE_TARGETS, final_epochs=4)
    rising, final = phases[:-2], phases[-2:]
    assert [p[0]["conv"] for p in rising] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9]
    assert [p[0]["fc"] for p in rising][-2:] == [0.9, 0.95]  # fc needs one step more
    assert all(lr == 1.0 and epochs == 1 for _, lr, epochs in rising)
    assert final == [(prune.PRUNE_TARGETS, 1.0, 2), (prune.PRUNE_TARGETS, 0.1, 2)]
    sparse = prune.plan(prune.SPARSE_TARGETS)  # no extra epochs in the sparse stage
    assert sparse[:8] == rising[:8] and sparse[8:] == [({"conv": 0.85, "fc": 0.9}, 1.0, 1)]
    assert [p[1:] for p in prune.plan(prune.PRUNE_TARGETS, 1)[-1:]] == [(1.0, 1)]


def test_centroid_fine_tuning_sums_member_gradients():
    model = _tiny_model()
    masks = prune.make_masks(model, prune.PRUNE_TARGETS)
    prune.apply_masks(model, masks)
    shared = share.SharedWeights(model, share.share_model(model, masks))
    optimizer = torch.optim.SGD(list(shared.codebooks.values()), lr=0.1)
    name = "backbones.0.layer2.0.conv1.0.weight"
    w = shared.weights[name]
    captured = {}

    def after_backward():
        captured["grad"] = w.grad.clone()
        shared.accumulate_gradients()

    before = shared.codebooks[share._key(name)].detach().clone()
    _steps(model, optimizer, 1, after_backward, shared.write_weights)
    layer = shared.layers[name]
    member = captured["grad"].reshape(-1)[layer.positions]
    expected = torch.zeros(len(before)).index_add_(0, torch.from_numpy(layer.indices), member)
    after = shared.codebooks[share._key(name)].detach()
    assert torch.allclose(before - after, 0.1 * expected, atol=1e-6)
    flat = w.detach().reshape(-1)
    assert torch.equal(flat[layer.positions], after[layer.indices])  # weights = codebook
    assert torch.all(flat[~masks[name].reshape(-1)] == 0)  # pruned stay zero


# ---------------------------------------------------------------------------------------------
# the .tc3d file


@pytest.fixture(scope="module")
def tc3d_file(tmp_path_factory):
    """A real small .tc3d file and the quantised model it came from."""
    root = tmp_path_factory.mktemp("tc3d")
    model = _tiny_model()
    spec = ClipSpec(SamplingConfig(2, 4, "consecutive", 2), crop=16)
    save_model(root / "m.pt", model, ["a", "b", "c"], spec)
    loaded = load_model_file(root / "m.pt")
    masks = prune.make_masks(loaded.model, prune.PRUNE_TARGETS)
    prune.apply_masks(loaded.model, masks)
    shared = share.SharedWeights(loaded.model, share.share_model(loaded.model, masks))
    written = write_compressed(root / "m.tc3d", loaded.model, shared.to_layers(), loaded, {})
    return root / "m.tc3d", loaded.model, written


def test_tc3d_round_trip_is_bit_identical(tc3d_file):
    path, quantised, written = tc3d_file
    assert written["file_bytes"] == path.stat().st_size
    restored = load_model_file(path)
    want = quantised.state_dict()
    got = restored.model.state_dict()
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k], got[k]), k  # codebook values, BN, biases: bit for bit
    assert restored.classes == ["a", "b", "c"] and restored.clip.crop == 16
    video = torch.randn(1, 2, 3, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(quantised.eval()(video), restored.model(video))


def test_every_damaged_file_is_rejected(tc3d_file, tmp_path):
    path = tc3d_file[0]
    data = path.read_bytes()
    bad = tmp_path / "bad.tc3d"
    rng = np.random.default_rng(0)
    positions = np.concatenate([np.arange(24), rng.integers(0, len(data), 300), [len(data) - 1]])
    for pos in positions:  # one flipped byte anywhere: magic, header, payload, checksum
        mutated = bytearray(data)
        mutated[pos] ^= 1 << int(rng.integers(0, 8))
        bad.write_bytes(bytes(mutated))
        with pytest.raises(CheckpointError) as info:
            load_model_file(bad)
        assert "\n" not in str(info.value)
    for cut in [0, 5, 8, 20, len(data) // 2, len(data) - 33, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|not a|checksum"):
            load_model_file(bad)
    bad.write_bytes(data + b"\0")  # extra bytes move the checksum: rejected too
    with pytest.raises(CheckpointError, match="checksum"):
        load_model_file(bad)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world\n", b"\x89PNG\r\n\x1a\n" + bytes(100), b"PK\x03\x04" + bytes(60)],
)
def test_files_of_another_kind_are_rejected(tmp_path, content):
    path = tmp_path / "x.tc3d"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_model_file(path)
    assert "\n" not in str(info.value)
    with pytest.raises(encode.Tc3dError, match="not a .tc3d"):
        encode.read_tc3d(path)


# ---------------------------------------------------------------------------------------------
# the commands, end to end on real tiny videos


def _run(*args: str, expect: int = 0) -> dict:
    """``tc3d ARGS`` on one thread per process: its JSON (conftest.run_cli)."""
    return run_cli(*args, expect=expect, env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    from conftest import colour_clip, make_ucf_dataset

    root = tmp_path_factory.mktemp("compress")
    rng = np.random.default_rng(4)
    colours = {"RedThing": (220, 30, 30), "GreenThing": (30, 220, 30)}
    data = make_ucf_dataset(
        root / "data",
        {
            n: [[colour_clip(c, 20, rng) for _ in range(2)] for _ in range(3)]
            for n, c in colours.items()
        },
    )
    broken = [data / "GreenThing" / f"v_GreenThing_g0{g}_c02.avi" for g in (1, 2)]  # test, train
    for video in broken:
        video.write_bytes(video.read_bytes()[:300])
    # compression needs a checkpoint, not a good one; dropout makes fine-tuning draw randomness
    model = _tiny_model(classes=2, dropout=0.5)
    checkpoint = str(root / "m.pt")
    save_model(
        checkpoint,
        model,
        ["RedThing", "GreenThing"],  # classInd order
        ClipSpec(SamplingConfig(2, 4, "consecutive", 2), crop=32),
        train_config={"optimizer": "sgd", "lr": 0.01},
    )
    out = root / "m.tc3d"
    args = ["compress", "--model", checkpoint, "--out", str(out), "--data", str(data),
            "--epochs", "0.34", "--batch-size", "4", "--workers", "0", "--json"]  # fmt: skip
    return data, out, args, _run(*args)


@pytest.mark.slow
def test_compress_json_and_file(compressed):
    data, out, _, result = compressed
    assert {"stages", "file", "file_bytes", "ratio"} <= result.keys()
    assert sorted(s["path"] for s in result["skipped"]) == sorted(
        str(data / "GreenThing" / f"v_GreenThing_g0{g}_c02.avi") for g in (1, 2)
    )  # an unreadable test video and an unreadable training video, both reported
    assert [s["stage"] for s in result["stages"]] == list(
        ("baseline", "sparse", "dense", "prune", "quantize", "huffman")
    )
    for s in result["stages"]:
        assert {"stage", "size_bytes", "top1", "sparsity"} <= s.keys()
    assert result["file_bytes"] == out.stat().st_size
    by = {s["stage"]: s for s in result["stages"]}
    assert by["huffman"]["top1"] == by["quantize"]["top1"]  # Huffman is lossless
    # the file also carries the int8 calibration (ranges and corrected biases, a few KB here):
    # the weights themselves shrink at every stage
    from tc3d.modelfile.calibration import KEY
    from tc3d.modelfile.tc3dfile import read_header

    calibration = len(json.dumps(read_header(out)[KEY]))
    assert 0 < calibration < 10_000
    weights = dict(by, huffman={"size_bytes": by["huffman"]["size_bytes"] - calibration})
    sizes = [weights[s]["size_bytes"] for s in ("baseline", "prune", "quantize", "huffman")]
    assert sizes == sorted(sizes, reverse=True)
    assert by["prune"]["sparsity"] > 85 and by["dense"]["sparsity"] < by["sparse"]["sparsity"]
    assert out.with_name("m.compress.png").stat().st_size > 1000
    assert (
        json.loads(out.with_name("m.compress.json").read_text())["file_bytes"]
        == result["file_bytes"]
    )


@pytest.mark.slow
def test_test_and_predict_accept_tc3d(compressed):
    data, out, _, result = compressed
    huffman_top1 = result["stages"][-1]["top1"]
    tested = _run("test", "--model", str(out), "--data", str(data), "--json")
    assert tested["top1"] == huffman_top1
    # predict reads the .tc3d file to the same answers: its top-1 over the test videos
    listed = (data / "splits" / "testlist01.txt").read_text().split()
    videos = [str(data / rel) for rel in listed]
    # exit 1: one test video is broken
    predicted = _run("predict", *videos, "--model", str(out), "--top", "1", "--json", expect=1)
    predicted = predicted["results"]
    correct = [
        r["labels"][0]["label"] == rel.split("/")[0]
        for r, rel in zip(predicted, listed, strict=True)
        if "labels" in r
    ]
    assert len(correct) == tested["videos"] == 3
    assert huffman_top1 == pytest.approx(100 * np.mean(correct))


def _main_json(capsys, *args: str, expect: int = 0) -> tuple[dict, str]:
    """Run the CLI in this process (no interpreter start-up); returns (last JSON, stderr)."""
    from tc3d.cli import main

    assert main(list(args)) == expect
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return (json.loads(lines[-1]) if lines else {}), captured.err


@pytest.mark.slow
def test_inspect(compressed, tmp_path, capsys):
    _, out, _, result = compressed
    report, _ = _main_json(capsys, "inspect", str(out), "--json")
    assert report["valid"] is True and report["file_bytes"] == out.stat().st_size
    assert {"name", "shape", "sparsity", "bits", "bytes"} <= report["layers"][0].keys()
    assert len(report["layers"]) == len(result["layers"])
    damaged = tmp_path / "d.tc3d"
    raw = bytearray(out.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    damaged.write_bytes(bytes(raw))
    report, err = _main_json(capsys, "inspect", str(damaged), "--json", expect=1)
    assert report["valid"] is False
    assert err.strip().count("\n") == 0 and "checksum" in err
    _, err = _main_json(capsys, "inspect", str(tmp_path / "nope.tc3d"), expect=2)
    assert err.strip().count("\n") == 0


@pytest.mark.slow
def test_compress_resumes_finished_stages(compressed, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _, _, args, first = compressed
    again, _ = _main_json(capsys, *args)
    assert [s["seconds"] for s in again["stages"]] == [s["seconds"] for s in first["stages"]]
    assert again["file_bytes"] == first["file_bytes"]


@pytest.mark.slow
@pytest.mark.parametrize("last_finished", ["baseline", "dense"])
def test_resume_after_an_interruption_gives_the_uninterrupted_file(
    compressed, tmp_path, last_finished
):
    """A run stopped after a stage and started again ends with the very same bytes."""
    _, out, args, first = compressed
    work = tmp_path / "r.tc3d.work"
    shutil.copytree(out.with_name(out.name + ".work"), work)
    kept = STAGES[: STAGES.index(last_finished) + 1]
    for stage in STAGES:  # as if killed during the stage after last_finished
        if stage not in kept and (work / f"{stage}.pt").exists():
            (work / f"{stage}.pt").unlink()
    state = json.loads((work / "stages.json").read_text())
    state["stages"] = [r for r in state["stages"] if r["stage"] in kept]
    (work / "stages.json").write_text(json.dumps(state))
    resumed_out = tmp_path / "r.tc3d"
    resumed_args = list(args)
    resumed_args[resumed_args.index("--out") + 1] = str(resumed_out)
    resumed = _run(*resumed_args)
    n = len(kept)  # the finished stages were not run again
    assert [s["seconds"] for s in resumed["stages"][:n]] == [
        s["seconds"] for s in first["stages"][:n]
    ]
    assert [s["top1"] for s in resumed["stages"]] == [s["top1"] for s in first["stages"]]
    assert resumed_out.read_bytes() == out.read_bytes()


def test_one_shot_without_data(compressed, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _, _, args, _ = compressed
    model = args[args.index("--model") + 1]
    out = tmp_path / "o.tc3d"
    result, _ = _main_json(capsys, "compress", "--model", model, "--out", str(out), "--json")
    assert [s["stage"] for s in result["stages"]] == ["baseline", "prune", "quantize", "huffman"]
    assert all(s["top1"] is None for s in result["stages"])
    assert result["file_bytes"] == out.stat().st_size
