"""Architecture encodings the predictors learn from: one-hot choices, optional pairwise terms."""

from __future__ import annotations

import numpy as np


def one_hot(archs, choices: int) -> np.ndarray:
    """(N, genes) op indices -> (N, genes · choices) one-hot rows."""
    a = np.asarray(archs)
    genes = a.shape[1]
    x = np.zeros((len(a), genes * choices))
    x[np.arange(len(a))[:, None], np.arange(genes) * choices + a] = 1.0
    return x


def with_pairs(archs, choices: int) -> np.ndarray:
    """One-hot plus every pair of genes' joint choice: what a cell's edges do together
    (NB201's latency is not additive over edges; FBNet's layers mostly are)."""
    a = np.asarray(archs)
    parts = [one_hot(a, choices)]
    genes = a.shape[1]
    for i in range(genes):
        for j in range(i + 1, genes):
            parts.append(one_hot((a[:, i] * choices + a[:, j])[:, None], choices * choices))
    return np.concatenate(parts, axis=1)
