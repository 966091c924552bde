"""Offline datasets: verified, normalised, subset for fast mode; clear errors on bad input."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from course_lib import data


def test_full_mnist_is_normalised_split_and_complete():
    ds = data.load_dataset("mnist", fast=False)
    assert ds.x_train.shape == (55_000, 28, 28, 1) and ds.x_val.shape == (5_000, 28, 28, 1)
    assert ds.x_test.shape == (10_000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32
    assert 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert np.bincount(ds.y_test).tolist()[:3] == [980, 1135, 1032]


def test_fashion_mnist_loads_with_class_names():
    ds = data.load_dataset("fashion_mnist", fast=True)
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10


def test_fast_mode_takes_the_same_balanced_subsets_every_time(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    first, second = data.load_dataset("mnist"), data.load_dataset("mnist")
    assert first.fast
    assert np.bincount(first.y_train).tolist() == [300] * 10
    assert np.bincount(first.y_val).tolist() == [50] * 10
    assert np.bincount(first.y_test).tolist() == [100] * 10
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_balanced_subset_keeps_order_and_rejects_bad_sizes():
    x = np.arange(20)
    y = np.array([0, 1] * 10)
    xs, ys = data.balanced_subset(x, y, per_class=3, seed=1)
    assert np.bincount(ys).tolist() == [3, 3] and np.all(np.diff(xs) > 0)
    with pytest.raises(ValueError, match="at least 1"):
        data.balanced_subset(x, y, per_class=0)
    with pytest.raises(ValueError, match="fewer than"):
        data.balanced_subset(x, y, per_class=11)
    with pytest.raises(ValueError, match="differ in length"):
        data.balanced_subset(x, y[:5], per_class=1)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known datasets: fashion_mnist, mnist"):
        data.load_dataset("cifar10")


def test_missing_file_says_how_to_restore_it_from_any_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # where notebook cells run
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset("mnist", data_dir=tmp_path / "data")
    assert f'git -C "{tmp_path}" checkout -- data/mnist.npz' in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"a copy of the course's data/mnist\.npz"):
        data.load_dataset("mnist", data_dir=tmp_path)


def test_checksum_mismatch_says_the_file_is_corrupt(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="corrupt"):
        data.load_dataset("mnist", data_dir=tmp_path)


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    arrays = {key: np.zeros(1, np.uint8) for key in data.NPZ_KEYS}
    np.savez(path, **{**arrays, "x_train": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        data.load_raw("mnist", data_dir=tmp_path, verify=False)


def test_npz_without_the_keras_keys_is_refused(tmp_path):
    np.savez(tmp_path / "mnist.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks the arrays"):
        data.load_raw("mnist", data_dir=tmp_path, verify=False)


def test_intact_copy_elsewhere_is_accepted(tmp_path):
    shutil.copy(data.dataset_path("mnist"), tmp_path / "mnist.npz")
    assert data.load_raw("mnist", data_dir=tmp_path)["x_test"].shape == (10_000, 28, 28)


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert data.sha256_file(path, chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_normalize_adds_channel_and_scales():
    out = data.normalize(np.array([[[0, 255]]], dtype=np.uint8))
    assert out.shape == (1, 1, 2, 1) and out.dtype == np.float32 and out.max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        data.normalize(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        data.normalize(np.zeros((2, 2), np.uint8))


def test_raw_arrays_are_read_only():
    raw = data.load_raw("mnist")
    with pytest.raises(ValueError):
        raw["x_train"][0, 0, 0] = 1
