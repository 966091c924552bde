"""Matplotlib figures shared by the chapters: training curves, trade-offs, bars, histograms.

Introduced in 01_baseline. Every function returns the ``Figure`` so a notebook can show or
save it; axes are labelled with units.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import matplotlib.axes
import matplotlib.axis
import matplotlib.figure
import matplotlib.pyplot as plt
import matplotlib.text
import matplotlib.ticker
import numpy as np
from adjustText import adjust_text
from matplotlib.backend_bases import RendererBase

from course_lib.report import Result, pareto_front

MIN_FONT_PT = 8
"""The smallest text a course figure may use, in points."""


def use_course_style() -> None:
    """Readable, crisp figures: 10-point text (8 at least), retina PNGs in Jupyter, light
    grids; and, in a notebook, :func:`check_figure` on every figure a cell draws (its
    problems are printed to stderr as ``figure check: ...``)."""
    matplotlib.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 100,
            "figure.autolayout": True,  # tight_layout on every draw: labels stay inside
            "savefig.dpi": 200,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    _in_notebook()


def _in_notebook() -> None:
    """In an IPython kernel: retina PNGs, and the figure check on every figure shown."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to set up
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    set_matplotlib_formats("retina")
    formatter = shell.display_formatter.formatters["image/png"]
    draw = formatter.lookup_by_type(matplotlib.figure.Figure)
    formatter.for_type(matplotlib.figure.Figure, _checked(draw))


def _checked(draw: Callable[..., Any]) -> Callable[..., Any]:
    """``draw`` (the kernel's PNG formatter of figures) with :func:`check_figure` first: every
    way a figure reaches a cell's output (``plt.show()``, ``display(fig)``, the figures a cell
    leaves open) passes through it. Its problems go to stderr as ``figure check: ...``."""
    if getattr(draw, "checks_figures", False):
        return draw

    def checked(fig: plt.Figure, *args: Any, **kwargs: Any) -> Any:
        for problem in check_figure(fig):
            print(f"figure check: {problem}", file=sys.stderr)
        return draw(fig, *args, **kwargs)

    checked.checks_figures = True  # type: ignore[attr-defined]
    return checked


