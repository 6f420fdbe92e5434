"""What a ``tc3d train`` run is: its flags (:class:`TrainConfig`), the two recipes that set their
defaults, the learning-rate schedule and where the run starts from (``--init``, width, crop).

Plain data and pure functions: the CLI, the demo and compression's fine-tuning read them
without importing the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tc3d.errors import TC3DError
from tc3d.training.init_weights import model_geometry


class TrainError(TC3DError, RuntimeError):
    pass


DEFAULT_INIT = "motion"  # the shipped pretrained backbone (tc3d models)

# Fine-tuning from the shipped ``motion`` backbone on small data: the defaults. Measured in
# docs/RESULTS.md ("Fine-tuning recipe"): AdamW at a low learning rate, no flips (a mirror
# swaps left and right), weighted fusion (the only shared-weight fusion that learns order).
FINETUNE = dict(
    optimizer="adamw",
    lr=5e-4,
    momentum=0.9,
    weight_decay=0.05,
    iters=1000,
    lr_steps=None,  # 75% and 92% of iters
    warmup=20,
    dropout=0.5,
    flip=False,
    fusion="weighted",
    freeze=None,  # None: FROZEN_STAGES from a pretrained init, 0 from scratch
    head_lr_scale=None,  # None: HEAD_LR_SCALE from a pretrained init, 1 from scratch
)
FROZEN_STAGES = 1  # the stem keeps the pretrained weights; layer1-4 adapt (look too)
HEAD_LR_SCALE = 40.0  # the classifier and fusion start from nothing: they learn faster
# The paper's UCF101 recipe (Section V-B), fine-tuning from Kinetics on a GPU: --recipe paper.
PAPER = dict(
    optimizer="sgd",
    lr=0.005,
    momentum=0.9,
    weight_decay=5e-4,
    iters=20000,
    lr_steps=[8000, 15000],
    warmup=0,
    dropout=0.8,
    flip=True,
    fusion="avg",
    crop=112,
    freeze=0,
    head_lr_scale=1.0,
)
RECIPES = {"finetune": FINETUNE, "paper": PAPER}
OPTIMIZERS = ("sgd", "adamw")
# tc3d anomaly train: a short event in a long video needs more segments, and max fusion lets
# one of them decide (docs/RESULTS.md, Table VI analog). The default objective is ranking over
# persistent local change (tc3d.training.ranking): on realistic nuisance video the classifier
# ranks normal videos as high as anomalous ones (docs/RESULTS.md, "Anomaly detection").
ANOMALY = dict(segments=6, fusion="max", objective="ranking")
OBJECTIVES = ("classify", "ranking")


@dataclass
class TrainConfig:
    """All ``tc3d train`` flags; defaults are the fine-tuning recipe (``FINETUNE``).

    ``width`` and ``crop`` left at None follow the ``init`` model (0.25 and 96 for ``motion``;
    1.0 and 112 from scratch). ``init`` None is ``motion``, or scratch when ``width`` is given
    and differs from motion's (see :func:`starting_point`).
    """

    data: str
    out: str
    format: str | None = None
    anomaly: bool = False  # ucfcrime as the binary normal-vs-anomalous task (tc3d anomaly train)
    objective: str = "classify"  # ranking: an anomaly scorer over local change (anomaly only)
    split: int = 1
    splits: str | None = None
    arch: str = "res3d18"
    width: float | None = None
    segments: int = 3
    frames: int = 8
    sampling: str = "consecutive"
    offset: int = 2
    fusion: str = FINETUNE["fusion"]
    unshared: bool = False
    crop: int | None = None
    flip: bool = FINETUNE["flip"]
    batch_size: int = 8
    optimizer: str = FINETUNE["optimizer"]
    lr: float = FINETUNE["lr"]
    momentum: float = FINETUNE["momentum"]
    weight_decay: float = FINETUNE["weight_decay"]
    iters: int = FINETUNE["iters"]
    lr_steps: list[int] | None = None  # None: 75% and 92% of iters
    warmup: int = FINETUNE["warmup"]
    dropout: float = FINETUNE["dropout"]
    freeze: int | None = None  # backbone stages kept fixed; None: FINETUNE's, 0 from scratch
    head_lr_scale: float | None = None  # classifier + fusion lr / lr; None: as freeze
    init: str | None = None
    workers: int = 2
    seed: int = 0
    resume: bool = False
    amp: str | None = None
    eval_every: int = 1000
    eval_batch_size: int = 4
    device: str = "auto"


def make_config(recipe: str = "finetune", anomaly: bool = False, **flags) -> TrainConfig:
    """The config of a run: ``recipe``'s values, then the anomaly task's (``ANOMALY``, on
    ``ucfcrime``), then every flag that is not None, so a flag given always wins."""
    values = dict(RECIPES[recipe])
    if anomaly:
        values.update(ANOMALY)
    values.update({k: v for k, v in flags.items() if v is not None})
    if anomaly:
        values.update(format="ucfcrime", anomaly=True)
    if values.get("objective", "classify") not in OBJECTIVES:
        raise TrainError(f"--objective must be one of {', '.join(OBJECTIVES)}")
    if values.get("objective") == "ranking" and not anomaly:
        raise TrainError("--objective ranking is for 'tc3d anomaly train'")
    return TrainConfig(**values)


def lr_steps(cfg: TrainConfig) -> list[int]:
    if cfg.lr_steps is not None:
        return list(cfg.lr_steps)
    return [int(cfg.iters * 0.75), int(cfg.iters * 0.92)]


def learning_rate(cfg: TrainConfig, iteration: int) -> float:
    """Multistep decay by 10× at each of ``lr_steps``, after an optional linear warm-up."""
    lr = cfg.lr * 0.1 ** sum(iteration >= s for s in lr_steps(cfg))
    if cfg.warmup and iteration < cfg.warmup:
        lr *= (iteration + 1) / cfg.warmup
    return lr


def starting_point(
    init: str | None, width: float | None, crop: int | None
) -> tuple[str, float, int, str | None]:
    """``(init, width, crop, note)`` of a run: unset width and crop follow the init model.

    With no ``init`` given, a ``width`` other than the shipped backbone's cannot start from it:
    the run starts from scratch and ``note`` says so (the CLI prints it on stderr).
    """
    note = None
    given = init
    init = DEFAULT_INIT if given is None else given
    init_width, init_crop = (None, None) if init == "scratch" else model_geometry(init)
    if given is None and width is not None and init_width is not None and width != init_width:
        init = "scratch"
        note = (
            f"--width {width:g} differs from the pretrained '{DEFAULT_INIT}' model's "
            f"{init_width:g}: training from scratch (give --init to choose)"
        )
    if init == "scratch":
        return init, width or 1.0, crop or 112, note
    return init, width or init_width or 1.0, crop or init_crop or 112, note


def settle(cfg: TrainConfig) -> tuple[TrainConfig, str | None]:
    """``cfg`` with what the flags left open decided (init, width, crop, freeze, head lr): the
    config a run records in ``config.json``, and the note of :func:`starting_point`."""
    init, width, crop, note = starting_point(cfg.init, cfg.width, cfg.crop)
    pretrained = init != "scratch"
    freeze = cfg.freeze if cfg.freeze is not None else (FROZEN_STAGES if pretrained else 0)
    head = cfg.head_lr_scale
    head = head if head is not None else (HEAD_LR_SCALE if pretrained else 1.0)
    settled = replace(cfg, init=init, width=width, crop=crop, freeze=freeze, head_lr_scale=head)
    return settled, note
