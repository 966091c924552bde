"""The ONE place that switches TensorFlow to Keras 2 and imports tf, tf_keras and tfmot.

Introduced in 00_setup_and_tour.

TensorFlow 2.16+ ships Keras 3 as ``tf.keras``, but the TensorFlow Model Optimization Toolkit
(tfmot 0.8.x) only works with Keras 2, packaged as ``tf_keras``. TensorFlow picks the Keras
version when it is first imported, from the environment variable ``TF_USE_LEGACY_KERAS``.
So this module sets that variable and only then imports TensorFlow. Always import
``course_lib`` (or this module) before ``tensorflow``::

    import course_lib                      # first: selects Keras 2 for TensorFlow and tfmot
    from course_lib.compat import tf, keras, tfmot

If TensorFlow was already imported with Keras 3 active, importing this module raises
``KerasVersionError`` with instructions, instead of failing later with an obscure error
deep inside tfmot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


class KerasVersionError(ImportError):
    """TensorFlow was imported with Keras 3 before course_lib could select Keras 2."""


KERAS3_MESSAGE = (
    "TensorFlow was imported before course_lib, so it is using Keras 3, and the TensorFlow "
    "Model Optimization Toolkit (tfmot) needs Keras 2 (the tf_keras package). To fix it: "
    "restart the kernel (Jupyter: Kernel > Restart Kernel) or the Python process, and make "
    "`import course_lib` the first import, before `import tensorflow`. Alternatively set the "
    "environment variable TF_USE_LEGACY_KERAS=1 before Python starts."
)


def _select_legacy_keras() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1``; raise if TensorFlow already chose Keras 3."""
    tf_module = sys.modules.get("tensorflow")
    if tf_module is not None and not getattr(tf_module, "_tf_uses_legacy_keras", False):
        raise KerasVersionError(KERAS3_MESSAGE)
    os.environ[LEGACY_KERAS_ENV] = "1"
    # Hide TensorFlow's C++ log lines (set TF_CPP_MIN_LOG_LEVEL=0 to see them again).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


IMPORT_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "Unable to register cu",  # cuDNN/cuFFT/cuBLAS factory registration on CPU-only machines
    "computation placer already registered",
    "TF-TRT Warning",
)
"""Start-up lines TensorFlow's C++ code writes to file descriptor 2 when it is imported."""


@contextlib.contextmanager
def captured_fd2() -> Iterator[list[str]]:
    """Collect what is written to file descriptor 2 inside the block, C and C++ code included.

    TensorFlow's start-up lines and TFLM's error details and allocation report are written
    by C++ straight to fd 2, below Python's ``sys.stderr``, so ``contextlib.redirect_stderr``
    cannot see them. Yields a list that holds the lines (with their newlines) once the block
    ends, also when it raised. Without a usable fd 2 (some embedded interpreters) the list
    stays empty and the output goes where it would have gone.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield lines
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines.extend(held.read().decode("utf-8", "replace").splitlines(keepends=True))


@contextlib.contextmanager
def _without_import_noise() -> Iterator[None]:
    """Hold back fd-2 output while TensorFlow loads; pass on every line but its start-up noise.

    ``TF_CPP_MIN_LOG_LEVEL`` cannot stop the lines absl prints before it is initialised, and
    C++ writes them below Python's ``sys.stderr``. Any other line (a real error) still shows.
    """
    held: list[str] = []
    try:
        with captured_fd2() as held:
            yield
    finally:
        for line in held:
            if not any(noise in line for noise in IMPORT_NOISE):
                os.write(2, line.encode("utf-8"))


_select_legacy_keras()

with _without_import_noise():
    import tensorflow as tf  # noqa: E402  (must come after _select_legacy_keras)
    import tensorflow_model_optimization as tfmot  # noqa: E402
    import tf_keras as keras  # noqa: E402
    from absl import logging as absl_logging  # noqa: E402

tf.get_logger().setLevel("ERROR")  # Python-side TensorFlow warnings (deprecations, retracing)
absl_logging.set_verbosity(absl_logging.ERROR)  # e.g. optimizer state skipped when loading


class _QuietTfmot(logging.Filter):
    """Drop tfmot's "apply CQAT instead" notice, logged on the root logger per layer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "does not contain zero weights, so apply CQAT instead" not in record.getMessage()


logging.getLogger().addFilter(_QuietTfmot())

if not keras.__version__.startswith("2."):  # pragma: no cover - only with a broken install
    raise KerasVersionError(f"tf_keras {keras.__version__} is not Keras 2; reinstall tf-keras.")

__all__ = ["KerasVersionError", "keras", "tf", "tfmot", "versions", "set_seeds"]


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Return the versions of the packages whose behaviour the course's numbers depend on.

    Returns:
        A dict with keys ``python``, ``tensorflow``, ``tf_keras``, ``tfmot``, ``litert`` and
        ``numpy``.
    """
    import numpy as np

    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "tfmot": _dist_version("tensorflow-model-optimization"),
        "litert": _dist_version("ai-edge-litert"),
        "numpy": np.__version__,
    }


def legacy_keras_active() -> bool:
    """Return True when ``tf.keras`` is Keras 2 (tf_keras), the version tfmot needs."""
    return tf.keras.Sequential is keras.Sequential


def set_seeds(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow, and (by default) make TF ops deterministic.

    With ``deterministic=True`` the same seed gives bit-identical training runs on the same
    machine and TensorFlow build (TensorFlow's op determinism; it costs little on a CPU).

    Args:
        seed: any non-negative integer.
        deterministic: also call ``tf.config.experimental.enable_op_determinism()``.

    Raises:
        ValueError: ``seed`` is negative or not an integer.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
