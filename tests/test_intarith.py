"""Integer-only arithmetic of an int8 fully connected layer, checked by hand and bit for bit
against LiteRT (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import data, intarith, models, tflite
from course_lib.compat import set_seeds

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@pytest.mark.parametrize(
    "real,expected",
    [
        (0.5, (2**30, 0)),  # 0.5 = 2**30 * 2**(0 - 31)
        (1.0, (2**30, 1)),
        (0.75, (3 * 2**29, 0)),
        (0.1, (1_717_986_918, -3)),  # 0.8 * 2**31 = 1717986918.4 -> 1717986918
        (1 - 2**-40, (2**30, 1)),  # rounds up to 2**31: halved, exponent + 1
    ],
)
def test_quantize_multiplier_by_hand(real, expected):
    assert intarith.quantize_multiplier(real) == expected


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan"), float("inf")])
def test_quantize_multiplier_rejects_non_positive_or_non_finite(bad):
    with pytest.raises(ValueError, match="finite and > 0"):
        intarith.quantize_multiplier(bad)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (2**30, 2**30, 2**29),  # 2 * 2**60 / 2**32 = 2**29 exactly
        (3, 2**30, 2),  # 1.5 -> 2
        (-3, 2**30, -1),  # -1.5 -> -1 (gemmlowp's nudge for negatives)
        (100, 2**31 - 1, 100),  # multiplying by ~1.0
        (-100, 2**31 - 1, -100),
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one overflow saturates
    ],
)
def test_saturating_rounding_doubling_high_mul_by_hand(a, b, expected):
    assert int(intarith.saturating_rounding_doubling_high_mul(np.int64(a), b)) == expected


@pytest.mark.parametrize(
    "x,exponent,expected",
    [
        (5, 1, 3),
        (-5, 1, -3),
        (4, 1, 2),
        (7, 2, 2),
        (-6, 2, -2),
        (-7, 2, -2),
        (5, 0, 5),
        (-9, 3, -1),
    ],
)
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x, exponent, expected):
    assert int(intarith.rounding_divide_by_pot(np.int64(x), exponent)) == expected


def test_fixed_point_multiply_is_within_one_of_the_real_product():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**20), 2**20, size=2000)
    for real in (3.1e-4, 0.0123, 0.37, 0.999, 1.7):
        m, shift = intarith.quantize_multiplier(real)
        got = intarith.multiply_by_quantized_multiplier(acc, m, shift)
        assert np.max(np.abs(got - acc * real)) < 1  # double rounding: a little over 0.5


@pytest.mark.parametrize(
    "x,multiplier,expected_ruy,expected_reference",
    [
        # x * m / 2**31 = -284672.07 -> -284672, then / 2**12 = -69.5 exactly: ruy rounds
        # the tie up (-69), gemmlowp away from zero (-70)
        (-435725, (1403014797, -12), -69, -70),
        (3, (2**30, -1), 1, 1),  # 3 * 0.25 = 0.75 -> 1 either way
        # -0.75: ruy rounds -1.5 up to -1, then -0.5 up to 0 (double rounding); gemmlowp -1
        (-3, (2**30, -1), 0, -1),
    ],
)
def test_ruy_and_reference_rounding_differ_on_ties(x, multiplier, expected_ruy, expected_reference):
    m, shift = multiplier
    assert int(intarith.multiply_by_quantized_multiplier_ruy(np.int64(x), m, shift)) == expected_ruy
    assert (
        int(intarith.multiply_by_quantized_multiplier(np.int64(x), m, shift)) == expected_reference
    )


def test_double_rounding_by_hand():
    # 0.37 = 0.74 * 2**-1: the high mul gives 735312 * 0.74 = 544130.88 -> 544131, and the
    # shift halves it: 272065.5 -> 272066, one more than round(735312 * 0.37) = 272065.
    m, shift = intarith.quantize_multiplier(0.37)
    assert shift == -1
    assert int(intarith.saturating_rounding_doubling_high_mul(np.int64(735312), m)) == 544131
    assert int(intarith.multiply_by_quantized_multiplier(np.int64(735312), m, shift)) == 272066


def _int8_model(model, calibration):
    return tflite.convert(model, "int8", representative_data=calibration)


@pytest.fixture(scope="module")
def test_images():
    return data.load_dataset("mnist", fast=False).x_test[:1000]


def test_dense_layer_matches_litert_bit_for_bit_on_1000_images(tiny_model, tiny_data, test_images):
    content = _int8_model(tiny_model, tiny_data.x_train)
    params, x_q, y_q = intarith.dense_layer_io(content, test_images)
    assert x_q.dtype == np.int8 and x_q.shape == (1000, params.weights.shape[1])
    assert y_q.dtype == np.int8 and y_q.shape == (1000, 10)
    ours = intarith.fully_connected_int8(x_q, params)
    assert np.array_equal(ours, y_q)
    # gemmlowp's rounding (ties away from zero) is within one step, not always the same bits
    reference = intarith.fully_connected_int8(x_q, params, rounding="reference")
    assert np.max(np.abs(reference.astype(int) - y_q)) <= 1
    # a float requantization is not the same computation: it misses some of the bits
    multipliers, shifts = intarith.requantization(params)
    assert np.allclose(
        multipliers * 2.0 ** (shifts.astype(float) - 31),
        params.input_scale * params.weight_scales / params.output_scale,
        rtol=1e-8,
    )


def test_seed_cnn_dense_layer_with_fixed_weights_matches_litert(tiny_data, test_images):
    set_seeds(3)
    model = models.build_model("seed_cnn")  # fixed random weights: no training needed
    content = _int8_model(model, tiny_data.x_train)
    params, x_q, y_q = intarith.dense_layer_io(content, test_images)
    assert params.weights.shape == (10, 21632) and len(params.weight_scales) == 10
    assert np.array_equal(intarith.fully_connected_int8(x_q, params), y_q)
    # dropping the zero-point cross term breaks the equality
    shifted = intarith.FullyConnectedParams(**{**params.__dict__, "input_zero_point": 0})
    assert not np.array_equal(intarith.fully_connected_int8(x_q, shifted), y_q)


def test_bad_inputs_are_refused(tiny_model, tiny_data):
    float_file = tflite.convert(tiny_model, "float32")
    with pytest.raises(ValueError, match="not int8"):
        intarith.dense_layer_io(float_file, tiny_data.x_test[:2])
    params, x_q, _ = intarith.dense_layer_io(
        _int8_model(tiny_model, tiny_data.x_train), tiny_data.x_test[:2]
    )
    with pytest.raises(ValueError, match="int8 of shape"):
        intarith.fully_connected_int8(x_q.astype(np.int16), params)
    with pytest.raises(ValueError, match="int8 of shape"):
        intarith.fully_connected_int8(x_q[:, :-1], params)
