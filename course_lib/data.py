"""Offline datasets: load by name, verify sha256, normalise, and subset for fast mode.

Introduced in 00_setup_and_tour. NumPy only: no TensorFlow, no network, ever.

The ``.npz`` files ship in ``data/`` (Keras' ``mnist.npz`` layout). Like d2l's ``DATA_HUB``,
each file is registered with its sha256 and is only used when the hash matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from course_lib import config


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and how to recognise an intact copy."""

    name: str
    filename: str
    sha256: str
    class_names: tuple[str, ...]
    license: str


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        filename="mnist.npz",
        sha256="06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
        class_names=tuple(str(d) for d in range(10)),
        license="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        filename="fashion_mnist.npz",
        sha256="5b6d2c4c694a91887af8ab7d039c04f80af3c29378d731c93a538d2e831aa469",
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        license="MIT (Zalando SE)",
    ),
}
"""The registry of datasets the course can load, all shipped in ``data/``."""

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
VAL_SIZE = 5000
"""Full mode keeps the last 5,000 training images aside for validation (55,000 remain)."""


@dataclass
class Dataset:
    """Normalised images (float32 in [0, 1], shape ``(N, 28, 28, 1)``) and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    fast: bool

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, e.g. ``(28, 28, 1)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (10 for both datasets)."""
        return len(self.class_names)

    def __repr__(self) -> str:
        mode = "fast" if self.fast else "full"
        return (
            f"Dataset({self.name!r}, {mode} mode: train {self.x_train.shape}, "
            f"val {self.x_val.shape}, test {self.x_test.shape}, {self.x_train.dtype})"
        )


def identity(data: Dataset) -> dict[str, str]:
    """Return what identifies a dataset's training data, for cache keys and file names.

    Introduced in 02_pruning (every cached model's key holds it). Two datasets of the same
    size but different images (MNIST vs Fashion-MNIST, or two fast-mode subsets drawn with
    different seeds) get different identities, so the cache never hands back a model that
    was trained on other data.

    Returns:
        ``{"dataset": name, "mode": "fast" | "full", "data_sha256": 16 hex digits}``, the
        hash covering the training and validation images and labels.
    """
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    token = (data.name, data.fast, *(id(a) for a in arrays))
    cached = getattr(data, "_identity", None)
    if cached is not None and cached[0] == token:  # same arrays: reuse the hash
        return dict(cached[1])
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    ident = {
        "dataset": data.name,
        "mode": "fast" if data.fast else "full",
        "data_sha256": digest.hexdigest()[:16],
    }
    object.__setattr__(data, "_identity", (token, ident))
    return dict(ident)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {known}.")
    return DATASETS[name]


def _restore_command(path: Path) -> str:
    """How to restore ``path``: a git command that works from any folder (notebooks/ too)."""
    path = path.resolve()
    if path.parent.name == "data":
        return f'`git -C "{path.parent.parent}" checkout -- data/{path.name}`'
    return f"a copy of the course's data/{path.name} in {path.parent}"


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Raises:
        FileNotFoundError: the file does not exist.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_path(name: str, data_dir: str | Path | None = None, verify: bool = True) -> Path:
    """Return the path of a dataset file after checking that it exists and is intact.

    Args:
        name: a key of ``DATASETS``.
        data_dir: folder holding the ``.npz`` files (default: the repository's ``data/``).
        verify: compare the file's sha256 with the registry.

    Raises:
        ValueError: unknown name (the message lists the known ones) or checksum mismatch.
        FileNotFoundError: the file is missing (the message says how to restore it).
    """
    spec = _spec(name)
    folder = Path(data_dir) if data_dir is not None else config.data_dir()
    path = folder / spec.filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. The datasets ship with the repository; restore it with "
            f"{_restore_command(path)} (no download needed or attempted)."
        )
    if verify:
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise ValueError(
                f"{path} is corrupt: its sha256 is {actual}, expected {spec.sha256}. "
                f"Restore the original with {_restore_command(path)}."
            )
    return path


@lru_cache(maxsize=4)
def _load_npz(path: str, mtime: float) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; expected {list(NPZ_KEYS)}.")
        arrays = {k: npz[k] for k in NPZ_KEYS}
    for array in arrays.values():
        array.setflags(write=False)  # shared by the cache: never modified in place
    return arrays


