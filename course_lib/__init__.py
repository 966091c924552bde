"""course_lib: the tested helpers behind "Model Compression & Acceleration with TensorFlow".

Import it FIRST, before TensorFlow: importing course_lib selects Keras 2 (tf_keras), which
the TensorFlow Model Optimization Toolkit needs, and then imports TensorFlow::

    import course_lib
    from course_lib.compat import tf, keras, tfmot
    course_lib.setup()

Modules, lowest layer first (a module only imports modules of lower layers; see
``tests/test_layers.py``): ``config``, ``atomic``, ``stats`` -> ``memo`` -> ``compat`` (tf,
keras, tfmot) -> ``data`` -> ``measure``, ``models`` -> ``training`` -> ``tflite`` -> ``system`` ->
``report`` -> ``variants`` -> chapter modules -> ``deep_compression``, ``float16``,
``guide`` -> ``combined`` -> ``plots`` -> ``exercises``;
``runner``, ``readme``, ``bench`` and ``quiet`` are the course's tools on top.
"""

from __future__ import annotations

from course_lib import compat  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)
from course_lib.config import SEED, is_fast, mode

__version__ = "0.1.0"
__all__ = ["SEED", "is_fast", "mode", "setup"]


def setup(
    notebook: str | None = None,
    seed: int = SEED,
    deterministic: bool = True,
    verbose: bool = True,
) -> None:
    """Prepare a notebook: seed everything, make TF deterministic, report mode and versions.

    Introduced in 00_setup_and_tour; every notebook's ``## Setup`` cell calls it.

    Args:
        notebook: the calling notebook's stem (e.g. ``"01_baseline"``), named in the header.
            Run times are not printed here: stored outputs would always show the previous
            run's; the README's course map has the measured ones.
        seed: the seed for Python, NumPy and TensorFlow.
        deterministic: enable TensorFlow op determinism (same seed -> same weights).
        verbose: print the mode and the package versions.
    """
    from course_lib import plots

    compat.set_seeds(seed, deterministic=deterministic)
    plots.use_course_style()
    if verbose:
        info = {"mode": mode(), **compat.versions()}
        keras_kind = "Keras 2 (tf_keras)" if compat.legacy_keras_active() else "Keras 3 (!)"
        name = f" | notebook {notebook}" if notebook else ""
        print(f"course_lib {__version__} | mode: {info['mode']} | seed {seed}{name}")
        print(
            f"TensorFlow {info['tensorflow']} with {keras_kind} {info['tf_keras']} | "
            f"tfmot {info['tfmot']} | LiteRT {info['litert']}"
        )
