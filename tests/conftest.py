"""Shared fixtures: an isolated course folder, a tiny dataset and a tiny trained model."""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render without a display

import numpy as np
import pytest

import course_lib  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from course_lib import config, data, distillation, training
from course_lib.compat import keras, set_seeds
from course_lib.training import compile_model


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """A throwaway course folder (COURSE_ROOT) with links to the real datasets, full mode."""
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").mkdir()
    for spec in data.DATASETS.values():
        (tmp_path / "data" / spec.filename).symlink_to(config.repo_root() / "data" / spec.filename)
    monkeypatch.setenv(config.ROOT_ENV, str(tmp_path))
    monkeypatch.delenv(config.ARTIFACTS_ENV, raising=False)
    monkeypatch.setenv(config.FAST_ENV, "0")
    return tmp_path


def make_dataset(n_train: int = 600, n_test: int = 300) -> data.Dataset:
    """A small real-MNIST Dataset (balanced subsets), independent of the mode."""
    full = data.load_dataset("mnist", fast=False)
    x_tr, y_tr = data.balanced_subset(full.x_train, full.y_train, n_train // 10)
    x_val, y_val = data.balanced_subset(full.x_val, full.y_val, 10)
    x_te, y_te = data.balanced_subset(full.x_test, full.y_test, n_test // 10)
    return data.Dataset("mnist", x_tr, y_tr, x_val, y_val, x_te, y_te, full.class_names, True)


@pytest.fixture(scope="session")
def tiny_data() -> data.Dataset:
    """600 training, 100 validation and 300 test MNIST images."""
    return make_dataset()


def build_tiny_model() -> keras.Model:
    """A small CNN (conv 8 -> pool -> dense 10), quick to train and convert."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ],
        name="tiny",
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_data) -> keras.Model:
    """The tiny CNN trained for 3 epochs on ``tiny_data`` (about 85-90 % accuracy)."""
    set_seeds(0)
    model = compile_model(build_tiny_model())
    model.fit(tiny_data.x_train, tiny_data.y_train, epochs=3, batch_size=32, verbose=0)
    return model


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def looped(monkeypatch) -> list[int]:
    """Make every ``training.faster_steps`` block loop (even on tiny data); list what it used.

    The list gets the batches per call of each block, so a test can check that its fit really
    ran ``training.STEPS_PER_EXECUTION`` batches per call (or one, where it must).
    """
    monkeypatch.setattr(training, "MULTI_STEP_MIN_BATCHES", 1)
    return record_faster_steps(monkeypatch)


def record_faster_steps(monkeypatch) -> list[int]:
    """Wrap ``training.faster_steps`` (also where distillation imported it) to list the
    batches per call each block used; the thresholds are left as they are."""
    used: list[int] = []
    real = training.faster_steps

    @contextlib.contextmanager
    def spy(*args, **kwargs):
        with real(*args, **kwargs) as steps:
            used.append(steps)
            yield steps

    monkeypatch.setattr(training, "faster_steps", spy)
    monkeypatch.setattr(distillation, "faster_steps", spy)  # imported there by name
    return used


def same_weights(a: keras.Model, b: keras.Model) -> None:
    """Assert two models hold bit-identical weights (trainable and not)."""
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def notebook_or_file(nodeid: str) -> str:
    """The unit of work a pytest-xdist worker takes whole: every notebook together (they run
    in course order: 07, 09 and 00 read what the chapters before them wrote, and they share
    the fast-mode model cache), and otherwise one test file (its module fixtures built once)."""
    return "notebooks" if nodeid.startswith("notebooks/") else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist; without it, nothing to do
def pytest_xdist_make_scheduler(config, log):
    """``make test`` runs ``-n 2``: the notebooks on one worker, the test files on the other.

    pytest-xdist's own ``--dist loadgroup`` would do this with an ``xdist_group`` mark, but
    version 3.8 renames the grouped node ids in a way pytest 9.2 ignores, so it groups
    nothing; this scheduler says the same thing through xdist's documented hook. The
    largest unit (the notebooks, about 400 cells) is sent first.
    """
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return notebook_or_file(nodeid)

    return NotebooksTogether(config, log)
