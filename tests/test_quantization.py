"""Quantization arithmetic, agreement with the TFLite converter, and QAT caching."""

from __future__ import annotations

import time

import numpy as np
import pytest

from course_lib import config, quantization, tflite, training
from course_lib.data import identity as data_identity
from course_lib.quantization import affine_params, dequantize, int_range, quantize
from course_lib.tflite import plain_interpreter

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
    start = time.perf_counter()
    qat = quantization.quantization_aware_model(base, tiny_data)  # defaults: 1 epoch at 1e-4
    elapsed = time.perf_counter() - start
    again = quantization.quantization_aware_model(base, tiny_data)
    assert not qat.from_cache and again.from_cache and again.path == qat.path
    assert qat.path.name.startswith(f"qat-{base.path.stem}-") and qat.path.suffix == ".h5"
    assert qat.meta["key_parts"] == {
        "base": base.path.stem,
        "epochs": 1,
        "learning_rate": 1e-4,
        "seed": config.SEED,
        **data_identity(tiny_data),
    }
    assert len(qat.history["loss"]) == 1 and again.history == qat.history
    assert 0 < qat.meta["train_seconds"] <= elapsed
    assert float(qat.model.optimizer.learning_rate) == pytest.approx(1e-4)
    lite = tflite.LiteModel(tflite.convert(again.model, "int8"))
    assert lite.input_dtype == np.int8
    assert lite.evaluate(tiny_data.x_test, tiny_data.y_test) > 0.5

    # another seed shuffles the images in another order: other weights, another cache entry
    other = quantization.quantization_aware_model(base, tiny_data, seed=config.SEED + 1)
    assert not other.from_cache and other.path != qat.path
    pairs = zip(qat.model.get_weights(), other.model.get_weights(), strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)


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


def test_tflite_quantization_lists_what_the_converter_stored(tiny_model, tiny_data):
    content = tflite.convert(tiny_model, "int8", representative_data=tiny_data.x_train)
    rows = quantization.tflite_quantization(content)
    kernel = next(r for r in rows if r["shape"] == (10, 1352))  # the Dense kernel, (out, in)
    assert kernel["dtype"] == "int8" and kernel["axis"] == 0
    assert kernel["scales"].dtype == np.float64 and kernel["scales"].shape == (10,)
    assert kernel["zero_points"].dtype == np.int64 and kernel["zero_points"].tolist() == [0] * 10
    # TFLite's int8 spec: images in [0, 1] get scale 1/255 and zero point -128, a softmax
    # output scale 1/256 and zero point -128, a bias int32 with scale input x weight scale
    image = next(r for r in rows if r["shape"] == (1, 28, 28, 1))
    assert image["dtype"] == "int8" and image["zero_points"].tolist() == [-128]
    assert image["scales"].tolist() == pytest.approx([1 / 255], rel=1e-6)
    output_name = plain_interpreter(content).get_output_details()[0]["name"]
    output = next(r for r in rows if r["name"] == output_name)
    assert output["dtype"] == "int8" and output["shape"] == (1, 10)
    assert output["scales"].tolist() == [1 / 256] and output["zero_points"].tolist() == [-128]
    flat = next(r for r in rows if r["shape"] == (1, 1352))
    bias = next(r for r in rows if r["shape"] == (10,))
    assert bias["dtype"] == "int32" and bias["zero_points"].tolist() == [0] * 10
    np.testing.assert_allclose(bias["scales"], flat["scales"][0] * kernel["scales"], rtol=1e-5)
    # the stored integers, dequantized per output channel (axis 0), are the Keras kernel to
    # within half a step
    stored = tflite.weight_tensors(content)[kernel["name"]]
    back = dequantize(stored, kernel["scales"], kernel["zero_points"], axis=kernel["axis"])
    error = np.abs(back - tiny_model.get_layer("dense").get_weights()[0].T)
    assert np.all(error <= kernel["scales"][:, None] * 0.5001)


