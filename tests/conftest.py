"""Fixtures: tiny real videos, encoded with PyAV into temporary folders.

Frames carry their own index as a brightness level (``level(i)``), so a test can tell which
frame a reader returned even after lossy compression.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

DEVICES = ("cpu", "cuda")


def pytest_configure(config):
    """TC3D_TEST_DEVICE (cpu, the default, or cuda) names the device that the device tests
    (tests/test_on_device.py) run on; asking for cuda without a GPU is a usage error, not a
    silent skip."""
    name = os.environ.get("TC3D_TEST_DEVICE", "cpu")
    if name not in DEVICES:
        raise pytest.UsageError(f"TC3D_TEST_DEVICE must be one of {DEVICES}, not {name!r}")
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError("TC3D_TEST_DEVICE=cuda, but no CUDA device is available")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped on a machine without a CUDA GPU."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (there: TC3D_TEST_DEVICE=cuda)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def device_name() -> str:
    """The device under test: TC3D_TEST_DEVICE, cpu by default."""
    return os.environ.get("TC3D_TEST_DEVICE", "cpu")


def level(i: int) -> int:
    """Grey level that identifies frame i (distinct for i < 60 even after mpeg4 coding)."""
    return 8 + (i * 4) % 240


def frame_for(i: int, height: int = 48, width: int = 64, moving: bool = True) -> np.ndarray:
    img = np.full((height, width, 3), level(i), np.uint8)
    if moving:  # a bright bar sweeping right, so clips contain motion
        x = (i * 3) % (width - 6)
        img[height // 4 : 3 * height // 4, x : x + 6] = (250, 40, 40)
    return img


def write_video(
    path: Path,
    frames: list[np.ndarray] | np.ndarray,
    codec: str = "mpeg4",
    fps: int = 25,
    gop: int = 12,
    options: dict | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height = width, height
        # ffv1 in RGB is lossless end to end; the others go through 4:2:0 YUV as usual.
        stream.pix_fmt = {"mjpeg": "yuvj420p", "ffv1": "bgr0"}.get(codec, "yuv420p")
        stream.codec_context.gop_size = gop
        if codec in ("mpeg4", "libvpx"):
            stream.bit_rate = 2_000_000  # near-lossless for these tiny frames
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def indexed_video(path: Path, n: int, codec: str = "mpeg4", **kw) -> Path:
    return write_video(path, [frame_for(i) for i in range(n)], codec=codec, **kw)


def frame_index(frame: np.ndarray) -> int:
    """Recover the index a ``frame_for`` frame was made with (from its background level)."""
    background = float(np.median(frame[:4, :, 1]))
    return int(np.argmin([abs(background - level(i)) for i in range(60)]))


@pytest.fixture
def video_dir(tmp_path) -> Path:
    return tmp_path


def make_ucf_dataset(
    root: Path, classes: dict[str, list[list[np.ndarray]]], test_groups: int = 1
) -> Path:
    """Write videos in UCF101 layout: ``classes[name][group]`` is a list of videos (frames)."""
    split_dir = root / "splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    ind, train, test = [], [], []
    for c, (name, groups) in enumerate(classes.items(), start=1):
        ind.append(f"{c} {name}")
        for g, videos in enumerate(groups, start=1):
            for k, frames in enumerate(videos, start=1):
                rel = f"{name}/v_{name}_g{g:02d}_c{k:02d}.avi"
                write_video(root / rel, frames)
                (test.append(rel) if g <= test_groups else train.append(f"{rel} {c}"))
    (split_dir / "classInd.txt").write_text("\r\n".join(ind) + "\r\n")
    (split_dir / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")
    (split_dir / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    return root


def colour_clip(
    colour: tuple[int, int, int], n: int, rng: np.random.Generator, size: tuple[int, int] = (48, 64)
) -> list[np.ndarray]:
    """A noisy video dominated by one colour with a moving square: an easy class."""
    frames = []
    for i in range(n):
        img = rng.integers(0, 60, (*size, 3)).astype(np.uint8)
        y, x = (i * 2) % (size[0] - 16), (i * 3) % (size[1] - 16)
        img[y : y + 16, x : x + 16] = colour
        frames.append(img)
    return frames


def make_tiny_dataset(root: Path) -> Path:
    """3 easy classes (red, green, blue square), 2 train groups + 1 test group of 2 videos."""
    rng = np.random.default_rng(0)
    colours = {"RedThing": (220, 30, 30), "GreenThing": (30, 220, 30), "BlueThing": (30, 30, 220)}
    classes = {
        name: [
            [colour_clip(col, int(rng.integers(20, 40)), rng) for _ in range(2)] for _ in range(3)
        ]
        for name, col in colours.items()
    }
    return make_ucf_dataset(root, classes)


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """:func:`make_tiny_dataset`, encoded once per session and shared: READ ONLY (a test that
    changes files takes ``tiny_dataset_copy``). Checked unchanged when the session ends."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("shared") / "tiny")
    before = _listing(root)
    yield root
    assert _listing(root) == before, "a test changed the shared tiny_dataset; use the copy"


