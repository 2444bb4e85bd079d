"""Accuracy (in % points) as what a search maximises: a one-shot supernet's held-out accuracy (exact for the
supernet, about a second per new subnet on a CPU) or an OFA-style predictor trained on
supernet-scored subnets (microseconds per subnet, its error stated in its file).

``--accuracy FILE`` takes either: a predictor is JSON, a supernet is a torch checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lutfarm.errors import LutfarmError
from lutfarm.predictors.accuracy import MLPPredictor
from lutfarm.search.supernets.oneshot import Checkpoint
from lutfarm.spaces.registry import family_of

PREDICTOR_TARGET = "supernet held-out accuracy"


class AccuracySourceError(LutfarmError, ValueError):
    """An accuracy file that does not fit the search."""


def genes_to_archs(layout) -> Callable[[np.ndarray], list]:
    """A search's integer genes -> the layout's archs (FBNet: the genes are the arch)."""
    if family_of(layout.space) == "elastic":     # genes -> a subnet record
        return layout.from_genes
    return lambda genes: [tuple(int(v) for v in row) for row in np.atleast_2d(genes)]


@dataclass
class AccuracyObjective:
    """accuracy(genes) -> values, vectorised over a population like every search metric."""

    layout: object
    score: Callable[[list], np.ndarray]
    name: str
    source: str                        # "supernet" or "predictor"

    def __call__(self, genes) -> np.ndarray:
        return self.score(genes_to_archs(self.layout)(genes))


def _check_layout(path: Path, have_space: str, have_layout: str, layout) -> None:
    if (have_space, have_layout) != (layout.space, layout.name):
        raise AccuracySourceError(f"{path} is for the {have_space}/{have_layout} space, the "
                                  f"search is on {layout.space}/{layout.name}")


def _is_predictor(path: Path) -> bool:
    if not path.is_file():
        raise AccuracySourceError(f"--accuracy {path}: no such file (a supernet from 'lutfarm "
                                  f"search supernet train' or a predictor from 'lutfarm "
                                  f"predict train accuracy')")
    with open(path, "rb") as f:
        return f.read(1) == b"{"


def accuracy_layout(path: Path):
    """The layout an accuracy file was made for: what a search without a LUT searches."""
    path = Path(path)
    if not _is_predictor(path):
        return Checkpoint.load(path).layout_obj()
    from lutfarm.spaces import get_layout

    meta = MLPPredictor.load(path).meta
    if meta.get("target") != PREDICTOR_TARGET:
        raise AccuracySourceError(f"{path} is not an accuracy predictor trained on supernet "
                                  f"scores (make one with: lutfarm predict train accuracy)")
    layout = get_layout(meta["space"], meta["layout"], meta["classes"])
    return layout.with_resolutions(meta["resolutions"]) if meta.get("resolutions") else layout


def accuracy_objective(path: Path, layout, device: str | None = None) -> AccuracyObjective:
    path = Path(path)
    if _is_predictor(path):
        model = MLPPredictor.load(path)
        _check_layout(path, model.meta.get("space"), model.meta.get("layout"), layout)
        return AccuracyObjective(layout, lambda archs: model.predict(layout.encode(archs)),
                                 "accuracy (predicted from supernet scores)", "predictor")
    ck = Checkpoint.load(path)
    _check_layout(path, ck.space, ck.layout, layout)
    if ck.resolutions and getattr(layout, "resolutions", None):
        extra = sorted(set(layout.resolutions) - set(ck.resolutions))
        if extra:
            raise AccuracySourceError(f"{path} was trained at resolutions {ck.resolutions}; the "
                                      f"search also has {extra}: give --resolutions or retrain")
    scorer = ck.scorer(device)
    return AccuracyObjective(layout, lambda archs: 100.0 * np.array([scorer(a) for a in archs]),
                             "accuracy (supernet, held-out)", "supernet")


def accuracy_data(path: Path, layout) -> tuple:
    """(training, held-out, data spec): the images the accuracy file's numbers come from,
    split as its supernet's training split them, to train subnets stand-alone against."""
    path = Path(path)
    if not _is_predictor(path):
        ck = Checkpoint.load(path)
        return (*ck.datasets(), ck.data)
    from lutfarm.search.supernets.data import load_images, split

    meta = MLPPredictor.load(path).meta
    if not meta.get("data"):
        raise AccuracySourceError(f"{path} does not say which data its supernet saw; retrain "
                                  f"it with this version (lutfarm predict train accuracy)")
    held_out, seed = meta.get("split", (0.2, 0))
    data = load_images(meta["data"], layout.input_size)
    return (*split(data, held_out, seed), meta["data"])


def train_accuracy_predictor(ck: Checkpoint, samples: int = 500, epochs: int = 300,
                             seed: int = 0, device: str | None = None,
                             on_scored: Callable[[int, int], None] | None = None) -> MLPPredictor:
    """OFA's recipe: score ``samples`` random subnets with the supernet, fit the 3 x 400 MLP
    with an L1 loss around the mean accuracy on 80 %, report the other 20 %, refit on all."""
    from lutfarm.lut.metrics import rank_metrics

    scorer = ck.scorer(device)
    net = scorer.net
    rng = np.random.default_rng(seed)
    archs = []
    seen = set()
    for _ in range(samples * 20):
        a = net.sample(rng)
        if repr(a) not in seen:
            seen.add(repr(a))
            archs.append(a)
        if len(archs) == samples:
            break
    acc = []
    for i, a in enumerate(archs):
        acc.append(scorer(a))
        if on_scored:
            on_scored(i + 1, len(archs))
    y = np.array(acc) * 100.0
    x = net.layout.encode(archs)
    order = rng.permutation(len(y))
    cut = int(len(y) * 0.8)
    tr, te = order[:cut], order[cut:]
    held = MLPPredictor(x.shape[1], seed=seed).fit(x[tr], y[tr], "l1", epochs)
    pred = held.predict(x[te])
    metrics = {"n_train": int(cut), "n_test": int(len(te)),
               "mae_points": float(np.abs(pred - y[te]).mean()),
               "rmse_points": float(np.sqrt(((pred - y[te]) ** 2).mean())),
               **rank_metrics(pred, y[te])}
    final = MLPPredictor(x.shape[1], seed=seed, meta={
        "space": ck.space, "layout": ck.layout, "classes": ck.classes,
        "resolutions": ck.resolutions,
        "target": PREDICTOR_TARGET, "supernet_epochs": ck.epochs_done, "data": ck.data,
        "split": [ck.settings.get("held_out", 0.2), ck.settings.get("seed", 0)],
        "samples": len(y), "accuracy_range": [float(y.min()), float(y.max())],
        "held_out": metrics})
    return final.fit(x, y, "l1", epochs)
