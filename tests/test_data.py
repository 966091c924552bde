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


# --- every function, its boundaries and its messages (issue 13, part 3) ---


def test_registry_names_classes_and_licenses():
    mnist, fashion = data.DATASETS["mnist"], data.DATASETS["fashion_mnist"]
    assert (mnist.name, mnist.filename) == ("mnist", "mnist.npz")
    assert (fashion.name, fashion.filename) == ("fashion_mnist", "fashion_mnist.npz")
    assert mnist.class_names == ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
    # Zalando's labels, in label order (github.com/zalandoresearch/fashion-mnist)
    assert fashion.class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
    assert mnist.license.startswith("CC BY-SA 3.0") and fashion.license.startswith("MIT")
    for spec in data.DATASETS.values():  # the registered hash is the shipped file's
        path = data.config.repo_root() / "data" / spec.filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert data.NPZ_KEYS == ("x_train", "y_train", "x_test", "y_test")


def _tiny(fast=True, name="mnist"):
    x = np.zeros((4, 2, 3, 1), np.float32)
    y = np.arange(4)
    return data.Dataset(name, x, y, x[:2], y[:2], x[:3], y[:3], ("a", "b", "c"), fast)


def test_dataset_properties_and_repr():
    ds = _tiny()
    assert ds.input_shape == (2, 3, 1) and ds.num_classes == 3
    assert repr(ds) == (
        "Dataset('mnist', fast mode: train (4, 2, 3, 1), val (2, 2, 3, 1), test (3, 2, 3, 1), "
        "float32)"
    )
    assert repr(_tiny(fast=False)).startswith("Dataset('mnist', full mode: train")


def test_identity_is_a_hash_of_train_and_val_arrays():
    ds = _tiny()
    digest = hashlib.sha256()  # the recipe the docstring promises, by hand
    for array in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    ident = data.identity(ds)
    assert ident == {"dataset": "mnist", "mode": "fast", "data_sha256": digest.hexdigest()[:16]}
    assert data.identity(_tiny(fast=False))["mode"] == "full"
    ds.x_test = ds.x_test + 1  # test images are not part of the identity
    assert data.identity(ds) == ident


