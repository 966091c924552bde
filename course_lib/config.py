"""Paths, fast/full mode and the course-wide seed. Imports nothing heavy (no TensorFlow).

Introduced in 00_setup_and_tour.

Every notebook runs the same code in two sizes: *full* mode (the real numbers quoted in the
prose and README) and *fast* mode (``COURSE_FAST=1``: a small data subset and few epochs, used
by the tests and CI). Fast mode writes everything under ``artifacts/fast/`` so that running the
tests never overwrites the committed full-mode results in ``results/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

SEED = 42
"""The seed every notebook starts from (``course_lib.setup()`` applies it)."""

FAST_ENV = "COURSE_FAST"
ROOT_ENV = "COURSE_ROOT"
RESULTS_ENV = "COURSE_RESULTS_DIR"
ARTIFACTS_ENV = "COURSE_ARTIFACTS"
_TRUE = ("1", "true", "yes", "on")

T = TypeVar("T")


def is_fast() -> bool:
    """Return True when fast mode is on (environment variable ``COURSE_FAST=1``).

    Read on every call, so a test can switch modes with ``monkeypatch.setenv``.
    """
    return os.environ.get(FAST_ENV, "").strip().lower() in _TRUE


def mode() -> str:
    """Return ``"fast"`` or ``"full"``, the value written into every results file."""
    return "fast" if is_fast() else "full"


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise: one code path, two sizes.

    Example: ``epochs = pick(full=10, fast=1)``.
    """
    return fast if is_fast() else full


def _looks_like_root(path: Path) -> bool:
    return (path / "course_lib").is_dir() and (path / "data").is_dir()


def repo_root() -> Path:
    """Return the course's top folder (the one holding ``data/`` and ``course_lib/``).

    ``COURSE_ROOT`` overrides it. Otherwise the folder above this package is used, which is
    right for a clone installed with ``pip install -e .``; failing that, the current folder
    and its parents are searched.

    Raises:
        FileNotFoundError: no folder with ``course_lib/`` and ``data/`` was found.
    """
    override = os.environ.get(ROOT_ENV)
    if override:
        return Path(override).expanduser().resolve()
    here = Path(__file__).resolve().parent.parent
    if _looks_like_root(here):
        return here
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _looks_like_root(candidate):
            return candidate
    raise FileNotFoundError(
        "Cannot find the course folder (the one with data/ and course_lib/). "
        f"Run from inside the clone or set {ROOT_ENV}=/path/to/the/clone."
    )


def data_dir() -> Path:
    """Return ``<root>/data``, where the datasets ship with the repository."""
    return repo_root() / "data"


def notebooks_dir() -> Path:
    """Return ``<root>/notebooks``."""
    return repo_root() / "notebooks"


class ArtifactsNotWritableError(OSError):
    """The model cache folder cannot be created or written; the message says how to move it."""


_WRITABLE: set[Path] = set()


def shown_path(path: str | Path) -> Path:
    """Return ``path`` as a notebook prints it: relative to the course folder when it lies
    inside it (``results/01_baseline.json``), else absolute.

    The cache can live outside the clone (``COURSE_ARTIFACTS``), and so can fast-mode results
    and ``COURSE_RESULTS_DIR``: ``Path.relative_to`` raises ``ValueError`` for those.
    """
    absolute = Path(path).expanduser().resolve()
    root = repo_root()
    return absolute.relative_to(root) if absolute.is_relative_to(root) else absolute


def artifacts_root() -> Path:
    """Return the cache's top folder: ``<root>/artifacts``, or ``COURSE_ARTIFACTS`` if set.

    Set ``COURSE_ARTIFACTS=/some/writable/folder`` when the clone itself is read-only (a
    shared classroom copy, a mounted volume).
    """
    override = os.environ.get(ARTIFACTS_ENV)
    return Path(override).expanduser().resolve() if override else repo_root() / "artifacts"


def _ensure_writable(path: Path) -> None:
    if path in _WRITABLE:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ArtifactsNotWritableError(
            f"Cannot write the course's model cache at {path} ({err.strerror or err}). "
            f"Point {ARTIFACTS_ENV} at a writable folder, e.g. "
            f"`export {ARTIFACTS_ENV}=$HOME/course-artifacts`, then restart the kernel."
        ) from err
    _WRITABLE.add(path)


def artifacts_dir(*parts: str, for_mode: str | None = None) -> Path:
    """Return (and create) ``<artifacts>/<mode>/<parts...>``, the git-ignored cache.

    Trained models and .tflite files live here, separately per mode, so a fast-mode model is
    never loaded by a full-mode run. ``for_mode`` ("fast" or "full") overrides the current mode.
    ``<artifacts>`` is ``<root>/artifacts`` unless ``COURSE_ARTIFACTS`` names another folder.

    Raises:
        ValueError: ``for_mode`` is not "fast", "full" or None.
        ArtifactsNotWritableError: the folder cannot be created or written (the message
            names it and says how to move the cache with ``COURSE_ARTIFACTS``).
    """
    if for_mode not in (None, "fast", "full"):
        raise ValueError(f"for_mode must be 'fast', 'full' or None, got {for_mode!r}")
    path = artifacts_root().joinpath(for_mode or mode(), *parts)
    _ensure_writable(path)
    return path


def results_dir() -> Path:
    """Return (and create) the folder results files go to.

    Full mode: ``<root>/results`` (committed). Fast mode: ``<root>/artifacts/fast/results``
    (git-ignored), so tests never overwrite the committed numbers. ``COURSE_RESULTS_DIR``
    overrides both (the runner uses it for runs that only measure time).
    """
    override = os.environ.get(RESULTS_ENV)
    if override:
        path = Path(override)
    else:
        path = repo_root() / "results" if not is_fast() else artifacts_dir("results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports it), >= 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
