"""03_quantization's checkers: each passes its right answer (the solution code, run) and
fails a blank, NaN and the plausible wrong answers listed here (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.compat import tf
from course_lib.exercises import ____
from course_lib.exercises import quantization as ex


def solved(problem) -> dict:
    namespace = {**vars(ex), "np": np, "tf": tf}
    exec(problem.solution_code, namespace)
    return {name: namespace[name] for name in problem.variables}


def right_dequantize(q, s, z):
    return (np.asarray(q).astype(np.float32) - z) * s


def quantize_with(rounding):
    def my_quantize(x, s, z):
        return np.clip(rounding(np.asarray(x) / s) + z, -128, 127).astype(np.int8)

    return my_quantize


# --- q1: my_quantize / my_dequantize -------------------------------------------------------


def test_q1_solution_passes_and_blank_is_not_attempted():
    assert ex.q1.check(**solved(ex.q1)).status == "correct"
    assert ex.q1.check(my_quantize=____, my_dequantize=____).status == "not_attempted"
    blank_body = {"my_quantize": lambda x, s, z: ____, "my_dequantize": right_dequantize}
    assert ex.q1.check(**blank_body).status == "not_attempted"


def test_q1_test_vector_separates_the_roundings():
    x = ex.QuantizeDequantize.TIES / 0.25
    assert np.any(np.floor(x) != np.round(x))  # floor differs
    assert np.any(np.trunc(x) != np.round(x))  # int() differs
    assert np.any(np.floor(x + 0.5) != np.round(x))  # half up differs on a tie
    assert np.round(2.5) == 2 and np.round(3.5) == 4  # ties to even, as np.round


@pytest.mark.parametrize(
    "my_quantize,reason",
    [
        (quantize_with(np.floor), "round to nearest"),
        (quantize_with(np.trunc), "round to nearest"),
        (quantize_with(lambda v: np.floor(v + 0.5)), "ties as np.round"),
        (lambda x, s, z: np.clip(np.round(x / s) - z, -128, 127).astype(np.int8), "zero point"),
        (lambda x, s, z: (np.round(x / s) + z).astype(np.int8), "clip"),  # wraps around
        (lambda x, s, z: np.clip(np.round(x / s) + z, -128, 127), "np.int8"),  # float64
        (lambda x, s, z: np.full(np.shape(x), np.nan), "np.int8"),
        (lambda x, s, z: np.clip(np.round(x * s) + z, -128, 127).astype(np.int8), "round"),
    ],
)
def test_q1_rejects_wrong_quantize(my_quantize, reason):
    result = ex.q1.check(my_quantize=my_quantize, my_dequantize=right_dequantize)
    assert result.status == "incorrect" and reason in result.message, result


@pytest.mark.parametrize(
    "my_dequantize",
    [
        lambda q, s, z: (np.asarray(q).astype(np.float32) + z) * s,  # wrong sign
        lambda q, s, z: np.asarray(q) * s,  # zero point forgotten
        lambda q, s, z: (np.asarray(q) - np.int8(z)) * s,  # int8 arithmetic overflows
        lambda q, s, z: np.full(np.shape(q), np.nan),
    ],
)
def test_q1_rejects_wrong_dequantize(my_dequantize):
    result = ex.q1.check(my_quantize=quantize_with(np.round), my_dequantize=my_dequantize)
    assert result.status == "incorrect" and "my_dequantize" in result.message, result


# --- q2: scale and zero point of [-0.6, 1.9] -----------------------------------------------

SCALE = 2.5 / 255  # by hand: (1.9 - (-0.6)) / 255
ZERO_POINT = -67  # by hand: round(-128 + 0.6 / 0.0098039) = round(-66.8)


@pytest.mark.parametrize(
    "scale,zero_point",
    [
        (SCALE, ZERO_POINT),
        (0.00980, -67),  # 3 significant figures
        (np.float32(SCALE), np.int64(-67)),
        (np.float64(0.0098), -67.0),
    ],
)
def test_q2_accepts_right_answers_as_python_or_numpy_numbers(scale, zero_point):
    result = ex.q2.check(scale_answer=scale, zero_point_answer=zero_point)
    assert result.status == "correct", result


def test_q2_solution_and_blank():
    assert ex.q2.check(**solved(ex.q2)).status == "correct"
    assert ex.q2.check(scale_answer=____, zero_point_answer=-67).status == "not_attempted"


@pytest.mark.parametrize(
    "scale,zero_point,reason",
    [
        (float("nan"), -67, "NaN"),
        (SCALE, float("nan"), "NaN"),
        (float("inf"), -67, "infinite"),
        (2.5 / 256, -67, "255 steps"),  # 256 values taken for steps
        (1.9 / 127, -67, "symmetric"),  # the weights' scale
        (SCALE * 100, -67, "not right"),  # percent
        (SCALE, 67, "wrong sign"),
        (SCALE, -66, "nearest"),  # -66.8 truncated toward 0
        (SCALE, -61, "not right"),  # round(min / scale), without -128
        (SCALE, -64, "not right"),  # the worked example's zero point
        ("0.0098", -67, "number"),
    ],
)
def test_q2_rejects_wrong_answers(scale, zero_point, reason):
    result = ex.q2.check(scale_answer=scale, zero_point_answer=zero_point)
    assert result.status == "incorrect" and reason in result.message, result


# --- q3: convert_int8_with_fallback(model, images) -----------------------------------------


def _converter(model, images, *, representative=True, int8_io=False, optimize=True):
    def representative_dataset():
        for image in images[:50]:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative:
        converter.representative_dataset = representative_dataset
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def test_q3_solution_passes_and_blank_is_not_attempted():
    result = ex.q3.check(**solved(ex.q3))
    assert result.status == "correct", result
    assert "SIN" in result.message
    assert ex.q3.check(convert_int8_with_fallback=lambda m, x: ____).status == "not_attempted"


@pytest.mark.parametrize(
    "settings,reason",
    [
        ({"representative": False}, "dynamic range"),
        ({"int8_io": True}, "float32 input and output"),
        ({"optimize": False, "representative": False}, "dynamic range"),
    ],
)
def test_q3_rejects_wrong_conversions(settings, reason):
    def convert(model, images):
        return _converter(model, images, **settings)

    result = ex.q3.check(convert_int8_with_fallback=convert)
    assert result.status == "incorrect" and reason in result.message, result


def test_q3_rejects_a_path_or_a_crash():
    path = ex.q3.check(convert_int8_with_fallback=lambda m, x: "model.tflite")
    assert path.status == "incorrect" and "bytes" in path.message
    crash = ex.q3.check(convert_int8_with_fallback=lambda m, x: 1 / 0)
    assert crash.status == "incorrect" and "ZeroDivisionError" in crash.message


# --- q4: the microcontroller --------------------------------------------------------------


@pytest.mark.parametrize("answer", ["c", "C", " c "])
def test_q4_right_answer_in_any_case(answer):
    assert ex.q4.check(answer=answer).status == "correct"


@pytest.mark.parametrize(
    "answer,reason",
    [("a", "float16"), ("b", "dynamic range"), ("d", "16x8"), ("E", "fallback"), ("z", "one of")],
)
def test_q4_rejects_wrong_choices(answer, reason):
    result = ex.q4.check(answer=answer)
    assert result.status == "incorrect" and reason in result.message, result
    assert ex.q4.check(answer=____).status == "not_attempted"
