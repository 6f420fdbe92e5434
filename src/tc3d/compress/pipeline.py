"""``tc3d compress``: the deep-compression stages of paper Section III-F and Table VIII.

baseline -> sparse (progressive pruning to 0.85 conv / 0.90 fc, fine-tuned) -> dense (masks
lifted, fine-tuned at lr/10) -> prune (progressive to 0.90 conv / 0.95 fc, masks held, then
more epochs at the final sparsity) -> quantize (k-means sharing, centroids fine-tuned) ->
huffman (the ``.tc3d`` file).

Each fine-tuning "epoch" of the schedule is ``epochs × (one pass over the training set)``
iterations, so ``--epochs`` scales all fine-tuning at once. Without data there is no
fine-tuning and no accuracy: the model is pruned straight to the final sparsity, shared and
encoded. Every finished stage is saved in a work folder beside the output (``FILE.work/``),
with the data epoch and random generators of the fine-tuning; running the same command again
resumes after the last finished stage and continues exactly as an uninterrupted run would.

The ``huffman`` stage's accuracy is measured by loading the written file with
:func:`tc3d.modelfile.checkpoint.load_model_file` and evaluating it exactly as ``tc3d test`` does.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.compress import prune, share
from tc3d.compress.finetune import CompressError, FineTuner
from tc3d.compress.workdir import WorkDir
from tc3d.device import prepare_model, resolve_device, set_threads
from tc3d.infer.calibration import compress_calibration
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.calibration import KEY as CALIBRATION_KEY
from tc3d.modelfile.checkpoint import LoadedModel, load_checkpoint, load_model_file, model_metadata
from tc3d.progress import Progress

log = logging.getLogger(__name__)

STAGES = ("baseline", "sparse", "dense", "prune", "quantize", "huffman")
FINE_TUNED = ("sparse", "dense")  # stages that exist only to be fine-tuned
DENSE_EPOCHS = 2
FINAL_EPOCHS = 8  # prune stage: more epochs at the final sparsity (prune.plan)
QUANTIZE_EPOCHS = 2


@dataclass
class CompressConfig:
    model: str
    out: str
    data: str | None = None
    format: str | None = None
    split: int = 1
    splits: str | None = None
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    epochs: float = 1.0  # scales every fine-tuning stage (1.0: one pass per schedule epoch)
    batch_size: int = 8
    lr: float | None = None  # default: the model's training lr / 10
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    test_stages: list[str] | None = None  # stages whose top-1 is measured (None: all)


def parse_stages(text: str | None) -> list[str]:
    if not text:
        return list(STAGES)
    asked = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in asked if s not in STAGES]
    if unknown:
        raise CompressError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    stages = ["baseline"] + [s for s in STAGES[1:] if s in asked]
    if "huffman" in stages and "quantize" not in stages:
        raise CompressError("the huffman stage encodes the quantize stage's result: add quantize")
    return stages


def _other_parameter_bytes(model: nn.Module) -> int:
    pruned = {id(w) for _, w in prune.prunable_layers(model).values()}
    return 4 * sum(p.numel() for p in model.parameters() if id(p) not in pruned)


def _dense_bytes(model: nn.Module) -> int:
    return 4 * sum(p.numel() for p in model.parameters())


def _pruned_bytes(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    total = _other_parameter_bytes(model)
    for name, (kind, _) in prune.prunable_layers(model).items():
        positions = np.flatnonzero(masks[name].reshape(-1).cpu().numpy())
        total += encode.pruned_layer_bytes(positions, "fc" if kind == "fc" else "conv")
    return total


def _quantized_bytes(model: nn.Module, layers: list[encode.SharedLayer]) -> int:
    return _other_parameter_bytes(model) + sum(
        encode.quantized_layer_bytes(x.positions, x.kind, len(x.codebook)) for x in layers
    )


def _settings(cfg: CompressConfig) -> dict:
    source = Path(cfg.model).resolve()
    s = asdict(cfg)
    for transient in ("out", "workers", "device", "test_stages"):
        s.pop(transient)
    s["model_mtime"] = source.stat().st_mtime
    s["model"] = str(source)
    return s


@dataclass
class _Job:
    """A compression run under way: the model as the finished stages leave it."""

    cfg: CompressConfig
    out: Path
    device: torch.device
    loaded: LoadedModel
    model: nn.Module
    trainer: FineTuner | None
    settings: dict
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    shared: share.SharedWeights | None = None

    def top1(self, description: str, target: LoadedModel | None = None) -> float | None:
        """Test-split top-1 of the model (or ``target``), when there is data and the stage
        (the ``description`` up to its colon) is one to test."""
        stage = description.split(":")[0]
        tested = self.cfg.test_stages is None or stage in self.cfg.test_stages
        if self.trainer is None or not tested:
            return None
        target = target or LoadedModel(
            self.model, self.loaded.classes, self.loaded.clip, Path(self.cfg.model)
        )
        return self.trainer.evaluate(target, description)

    def restore(self, saved: dict) -> None:
        """Continue from a finished stage's saved state."""
        self.model.load_state_dict(saved["model"])
        self.masks = {k: v.to(self.device) for k, v in saved.get("masks", {}).items()}
        if self.trainer is not None and "trainer" in saved:
            self.trainer.load_state_dict(saved["trainer"])
        if "shared" in saved:
            layers = [encode.SharedLayer(**_unpack_layer(x)) for x in saved["shared"]]
            self.shared = share.SharedWeights(self.model, layers)

    def state(self) -> dict:
        """What a resumed run needs of a finished stage."""
        state = {"model": self.model.state_dict()}
        state["masks"] = {k: v.cpu() for k, v in self.masks.items()}
        if self.trainer is not None:
            state["trainer"] = self.trainer.state_dict()
        return state


