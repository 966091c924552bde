"""Matplotlib figures shared by the chapters: training curves, trade-offs, bars, histograms.

Introduced in 01_baseline. Every function returns the ``Figure`` so a notebook can show or
save it; axes are labelled with units.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from course_lib.report import Result, pareto_front


def use_course_style() -> None:
    """Set moderate figure size and dpi (keeps notebooks small) and light grids."""
    matplotlib.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def plot_history(history: dict[str, list[float]], title: str = "") -> plt.Figure:
    """Plot loss and accuracy per epoch, training and validation side by side.

    Raises:
        ValueError: the history has no ``loss`` entry.
    """
    if "loss" not in history:
        raise ValueError(f"history has no 'loss'; keys: {sorted(history)}")
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            if prefix + key in history:
                label = "validation" if prefix else "training"
                ax.plot(epochs, history[prefix + key], style, ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.legend()
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy (fraction)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_tradeoff(
    results: Sequence[Result],
    x: str = "tflite_gzip_bytes",
    y: str = "accuracy",
    xlabel: str = "gzip size of the .tflite (bytes)",
    ylabel: str = "test accuracy (%)",
    logx: bool = True,
    title: str = "",
    labels: str = "all",
) -> plt.Figure:
    """Scatter Results on two fields (default: gzip size vs accuracy); mark the Pareto front.

    The front joins the variants that no other variant beats on both axes (smaller x and
    higher y). Accuracy is shown in percent. ``labels`` names ``"all"`` points, only the
    ``"front"`` (for crowded plots), or ``"none"``.

    Raises:
        ValueError: no results, a field that the Results do not have, or a bad ``labels``.
    """
    if labels not in ("all", "front", "none"):
        raise ValueError(f"labels must be 'all', 'front' or 'none', got {labels!r}")
    if not results:
        raise ValueError("no results to plot")
    records = [r.to_dict() for r in results]
    for name in (x, y):
        if any(name not in rec for rec in records):
            raise ValueError(f"not every result has the field {name!r}")
    xs = [float(rec[x]) for rec in records]
    ys = [float(rec[y]) * (100 if y == "accuracy" else 1) for rec in records]
    fig, ax = plt.subplots()
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    front = pareto_front(xs, ys)
    named = range(len(records)) if labels == "all" else front if labels == "front" else []
    for i in named:
        ax.annotate(
            records[i]["variant"],
            (xs[i], ys[i]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.plot(
        [xs[i] for i in front],
        [ys[i] for i in front],
        "-",
        color="tab:orange",
        label="Pareto front",
        zorder=2,
    )
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_bars(
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    title: str = "",
    annotate: str = "{:.1f}",
) -> plt.Figure:
    """Bar chart with each bar's value written on top.

    Raises:
        ValueError: labels and values differ in length.
    """
    if len(labels) != len(values):
        raise ValueError(f"labels and values differ in length: {len(labels)} vs {len(values)}")
    fig, ax = plt.subplots()
    bars = ax.bar(list(labels), list(values), color="tab:blue")
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            annotate.format(value),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_weight_histogram(
    weights: dict[str, np.ndarray], bins: int = 100, logy: bool = True, title: str = ""
) -> plt.Figure:
    """Histogram of weight values, one panel per named tensor.

    Raises:
        ValueError: no tensors given.
    """
    if not weights:
        raise ValueError("no weight tensors to plot")
    fig, axes = plt.subplots(1, len(weights), squeeze=False)
    for ax, (name, w) in zip(axes[0], weights.items(), strict=True):
        ax.hist(np.ravel(w), bins=bins, color="tab:blue")
        ax.set_xlabel(f"{name} weight value")
        ax.set_ylabel("count")
        if logy:
            ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_images(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    n: int = 10,
    title: str = "",
) -> plt.Figure:
    """Show the first example of each of the first ``n`` classes, labelled.

    Raises:
        ValueError: ``n`` < 1, or x and y differ in length.
    """
    if n < 1 or len(x) != len(y):
        raise ValueError(f"need n >= 1 and len(x) == len(y); got n={n}, {len(x)} vs {len(y)}")
    labels = sorted(set(np.asarray(y).tolist()))[:n]
    fig, axes = plt.subplots(1, len(labels), figsize=(1.1 * len(labels), 1.5), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        index = int(np.flatnonzero(y == label)[0])
        ax.imshow(np.squeeze(x[index]), cmap="gray_r")
        ax.set_title(class_names[label], fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
