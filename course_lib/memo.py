"""Remember what a converter or runtime computed, keyed by everything that decides it.

Introduced in 01_baseline, where the course's measuring helpers remember each .tflite
conversion (:func:`course_lib.tflite.convert` with ``cache=True``) and each file's LiteRT
predictions (:func:`course_lib.variants.tflite_predictions`, which ``tflite_accuracy`` and
``tflite_correct`` read); used again in 02, 03, 06 and 07_deployment.
Running a model on TFLM's reference kernels over 10,000 test images, or searching for its
smallest arena, gives the same answer every time for the same .tflite bytes, the same
inputs and the same runtime version. A second run of a notebook need not wait for it
again: the answer is stored under ``artifacts/<mode>/outputs/`` in a file named by a
SHA-256 digest of everything that determines it, so a changed model, other images or
another runtime version can never be answered from an old entry. Files are written
atomically, like the model cache (:mod:`course_lib.training`).

Example::

    key = digest("tflm-predict", content, x, runtime_version)
    outputs = remembered_array("tflm", key, lambda: MicroModel(content).predict(x))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from course_lib import config
from course_lib.atomic import atomic_path, write_bytes_atomic, write_json_atomic

OUTPUTS = "outputs"
"""The folder of ``artifacts/<mode>/`` that holds every remembered answer."""
SUFFIXES = (".npy", ".json", ".bin")
"""The file kinds of stored answers: arrays, JSON values, raw bytes."""


def _feed(h: hashlib._Hash, part: object) -> None:
    """Add one part to the digest, tagged with its kind so no two parts can collide."""
    if isinstance(part, bool) or part is None:
        kind, payload = ("bool", str(part).encode()) if part is not None else ("none", b"")
    elif isinstance(part, int | np.integer):
        kind, payload = "int", str(int(part)).encode()
    elif isinstance(part, float | np.floating):
        kind, payload = "float", repr(float(part)).encode()
    elif isinstance(part, str):
        kind, payload = "text", part.encode("utf-8")
    elif isinstance(part, bytes | bytearray | memoryview):
        kind, payload = "bytes", bytes(part)
    elif isinstance(part, np.ndarray):
        array = np.ascontiguousarray(part)
        header = f"{array.dtype.str}{array.shape}".encode()
        kind, payload = "array", header + b"|" + array.tobytes()
    else:
        raise TypeError(
            f"digest parts must be bytes, NumPy arrays, str, int, float, bool or None; "
            f"got {type(part).__name__}"
        )
    h.update(f"{kind}:{len(payload)}:".encode())
    h.update(payload)


def digest(*parts: object) -> str:
    """Return the SHA-256 hex digest of ``parts`` (bytes, arrays, text, numbers, None).

    Each part is fed with its kind and length, so ``digest("ab", "c")`` differs from
    ``digest("a", "bc")``, ``digest(1)`` from ``digest("1")``, and an array from the same
    bytes in another dtype or shape.

    Raises:
        TypeError: a part of another type (pass ``str(obj)`` or its bytes instead).
        ValueError: no parts.
    """
    if not parts:
        raise ValueError("digest needs at least one part")
    h = hashlib.sha256()
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def package_version(name: str) -> str:
    """The installed version of a package, part of every key (a new runtime recomputes).

    Raises:
        metadata.PackageNotFoundError: the package is not installed.
    """
    return metadata.version(name)


def _entry(folder: str, key: str, suffix: str) -> Path:
    if not folder or "/" in folder or folder.startswith("."):
        raise ValueError(f"folder must be one plain folder name, got {folder!r}")
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"key must be a 64-character hex digest from digest(), got {key!r}")
    return config.artifacts_dir(OUTPUTS, folder) / f"{key}{suffix}"


def remembered_array(folder: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array stored under ``key``, or ``compute()`` it, store it and return it.

    Args:
        folder: a sub-folder of ``artifacts/<mode>/outputs/`` (e.g. "tflm").
        key: a :func:`digest` of everything that determines the array.
        compute: called only when nothing is stored under ``key``.

    Raises:
        ValueError: ``folder`` is not one plain name, ``key`` is not a digest.
    """
    path = _entry(folder, key, ".npy")
    if path.exists():
        return np.load(path, allow_pickle=False)
    array = np.asarray(compute())
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    return array


def remembered_json(folder: str, key: str, compute: Callable[[], object]) -> object:
    """Like :func:`remembered_array` for a JSON value (a number, a list, a dict)."""
    path = _entry(folder, key, ".json")
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    write_json_atomic(value, path)
    return value


def remembered_bytes(folder: str, key: str, compute: Callable[[], bytes]) -> bytes:
    """Like :func:`remembered_array` for raw bytes (e.g. a converted .tflite file)."""
    path = _entry(folder, key, ".bin")
    if path.exists():
        return path.read_bytes()
    content = bytes(compute())
    write_bytes_atomic(content, path)
    return content


def remembered(for_mode: str | None = None) -> set[str]:
    """Every stored answer, as ``"<folder>/<file>"`` (the runner tells first runs by it)."""
    outputs = config.artifacts_dir(OUTPUTS, for_mode=for_mode)
    return {str(p.relative_to(outputs)) for p in outputs.glob("*/*") if p.is_file()}


def is_remembered(folder: str, key: str, suffix: str = ".npy") -> bool:
    """Whether something is stored under ``key`` (``suffix`` ".npy", ".json" or ".bin")."""
    if suffix not in SUFFIXES:
        raise ValueError(f"suffix must be one of {', '.join(map(repr, SUFFIXES))}, got {suffix!r}")
    return _entry(folder, key, suffix).exists()