def _texts(fig: plt.Figure) -> list[tuple[str, matplotlib.text.Text]]:
    """Every visible, non-empty text of a figure, with what it is (tick labels left out:
    matplotlib places them, and lists some it does not draw)."""
    found: list[tuple[str, matplotlib.text.Text]] = []
    suptitle = getattr(fig, "_suptitle", None)
    for text in [suptitle, *fig.texts]:
        if text is not None:
            found.append(("figure text", text))
    for ax in fig.axes:
        titles = [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)]
        found += [("title", t) for t in titles if t is not None]
        found += [("axis label", ax.xaxis.label), ("axis label", ax.yaxis.label)]
        found += [("annotation", t) for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            found += [("legend", t) for t in legend.get_texts()]
    seen: set[int] = set()  # the suptitle is also one of fig.texts
    unique = []
    for kind, t in found:
        if id(t) not in seen and t.get_visible() and t.get_text().strip():
            seen.add(id(t))
            unique.append((kind, t))
    return unique


def check_figure(fig: plt.Figure) -> list[str]:
    """What makes a figure hard to read, as sentences (an empty list when it is fine).

    Checks every axes that shows data for a title (its own or the figure's) and both axis
    labels (axes with their axis turned off, such as images, need none); every text for a
    size of at least :data:`MIN_FONT_PT` points and for lying inside the figure; titles,
    axis labels, annotations and legend entries for overlapping one another; a colour
    scale for a colorbar; and a log axis for at least two labelled ticks written as plain
    numbers (see :func:`readable_log_ticks`), none overlapping.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg and inline
    problems = []
    suptitle = getattr(fig, "_suptitle", None)
    has_suptitle = suptitle is not None and bool(suptitle.get_text().strip())
    colorbars = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    for k, ax in enumerate(a for a in fig.axes if a not in colorbars):
        if not ax.get_visible() or not ax.axison:
            continue
        name = f"axes {k + 1}"
        titled = any(ax.get_title(loc=loc) for loc in ("center", "left", "right"))
        if not (titled or has_suptitle):
            problems.append(f"{name} has no title")
        shared_x = ax.get_shared_x_axes().get_siblings(ax)
        shared_y = ax.get_shared_y_axes().get_siblings(ax)
        if not any(a.get_xlabel() for a in shared_x):  # a shared axis is labelled once
            problems.append(f"{name} has no x-axis label")
        if not any(a.get_ylabel() for a in shared_y):
            problems.append(f"{name} has no y-axis label")
        mapped = [
            c
            for c in ax.collections
            if c.get_array() is not None
            and c.get_cmap() is not None
            and len(np.unique(np.asarray(c.get_array()))) > 1
        ]
        if mapped and not colorbars:
            problems.append(f"{name} maps values to colours without a colorbar")
        problems += [f"{name}: {p}" for p in _log_tick_problems(ax, renderer)]
    box = fig.bbox
    placed = []
    for kind, text in _texts(fig):
        label = text.get_text().strip().replace("\n", " ")[:40]
        if float(text.get_fontsize()) < MIN_FONT_PT - 1e-6:
            problems.append(f"{kind} {label!r} is {text.get_fontsize():g} pt (< {MIN_FONT_PT})")
        extent = text.get_window_extent(renderer)
        if (
            extent.x0 < box.x0 - 1
            or extent.x1 > box.x1 + 1
            or extent.y0 < box.y0 - 1
            or extent.y1 > box.y1 + 1
        ):
            problems.append(f"{kind} {label!r} lies (partly) outside the figure")
        placed.append((label, extent))
    for i, (a, box_a) in enumerate(placed):
        for b, box_b in placed[i + 1 :]:
            if box_a.overlaps(box_b):
                problems.append(f"texts {a!r} and {b!r} overlap")
    return problems


def _shown_tick_labels(axis: matplotlib.axis.Axis) -> list[matplotlib.text.Text]:
    """The tick labels an axis draws: visible, non-empty, at a tick inside the view."""
    low, high = sorted(axis.get_view_interval())
    shown = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        label = tick.label1
        inside = low - 1e-9 * abs(low) <= tick.get_loc() <= high + 1e-9 * abs(high)
        if inside and tick.get_visible() and label.get_visible() and label.get_text().strip():
            shown.append(label)
    return shown


def _log_tick_problems(ax: matplotlib.axes.Axes, renderer: RendererBase) -> list[str]:
    """A log axis needs two labelled ticks at least (one alone gives no scale), in plain
    numbers rather than mathtext such as ``2×10^1``, and labels that do not overlap."""
    problems = []
    for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        if axis.get_scale() != "log":
            continue
        labels = _shown_tick_labels(axis)
        siblings = getattr(ax, f"get_shared_{which}_axes")().get_siblings(ax)
        shown_beside = [
            len(_shown_tick_labels(getattr(other, f"{which}axis")))
            for other in siblings
            if other is not ax
        ]
        if not labels and any(n >= 2 for n in shown_beside):  # sharey: labelled beside it
            continue
        if len(labels) < 2:
            problems.append(f"log {which}-axis has {len(labels)} labelled tick(s), needs 2")
        raw = [t.get_text() for t in labels if "\\times" in t.get_text() or "^{" in t.get_text()]
        if raw:
            problems.append(f"log {which}-axis ticks in powers of ten notation: {raw[0]!r}")
        boxes = [t.get_window_extent(renderer) for t in labels]
        if any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]):
            problems.append(f"log {which}-axis tick labels overlap")
    return problems


def _plain_number(value: float, _pos: object = None) -> str:
    """A tick value as people write it: 20, 500, 5k, 1.5M, 0.02."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def readable_log_ticks(ax: matplotlib.axes.Axes, which: str = "x") -> None:
    """Label a log axis with plain numbers (20, 50, 1k, 2k) at 1-2-5 steps when the view
    spans few decades, at decades when it spans many, so at least two ticks are labelled.

    Raises:
        ValueError: ``which`` is not "x", "y" or "both", or the axis is not logarithmic.
    """
    if which not in ("x", "y", "both"):
        raise ValueError(f"which must be 'x', 'y' or 'both', got {which!r}")
    named = {"x": ax.xaxis, "y": ax.yaxis}
    for name in ("x", "y") if which == "both" else (which,):
        axis = named[name]
        if axis.get_scale() != "log":
            raise ValueError(f"the {name}-axis is not logarithmic")
        low, high = sorted(axis.get_view_interval())
        decades = np.log10(high / low) if low > 0 else 0.0
        subs = (
            (1.0,)
            if decades > 3
            else (1.0, 2.0, 5.0)
            if decades > 0.8
            else (1.0, 2.0, 3.0, 5.0, 7.0)
        )
        axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_plain_number))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


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
    ax_loss.set_title("Loss")
    ax_acc.set_title("Accuracy")
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
    texts = [ax.text(xs[i], ys[i], records[i]["variant"], fontsize=MIN_FONT_PT) for i in named]
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
    ax.margins(x=0.08, y=0.12)  # room for the points at the edges and their labels
    if logx:
        readable_log_ticks(ax, "x")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a label
    ax.set_title(title or f"{ylabel} against {xlabel}")
    fig.tight_layout()
    spread_labels(ax, texts, xs, ys)
    _drop_crowded_labels(fig, dict(zip(named, texts, strict=True)), keep=set(front))
    return fig


