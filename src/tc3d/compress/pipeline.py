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

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.compress import prune, share
from tc3d.datasets.formats import load_dataset
from tc3d.device import prepare_model, resolve_device, rng_state, set_rng_state, set_threads
from tc3d.errors import TC3DError
from tc3d.infer.calibration import KEY as CALIBRATION_KEY
from tc3d.infer.calibration import compress_calibration
from tc3d.infer.evaluate import check_classes, evaluate
from tc3d.io import atomic_save, atomic_write_text
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.checkpoint import LoadedModel, load_checkpoint, load_model_file, model_metadata
from tc3d.training.train import TrainConfig, make_loader, make_optimizer, train_one_epoch

log = logging.getLogger(__name__)

STAGES = ("baseline", "sparse", "dense", "prune", "quantize", "huffman")
FINE_TUNED = ("sparse", "dense")  # stages that exist only to be fine-tuned
DENSE_EPOCHS = 2
FINAL_EPOCHS = 8  # prune stage: more epochs at the final sparsity (prune.plan)
QUANTIZE_EPOCHS = 2

Progress = Callable[[str], object]  # description -> context manager yielding update(done, total)


class CompressError(TC3DError, RuntimeError):
    pass


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


class _Trainer:
    """Fine-tuning with the training code's data loader, step and optimizer."""

    def __init__(self, cfg: CompressConfig, ckpt: dict, loaded: LoadedModel, device, progress):
        self.cfg, self.device, self.progress = cfg, device, progress
        # the model's own training recipe (optimizer, weight decay), at a lower learning rate
        saved = ckpt.get("train_config") or {}
        kept = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
        base = TrainConfig(**{**kept, "data": cfg.data or "", "out": ""})
        self.base_lr = cfg.lr if cfg.lr is not None else base.lr / 10
        self.train_cfg = replace(base, lr=self.base_lr, batch_size=cfg.batch_size)
        self.split = load_dataset(cfg.data, cfg.format, cfg.split, cfg.splits)
        check_classes(loaded.classes, self.split.classes)
        if not self.split.train:
            raise CompressError(f"{cfg.data}: no training videos to fine-tune on")
        self.spec = loaded.clip
        self.loader = make_loader(
            self.split.train, self.spec, cfg.batch_size, cfg.workers, cfg.seed, device
        )
        self.sampler = self.loader.sampler
        self.epoch = 0
        self.skipped: dict[str, str] = {}

    def state_dict(self) -> dict:
        """Where the data order and the dropout draws stand, so a resumed run continues exactly.

        Items are drawn from the sampler's epoch number (each item carries its own
        augmentation seed); dropout draws from the global generator; the loader's own
        generator seeds its workers.
        """
        return {
            "epoch": self.epoch,
            "skipped": dict(self.skipped),
            "rng": rng_state(),
            "loader_rng": self.loader.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.skipped.update(state["skipped"])
        set_rng_state(state["rng"])
        self.loader.generator.set_state(state["loader_rng"])

    @property
    def iters_per_epoch(self) -> int:
        return max(0, round(self.cfg.epochs * self.sampler.batches_per_epoch))

    def optimizer(self, params: list, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(nn.ParameterList(params), replace(self.train_cfg, lr=lr))

    def run(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        iters: int,
        description: str,
        after_backward: Callable[[], None] = lambda: None,
        after_step: Callable[[], None] = lambda: None,
    ) -> None:
        if iters <= 0:
            return
        # Pruning or sharing changes every layer's output statistics at once; with momentum
        # 0.1 the BatchNorm running estimates need ~20 steps to forget the old network, more
        # than a short fine-tuning has. Restarted as a plain average over this run's batches,
        # they match the weights after a few steps.
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        # masks and shared weights act between backward and update, and after the update
        hooks = [
            optimizer.register_step_pre_hook(lambda *_: after_backward()),
            optimizer.register_step_post_hook(lambda *_: after_step()),
        ]
        done = 0
        try:
            with self.progress(description) as update:
                while done < iters:
                    self.sampler.set_epoch(self.epoch)
                    self.epoch += 1
                    steps = train_one_epoch(
                        model, optimizer, self.loader, self.device, self.skipped, first=done
                    )
                    for step in steps:
                        done = step.iteration
                        update(done, iters, {"loss": step.loss})
                        if done >= iters:
                            break
        finally:
            for hook in hooks:
                hook.remove()
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()

    def evaluate(self, loaded: LoadedModel, description: str) -> float:
        with self.progress(description) as update:
            result = evaluate(
                loaded, self.split.test, self.device, workers=self.cfg.workers, progress=update
            )
        for e in result["skipped"]:  # unreadable test videos: left out of top-1, reported
            self.skipped[e["path"]] = e["error"]
        return result["top1"]

    def prune_progressively(
        self, model: nn.Module, targets: dict[str, float], stage: str, final_epochs: int = 0
    ) -> dict[str, torch.Tensor]:
        """Follow :func:`prune.plan`: masks are remade when the sparsity rises, held otherwise."""
        optimizer = self.optimizer(list(model.parameters()), self.base_lr)
        masks: dict[str, torch.Tensor] = {}
        phases = prune.plan(targets, final_epochs)
        steps = prune.epochs_to_reach(targets)
        previous = None
        for i, (now, lr_scale, epochs) in enumerate(phases):
            if now != previous:
                masks = prune.make_masks(model, now)
                prune.apply_masks(model, masks)
                prune.mask_optimizer_state(optimizer, model, masks)
                previous = now
            for group in optimizer.param_groups:
                group["lr"] = self.base_lr * lr_scale
            where = f"{i + 1}/{steps}" if i < steps else "final"
            self.run(
                model,
                optimizer,
                epochs * self.iters_per_epoch,
                f"{stage} {where}: conv {now['conv']:.2f} fc {now['fc']:.2f} "
                f"lr {self.base_lr * lr_scale:.0e}",
                after_backward=lambda m=masks: prune.mask_gradients(model, m),
                after_step=lambda m=masks: prune.apply_masks(model, m),
            )
        return masks


def _settings(cfg: CompressConfig) -> dict:
    source = Path(cfg.model).resolve()
    s = asdict(cfg)
    for transient in ("out", "workers", "device", "test_stages"):
        s.pop(transient)
    s["model_mtime"] = source.stat().st_mtime
    s["model"] = str(source)
    return s


def compress(cfg: CompressConfig, progress: Progress) -> dict:
    """Run the stages; returns ``{stages, file, file_bytes, ratio, layers, ...}``: the JSON of
    ``tc3d compress``."""
    start = time.perf_counter()
    out = Path(cfg.out)
    if "huffman" in cfg.stages and out.suffix != ".tc3d":
        raise CompressError(f"--out must end in .tc3d, not {out.name!r}")
    work = out.with_name(out.name + ".work")
    device = resolve_device(cfg.device)
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        set_threads()  # all cores, unless the user asked for fewer
    torch.manual_seed(cfg.seed)
    ckpt = load_checkpoint(cfg.model) if not encode.is_tc3d(cfg.model) else None
    if ckpt is None:
        raise CompressError(f"{cfg.model}: already compressed; give the training checkpoint")
    loaded = load_model_file(cfg.model)
    model = prepare_model(loaded.model, device)
    trainer = _Trainer(cfg, ckpt, loaded, device, progress) if cfg.data else None

    # resume: reuse finished stages of an identical earlier run
    settings = _settings(cfg)
    state_file = work / "stages.json"
    done: list[dict] = []
    if state_file.exists():
        saved = json.loads(state_file.read_text())
        if saved.get("settings") == settings:
            done = [r for r in saved["stages"] if r["stage"] in cfg.stages]
        else:
            log.warning("%s holds a run with other settings: starting afresh", work)
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    records = {r["stage"]: r for r in done}

    def finish(record: dict, state: dict | None = None) -> None:
        if state is not None:
            atomic_save(state, work / f"{record['stage']}.pt")
        records[record["stage"]] = record
        ordered = [records[s] for s in STAGES if s in records]
        atomic_write_text(
            json.dumps({"settings": settings, "stages": ordered}, indent=1), state_file
        )

    stages = [s for s in cfg.stages if trainer is not None or s not in FINE_TUNED]

    def finished(s: str) -> bool:
        if s not in records:
            return False
        if s == "huffman":
            return out.exists()
        return s == "baseline" or (work / f"{s}.pt").exists()

    resume_from = None
    for s in stages:  # stages finish in order: resume after the last one of the unbroken run
        if not finished(s):
            break
        resume_from = s
    masks: dict[str, torch.Tensor] = {}
    shared: share.SharedWeights | None = None
    if resume_from not in (None, "baseline", "huffman"):
        saved = load_checkpoint(work / f"{resume_from}.pt")
        model.load_state_dict(saved["model"])
        masks = {k: v.to(device) for k, v in saved.get("masks", {}).items()}
        if trainer is not None and "trainer" in saved:
            trainer.load_state_dict(saved["trainer"])
        if "shared" in saved:
            layers = [encode.SharedLayer(**_unpack_layer(x)) for x in saved["shared"]]
            shared = share.SharedWeights(model, layers)
        log.warning("resuming after stage %s, kept in %s", resume_from, work)
    skip = stages.index(resume_from) + 1 if resume_from else 0

    def top1(description: str, target: LoadedModel | None = None) -> float | None:
        stage = description.split(":")[0]
        if trainer is None or (cfg.test_stages is not None and stage not in cfg.test_stages):
            return None
        target = target or LoadedModel(model, loaded.classes, loaded.clip, Path(cfg.model))
        return trainer.evaluate(target, description)

    written = None
    for stage in stages[skip:]:
        t0 = time.perf_counter()
        state: dict | None = {}
        if stage == "baseline":
            record = {"stage": stage, "size_bytes": _dense_bytes(model)}
            record["top1"] = top1("baseline: testing")
            state = None
        elif stage == "sparse":
            masks = trainer.prune_progressively(model, prune.SPARSE_TARGETS, "sparse")
            record = {"stage": stage, "size_bytes": _dense_bytes(model)}
            record["top1"] = top1("sparse: testing")
        elif stage == "dense":
            masks = {}
            optimizer = trainer.optimizer(list(model.parameters()), trainer.base_lr / 10)
            iters = DENSE_EPOCHS * trainer.iters_per_epoch
            trainer.run(model, optimizer, iters, "dense: fine-tuning")
            record = {"stage": stage, "size_bytes": _dense_bytes(model)}
            record["top1"] = top1("dense: testing")
        elif stage == "prune":
            if trainer is None:
                masks = prune.make_masks(model, prune.PRUNE_TARGETS)  # one shot
                prune.apply_masks(model, masks)
            else:
                masks = trainer.prune_progressively(
                    model, prune.PRUNE_TARGETS, "prune", FINAL_EPOCHS
                )
            record = {"stage": stage, "size_bytes": _pruned_bytes(model, masks)}
            record["top1"] = top1("prune: testing")
        elif stage == "quantize":
            if not masks:  # no prune stage: keep every non-zero weight
                masks = {n: w.detach() != 0 for n, (_, w) in prune.prunable_layers(model).items()}
            shared = share.SharedWeights(model, share.share_model(model, masks))
            if trainer is not None:
                optimizer = trainer.optimizer(
                    list(shared.codebooks.values()) + shared.other_parameters(),
                    trainer.base_lr / 10,
                )
                trainer.run(
                    model,
                    optimizer,
                    QUANTIZE_EPOCHS * trainer.iters_per_epoch,
                    "quantize: centroid fine-tuning",
                    after_backward=shared.accumulate_gradients,
                    after_step=shared.write_weights,
                )
            record = {"stage": stage, "size_bytes": _quantized_bytes(model, shared.to_layers())}
            record["top1"] = top1("quantize: testing")
            state["shared"] = [_pack_layer(x) for x in shared.to_layers()]
        else:  # huffman
            written = write_compressed(out, model, shared.to_layers(), loaded, settings)
            record = {"stage": stage, "size_bytes": written["file_bytes"]}
            record["top1"] = top1("huffman: testing the .tc3d file", _reload(out, device))
            state = None
        if state is not None:
            state["model"] = model.state_dict()
            state["masks"] = {k: v.cpu() for k, v in masks.items()}
            if trainer is not None:
                state["trainer"] = trainer.state_dict()
        record["sparsity"] = prune.sparsity_report(model)["sparsity"]
        record["seconds"] = time.perf_counter() - t0
        finish(record, state)

    ordered = [records[s] for s in STAGES if s in records]
    baseline = ordered[0]["size_bytes"]
    for r in ordered:
        r["size_mib"] = r["size_bytes"] / 2**20
        r["ratio"] = baseline / r["size_bytes"] if r["size_bytes"] else None
    result = {"stages": ordered, "work_dir": str(work), "seconds": time.perf_counter() - start}
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
    if trainer is not None:
        result["skipped"] = [{"path": p, "error": e} for p, e in sorted(trainer.skipped.items())]
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
    calibration = compress_calibration(model, loaded, info)
    if calibration is not None:
        meta[CALIBRATION_KEY] = calibration.to_dict()
    return encode.write_tc3d(out, meta, layers, dense)
