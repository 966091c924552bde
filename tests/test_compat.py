"""course_lib selects Keras 2 before TensorFlow loads, and refuses when it is too late."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from course_lib import compat
from course_lib.compat import keras, tf, tfmot


def test_tf_keras_is_keras_2_and_is_what_tf_keras_points_to():
    assert keras.__version__.startswith("2.")
    assert compat.legacy_keras_active()
    assert tf.keras.layers.Dense is keras.layers.Dense
    assert os.environ[compat.LEGACY_KERAS_ENV] == "1"


def test_tfmot_wraps_a_tf_keras_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    assert type(pruned.layers[0]).__name__ == "PruneLowMagnitude"


def test_importing_tensorflow_first_fails_with_instructions():
    env = {**os.environ, compat.LEGACY_KERAS_ENV: ""}
    proc = subprocess.run(
        [sys.executable, "-c", "import tensorflow; import course_lib"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "KerasVersionError" in proc.stderr
    assert "import course_lib" in proc.stderr and "before `import tensorflow`" in proc.stderr


def test_versions_names_every_package_the_numbers_depend_on():
    info = compat.versions()
    assert set(info) == {"python", "tensorflow", "tf_keras", "tfmot", "litert", "numpy"}
    assert info["tensorflow"] == tf.__version__


def test_set_seeds_repeats_random_draws():
    compat.set_seeds(7)
    first = (np.random.rand(3), tf.random.uniform((3,)).numpy())
    compat.set_seeds(7)
    second = (np.random.rand(3), tf.random.uniform((3,)).numpy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_set_seeds_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        compat.set_seeds(seed)


def test_import_noise_is_held_back_and_real_lines_pass(capfd):
    with compat._without_import_noise():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see...\n")
        os.write(2, b"E0000 something really failed\n")
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "something really failed" in err


def test_importing_course_lib_prints_no_cpp_start_up_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-c", "import course_lib"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert not any(noise in proc.stderr for noise in ("oneDNN", "cuda drivers", "absl")), (
        proc.stderr
    )


def test_captured_fd2_collects_c_level_writes_and_restores_fd2(capfd):
    with compat.captured_fd2() as lines:
        os.write(2, b"from C\nsecond line\n")
    assert lines == ["from C\n", "second line\n"]
    with pytest.raises(RuntimeError), compat.captured_fd2() as held:
        os.write(2, b"before the error\n")
        raise RuntimeError("boom")
    assert held == ["before the error\n"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # fd 2 is back where it was
