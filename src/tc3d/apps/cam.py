"""Class activation maps over video frames (paper Section V-E, Figure 3; Zhou et al.'s CAM).

For a clip, the last convolutional stage gives ``(C, T', H', W')`` maps and the classifier a
weight per channel and class; their weighted sum for the predicted class, rectified, is where
the network found evidence for it. The map is upsampled in time and space back to the clip's
frames (trilinear), normalised over the whole video, and blended as a heat map onto the frames,
with the predicted label written on each. The clips are the S segment-centre clips T-C3D
classifies the video from; the label is the fused video prediction.

It takes a :class:`tc3d.api.Model` and runs in its inference engine
(:meth:`tc3d.infer.engine.Engine.clip_maps`), at fp32, bf16 or int8.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from tc3d.infer.engine import Engine
from tc3d.io import atomic_write_with
from tc3d.modelfile.checkpoint import LoadedModel
from tc3d.video.clips import read_clips
from tc3d.video.decode import OpenVideo, opened, read_frames
from tc3d.video.sampling import eval_indices
from tc3d.video.transforms import CropBox, centre_crop_box

if TYPE_CHECKING:
    from tc3d.api import Model

log = logging.getLogger(__name__)


@torch.no_grad()
def clip_cams(
    loaded: LoadedModel, clips: torch.Tensor, engine: Engine
) -> tuple[np.ndarray, np.ndarray]:
    """The S segment clips ``(S, 3, k, h, w)`` of one video -> (fused class probabilities
    ``(K,)``, CAMs ``(S, k, h, w)`` of the predicted class, rectified, not yet normalised).

    Clip s goes through segment s's backbone (the same one when weights are shared), in the
    engine at its precision; the class weights that turn the map into a CAM are the model's
    float classifier weights.
    """
    model = loaded.model.eval()
    n, _, k, h, w = clips.shape
    shared = len(model.backbones) == 1
    outs = [engine.clip_maps(c[None], 0 if shared else i) for i, c in enumerate(clips)]
    fmap = torch.cat([f for f, _ in outs])  # (S, C, T', H', W')
    scores = torch.cat([s for _, s in outs])  # (S, K)
    probs = engine.fuse(scores[None])  # (K,): one crop of S clips, fused as at test time
    label = int(probs.argmax())
    nets = [model.backbones[0 if shared else i] for i in range(n)]
    weight = torch.stack([net.fc.weight[label].detach().float().cpu() for net in nets])  # (S, C)
    cam = torch.relu(torch.einsum("nc,nctyx->ntyx", weight, fmap))  # (S, T', H', W')
    cam = F.interpolate(cam[:, None], size=(k, h, w), mode="trilinear", align_corners=False)
    return probs.numpy(), cam[:, 0].numpy()


def _jet(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8 with matplotlib's jet colour map."""
    from matplotlib import colormaps

    return (colormaps["jet"](x)[..., :3] * 255).astype(np.uint8)


def _label(img, text: str):
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=max(12, img.height // 14))
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = ImageFont.load_default()
    draw.text((6, 4), text, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return img


def blend_heat(rgb: np.ndarray, heat: np.ndarray, text: str, alpha: float = 0.45):
    """``rgb`` (H, W, 3) uint8 with ``heat`` (any size, values in [0, 1]) resized onto it in
    the jet colours and ``text`` written in a corner: (the PIL image, the resized heat)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    heat = np.asarray(
        Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    ).astype(np.float32) / 255.0  # fmt: skip
    mix = (1 - alpha * heat[..., None]) * rgb + alpha * heat[..., None] * _jet(heat)
    return _label(Image.fromarray(mix.clip(0, 255).astype(np.uint8)), text), heat


def _heat_frames(
    full: np.ndarray, box: CropBox, cams: np.ndarray, text: str, size: int, alpha: float
) -> tuple[list, list]:
    """The display frames (PIL, ``size`` square, ``text`` written on each) with the heat
    blended in, and per frame the (x, y) of the heat's centre of mass in 0-1 coordinates."""
    from PIL import Image

    frames, centres = [], []
    ys, xs = np.mgrid[0:size, 0:size] / (size - 1)
    for rgb_full, cam in zip(full, cams, strict=True):
        crop = rgb_full[box.y : box.y + box.h, box.x : box.x + box.w]
        rgb = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
        image, heat = blend_heat(rgb, cam, text, alpha)
        frames.append(image)
        total = float(heat.sum())
        centres.append(
            [float((heat * xs).sum() / total), float((heat * ys).sum() / total)] if total else None
        )
    return frames, centres


def _write_frames(out: Path, frames: list, k: int, gif: bool) -> tuple[list[str], Path | None]:
    """``cam_SS_FF.png`` per frame and ``cam.gif``, each written atomically."""
    files = []
    for i, img in enumerate(frames):
        name = out / f"cam_{i // k:02d}_{i % k:02d}.png"
        atomic_write_with(name, lambda f, img=img: img.save(f, format="PNG"))
        files.append(str(name))
    if not gif:
        return files, None
    gif_path = out / "cam.gif"
    atomic_write_with(
        gif_path,
        lambda f: frames[0].save(
            f, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0
        ),
    )
    return files, gif_path


def cam_video(
    model: Model,
    video: str | Path | OpenVideo,
    out: str | Path | None,
    alpha: float = 0.45,
    size: int = 224,
    gif: bool = True,
) -> dict:
    """``tc3d cam``: PNG per frame of the S segment clips and an animated GIF in ``out``.

    The model runs in its engine. With ``out=None`` nothing is written and the frames come back
    as PIL images under ``images`` (the web page shows them without a trip through the disk).

    Returns ``{label, prob, files, gif, heat_centre}``; ``heat_centre`` is, per written
    frame, the (x, y) of the heat's centre of mass in 0-1 frame coordinates.
    """
    loaded, out = model.loaded, (Path(out) if out is not None else None)
    spec = replace(loaded.clip, protocol="sclips", crops=1)  # model input, as in testing
    with opened(video) as v:
        idx = eval_indices(v.info.num_frames, spec.sampling, spec.protocol)  # (n, k)
        n, k = idx.shape
        clips = read_clips(v, idx, spec)[0]  # (n, 3, k, h, w)
        probs, cams = clip_cams(loaded, clips, model.engine([str(v)], videos=1))
        # Display: the same centre crop taken from the full-resolution frames.
        full = read_frames(v, idx.reshape(-1), max(size, spec.short_side))
    label = loaded.classes[int(probs.argmax())]
    cams = cams / max(float(cams.max()), 1e-12)  # one scale for the whole video
    frames, centres = _heat_frames(full, centre_crop_box(*full.shape[1:3]),
                                   cams.reshape(n * k, *cams.shape[2:]),
                                   f"{label} {100 * probs.max():.0f}%", size, alpha)  # fmt: skip
    files, gif_path = [], None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files, gif_path = _write_frames(out, frames, k, gif)
    result = {
        "video": str(v),
        "label": label,
        "prob": float(probs.max()),
        "files": files + ([str(gif_path)] if gif_path else []),
        "gif": str(gif_path) if gif_path else None,
        "frame_indices": idx.reshape(-1).tolist(),
        "heat_centre": centres,
    }
    if out is None:
        result["images"] = frames
    return result
