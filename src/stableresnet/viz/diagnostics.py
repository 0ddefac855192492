"""Figures of the stability diagnostics (``stableresnet.diagnostics``).

Every function takes plain arrays (rebuildable from the CSV records the CLI writes) and an
optional Axes, draws on it, and returns the Figure; none calls ``plt.show()``. Figures are
built with ``matplotlib.figure.Figure`` directly, so no GUI backend is ever touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle


def _axes(ax: Axes | None, size=(5.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def plot_eigenvalues(eigenvalues: Mapping[str, np.ndarray], step_size: float, ax: Axes | None = None,
                     title: str | None = None) -> Figure:
    """Field Jacobian eigenvalues λ of ∂F/∂y in the complex plane with forward Euler's stability region.

    Parameters
    ----------
    eigenvalues : label -> complex array of any shape (e.g. (n_samples, width) for one layer).
    step_size : h; Euler's region |1 + hλ| ≤ 1 (Proposition 1) is the disc of radius 1/h centred
        at −1/h. Other integrators have other regions (``diagnostics.layer_spectra`` measures
        their amplification directly).
    """
    figure, ax = _axes(ax)
    ax.add_patch(Circle((-1 / step_size, 0), 1 / step_size, facecolor="tab:green", alpha=0.12,
                        edgecolor="tab:green", label=f"Euler |1 + hλ| ≤ 1, h = {step_size:g}"))
    finite_points = [np.zeros(1, complex)]
    for label, values in eigenvalues.items():
        values = np.asarray(values).ravel()
        values = values[np.isfinite(values)]
        finite_points.append(values)
        ax.scatter(values.real, values.imag, s=6, alpha=0.5, label=label)
    points = np.concatenate(finite_points)
    # Frame both the eigenvalues and the disc, so neither is clipped.
    left = min(points.real.min(), -2 / step_size)
    right = max(points.real.max(), 0.0)
    half_height = max(np.abs(points.imag).max(), 1 / step_size)
    pad = 0.08 * max(right - left, 2 * half_height)
    ax.set_xlim(left - pad, right + pad)
    ax.set_ylim(-half_height - pad, half_height + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(title or "eigenvalues of ∂F/∂y")
    ax.legend(fontsize="small", loc="best")
    return figure


def plot_layer_curves(curves: Mapping[str, np.ndarray], ylabel: str, ax: Axes | None = None,
                      reference: float | None = 1.0, log: bool = False, title: str | None = None,
                      first_layer: int = 0) -> Figure:
    """One line per label of a per-layer quantity (e.g. largest block amplification or perturbation growth).

    Parameters
    ----------
    curves : label -> (n_layers,) values for layers first_layer, first_layer + 1, ...
    reference : a dashed horizontal line (1 for both the stability bound and no growth); None for none.
    log : logarithmic y axis (growth spans orders of magnitude at h = 1).
    """
    figure, ax = _axes(ax)
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(first_layer, first_layer + len(values)), values, marker=".", ms=3, label=label)
    if reference is not None:
        ax.axhline(reference, color="0.3", ls="--", lw=0.8)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return figure


def plot_amplification(max_amplification: Mapping[str, np.ndarray], ax: Axes | None = None) -> Figure:
    """Largest |eig(∂Φ_i/∂y)| of each block map Φ_i; stability asks for ≤ 1 (dashed).

    For forward Euler this is Proposition 1's max |1 + hλ(∂F_i/∂y)|.
    """
    return plot_layer_curves(max_amplification, "max |eig ∂Φ/∂y|", ax=ax, title="Block amplification per layer")


def plot_growth(ratio: Mapping[str, np.ndarray], ax: Axes | None = None) -> Figure:
    """‖y_ε(t) − y(t)‖ / ε per layer t (eq. 4), log scale; no growth is 1 (dashed)."""
    return plot_layer_curves(ratio, "‖y_ε(t) − y(t)‖ / ε", ax=ax, log=True, title="Perturbation growth")


def plot_robust_accuracy(levels: Sequence[float], accuracy: Mapping[str, np.ndarray], xlabel: str,
                         ax: Axes | None = None, title: str | None = None) -> Figure:
    """Accuracy against noise level or attack radius, one line per label."""
    figure, ax = _axes(ax)
    for label, values in accuracy.items():
        ax.plot(levels, values, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return figure


def plot_diagnosis(spectra, eigenvalues, growth, robustness) -> dict[str, Figure]:
    """Every figure of ``stableresnet diagnose``, drawn from its tidy tables alone (the CSV files it writes).

    Returns name -> Figure: ``amplification``, ``growth``, ``robustness`` (one panel per perturbation) and
    ``eigenvalues_BLOCK_hH`` for each block and h.
    """
    def label(key):
        return f"{key[0]} h={key[1]:g}"

    figures = {
        "amplification": plot_amplification(
            {label(k): g.sort_values("layer")["max_amplification"].to_numpy()
             for k, g in spectra.groupby(["block", "step_size"])}),
        "growth": plot_growth(
            {label(k) + " (max)": g.sort_values("layer")["max_ratio"].to_numpy()
             for k, g in growth.groupby(["block", "step_size"])}),
    }
    for (block, h), group in eigenvalues.groupby(["block", "step_size"]):
        values = {f"layer {layer}": (g["real"] + 1j * g["imag"]).to_numpy() for layer, g in group.groupby("layer")}
        figures[f"eigenvalues_{block}_h{h:g}"] = plot_eigenvalues(values, h, title=f"{block}, h = {h:g}")
    kinds = list(dict.fromkeys(robustness["perturbation"]))
    panel = Figure(figsize=(4.5 * len(kinds), 4.0), layout="constrained")
    for ax, kind in zip(panel.subplots(1, len(kinds), squeeze=False)[0], kinds):
        rows = robustness[robustness["perturbation"] == kind]
        curves = {label(k): g.sort_values("level")["accuracy"].to_numpy() for k, g in rows.groupby(["block", "step_size"])}
        levels = np.sort(rows["level"].unique())
        plot_robust_accuracy(levels, curves, "σ (standardised units)" if kind == "noise" else "ε (standardised L∞)",
                             ax=ax, title=kind)
    figures["robustness"] = panel
    return figures
