"""Pictures of a search: the Pareto front of latency vs objective, NB201 best-so-far curves."""

from __future__ import annotations

import numpy as np

from lutfarm.plotting import figure


def pareto_front(latency: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both (lower latency, higher objective)."""
    order = np.lexsort((-objective, latency))
    front, best = [], -np.inf
    for i in order:
        if objective[i] > best:
            front.append(i)
            best = objective[i]
    return np.array(front, int)


def pareto_plot(latency, objective, chosen: int | None, budget_ms: float | None, path,
                objective_name: str, title: str) -> None:
    latency, objective = np.asarray(latency), np.asarray(objective)
    fig, ax = figure((6.5, 4.5))
    ax.scatter(latency, objective, s=5, color="0.7", label="evaluated")
    f = pareto_front(latency, objective)
    ax.plot(latency[f], objective[f], color="tab:blue", marker="o", ms=3, label="Pareto front")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    if chosen is not None:
        ax.scatter([latency[chosen]], [objective[chosen]], color="tab:red", s=40, zorder=3,
                   label="winner")
    ax.set_xlabel("latency (ms, from the LUT)")
    ax.set_ylabel(objective_name)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def curves_plot(result, path) -> None:
    fig, ax = figure((6.5, 4.5))
    k = np.arange(1, result.queries + 1)
    for name, curve in result.curves.items():
        ax.plot(k, curve, label=f"{name} ({curve[-1]:.2f})")
    ax.axhline(result.oracle_accuracy, color="k", ls="--", lw=1,
               label=f"oracle {result.oracle_accuracy:.2f}")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"best {result.dataset} test accuracy found (mean of {result.seeds} seeds)")
    ax.set_title(f"NB201 on {result.device}, latency ≤ {result.budget_ms:g} ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
