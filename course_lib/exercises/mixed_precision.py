"""Exercises of 06_mixed_precision: float16 underflow, a loss scale, a mixed-precision model.

The two code-writing problems call the learner's function: ``underflows`` on arrays made up
at check time, ``build_mixed_model`` to build a model whose layers' dtypes are inspected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.compat import keras
from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number


def _underflow_cases() -> list[np.ndarray]:
    """Fresh test arrays: gradients from 1e-10 to 1e-2 (log-uniform), signs, a few zeros."""
    rng = np.random.default_rng(2024)
    cases = [np.array([2.9e-8, 3.1e-8, -2.0e-8, 4.0e-8, 1.0e-9, 7.0e-5, 0.0, 0.0])]
    for n in (200, 1_000):
        values = 10.0 ** rng.uniform(-10, -2, n) * rng.choice([-1.0, 1.0], n)
        values[rng.choice(n, n // 10, replace=False)] = 0.0
        cases.append(values)
    return cases


def _underflow_answer(values: np.ndarray) -> float:
    """Independent reference: compare the float16 cast with zero."""
    nonzero = values != 0
    return float(np.mean(values[nonzero].astype(np.float16) == 0))


class Underflows(Problem):
    """Write ``underflows(values)``: the fraction of the non-zero values that float16 rounds
    to 0.

    Tolerance: relative 0.2 % (an answer rounded to 3 significant figures passes), while a
    threshold at the smallest subnormal (5.96e-8) or normal (6.1e-5), counting the exact
    zeros, or a percentage all miss it on the checker's arrays.
    """

    variables = ("underflows",)
    hint_text = (
        "Cast the non-zero values with values.astype(np.float16) and count how many became "
        "exactly 0. Leave the values that were 0 already out of the count."
    )
    solution_code = """
def underflows(values):
    values = np.asarray(values, dtype=np.float64)
    nonzero = values[values != 0]
    return float(np.mean(nonzero.astype(np.float16) == 0))
"""

    def _check(self, underflows: Any) -> str:
        for values in _underflow_cases():
            got = call_learner(underflows, values.copy())
            expected = _underflow_answer(values)
            number = as_number("underflows(values)", got)
            if expected > 0 and abs(number - 100 * expected) <= 0.002 * 100 * expected:
                raise Incorrect("return a fraction in [0, 1], not a percentage")
            expect_number("underflows(values)", number, expected, rel=0.002, abs_tol=1e-12)
        return "right on three arrays; only values at most 2^-25 ≈ 2.98e-8 in size flush to 0."


class ChooseLossScale(Problem):
    """A power-of-two loss scale that lifts 1e-9 to >= 6.1e-5 and keeps 1e-2 below 65,504."""

    variables = ("loss_scale",)
    hint_text = (
        "You need scale >= 6.1e-5 / 1e-9 = 61,000 and scale <= 65,504 / 1e-2 = 6.55 million. "
        "Which powers of two lie in between?"
    )
    solution_code = "loss_scale = 2**16   # 65,536: 1e-9 -> 6.6e-5, 1e-2 -> 655"

    def _check(self, loss_scale: Any) -> str:
        scale = as_number("loss_scale", loss_scale)
        if scale <= 0 or not float(np.log2(scale)).is_integer():
            raise Incorrect(f"{scale:g} is not a power of two (2**k)")
        if 1e-9 * scale < 6.1e-5:
            raise Incorrect(f"1e-9 x {scale:g} = {1e-9 * scale:.2g}: still subnormal")
        if 1e-2 * scale > 65504:
            raise Incorrect(f"1e-2 x {scale:g} = {1e-2 * scale:,.0f} overflows float16")
        return "any power of two from 2**16 to 2**22 works; dynamic scaling finds one for you."


class MixedModel(Problem):
    """Write ``build_mixed_model()``: a 28x28x1 -> 10-class tf_keras model built under a mixed
    policy, computing in 16 bits with float32 variables, whose last layer computes in float32,
    and that leaves the global policy as it found it."""

    variables = ("build_mixed_model",)
    hint_text = (
        "Call keras.mixed_precision.set_global_policy('mixed_float16') before building the "
        "layers and set it back to 'float32' in a finally block. Give the last layer "
        "dtype='float32', e.g. keras.layers.Activation('softmax', dtype='float32')."
    )
    solution_code = """
def build_mixed_model():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            keras.layers.Activation("softmax", dtype="float32"),
        ])
    finally:
        keras.mixed_precision.set_global_policy("float32")
"""

    def _check(self, build_mixed_model: Any) -> str:
        before = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")
        try:
            model = call_learner(build_mixed_model)
            after = keras.mixed_precision.global_policy().name
        finally:
            keras.mixed_precision.set_global_policy(before)
        if not isinstance(model, keras.Model):
            raise Incorrect(f"return a tf_keras Model, got {type(model).__name__}")
        if after != "float32":
            raise Incorrect(f"the global policy is still {after!r}: restore it to 'float32'")
        if tuple(model.input_shape[1:]) != (28, 28, 1) or tuple(model.output_shape[1:]) != (10,):
            raise Incorrect(
                f"expected input (None, 28, 28, 1) and output (None, 10), got "
                f"{model.input_shape} and {model.output_shape}"
            )
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        with_weights = [layer for layer in layers if layer.weights]
        if not any(layer.compute_dtype in ("float16", "bfloat16") for layer in with_weights):
            raise Incorrect("no layer with weights computes in float16 or bfloat16")
        wrong_vars = [w.name for w in model.weights if w.dtype != "float32"]
        if wrong_vars:
            raise Incorrect(f"variables must stay float32; {wrong_vars[:2]} are not")
        if layers[-1].compute_dtype != "float32" or model.output.dtype != "float32":
            raise Incorrect(
                f"the last layer computes in {layers[-1].compute_dtype}: give it "
                "dtype='float32' so small probabilities do not round to 0"
            )
        x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
        if not np.all(np.isfinite(model(x).numpy())):
            raise Incorrect("the model's output is not finite")
        return "16-bit compute, float32 variables, a float32 last layer, the policy restored."


q1 = Underflows()
q2 = ChooseLossScale()
q3 = MixedModel()
