"""Video features and ASLAN-style action similarity (paper Section V-A/B, Table VII).

The paper uses T-C3D as a feature extractor for actions it never saw: the outputs of res5b
(last convolutional block), pool5 (its global average) and prob (softmax) are taken for every
clip of a video, averaged over the clips, and L2-normalised. A pair of videos is then described
by a handful of distances between their features, and a linear SVM decides same/different
under 10-fold cross-validation, reporting ROC AUC and accuracy (0-100) per layer and for all
layers together.

An average over clips keeps what a video shows, not how it changes. tc3d's headline figure
uses one more descriptor, ``pool5+std``: pool5's mean and its standard deviation over the
clips side by side, so that two actions with the same average features but another rhythm
differ. Chosen on a held-out pairs set made with another seed than the one it is reported on
(docs/RESULTS.md); the paper's descriptors are still reported beside it.

The features come from the model's engine (:mod:`tc3d.infer.features`), at fp32, bf16 or
int8.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tc3d.figures import save_figure
from tc3d.infer.features import (  # noqa: F401 - the descriptors' names, as they were here
    DESCRIPTORS,
    DYNAMICS,
    LAYERS,
    FeatureError,
    Features,
    check_layers,
    clip_features,
    l2_normalise,
)
from tc3d.progress import Progress

if TYPE_CHECKING:
    from tc3d.api import Model

log = logging.getLogger(__name__)


class SimilarityError(FeatureError):
    """Bad pairs file or features; str(e) is one line."""


# ---------------------------------------------------------------- pairs and the SVM protocol


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: int
    fold: int  # 1-based


def read_pairs(path: str | Path, folds: int = 10) -> list[Pair]:
    """``video_a video_b same(0|1) [fold]`` lines. A fold column wins over ``folds``;
    without one, pair i goes to fold ``i % folds + 1`` (deterministic, balanced)."""
    path = Path(path)
    rows = []
    for lineno, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = raw.split()
        if not parts or parts[0].startswith("#"):
            continue
        if (
            len(parts) not in (3, 4)
            or parts[2] not in ("0", "1")
            or (len(parts) == 4 and not parts[3].isdigit())
        ):
            raise SimilarityError(
                f"{path}:{lineno}: expected 'video_a video_b same(0|1) [fold]', got {raw.strip()!r}"
            )
        rows.append((parts[0], parts[1], int(parts[2]), int(parts[3]) if len(parts) == 4 else None))
    if not rows:
        raise SimilarityError(f"{path}: no pairs")
    with_fold = [r[3] is not None for r in rows]
    if any(with_fold) and not all(with_fold):
        raise SimilarityError(f"{path}: some lines have a fold column and some do not")
    if all(with_fold):
        if min(r[3] for r in rows) < 1:
            raise SimilarityError(f"{path}: folds are numbered from 1")
        return [Pair(*r) for r in rows]
    if folds < 2:
        raise SimilarityError(f"--folds must be at least 2, got {folds}")
    return [Pair(a, b, s, i % folds + 1) for i, (a, b, s, _) in enumerate(rows)]


def pair_vector(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distances between two L2-normalised features, as ASLAN baselines use: cosine
    similarity, L1, L2, chi-square and Hellinger on the absolute values, and correlation."""
    ax, ay = np.abs(x), np.abs(y)
    cos = float(np.dot(x, y))
    l1 = float(np.abs(x - y).sum())
    l2 = float(np.linalg.norm(x - y))
    chi = float(((ax - ay) ** 2 / np.maximum(ax + ay, 1e-12)).sum())
    hell = float(np.sqrt(ax * ay).sum())
    xc, yc = x - x.mean(), y - y.mean()
    corr = float(np.dot(xc, yc) / max(np.linalg.norm(xc) * np.linalg.norm(yc), 1e-12))
    return np.array([cos, l1, l2, chi, hell, corr])