@pytest.fixture
def tiny_dataset_copy(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny data set that a test may change, rename or break."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "tiny"))


def add_broken_files(root: Path) -> list[str]:
    """A zero-byte file, a truncated file and a 1-frame video, listed in train and test."""
    cls = "RedThing"
    zero = root / cls / "v_RedThing_g09_c01.avi"
    zero.write_bytes(b"")
    full = indexed_video(root / cls / "tmp.avi", 60)
    cut = root / cls / "v_RedThing_g09_c02.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    full.unlink()
    indexed_video(root / cls / "v_RedThing_g09_c03.avi", 1)
    names = [
        f"{cls}/{p}"
        for p in ("v_RedThing_g09_c01.avi", "v_RedThing_g09_c02.avi", "v_RedThing_g09_c03.avi")
    ]
    with open(root / "splits" / "trainlist01.txt", "a") as f:
        f.writelines(f"{n} 1\r\n" for n in names)
    with open(root / "splits" / "testlist01.txt", "a") as f:
        f.writelines(f"{n}\r\n" for n in names)
    return names


def random_checkpoint(
    path: Path,
    classes: list[str],
    segments: int = 1,
    frames: int = 4,
    crop: int = 32,
    seed: int = 0,
    **extra,
) -> Path:
    """An untrained width-0.25 model saved as a real checkpoint (fast fixture for apps);
    ``extra``: optional checkpoint keys (an anomaly scorer)."""
    import torch

    from tc3d.modelfile.checkpoint import save_model
    from tc3d.models.tc3d import TC3D, ModelConfig
    from tc3d.video.clips import ClipSpec
    from tc3d.video.sampling import SamplingConfig

    torch.manual_seed(seed)
    model = TC3D(ModelConfig(num_classes=len(classes), width=0.25, segments=segments, dropout=0))
    spec = ClipSpec(SamplingConfig(segments, frames, "consecutive", 2), crop)
    save_model(path, model, classes, spec, **extra)
    return path


def tc3d_command(*args: str) -> list[str]:
    """The command line of ``tc3d ARGS`` as a user runs it, with this interpreter."""
    return [sys.executable, "-m", "tc3d", *args]


def tc3d_without_openvino(*args: str) -> list[str]:
    """``tc3d ARGS`` as it runs where the int8 extra (OpenVINO, NNCF) is not installed."""
    hide = "import sys; sys.modules['openvino'] = None; sys.modules['nncf'] = None; "
    run = "from tc3d.cli import main; raise SystemExit(main(sys.argv[1:]))"
    return [sys.executable, "-c", hide + run, *args]


def run_cli(
    *args: str,
    expect: int = 0,
    env: dict | None = None,
    timeout: float = 600,
    runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> dict:
    """Run ``tc3d ARGS`` in a subprocess (through ``runner``, e.g. inside a network namespace);
    assert its exit code is ``expect``. Returns the last line of stdout as JSON plus ``stderr``
    (``stdout`` and ``stderr`` when it is not JSON): the one way tests run the command line."""
    done = runner(tc3d_command(*args), capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == expect, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        return {**json.loads(lines[-1]), "stderr": done.stderr}
    return {"stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A width-0.25 model trained through ``tc3d train`` on a two-class colour set (2 train
    groups, 1 test group, 2 videos of 24 frames each), once per session: (data, checkpoint,
    the command's JSON). Read only, like :func:`tiny_dataset`."""
    root = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(1)
    colours = {"RedThing": (220, 30, 30), "GreenThing": (30, 220, 30)}
    groups = {n: [[colour_clip(c, 24, rng) for _ in range(2)] for _ in range(3)]
              for n, c in colours.items()}  # fmt: skip
    data = make_ucf_dataset(root / "data", groups)
    flags = "--width 0.25 --crop 32 --frames 4 --batch-size 4 --iters 12 --eval-every 6"
    result = run_cli("train", "--data", str(data), "--out", str(root / "run"), *flags.split(),
                     "--lr", "0.01", "--workers", "0", "--json")  # fmt: skip
    return data, Path(result["checkpoint"]), result
