"""Shared figures come back labelled; bad input is refused."""

from __future__ import annotations

import os

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pytest

from course_lib import plots

from .test_report import make_result


def test_history_plot_has_two_labelled_panels():
    fig = plots.plot_history({"loss": [1, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.8, 0.9]})
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_xlabel() == "epoch" and "loss" in ax_loss.get_ylabel()
    assert len(ax_loss.lines) == 2 and len(ax_acc.lines) == 1
    with pytest.raises(ValueError, match="no 'loss'"):
        plots.plot_history({"accuracy": [1]})


def test_tradeoff_plot_marks_the_pareto_front():
    results = [
        make_result(),
        make_result("small", tflite_gzip_bytes=100, accuracy=0.97),
        make_result("bad", tflite_gzip_bytes=3000, accuracy=0.5),
    ]
    fig = plots.plot_tradeoff(results)
    ax = fig.axes[0]
    front = ax.lines[0]
    assert list(front.get_xdata()) == [100, 3600] and ax.get_xscale() == "log"
    assert "gzip" in ax.get_xlabel() and "%" in ax.get_ylabel()
    with pytest.raises(ValueError, match="sparsity"):
        plots.plot_tradeoff(results, x="sparsity")
    with pytest.raises(ValueError, match="no results"):
        plots.plot_tradeoff([])


def test_bars_histogram_and_images():
    fig = plots.plot_bars(["a", "b"], [1.0, 2.0], ylabel="µs")
    assert fig.axes[0].get_ylabel() == "µs" and len(fig.axes[0].patches) == 2
    with pytest.raises(ValueError, match="differ in length"):
        plots.plot_bars(["a"], [1.0, 2.0], ylabel="µs")
    fig = plots.plot_weight_histogram({"dense": np.random.default_rng(0).normal(size=100)})
    assert "dense" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="no weight"):
        plots.plot_weight_histogram({})
    x = np.zeros((4, 28, 28, 1), np.float32)
    fig = plots.plot_images(x, np.array([0, 1, 1, 2]), ["a", "b", "c"], n=2)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    with pytest.raises(ValueError, match="n >= 1"):
        plots.plot_images(x, np.array([0]), ["a"])


def _sample_figures():
    rng = np.random.default_rng(0)
    results = [
        make_result(),
        make_result("small_variant_name", tflite_gzip_bytes=100, accuracy=0.97),
        make_result("another_variant", tflite_gzip_bytes=110, accuracy=0.971),
        make_result("bad", tflite_gzip_bytes=3000, accuracy=0.5),
    ]
    return {
        "history": plots.plot_history({"loss": [1, 0.5], "val_loss": [1.1, 0.7]}),
        "tradeoff": plots.plot_tradeoff(results),
        "bars": plots.plot_bars(["float32", "int8"], [30.0, 12.0], ylabel="latency (µs)"),
        "histogram": plots.plot_weight_histogram({"dense": rng.normal(size=1000)}),
        "images": plots.plot_images(
            np.zeros((3, 28, 28, 1), np.float32), np.array([0, 1, 2]), ["a", "b", "c"], n=3
        ),
    }


@pytest.mark.parametrize("name", ["history", "tradeoff", "bars", "histogram", "images"])
def test_every_course_figure_passes_the_check(name):
    fig = _sample_figures()[name]
    assert plots.check_figure(fig) == []
    plt.close("all")


def test_the_check_finds_each_problem():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert set(plots.check_figure(fig)) == {
        "axes 1 has no title",
        "axes 1 has no x-axis label",
        "axes 1 has no y-axis label",
    }
    ax.set(title="t", xlabel="x (s)", ylabel="y (%)")
    assert plots.check_figure(fig) == []
    ax.annotate("tiny", (0.5, 0.5), fontsize=6)
    assert any("is 6 pt" in p for p in plots.check_figure(fig))
    ax.texts[0].remove()
    ax.annotate("first label", (0.5, 0.5), fontsize=9)
    ax.annotate("second label", (0.5, 0.5), fontsize=9)
    assert any("overlap" in p for p in plots.check_figure(fig))
    for t in list(ax.texts):
        t.remove()
    ax.annotate("far away", (0.5, 0.5), xytext=(2000, 0), textcoords="offset points")
    assert any("outside the figure" in p for p in plots.check_figure(fig))
    fig2, ax2 = plt.subplots()
    ax2.scatter([1, 2, 3], [1, 2, 3], c=[1.0, 2.0, 3.0])
    ax2.set(title="t", xlabel="x", ylabel="y")
    assert plots.check_figure(fig2) == ["axes 1 maps values to colours without a colorbar"]
    fig2.colorbar(ax2.collections[0], label="value")
    assert plots.check_figure(fig2) == []
    suptitled, _ = plt.subplots()
    suptitled.axes[0].set(xlabel="x", ylabel="y")
    suptitled.suptitle("one title for the figure")
    assert plots.check_figure(suptitled) == []
    plt.close("all")