# --- Exact behaviour a learner relies on (issue 13: mutation testing) ----------------------


def test_int_range_defaults_to_the_full_int8_range():
    assert int_range() == (-128, 127)
    assert int_range(narrow=True) == (-127, 127)


def test_nine_bits_need_int16_storage():
    q = quantization.quantize_tensor(np.array([1.0, -0.5]), num_bits=9)  # narrow: -255..255
    assert q.values.dtype == np.int16 and q.values.tolist() == [255, -128]  # -127.5: to even
    assert q.num_bits == 9 and q.axis is None
    assert quantization.quantize_tensor(np.array([1.0]), num_bits=8).values.dtype == np.int8


def test_per_channel_affine_params_by_hand():
    # channel 0: [-1, 3]; channel 1: [0, 1]; channel 2: all zero (a dead filter)
    scale, zero_point = affine_params(np.array([-1.0, 0.0, 0.0]), np.array([3.0, 1.0, 0.0]))
    assert scale.dtype == np.float64 and zero_point.dtype == np.int64
    np.testing.assert_allclose(scale, [4 / 255, 1 / 255, 1.0], rtol=1e-12)
    assert zero_point.tolist() == [-64, -128, 0]  # -128 + 63.75 rounds to -64
    scale, zero_point = affine_params(np.array([-0.5, -2.0]), np.array([1.0, 0.5]), symmetric=True)
    np.testing.assert_allclose(scale, [1 / 127, 2 / 127], rtol=1e-12)
    assert zero_point.dtype == np.int64 and zero_point.tolist() == [0, 0]  # one per channel
    scale, zero_point = affine_params(0.0, 0.0)  # an all-zero tensor: 0 is still exact
    assert (float(scale), int(zero_point)) == (1.0, 0)
    assert scale.dtype == np.float64 and zero_point.dtype == np.int64
    scale, zero_point = affine_params(0.0, 0.0, symmetric=True)
    assert (float(scale), int(zero_point)) == (1.0, 0) and zero_point.dtype == np.int64


def test_quantize_rounds_ties_to_even_like_np_round():
    # The course rounds with np.round, ties to even (the QuantizeDequantize exercise of 03
    # checks learners against it). TFLite rounds ties away from zero (TfLiteRound: 0.5 -> 1,
    # 2.5 -> 3) and in float32, so a weight that lands on a half step (x * (1 / scale) ==
    # 65.5 in float32, 65.4999996 in float64) can be stored one step apart: the converter
    # test above allows 0.1 % of such values.
    q = quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]), 1.0, 0)
    assert q.tolist() == [0, 2, 2, 0, -2, -2]
    assert quantize(np.array([2.5]), 1.0, 10).tolist() == [12]  # round, then add the zero point


def test_narrow_range_clips_at_minus_127():
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    assert quantize(x, 1 / 127, 0, narrow=True).tolist() == [-127, -127, 127, 127]
    assert quantize(x, 1 / 127, 0).tolist() == [-128, -127, 127, 127]


def test_per_channel_along_the_first_axis_by_hand():
    # TFLite stores a Dense kernel as (out, in) with one scale per output channel: axis 0
    x = np.array([[-1.0, 0.0, 1.0], [0.0, 0.5, 1.0]])
    scale, zero_point = np.array([0.5, 0.25]), np.array([10, -20])
    q = quantize(x, scale, zero_point, axis=0)
    assert q.dtype == np.int8 and q.tolist() == [[8, 10, 12], [-20, -18, -16]]
    back = dequantize(q, scale, zero_point, axis=0)
    assert back.dtype == np.float32 and back.tolist() == x.tolist()
    with pytest.raises(ValueError, match="2 per-channel scales for axis 1 of size 3"):
        quantize(x, scale, zero_point, axis=1)