def cross_validate(vectors: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Linear SVM, one fold held out at a time: AUC and accuracy (0-100) averaged over the
    folds, their standard deviations, and the held-out decision values of every pair."""
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    decision = np.zeros(len(same))
    aucs, accs = [], []
    for f in np.unique(folds):
        test = folds == f
        train = ~test
        if len(np.unique(same[train])) < 2:
            raise SimilarityError(f"fold {f}: the other folds hold only one kind of pair")
        svm = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000))
        svm.fit(vectors[train], same[train])
        d = svm.decision_function(vectors[test])
        decision[test] = d
        accs.append(100.0 * float(((d > 0).astype(int) == same[test]).mean()))
        if len(np.unique(same[test])) == 2:
            aucs.append(100.0 * float(roc_auc_score(same[test], d)))
    return {
        "auc": float(np.mean(aucs)) if aucs else None,
        "auc_std": float(np.std(aucs)) if aucs else None,
        "accuracy": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "decision": decision,
    }


def similarity(features: Features, pairs: Sequence[Pair]) -> dict:
    """The 10-fold protocol per descriptor of ``features`` and for the paper's three layers
    combined (their distances side by side); the headline figures are :data:`DYNAMICS`'s."""
    index = {v: i for i, v in enumerate(features.videos)}
    usable = [p for p in pairs if p.a in index and p.b in index]
    if len(usable) < len(pairs):
        log.warning("%d pairs dropped: a video failed or is missing", len(pairs) - len(usable))
    if not usable:
        raise SimilarityError("no pair has both videos readable")
    same = np.array([p.same for p in usable])
    folds = np.array([p.fold for p in usable])
    per_layer, blocks = {}, {}
    for layer, feats in features.layers.items():
        v = np.stack([pair_vector(feats[index[p.a]], feats[index[p.b]]) for p in usable])
        blocks[layer] = v
        per_layer[layer] = cross_validate(v, same, folds)
    combined = cross_validate(np.concatenate([blocks[k] for k in LAYERS], axis=1), same, folds)
    figures = ("auc", "accuracy", "auc_std", "accuracy_std")
    return {
        **{m: per_layer[DYNAMICS][m] for m in figures},
        "descriptor": DYNAMICS,
        "folds": int(len(np.unique(folds))),
        "pairs": len(usable),
        "same": int(same.sum()),
        "layers": {k: {m: v[m] for m in figures} for k, v in per_layer.items()},
        "combined": {m: combined[m] for m in figures},  # the paper's: res5b, pool5, prob
        "_roc": {
            "same": same,
            **{k: v["decision"] for k, v in per_layer.items()},
            "combined": combined["decision"],
        },  # fmt: skip
    }


def plot_roc(roc: dict, out: str | Path, title: str = "") -> Path:
    """ROC curves of every layer and the combination (pooled held-out decisions); atomic."""
    from sklearn.metrics import roc_auc_score, roc_curve

    def draw(fig, ax) -> None:
        for name, d in roc.items():
            if name == "same":
                continue
            fpr, tpr, _ = roc_curve(roc["same"], d)
            auc = 100 * roc_auc_score(roc["same"], d)
            ax.plot(fpr, tpr, lw=1.4, label=f"{name} ({auc:.1f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(title or "same/different action ROC (pooled folds)", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)

    return save_figure(out, draw, (4.2, 4.0))


def run_similarity(
    model: Model,
    pairs_file: str | Path,
    videos_dir: str | Path,
    folds: int = 10,
    roc_png: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """``tc3d similarity``: every descriptor of every video in the pairs, then the SVM
    protocol (:func:`similarity`)."""
    start = time.perf_counter()
    pairs = read_pairs(pairs_file, folds)
    names = sorted({v for p in pairs for v in (p.a, p.b)})
    root = Path(videos_dir)
    feats = model.feature_set([root / n for n in names], DESCRIPTORS, names, progress)
    result = similarity(feats, pairs)
    roc = result.pop("_roc")
    result["videos"] = len(feats.videos)
    result["failed"] = feats.failed
    result["roc"] = str(plot_roc(roc, roc_png)) if roc_png else None
    result["seconds"] = time.perf_counter() - start
    return result