def test_identity_hashes_once_and_hands_out_copies(monkeypatch):
    ds = _tiny()
    first = data.identity(ds)
    first["dataset"] = "changed"  # the caller's dict, not the cached one
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(data.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    assert data.identity(ds)["dataset"] == "mnist"
    assert calls == []  # same arrays: the hash is reused
    ds.fast = False
    assert data.identity(ds)["mode"] == "full" and calls == [1]
    ds.name = "fashion_mnist"
    assert data.identity(ds)["dataset"] == "fashion_mnist"


def test_identity_of_a_view_equals_that_of_its_copy():
    ds, copy = _tiny(), _tiny()
    ds.x_train = np.arange(24, dtype=np.float32).reshape(4, 2, 3, 1)[::-1]
    copy.x_train = ds.x_train.copy()
    assert data.identity(ds) == data.identity(copy)


def test_sha256_file_of_an_empty_and_a_missing_file(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert data.sha256_file(empty) == hashlib.sha256(b"").hexdigest()
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 5000)  # 1.28 MB: more than one 1 MiB chunk
    assert data.sha256_file(big) == hashlib.sha256(bytes(range(256)) * 5000).hexdigest()
    with pytest.raises(FileNotFoundError):
        data.sha256_file(tmp_path / "missing")


def test_dataset_path_default_folder_and_messages(tmp_path):
    assert data.dataset_path("mnist") == data.config.data_dir() / "mnist.npz"
    with pytest.raises(FileNotFoundError, match=r"mnist\.npz is missing\. The datasets ship"):
        data.dataset_path("mnist", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"\(no download needed or attempted\)"):
        data.dataset_path("mnist", data_dir=tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"not the real file")
    actual = hashlib.sha256(b"not the real file").hexdigest()
    expected = data.DATASETS["mnist"].sha256
    with pytest.raises(
        ValueError, match=f"is corrupt: its sha256 is {actual}, expected {expected}"
    ):
        data.dataset_path("mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="Restore the original with a copy of the course's"):
        data.dataset_path("mnist", data_dir=tmp_path)
    assert data.dataset_path("mnist", tmp_path, verify=False) == tmp_path / "mnist.npz"
    with pytest.raises(ValueError, match="corrupt"):
        data.load_raw("mnist", data_dir=tmp_path)  # load_raw verifies by default


def test_unknown_dataset_message_in_full():
    with pytest.raises(ValueError, match=r"^Unknown dataset 'cifar'\. Known datasets: "):
        data.dataset_path("cifar")


def test_npz_missing_keys_are_listed(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError) as err:
        data.load_raw("mnist", data_dir=tmp_path, verify=False)
    assert "lacks the arrays ['y_train', 'x_test', 'y_test']; expected ['x_train', 'y_train'" in (
        str(err.value)
    )


def test_load_raw_reads_the_arrays_of_the_file(tmp_path):
    arrays = {key: np.full((2, 2, 2), i, np.uint8) for i, key in enumerate(data.NPZ_KEYS)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    raw = data.load_raw("mnist", data_dir=tmp_path, verify=False)
    assert sorted(raw) == sorted(data.NPZ_KEYS)
    for key in data.NPZ_KEYS:
        np.testing.assert_array_equal(raw[key], arrays[key])
        assert not raw[key].flags.writeable


def test_normalize_values_and_message():
    out = data.normalize(np.array([[[0, 51, 255]]], dtype=np.uint8))
    np.testing.assert_array_equal(out[..., 0], np.array([[[0.0, 0.2, 1.0]]], np.float32))
    with pytest.raises(ValueError, match=r"got float32 with shape \(1, 2, 2\)"):
        data.normalize(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"got uint8 with shape \(2, 2\)"):
        data.normalize(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="got int64"):
        data.normalize([[[1]]])  # a plain list becomes int64, not uint8


def test_balanced_subset_boundaries_pairs_and_default_seed():
    x = np.arange(20)
    y = x % 2
    xs, ys = data.balanced_subset(x, y, per_class=10)  # every example of both classes
    np.testing.assert_array_equal(xs, x)
    xs, ys = data.balanced_subset(x, y, per_class=1)
    assert np.bincount(ys).tolist() == [1, 1]
    np.testing.assert_array_equal(ys, xs % 2)  # images stay with their labels
    default = data.balanced_subset(x, y, 4)
    seeded = data.balanced_subset(x, y, 4, seed=data.config.SEED)
    np.testing.assert_array_equal(default[0], seeded[0])
    picks = {tuple(data.balanced_subset(x, y, 4, seed=s)[0]) for s in range(5)}
    assert len(picks) > 1  # the seed matters
    with pytest.raises(ValueError, match=r"class 0 has 10 examples, fewer than 11"):
        data.balanced_subset(x, y, 11)
    with pytest.raises(ValueError, match=r"per_class must be at least 1, got 0"):
        data.balanced_subset(x, y, 0)
    with pytest.raises(ValueError, match=r"x and y differ in length: 20 vs 5"):
        data.balanced_subset(x, y[:5], 1)


def test_full_split_is_the_files_train_tail_and_test_set():
    raw = data.load_raw("mnist")
    ds = data.load_dataset("mnist", fast=False)
    assert not ds.fast and ds.name == "mnist"
    assert ds.class_names == data.DATASETS["mnist"].class_names
    tail = raw["x_train"][-5000:-4995].astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(ds.x_val[:5, ..., 0], tail)
    np.testing.assert_array_equal(ds.y_val, raw["y_train"][-5000:])
    np.testing.assert_array_equal(ds.y_train, raw["y_train"][:-5000])
    np.testing.assert_array_equal(ds.y_test, raw["y_test"])
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64


def test_fast_subsets_follow_sizes_seed_and_data_dir(tmp_path):
    small = data.load_dataset(
        "mnist", fast=True, train_per_class=2, val_per_class=3, test_per_class=4
    )
    assert small.fast and (len(small.y_train), len(small.y_val), len(small.y_test)) == (20, 30, 40)
    default = data.load_dataset("mnist", fast=True, train_per_class=2)
    seeded = data.load_dataset("mnist", fast=True, train_per_class=2, seed=data.config.SEED)
    other = data.load_dataset("mnist", fast=True, train_per_class=2, seed=1)
    np.testing.assert_array_equal(default.x_train, seeded.x_train)
    assert not np.array_equal(default.x_train, other.x_train)
    with pytest.raises(FileNotFoundError, match="is missing"):
        data.load_dataset("mnist", fast=True, data_dir=tmp_path)


def test_load_dataset_shares_read_only_arrays_between_calls(tmp_root):
    first = data.load_dataset("mnist", fast=True)
    again = data.load_dataset("mnist", fast=True)
    assert again is not first  # a Dataset of its own: replacing a field changes only it
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        array = getattr(first, name)
        assert getattr(again, name) is array and not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    again.x_train = again.x_train[:10]
    assert len(data.load_dataset("mnist", fast=True).x_train) == 3_000
    other = data.load_dataset("mnist", fast=True, seed=1)  # other arguments: other arrays
    assert not np.array_equal(other.x_train, first.x_train)
    full = data.load_dataset("mnist", fast=False)
    assert len(full.x_train) == 55_000 and full.x_test is not first.x_test
