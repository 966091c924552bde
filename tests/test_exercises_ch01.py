"""Checkers of 00_setup_and_tour and 01_baseline: each with its right answer (the solution
run as code), a blank, NaN where the answer is a number, and plausible wrong answers.

Expected values come from hand counts or an independent derivation, not from the checkers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from course_lib import config
from course_lib.compat import tf
from course_lib.exercises import ____, baseline, tour


def _solve(problem) -> dict:
    namespace: dict = {}
    exec(problem.solution_code, namespace)
    return {name: namespace[name] for name in problem.variables}


def _status(problem, **values) -> str:
    return problem.check(**values).status


ALL = [tour.q1, tour.q2, tour.q3, baseline.q1, baseline.q2, baseline.q3, baseline.q4]


@pytest.mark.parametrize("problem", ALL, ids=lambda p: type(p).__name__)
def test_solution_is_correct_and_blank_is_not_attempted(problem):
    result = problem.check(**_solve(problem))
    assert result.status == "correct", result
    assert problem.check(namespace={}).status == "not_attempted"
    assert problem.check(**{name: ____ for name in problem.variables}).status == "not_attempted"


def _incorrect(problem, reason: str = "", **values) -> None:
    result = problem.check(**values)
    assert result.status == "incorrect", result
    assert reason in result.message, result.message


# ---- 00: parameters of Conv2D(8, 5x5) on 32x32x3, then Dense(64) ---------------------------

CONV = 8 * (5 * 5 * 3 + 1)  # hand count: 608
DENSE = (32 - 4) * (32 - 4) * 8 * 64 + 64  # 28 x 28 x 8 inputs, 64 units: 401,472


def test_tour_q1_accepts_numpy_and_float_counts():
    assert (CONV, DENSE) == (608, 401_472)
    assert tour.q1.check(conv_params=np.int64(CONV), dense_params=np.prod([6272, 64]) + 64)
    assert tour.q1.check(conv_params=608.0, dense_params=float(DENSE))


@pytest.mark.parametrize(
    "conv,dense,reason",
    [
        (8 * 5 * 5 * 3, DENSE, "biases"),
        (8 * (5 * 5 + 1), DENSE, "input channel"),
        (CONV, 32 * 32 * 8 * 64 + 64, "28x28"),
        (CONV, 28 * 28 * 8 * 64, "64 biases"),
        (CONV, 28 * 28 * 64 + 64, "not right"),
        (float("nan"), DENSE, "NaN"),
        (CONV, float("nan"), "NaN"),
        ("608", DENSE, "number"),
    ],
)
def test_tour_q1_rejects(conv, dense, reason):
    _incorrect(tour.q1, reason, conv_params=conv, dense_params=dense)


# ---- 00: bytes of fast mode's training images -------------------------------------------

FAST_BYTES = 3_000 * 28 * 28 * 1 * 4  # 300 images per class x 10, float32


def test_tour_q2_accepts_rounded_and_numpy():
    assert tour.q2.check(fast_train_bytes=FAST_BYTES)
    assert tour.q2.check(fast_train_bytes=9.41e6)  # 3 significant figures
    assert tour.q2.check(fast_train_bytes=np.int64(FAST_BYTES))


@pytest.mark.parametrize(
    "answer,reason",
    [
        (3_000 * 28 * 28, "uint8"),  # one byte per pixel
        (2 * FAST_BYTES, "not 8"),  # float64
        (FAST_BYTES / 1e6, "megabytes"),
        (55_000 * 28 * 28 * 4, "not right"),  # full mode
        (float("nan"), "NaN"),
        (float("inf"), "infinite"),
    ],
)
def test_tour_q2_rejects(answer, reason):
    _incorrect(tour.q2, reason, fast_train_bytes=answer)


# ---- 00: training_epochs() with config.pick ----------------------------------------------


def test_tour_q3_rejects_wrong_functions_and_restores_the_mode(monkeypatch):
    monkeypatch.setenv(config.FAST_ENV, "1")
    fixed = config.pick(full=12, fast=3)  # read once, when defined: wrong
    cases = [
        (lambda: 12, "both modes"),
        (lambda: fixed, "both modes"),
        (lambda: config.pick(full=3, fast=12), "swapped"),
        (lambda: config.pick(full=10, fast=3), "not right"),
        (lambda: float("nan"), "NaN"),
        (lambda: "12", "number"),
    ]
    for function, reason in cases:
        _incorrect(tour.q3, reason, training_epochs=function)
    assert os.environ[config.FAST_ENV] == "1"
    monkeypatch.delenv(config.FAST_ENV)
    assert tour.q3.check(training_epochs=lambda: config.pick(full=12, fast=3))
    assert config.FAST_ENV not in os.environ
    assert _status(tour.q3, training_epochs=lambda: ____) == "not_attempted"


# ---- 01 q1: to_tflite(model) -> bytes ---------------------------------------------------


def _convert(model, optimize: bool = False) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def test_to_tflite_rejects_wrong_functions(tmp_path: Path):
    def to_path(model):
        path = tmp_path / "model.tflite"
        path.write_bytes(_convert(model))
        return path

    other = baseline.fresh_model(seed=1)
    other_input = tf.keras.Sequential(
        [tf.keras.Input((10, 10, 1)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(5)]
    )

    def keras_file_bytes(model):
        path = tmp_path / "model.keras"
        model.save(path)
        return path.read_bytes()

    cases = [
        (to_path, "bytes"),
        (lambda model: tf.lite.TFLiteConverter.from_keras_model(model), "bytes"),
        (lambda model: _convert(model, optimize=True), "differ"),  # dynamic-range int8
        (lambda model: _convert(other), "differ"),  # same shapes, other weights
        (lambda model: _convert(other_input), "convert the `model` argument"),
        (keras_file_bytes, "not a .tflite"),
        (lambda model: 1 / 0, "ZeroDivisionError"),
    ]
    for function, reason in cases:
        _incorrect(baseline.q1, reason, to_tflite=function)


# ---- 01 q2: predict_one(tflite_bytes, image) -> int -------------------------------------


def _probabilities(tflite_bytes, image):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def test_predict_one_images_have_several_classes():
    # Otherwise a function returning a constant could pass.
    model = baseline.fresh_model(seed=11)
    classes = model(baseline.fresh_images(seed=12, count=8)).numpy().argmax(axis=1)
    assert len(set(classes.tolist())) >= 3


def test_predict_one_accepts_numpy_ints():
    assert baseline.q2.check(predict_one=lambda b, x: np.argmax(_probabilities(b, x)))


@pytest.mark.parametrize(
    "function,reason",
    [
        (_probabilities, "not the probabilities"),
        (lambda b, x: float(np.argmax(_probabilities(b, x))), "as an int"),
        (lambda b, x: int(np.argmin(_probabilities(b, x))), "most probable"),
        (lambda b, x: 0, "most probable"),
        (lambda b, x: float("nan"), "as an int"),
        (lambda b, x: int(np.argmax(_probabilities(b, x))) + 1, "most probable"),
        (lambda b, x: str(np.argmax(_probabilities(b, x))), "as an int"),
        (lambda b, x: _probabilities(b, x[0]), "raised"),  # no batch axis added
    ],
)
def test_predict_one_rejects(function, reason):
    _incorrect(baseline.q2, reason, predict_one=function)


# ---- 01 q3: Wilson interval of 188 / 200 -------------------------------------------------


def _wilson_by_roots(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The p with (k/n - p)^2 = z^2 p (1 - p) / n, i.e. the score test's boundary."""
    p_hat = k / n
    roots = np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat])
    low, high = sorted(float(r) for r in roots)
    return low, high


