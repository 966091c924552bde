"""Checkers of 02_pruning: each passes its solution and fails a blank, NaN where a number is
returned, and at least three plausible wrong answers of its own.

Expected values come from hand calculations (the cubic ramp worked out on paper), not from
the checker under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.compat import keras, tfmot
from course_lib.exercises import ____
from course_lib.exercises import pruning as ex

API = tfmot.sparsity.keras


def solved(problem) -> dict:
    namespace = {**vars(ex), "np": np, "keras": keras, "tfmot": tfmot}
    exec(problem.solution_code, namespace)
    return namespace


# --- q1: my_magnitude_mask -------------------------------------------------------------


def test_q1_right_blank_and_wrong():
    assert ex.q1.check(namespace=solved(ex.q1))
    assert ex.q1.check(my_magnitude_mask=____).status == "not_attempted"
    assert ex.q1.check(my_magnitude_mask=lambda w, s: ____).status == "not_attempted"
    wrong = {
        "boolean": lambda w, s: w * (abs(w) > 0.1),  # pruned weights, not a mask
        "should drop": lambda w, s: abs(w) > 10,  # a fixed threshold
        "rank by |w|": lambda w, s: np.arange(w.size).reshape(w.shape) >= round(s * w.size),
        "shape": lambda w, s: (np.abs(w) > np.quantile(np.abs(w), s)).ravel(),  # flattened
        "rank by |w| ": lambda w, s: w > np.quantile(w, s),  # signed values, not magnitudes
    }
    for reason, answer in wrong.items():
        result = ex.q1.check(my_magnitude_mask=answer)
        assert result.status == "incorrect" and reason.strip() in result.message, result


# --- q2: prune_dense_only ----------------------------------------------------------------


def _wrap_all(model, sparsity):
    return API.prune_low_magnitude(model, pruning_schedule=API.ConstantSparsity(sparsity, 0))


def _by_name(model, sparsity):
    def clone(layer):
        if layer.name == "dense":
            return API.prune_low_magnitude(
                layer, pruning_schedule=API.ConstantSparsity(sparsity, 0)
            )
        return layer

    return keras.models.clone_model(model, clone_function=clone)


def _dense_with(target_of):
    def prune(model, sparsity):
        def clone(layer):
            if isinstance(layer, keras.layers.Dense):
                schedule = API.ConstantSparsity(target_of(sparsity), 0)
                return API.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        return keras.models.clone_model(model, clone_function=clone)

    return prune


def _fresh_layers(model, sparsity):
    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())  # new random weights
        if isinstance(layer, keras.layers.Dense):
            schedule = API.ConstantSparsity(sparsity, 0)
            return API.prune_low_magnitude(fresh, pruning_schedule=schedule)
        return fresh

    return keras.models.clone_model(model, clone_function=clone)


def test_q2_right_blank_and_wrong():
    result = ex.q2.check(namespace=solved(ex.q2))
    assert result, result
    assert ex.q2.check(prune_dense_only=____).status == "not_attempted"
    assert ex.q2.check(prune_dense_only=lambda m, s: ____).status == "not_attempted"
    wrong = {
        "also wrapped": _wrap_all,  # the whole model
        "not wrapped": _by_name,  # a name test: misses LeNet's fc1..fc3
        "targets 0.15": _dense_with(lambda s: 1 - s),  # the fraction kept, not removed
        "the fraction to remove": _dense_with(lambda s: 0.5),  # a hard-coded target
        "lost the model's weights": _fresh_layers,
        "not wrapped ": lambda m, s: keras.models.clone_model(m),  # no clone_function at all
        "Keras model": lambda m, s: s,
    }
    for reason, answer in wrong.items():
        result = ex.q2.check(prune_dense_only=answer)
        assert result.status == "incorrect" and reason.strip() in result.message, result


# --- q3: sparsity_reached ----------------------------------------------------------------


def cubic(final, begin, end, step):
    """The PolynomialDecay formula, by hand: final * (1 - (1 - p)^3)."""
    p = min(1.0, (step - begin) / (end - begin))
    return final * (1 - (1 - p) ** 3)


def test_q3_expected_values_by_hand():
    # (0.85, 100, 900, 100, 500): last update at 500, p = 400/800 = 0.5 -> 0.85 * 7/8
    assert ex.q3.expected(0.85, 100, 900, 100, 500) == pytest.approx(0.85 * 7 / 8, abs=1e-6)
    # (0.9, 0, 950, 200, 2000): updates 200..800; 950 is not one -> p = 800/950
    assert ex.q3.expected(0.9, 0, 950, 200, 2000) == pytest.approx(
        0.9 * (1 - (150 / 950) ** 3), abs=1e-6
    )
    assert ex.q3.expected(0.7, 0, 600, 50, 1000) == pytest.approx(0.7, abs=1e-6)
    assert ex.q3.expected(0.6, 0, 1000, 100, 80) == 0.0
    assert ex.q3.expected(0.8, 300, 800, 100, 250) == 0.0


def _last_update(begin, end, frequency, total, first=1, last_inclusive=True):
    stop = min(end, total) + (1 if last_inclusive else 0)
    steps = [s for s in range(max(begin, first), stop) if (s - begin) % frequency == 0]
    return steps[-1] if steps else None


def test_q3_right_blank_nan_and_wrong():
    assert ex.q3.check(namespace=solved(ex.q3))
    assert ex.q3.check(sparsity_reached=____).status == "not_attempted"
    assert ex.q3.check(sparsity_reached=lambda *a: ____).status == "not_attempted"
    nan = ex.q3.check(sparsity_reached=lambda *a: math.nan)
    assert nan.status == "incorrect" and "NaN" in nan.message

    def rounded(f, b, e, q, t):  # 3 significant figures of the right value passes
        s = _last_update(b, e, q, t)
        return 0.0 if s is None else float(f"{cubic(f, b, e, s):.3g}")

    assert ex.q3.check(sparsity_reached=rounded)
    assert ex.q3.check(sparsity_reached=lambda *a: np.float32(rounded(*a)))

    def linear(f, b, e, q, t):
        s = _last_update(b, e, q, t)
        return 0.0 if s is None else f * min(1.0, (s - b) / (e - b))

    def no_frequency(f, b, e, q, t):
        return 0.0 if t < max(b, 1) else cubic(f, b, e, min(e, t))

    def one_step_early(f, b, e, q, t):
        s = _last_update(b, e, q, t, last_inclusive=False)
        return 0.0 if s is None else cubic(f, b, e, s)

    wrong = [
        lambda f, b, e, q, t: f,  # assumes the target is always reached
        linear,
        no_frequency,
        one_step_early,
        lambda *a: 100 * rounded(*a),  # a percentage
        lambda *a: "0.7",
    ]
    for answer in wrong:
        assert ex.q3.check(sparsity_reached=answer).status == "incorrect"


# --- q4: reading the sensitivity plot ----------------------------------------------------

LEVELS = [0.0, 0.5, 0.8, 0.95]
MEASURED = {"conv": [0.98, 0.97, 0.78, 0.11], "dense": [0.98, 0.98, 0.978, 0.91]}


def test_q4_uses_the_notebooks_curves():
    ns = {"curves": MEASURED, "SENSITIVITY_LEVELS": LEVELS}
    assert ex.q4.check(namespace={**ns, "answer": "b"})
    assert ex.q4.check(namespace={**ns, "answer": " B "})
    assert ex.q4.check(namespace={**ns, "answer": ____}).status == "not_attempted"
    for wrong in ("a", "c", "d", "e", 2):
        assert ex.q4.check(namespace={**ns, "answer": wrong}).status == "incorrect"
    feedback = ex.q4.check(namespace={**ns, "answer": "c"}).message
    assert "conv -20.0 points" in feedback and "dense -0.2 points" in feedback
    # other data, other answer: both layers within 1 point
    both = {"conv": [0.98, 0.98, 0.975, 0.5], "dense": [0.98, 0.98, 0.979, 0.9]}
    assert ex.q4.check(namespace={"curves": both, "SENSITIVITY_LEVELS": LEVELS, "answer": "c"})
    assert not ex.q4.check(namespace={"curves": both, "SENSITIVITY_LEVELS": LEVELS, "answer": "b"})


def test_q4_without_curves_uses_the_recorded_answer():
    assert ex.q4.check(namespace={"answer": "b"})
    for wrong in ("a", "c", "d"):
        assert ex.q4.check(namespace={"answer": wrong}).status == "incorrect"
