"""Shared figures come back labelled; bad input is refused."""

from __future__ import annotations

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