def _baseline(job: _Job) -> tuple[dict, dict | None]:
    return {"stage": "baseline", "size_bytes": _dense_bytes(job.model)}, None


def _sparse(job: _Job) -> tuple[dict, dict | None]:
    job.masks = job.trainer.prune_progressively(job.model, prune.SPARSE_TARGETS, "sparse")
    return {"stage": "sparse", "size_bytes": _dense_bytes(job.model)}, {}


def _dense(job: _Job) -> tuple[dict, dict | None]:
    job.masks = {}
    trainer = job.trainer
    optimizer = trainer.optimizer(list(job.model.parameters()), trainer.base_lr / 10)
    trainer.run(job.model, optimizer, DENSE_EPOCHS * trainer.iters_per_epoch, "dense: fine-tuning")
    return {"stage": "dense", "size_bytes": _dense_bytes(job.model)}, {}


def _prune(job: _Job) -> tuple[dict, dict | None]:
    if job.trainer is None:
        job.masks = prune.make_masks(job.model, prune.PRUNE_TARGETS)  # one shot
        prune.apply_masks(job.model, job.masks)
    else:
        job.masks = job.trainer.prune_progressively(
            job.model, prune.PRUNE_TARGETS, "prune", FINAL_EPOCHS
        )
    return {"stage": "prune", "size_bytes": _pruned_bytes(job.model, job.masks)}, {}


def _quantize(job: _Job) -> tuple[dict, dict | None]:
    model, trainer = job.model, job.trainer
    if not job.masks:  # no prune stage: keep every non-zero weight
        job.masks = {n: w.detach() != 0 for n, (_, w) in prune.prunable_layers(model).items()}
    shared = job.shared = share.SharedWeights(model, share.share_model(model, job.masks))
    if trainer is not None:
        params = list(shared.codebooks.values()) + shared.other_parameters()
        trainer.run(
            model,
            trainer.optimizer(params, trainer.base_lr / 10),
            QUANTIZE_EPOCHS * trainer.iters_per_epoch,
            "quantize: centroid fine-tuning",
            after_backward=shared.accumulate_gradients,
            after_step=shared.write_weights,
        )
    layers = shared.to_layers()
    record = {"stage": "quantize", "size_bytes": _quantized_bytes(model, layers)}
    return record, {"shared": [_pack_layer(x) for x in layers]}


def _huffman(job: _Job) -> tuple[dict, dict | None]:
    written = write_compressed(job.out, job.model, job.shared.to_layers(), job.loaded, job.settings)
    record = {"stage": "huffman", "size_bytes": written["file_bytes"]}
    record["top1"] = job.top1("huffman: testing the .tc3d file", _reload(job.out, job.device))
    return record, None


STAGE_RUNS = {
    "baseline": _baseline,
    "sparse": _sparse,
    "dense": _dense,
    "prune": _prune,
    "quantize": _quantize,
    "huffman": _huffman,
}


def _start(cfg: CompressConfig, progress: Progress | None) -> _Job:
    out = Path(cfg.out)
    if "huffman" in cfg.stages and out.suffix != ".tc3d":
        raise CompressError(f"--out must end in .tc3d, not {out.name!r}")
    device = resolve_device(cfg.device)
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        set_threads()  # all cores, unless the user asked for fewer
    torch.manual_seed(cfg.seed)
    ckpt = load_checkpoint(cfg.model) if not encode.is_tc3d(cfg.model) else None
    if ckpt is None:
        raise CompressError(f"{cfg.model}: already compressed; give the training checkpoint")
    loaded = load_model_file(cfg.model)
    model = prepare_model(loaded.model, device)
    trainer = FineTuner(cfg, ckpt, loaded, device, progress) if cfg.data else None
    return _Job(cfg, out, device, loaded, model, trainer, _settings(cfg))


