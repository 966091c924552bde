"""The cache must know what a model was trained on (issue 13, part 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_lib import data, report, training, variants

from .conftest import build_tiny_model


def subset(name: str, seed: int, per_class: int = 30) -> data.Dataset:
    """A small balanced subset of a dataset; another seed draws other images, same size."""
    full = data.load_dataset(name, fast=False)
    x_tr, y_tr = data.balanced_subset(full.x_train, full.y_train, per_class, seed)
    x_val, y_val = data.balanced_subset(full.x_val, full.y_val, 5, seed)
    x_te, y_te = data.balanced_subset(full.x_test, full.y_test, 10, seed)
    return data.Dataset(name, x_tr, y_tr, x_val, y_val, x_te, y_te, full.class_names, True)


def test_identity_differs_for_same_size_different_data():
    a, b = subset("mnist", 1), subset("mnist", 2)
    fashion = subset("fashion_mnist", 1)
    assert len(a.x_train) == len(b.x_train) == len(fashion.x_train)
    ids = [data.identity(d)["data_sha256"] for d in (a, b, fashion)]
    assert len(set(ids)) == 3
    assert data.identity(a) == data.identity(subset("mnist", 1))  # same data, same identity
    assert data.identity(fashion)["dataset"] == "fashion_mnist"


def test_identity_follows_replaced_arrays():
    a = subset("mnist", 1)
    before = data.identity(a)["data_sha256"]
    a.x_train = a.x_train[::-1].copy()
    assert data.identity(a)["data_sha256"] != before


def test_same_size_other_data_trains_a_new_model(tmp_root):
    """The bug: a cache key of len(x_train) handed back the model of other images."""
    cfg = training.TrainConfig(epochs=1, batch_size=64)
    first = training.train_baseline("seed_cnn", "mnist", cfg, data=subset("mnist", 1))
    again = training.train_baseline("seed_cnn", "mnist", cfg, data=subset("mnist", 1))
    other = training.train_baseline("seed_cnn", "mnist", cfg, data=subset("mnist", 2))
    assert not first.from_cache and again.from_cache
    assert not other.from_cache, "a model trained on other images came from the cache"
    assert not np.array_equal(first.model.get_weights()[0], other.model.get_weights()[0])


def test_other_datasets_get_their_own_files_and_label(tmp_root):
    fashion = subset("fashion_mnist", 1)
    model = build_tiny_model()
    content = variants.convert(model, "float32")
    result = variants.measure_tflite(
        content, "tiny", fashion, model, model_name="tiny", technique="none", folder="99_demo"
    )
    mnist_path = variants.tflite_path("tiny", "99_demo")
    fashion_path = variants.tflite_path("tiny", "99_demo", dataset="fashion_mnist")
    assert fashion_path != mnist_path and fashion_path.is_file() and not mnist_path.exists()
    assert result.extra["dataset"] == "fashion_mnist"
    path = report.write_results("99_demo", [result])
    assert path.parent.name == "fashion_mnist"
    assert json.loads(path.read_text())["dataset"] == "fashion_mnist"
    with pytest.raises(ValueError, match="measured on 'fashion_mnist'"):
        report.write_results("99_demo", [result], dataset="mnist")