def test_tradeoff_labels_stay_apart_under_the_course_style():
    crowd = [
        make_result(f"variant_{k}", tflite_gzip_bytes=1000 + k, accuracy=0.9 + k / 1e4)
        for k in range(12)
    ]
    front = make_result("the_front", tflite_gzip_bytes=100, accuracy=0.99)
    with matplotlib.rc_context({"figure.autolayout": True}):  # as in the notebooks
        fig = plots.plot_tradeoff([front, *crowd])
        assert "the_front" in [t.get_text() for t in fig.axes[0].texts]
        assert plots.check_figure(fig) == []
    plt.close("all")


def test_crowded_labels_are_dropped_except_the_kept_ones():
    fig, ax = plt.subplots()
    labels = {k: ax.text(0.5, 0.5, f"label {k}") for k in range(3)}
    plots._drop_crowded_labels(fig, labels, keep={2})
    assert [t.get_text() for t in ax.texts] == ["label 2"]
    plt.close("all")


def _log_axes(low: float, high: float) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots()
    ax.plot([low, high], [1, 2])
    ax.set(xscale="log", title="t", xlabel="x (bytes)", ylabel="y")
    return fig, ax


def test_the_check_finds_unreadable_log_ticks_and_readable_log_ticks_fixes_them():
    # matplotlib's own labels inside one decade: 2×10^1, 3×10^1, 4×10^1 in mathtext.
    fig, ax = _log_axes(15, 45)
    assert plots.check_figure(fig) == [
        "axes 1: log x-axis ticks in powers of ten notation: '$\\\\mathdefault{2\\\\times10^{1}}$'"
    ]
    plots.readable_log_ticks(ax)
    assert plots.check_figure(fig) == []  # draws the figure: tick labels are set on drawing
    assert [t.get_text() for t in plots._shown_tick_labels(ax.xaxis)] == ["20", "30"]
    # One labelled tick gives no scale.
    fig, ax = _log_axes(15, 45)
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([20]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter(["20"]))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    assert plots.check_figure(fig) == ["axes 1: log x-axis has 1 labelled tick(s), needs 2"]
    # Many decades: a label per decade in plain numbers.
    fig, ax = _log_axes(5, 2e6)
    plots.readable_log_ticks(ax)
    assert plots.check_figure(fig) == []
    labels = [t.get_text() for t in plots._shown_tick_labels(ax.xaxis)]
    assert labels == ["10", "100", "1k", "10k", "100k", "1M"]
    # Crowded labels are found too.
    fig, ax = _log_axes(1, 1e4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f} bytes"))
    fig.set_size_inches(3, 2)
    assert "axes 1: log x-axis tick labels overlap" in plots.check_figure(fig)
    plt.close("all")


def test_a_shared_log_axis_is_labelled_once():
    fig, axes = plt.subplots(1, 2, sharey=True)
    for ax in axes:
        ax.plot([1, 2], [15, 450])
        ax.set(yscale="log", title="t", xlabel="x", ylabel="y (µs)")
        plots.readable_log_ticks(ax, "y")
    assert plots.check_figure(fig) == []  # the right axes shows no labels: the left one does
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.NullFormatter())
    assert plots.check_figure(fig) == [
        "axes 1: log y-axis has 0 labelled tick(s), needs 2",
        "axes 2: log y-axis has 0 labelled tick(s), needs 2",
    ]
    plt.close("all")


@pytest.mark.parametrize(
    "value, text", [(20, "20"), (1500, "1.5k"), (2e6, "2M"), (0.02, "0.02"), (1000, "1k")]
)
def test_plain_numbers_by_hand(value, text):
    assert plots._plain_number(value) == text


def test_readable_log_ticks_refuses_a_linear_axis_and_a_bad_name():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="the y-axis is not logarithmic"):
        plots.readable_log_ticks(ax, "y")
    with pytest.raises(ValueError, match="which must be 'x', 'y' or 'both', got 'z'"):
        plots.readable_log_ticks(ax, "z")
    plt.close("all")


def test_checked_draw_reports_a_figures_problems_then_draws_it(capsys):
    drawn = []
    checked = plots._checked(lambda fig, **kw: drawn.append((fig, kw)) or "png")
    assert plots._checked(checked) is checked  # wrapping twice checks once
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert checked(fig, base64=True) == "png" and drawn == [(fig, {"base64": True})]
    assert "figure check: axes 1 has no title\n" in capsys.readouterr().err
    ax.set(title="t", xlabel="x", ylabel="y")
    checked(fig)
    assert capsys.readouterr().err == ""
    plt.close("all")


def test_a_kernel_checks_figures_shown_with_plt_show_and_left_open(tmp_path):
    """In a real kernel, as the notebooks run: plt.show() and a figure a cell leaves open
    both pass the check (plt.show() closes the figure before the cell ends)."""
    import nbclient
    import nbformat

    setup = (
        "from course_lib import plots\nimport matplotlib.pyplot as plt\nplots.use_course_style()"
    )
    bad = "fig, ax = plt.subplots()\nax.plot([0, 1], [0, 1])"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in (setup, bad + "\nplt.show()", bad)]
    )
    # As JupyterLab starts it: the inline backend (conftest sets Agg for the tests), no pytest.
    hidden = ("MPLBACKEND", "PYTEST_CURRENT_TEST")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3")
    client.execute(cwd=str(tmp_path), env=env)
    for cell in nb.cells[1:]:
        errors = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
        assert "figure check: axes 1 has no title" in errors
        assert any("image/png" in o.get("data", {}) for o in cell.outputs)
