"""Quantization arithmetic, agreement with the TFLite converter, and QAT caching."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import quantization, tflite, training
from course_lib.quantization import affine_params, dequantize, int_range, quantize

from .conftest import make_dataset, same_weights


@pytest.mark.parametrize(
    "bits,narrow,expected",
    [
        (8, False, (-128, 127)),
        (8, True, (-127, 127)),
        (4, False, (-8, 7)),
        (16, False, (-32768, 32767)),
        (2, True, (-1, 1)),
    ],
)
def test_int_range(bits, narrow, expected):
    assert int_range(bits, narrow) == expected


@pytest.mark.parametrize("bits", [1, 17, 0, 8.0, True])
def test_num_bits_outside_2_to_16_is_refused(bits):
    with pytest.raises(ValueError, match="2..16"):
        int_range(bits)
    with pytest.raises(ValueError, match="2..16"):
        quantize(np.zeros(3), 0.1, 0, num_bits=bits)


def test_affine_params_by_hand():
    scale, zero_point = affine_params(-1.0, 3.0)
    assert float(scale) == pytest.approx(4 / 255) and int(zero_point) == -64
    scale, zero_point = affine_params(0.0, 1.0)  # images: TFLite's input parameters
    assert float(scale) == pytest.approx(1 / 255) and int(zero_point) == -128
    scale, zero_point = affine_params(-0.5, 2.0, symmetric=True)
    assert float(scale) == pytest.approx(2 / 127) and int(zero_point) == 0


def test_affine_params_includes_zero_and_handles_empty_ranges():
    scale, zero_point = affine_params(2.0, 4.0)  # widened to [0, 4]
    assert float(scale) == pytest.approx(4 / 255) and int(zero_point) == -128
    scale, _ = affine_params(0.0, 0.0)
    assert float(scale) == 1.0
    with pytest.raises(ValueError, match="must not exceed"):
        affine_params(1.0, 0.0)


def test_quantize_rounds_clips_and_represents_zero_exactly():
    scale, zero_point = affine_params(-1.0, 3.0)
    q = quantize(np.array([-1.0, 0.0, 3.0, 5.0, -9.0]), scale, zero_point)
    assert q.dtype == np.int8 and q.tolist() == [-128, -64, 127, 127, -128]
    assert dequantize(q, scale, zero_point)[1] == 0.0
    x = np.random.default_rng(0).uniform(-1, 3, 1000)
    error = np.abs(dequantize(quantize(x, scale, zero_point), scale, zero_point) - x)
    assert error.max() <= float(scale) / 2 + 1e-6  # at most half a step inside the range


def test_per_channel_quantization_and_its_errors():
    w = np.stack([np.linspace(-1, 1, 9), np.linspace(-0.01, 0.01, 9)], axis=-1)  # (9, 2)
    per_tensor = quantization.quantize_tensor(w, axis=None)
    per_channel = quantization.quantize_tensor(w, axis=-1)
    assert per_channel.scale.shape == (2,) and per_channel.values.dtype == np.int8
    err_t = quantization.quantization_error(w, per_tensor)
    err_c = quantization.quantization_error(w, per_channel)
    assert err_c["rmse"] < err_t["rmse"]
    assert np.abs(per_channel.values).max() == 127  # symmetric uses the narrow range
    with pytest.raises(ValueError, match="per-channel scales"):
        quantize(w, np.ones(3), 0, axis=-1)


def test_sixteen_bit_values_are_int16():
    q = quantization.quantize_tensor(np.array([0.5, -0.25]), num_bits=16)
    assert q.values.dtype == np.int16 and q.values.tolist() == [32767, -16384]


def test_numpy_helpers_reproduce_the_converters_int8_weights(tiny_model, tiny_data):
    content = tflite.convert(tiny_model, "int8", representative_data=tiny_data.x_train)
    params = {p["name"]: p for p in quantization.tflite_quantization(content)}
    kernel = tiny_model.get_layer("dense").get_weights()[0]
    name, stored = next(
        (n, w)
        for n, w in tflite.weight_tensors(content).items()
        if "dense" in n and w.dtype == np.int8 and w.ndim == 2
    )
    ours = quantization.quantize_tensor(kernel, axis=-1)
    np.testing.assert_allclose(params[name]["scales"], ours.scale, rtol=1e-5)
    assert np.mean(ours.values.T == stored) > 0.999
    input_params = next(p for p in params.values() if p["shape"] == (1, 28, 28, 1))
    assert input_params["zero_points"][0] == -128


def test_tflite_quantization_is_empty_for_a_float_model(tiny_model):
    assert quantization.tflite_quantization(tflite.convert(tiny_model)) == []


def test_quantization_aware_model_converts_to_int8_and_caches(tmp_root, tiny_data):
    base = training.train_baseline(
        "seed_cnn", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    qat = quantization.quantization_aware_model(base, tiny_data, epochs=1)
    again = quantization.quantization_aware_model(base, tiny_data, epochs=1)
    assert not qat.from_cache and again.from_cache
    lite = tflite.LiteModel(tflite.convert(again.model, "int8"))
    assert lite.input_dtype == np.int8
    assert lite.evaluate(tiny_data.x_test, tiny_data.y_test) > 0.5


def test_qat_loops_over_batches_with_the_weights_of_plain_keras(tmp_root, tiny_model, looped):
    """QAT also updates its activation ranges (moving averages) at every step; 32 steps per
    call must leave those exactly as one step per call does."""
    from course_lib.compat import tfmot

    data = make_dataset(n_train=2400)  # 75 batches of 32: 32 + 32 + 11
    base = training.CachedModel(tiny_model, tmp_root / "tiny.keras", True)
    qat = quantization.quantization_aware_model(base, data, epochs=1, seed=4)
    assert looped == [training.STEPS_PER_EXECUTION] and training.STEPS_PER_EXECUTION > 1
    reference = training.compile_model(tfmot.quantization.keras.quantize_model(tiny_model), 1e-4)
    training.set_seeds(4)
    reference.fit(
        data.x_train,
        data.y_train,
        epochs=1,
        batch_size=32,
        validation_data=(data.x_val, data.y_val),
        shuffle=True,
        verbose=0,
    )
    same_weights(qat.model, reference)