def _drop_crowded_labels(
    fig: plt.Figure, labels: dict[int, matplotlib.text.Text], keep: set[int]
) -> None:
    """Remove the labels that still overlap another one after spreading, sparing those in
    ``keep`` (the Pareto front): points too close to name stay unnamed rather than unreadable
    (the chapters' tables list every variant)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    order = sorted(labels, key=lambda i: i not in keep)  # front labels first
    placed: list = []
    for i in order:
        extent = labels[i].get_window_extent(renderer)
        if i not in keep and any(extent.overlaps(other) for other in placed):
            axes = labels[i].axes
            for patch in list(axes.patches) if axes is not None else []:
                if getattr(patch, "patchA", None) is labels[i]:  # adjustText's line to it
                    patch.remove()
            labels[i].remove()
            continue
        placed.append(extent)


def spread_labels(
    ax: plt.Axes, texts: Sequence[matplotlib.text.Text], xs: Sequence[float], ys: Sequence[float]
) -> None:
    """Move point labels apart so that none overlaps another, a point or the legend.

    Uses adjustText (a maintained library for this); a label that had to move gets a thin
    grey line to its point. Call it last, once the axes' limits and legend are set.
    """
    if not texts:
        return
    fig = ax.get_figure()
    if isinstance(fig, matplotlib.figure.Figure):
        fig.tight_layout()
        fig.set_layout_engine("none")  # a later re-layout would move the axes under the labels
    legend = ax.get_legend()
    adjust_text(
        list(texts),
        x=list(xs),
        y=list(ys),
        ax=ax,
        objects=[legend] if legend is not None else None,
        expand=(1.15, 1.3),
        iter_lim=2000,
        arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5},
    )


def plot_bars(
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    title: str = "",
    annotate: str = "{:.1f}",
    xlabel: str = "variant",
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or ylabel)
    ax.margins(y=0.15)  # room for the value above the tallest bar
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
            readable_log_ticks(ax, "y")
    fig.suptitle(title or "Weight values")
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
        ax.set_title(class_names[label], fontsize=MIN_FONT_PT)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