def compress(cfg: CompressConfig, progress: Progress | None = None) -> dict:
    """Run the stages; returns ``{stages, file, file_bytes, ratio, layers, ...}``: the JSON of
    ``tc3d compress``. ``progress`` names each stage (``info["stage"]``)."""
    start = time.perf_counter()
    job = _start(cfg, progress)
    work = WorkDir(job.out.with_name(job.out.name + ".work"), job.settings, job.out)
    stages = [s for s in cfg.stages if job.trainer is not None or s not in FINE_TUNED]
    records = work.finished_records(cfg.stages)
    resume_from = work.resume_point(stages, records)
    if resume_from not in (None, "baseline", "huffman"):
        job.restore(load_checkpoint(work.path / f"{resume_from}.pt"))
        log.warning("resuming after stage %s, kept in %s", resume_from, work.path)
    for stage in stages[stages.index(resume_from) + 1 if resume_from else 0 :]:
        t0 = time.perf_counter()
        record, state = STAGE_RUNS[stage](job)
        if stage != "huffman":
            record["top1"] = job.top1(f"{stage}: testing")
        if state is not None:
            state.update(job.state())
        record["sparsity"] = prune.sparsity_report(job.model)["sparsity"]
        record["seconds"] = time.perf_counter() - t0
        records[stage] = record
        work.finish([records[s] for s in STAGES if s in records], record, state)
    result = _result(records, job.out, work.path)
    result["seconds"] = time.perf_counter() - start
    if job.trainer is not None:
        skipped = sorted(job.trainer.skipped.items())
        result["skipped"] = [{"path": p, "error": e} for p, e in skipped]
    return result


def _result(records: dict[str, dict], out: Path, work: Path) -> dict:
    ordered = [records[s] for s in STAGES if s in records]
    baseline = ordered[0]["size_bytes"]
    for r in ordered:
        r["size_mib"] = r["size_bytes"] / 2**20
        r["ratio"] = baseline / r["size_bytes"] if r["size_bytes"] else None
    result = {"stages": ordered, "work_dir": str(work), "seconds": None}
    if "huffman" in records and out.exists():
        contents = encode.read_tc3d(out)
        result.update(
            file=str(out),
            file_bytes=out.stat().st_size,
            ratio=baseline / out.stat().st_size,
            layers=contents.layer_stats,
        )
    else:
        last = ordered[-1]
        result.update(file=None, file_bytes=None, ratio=baseline / last["size_bytes"], layers=[])
    return result


def _pack_layer(layer: encode.SharedLayer) -> dict:
    return {
        "name": layer.name,
        "shape": torch.tensor(layer.shape),
        "kind": layer.kind,
        "codebook": torch.from_numpy(layer.codebook.copy()),
        "positions": torch.from_numpy(layer.positions),
        "indices": torch.from_numpy(layer.indices),
    }


def _unpack_layer(d: dict) -> dict:
    return {
        "name": d["name"],
        "shape": tuple(d["shape"].tolist()),
        "kind": d["kind"],
        "codebook": d["codebook"].numpy(),
        "positions": d["positions"].numpy(),
        "indices": d["indices"].numpy(),
    }


def _reload(path: Path, device) -> LoadedModel:
    loaded = load_model_file(path)
    prepare_model(loaded.model, device)
    return loaded


def write_compressed(
    out: Path, model: nn.Module, layers: list[encode.SharedLayer], loaded: LoadedModel, info: dict
) -> dict:
    """The ``.tc3d`` file: metadata to rebuild model and preprocessing, the int8 calibration
    of the compressed weights (when training videos are reachable), layers, the rest raw."""
    shared_names = {x.name for x in layers}
    dense = {k: v for k, v in model.state_dict().items() if k not in shared_names}
    meta = model_metadata(loaded.model, loaded.classes, loaded.clip)
    meta["source"] = Path(info.get("model", "")).name
    if loaded.anomaly_scorer is not None:  # an anomaly model's scorer travels in the header
        meta["anomaly_scorer"] = loaded.anomaly_scorer
    calibration = compress_calibration(model, loaded, info)
    if calibration is not None:
        meta[CALIBRATION_KEY] = calibration.to_dict()
    return encode.write_tc3d(out, meta, layers, dense)