def test_one_element_parameters_from_tflite_work_per_tensor():
    # tflite_quantization() lists a per-tensor scale as a 1-element array
    scale, zero_point = np.array([0.5]), np.array([-128])
    q = np.array([[-128, -127, 0, 127]], dtype=np.int8)
    back = dequantize(q, scale, zero_point)
    assert back.dtype == np.float32 and back.tolist() == [[0.0, 0.5, 64.0, 127.5]]
    assert quantize(back, scale, zero_point).tolist() == q.tolist()


def test_quantize_tensor_per_output_channel_on_axis_0_by_hand():
    w = np.array([[-1.0, 0.25, 1.0], [0.02, -0.005, 0.0]])
    q = quantization.quantize_tensor(w, axis=0)
    assert (q.num_bits, q.axis) == (8, 0)
    np.testing.assert_allclose(q.scale, [1 / 127, 0.02 / 127], rtol=1e-12)
    assert q.zero_point.tolist() == [0, 0]
    assert q.values.tolist() == [[-127, 32, 127], [127, -32, 0]]  # 0.25*127 = 31.75 -> 32
    expected = [[-1.0, 32 / 127, 1.0], [0.02, -32 * 0.02 / 127, 0.0]]
    np.testing.assert_allclose(q.dequantize(), expected, rtol=1e-6, atol=1e-9)
    assert q.dequantize().dtype == np.float32
    q4 = quantization.quantize_tensor(w, num_bits=4, axis=0)
    assert q4.num_bits == 4 and q4.values.tolist() == [[-7, 2, 7], [7, -2, 0]]  # 1.75 -> 2


def test_quantization_error_by_hand():
    w = np.array([1.0, 0.3])  # scale 1/127: 0.3 -> 38, which stands for 0.29921
    error = quantization.quantization_error(w, quantization.quantize_tensor(w))
    assert sorted(error) == ["max_abs", "rmse"]
    assert error["max_abs"] == pytest.approx(0.1 / 127, rel=1e-4)  # |38/127 - 0.3|
    assert error["rmse"] == pytest.approx(0.1 / 127 / np.sqrt(2), rel=1e-4)
    # measured in float32, the precision of the dequantized values: a tensor on the grid
    # has no error at all (not the 1.5e-9 of float64 0.1 vs float32 0.1)
    on_grid = np.array([0.1, -0.1, 0.0])
    error = quantization.quantization_error(on_grid, quantization.quantize_tensor(on_grid))
    assert error == {"max_abs": 0.0, "rmse": 0.0}


@pytest.mark.parametrize(
    ("lo", "hi"), [(np.nan, 1.0), (-1.0, np.inf), (np.array([0.0, -np.inf]), np.array([1.0, 1.0]))]
)
def test_a_range_that_is_not_finite_is_refused(lo, hi):
    with pytest.raises(ValueError, match="range must be finite.*training diverged"):
        quantization.affine_params(lo, hi)
    with pytest.raises(ValueError, match="range must be finite"):
        quantization.quantize_tensor(np.array([0.5, np.nan], dtype=np.float32))


def test_qat_models_built_one_after_another_convert_to_the_same_bytes(tiny_model):
    # tfmot names the input's QuantizeLayer from a process-wide counter; the name reaches
    # the .tflite's tensor names, so the second model used to convert to other bytes
    from course_lib.compat import keras, tfmot

    built = [
        quantization.fixed_quantizer_names(tfmot.quantization.keras.quantize_model(tiny_model))
        for _ in range(2)
    ]
    assert [layer.name for layer in built[0].layers][0] == "quantize_layer"
    assert built[0].to_json() == built[1].to_json()
    assert tflite.convert(built[0], "int8") == tflite.convert(built[1], "int8")
    # a functional model keeps tfmot's names: its graph refers to layers by name
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10, name="d")(keras.layers.Flatten(name="f")(inputs))
    functional = tfmot.quantization.keras.quantize_model(keras.Model(inputs, outputs))
    names = [layer.name for layer in functional.layers]
    assert [layer.name for layer in quantization.fixed_quantizer_names(functional).layers] == names
    functional.to_json()  # still serialisable