def test_wilson_expected_values_from_an_independent_derivation():
    low, high = _wilson_by_roots(188, 200)
    assert (round(low, 4), round(high, 4)) == (0.8981, 0.9653)
    assert baseline.q3.check(low=low, high=high)
    assert baseline.q3.check(low=0.898, high=0.965)  # 3 significant figures
    assert baseline.q3.check(low=np.float32(0.8981), high=np.float64(0.9653))


P, N = 0.94, 200
WALD = 1.96 * math.sqrt(P * (1 - P) / N)


@pytest.mark.parametrize(
    "low,high,reason",
    [
        (P - WALD, P + WALD, "normal approximation"),
        (*_wilson_by_roots(188, 200, z=1.645), "not right"),  # 90 %, not 95 %
        (89.81, 96.53, "percent"),
        (0.9653, 0.8981, "swap"),
        (*_wilson_by_roots(188, 188 + 200, z=1.96), "not right"),  # wrong n
        (float("nan"), 0.9653, "NaN"),
        (0.8981, float("nan"), "NaN"),
    ],
)
def test_wilson_rejects(low, high, reason):
    _incorrect(baseline.q3, reason, low=low, high=high)


# ---- 01 q4: MACs per byte of Conv2D(16, 5x5) on 28x28x1 ----------------------------------

MACS = 24 * 24 * 16 * 25  # hand count: 230,400
BYTES = 4 * 16 * 26  # 1,664


def test_conv_intensity_accepts_rounded_and_numpy():
    assert baseline.q4.check(conv_intensity=MACS / BYTES)
    assert baseline.q4.check(conv_intensity=138)  # 3 significant figures of 138.46
    assert baseline.q4.check(conv_intensity=np.float32(MACS / BYTES))


@pytest.mark.parametrize(
    "answer,reason",
    [
        (MACS / (4 * 16 * 25), "biases"),  # 144: kernel only
        (28 * 28 * 16 * 25 / BYTES, "24x24"),
        (MACS / (16 * 26), "4 bytes"),
        (BYTES / MACS, "bytes per MAC"),
        (26 * 26 * 16 * 25 / BYTES, "not right"),  # the seed CNN's 26x26
        (float("nan"), "NaN"),
        ("138", "number"),
    ],
)
def test_conv_intensity_rejects(answer, reason):
    _incorrect(baseline.q4, reason, conv_intensity=answer)