def load_raw(
    name: str, data_dir: str | Path | None = None, verify: bool = True
) -> dict[str, np.ndarray]:
    """Return the raw uint8 arrays ``x_train, y_train, x_test, y_test`` of a dataset.

    The file is opened with ``allow_pickle=False`` and cached in memory (read-only arrays).

    Raises:
        ValueError, FileNotFoundError: as :func:`dataset_path`.
    """
    path = dataset_path(name, data_dir, verify=verify)
    return _load_npz(str(path), path.stat().st_mtime)


def normalize(images: np.ndarray) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] and add a trailing channel axis.

    Example: ``(N, 28, 28)`` uint8 -> ``(N, 28, 28, 1)`` float32.

    Raises:
        ValueError: the input is not a uint8 array of shape ``(N, H, W)``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"normalize expects uint8 images of shape (N, H, W); got {images.dtype} "
            f"with shape {images.shape}"
        )
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def balanced_subset(
    x: np.ndarray, y: np.ndarray, per_class: int, seed: int = config.SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``per_class`` examples of every class, chosen at random but reproducibly.

    The result keeps the original order of the chosen examples.

    Raises:
        ValueError: ``per_class`` < 1, lengths differ, or a class has too few examples.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < per_class:
            raise ValueError(f"class {label} has {len(idx)} examples, fewer than {per_class}")
        chosen.append(rng.choice(idx, size=per_class, replace=False))
    order = np.sort(np.concatenate(chosen))
    return x[order], y[order]


def load_dataset(
    name: str = "mnist",
    *,
    fast: bool | None = None,
    train_per_class: int = 300,
    val_per_class: int = 50,
    test_per_class: int = 100,
    seed: int = config.SEED,
    data_dir: str | Path | None = None,
) -> Dataset:
    """Load a dataset from ``data/``: verified, normalised, split, and subset in fast mode.

    Full mode: 55,000 training, 5,000 validation (the last 5,000 of the training file) and
    the full 10,000 test images. Fast mode: class-balanced subsets of the same three splits
    (by default 3,000 / 500 / 1,000), always the same ones for the same seed.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"`` (see ``DATASETS``).
        fast: force a mode; default follows ``COURSE_FAST``.
        train_per_class, val_per_class, test_per_class: fast-mode subset sizes per class.
        seed: seed of the fast-mode subsets.
        data_dir: folder holding the ``.npz`` files (default: the repository's ``data/``).

    Returns:
        A :class:`Dataset`. Its arrays are read-only: a second call with the same arguments
        (and an unchanged file) returns a new Dataset around the same arrays, kept in memory.

    Raises:
        ValueError: unknown name, corrupt file, or impossible subset sizes.
        FileNotFoundError: the file is missing.
    """
    spec = _spec(name)
    fast = config.is_fast() if fast is None else fast
    path = dataset_path(name, data_dir)
    return dataclasses.replace(  # a Dataset of its own, around the shared read-only arrays
        _load_dataset(
            spec,
            fast,
            train_per_class,
            val_per_class,
            test_per_class,
            seed,
            str(path),
            path.stat().st_mtime,
        )
    )


@lru_cache(maxsize=4)
def _load_dataset(
    spec: DatasetSpec,
    fast: bool,
    train_per_class: int,
    val_per_class: int,
    test_per_class: int,
    seed: int,
    path: str,
    mtime: float,
) -> Dataset:
    """:func:`load_dataset`, kept in memory: a notebook's reference cells load the same
    dataset as its helpers, and normalising it again takes half a second. The arrays are
    read-only, because every caller shares them."""
    name = spec.name
    raw = _load_npz(path, mtime)
    x_all, y_all = raw["x_train"], raw["y_train"].astype(np.int64)
    x_tr, y_tr = x_all[:-VAL_SIZE], y_all[:-VAL_SIZE]
    x_val, y_val = x_all[-VAL_SIZE:], y_all[-VAL_SIZE:]
    x_te, y_te = raw["x_test"], raw["y_test"].astype(np.int64)
    if fast:
        x_tr, y_tr = balanced_subset(x_tr, y_tr, train_per_class, seed)
        x_val, y_val = balanced_subset(x_val, y_val, val_per_class, seed)
        x_te, y_te = balanced_subset(x_te, y_te, test_per_class, seed)
    dataset = Dataset(
        name=name,
        x_train=normalize(x_tr),
        y_train=y_tr,
        x_val=normalize(x_val),
        y_val=y_val,
        x_test=normalize(x_te),
        y_test=y_te,
        class_names=spec.class_names,
        fast=fast,
    )
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        getattr(dataset, field).setflags(write=False)  # shared by every caller
    return dataset
