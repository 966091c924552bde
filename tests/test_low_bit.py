"""course_lib.low_bit: int4 packing by hand, recipes, quantized files, SNR, mixed recipes."""

import math

import numpy as np
import pytest

from course_lib import low_bit
from course_lib.compat import keras
from course_lib.tflite import LiteModel, convert


@pytest.fixture(scope="module")
def float_file(tiny_model) -> bytes:
    return convert(tiny_model, "float32")


@pytest.fixture(scope="module")
def dense_inputs() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(50, 8, 8, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def dense_file() -> bytes:
    """Flatten -> Dense(32) -> Dense(10): 8,192 + 320 weights, inputs divisible by 32."""
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ],
        name="mlp",
    )
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.weights])
    return convert(model, "float32")


# --- int4 packing: hand-worked bytes ----------------------------------------------------


def test_pack_int4_puts_the_first_value_in_the_low_half():
    # 1 -> 0x1, -1 -> 0xF, 7 -> 0x7, -8 -> 0x8, 3 -> 0x3, padded with 0
    assert low_bit.pack_int4(np.array([1, -1, 7, -8, 3])) == bytes([0xF1, 0x87, 0x03])
    assert low_bit.pack_int4(np.array([], np.int8)) == b""


def test_unpack_int4_inverts_pack():
    values = np.arange(-8, 8, dtype=np.int8)
    assert low_bit.unpack_int4(low_bit.pack_int4(values), 16).tolist() == values.tolist()
    assert low_bit.unpack_int4(bytes([0xF1, 0x87, 0x03]), 5).tolist() == [1, -1, 7, -8, 3]
    with pytest.raises(ValueError, match=r"^count must be in 0..6, got 7$"):
        low_bit.unpack_int4(bytes(3), 7)


@pytest.mark.parametrize("bad", [np.array([8]), np.array([-9]), np.array([0.5])])
def test_pack_int4_refuses_values_outside_int4(bad):
    with pytest.raises(ValueError, match=r"^int4 values must be integers in -8..7$"):
        low_bit.pack_int4(bad)


def test_int4_packed_bytes_rounds_up():
    assert [low_bit.int4_packed_bytes(n) for n in (0, 1, 2, 5, 54_080)] == [0, 1, 1, 3, 27_040]
    with pytest.raises(ValueError, match="count must be >= 0"):
        low_bit.int4_packed_bytes(-1)


# --- recipes and bad input ---------------------------------------------------------------


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        low_bit.recipe_for("int3")
    assert str(err.value) == "unknown recipe 'int3'; known recipes: " + ", ".join(low_bit.RECIPES)
    assert "aeq_dynamic_wi4" in str(err.value)


def test_each_recipe_is_a_fresh_list():
    first = low_bit.recipe_for("aeq_dynamic_wi4")
    first.clear()
    assert low_bit.recipe_for("aeq_dynamic_wi4")


def test_a_keras_file_is_not_a_tflite(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 a zip archive")
    with pytest.raises(ValueError, match=r"model.keras is not a \.tflite model"):
        low_bit.quantize_tflite(path, "aeq_dynamic_wi4")


def test_calibration_images_only_where_activations_are_quantized(float_file, tiny_data):
    with pytest.raises(ValueError, match="needs calibration_images"):
        low_bit.quantize_tflite(float_file, "aeq_static_wi8_ai8")
    with pytest.raises(ValueError, match="takes no calibration"):
        low_bit.quantize_tflite(float_file, "aeq_dynamic_wi4", tiny_data.x_train[:10])


def test_signature_data_refuses_bad_images(float_file):
    with pytest.raises(ValueError, match="NaN or infinite"):
        low_bit.signature_data(float_file, np.full((2, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="non-empty batch"):
        low_bit.signature_data(float_file, np.zeros((0, 28, 28, 1), np.float32))
    key, name = low_bit.signature_input(float_file)
    wrapped = low_bit.signature_data(float_file, np.zeros((3, 28, 28, 1), np.float32))
    assert list(wrapped) == [key] and len(wrapped[key]) == 3
    assert wrapped[key][0][name].shape == (1, 28, 28, 1)


def test_mixed_recipe_refuses_bad_settings(dense_file):
    with pytest.raises(ValueError, match=r"^bits for layer 'fc1' must be 4 or 8, got 3$"):
        low_bit.mixed_recipe(dense_file, {"fc1": 3})
    with pytest.raises(ValueError, match=r"^no layer 'fc9' with weights; layers: fc1, fc2$"):
        low_bit.mixed_recipe(dense_file, {"fc9": 4})
    with pytest.raises(ValueError, match="at least one layer"):
        low_bit.mixed_recipe(dense_file, {})


def test_layer_outputs_names_the_last_layer_too(dense_file, float_file):
    outputs = low_bit.layer_outputs(dense_file)
    assert list(outputs) == ["fc1", "fc2"]
    assert "/fc1/" in outputs["fc1"]
    assert "/fc2/" not in outputs["fc2"]  # the last op carries the signature's output name
    assert list(low_bit.layer_outputs(float_file)) == ["conv", "dense"]


def test_choose_bits_by_threshold():
    rows = [{"layer": "a", "snr_db_int4": 30.0}, {"layer": "b", "snr_db_int4": 29.9}]
    assert low_bit.choose_bits(rows, 30.0) == {"a": 4, "b": 8}
    with pytest.raises(ValueError, match="no sensitivity rows"):
        low_bit.choose_bits([], 30.0)


# --- quantized files ---------------------------------------------------------------------


def test_int4_saves_half_a_byte_per_weight(dense_file):
    int8 = low_bit.quantize_tflite(dense_file, "aeq_dynamic_wi8")
    int4 = low_bit.quantize_tflite(dense_file, "aeq_dynamic_wi4")
    weights = 256 * 32 + 32 * 10  # hand count; biases stay float32 in both
    saved = len(int8) - len(int4)
    assert abs(saved - weights / 2) <= 64, saved  # flatbuffer alignment moves a few bytes
    # float32 -> int8 saves 3 bytes a weight but adds, per output channel (32 + 10), a
    # float32 scale and an int64 zero point: TFLite's QuantizationParameters
    assert abs(len(dense_file) - len(int8) - (3 * weights - 42 * (4 + 8))) <= 64


def test_blockwise_scales_cost_bytes_and_buy_precision(dense_file, dense_inputs):
    per_channel = low_bit.quantize_tflite(dense_file, "aeq_dynamic_wi4")
    blockwise = low_bit.quantize_tflite(dense_file, "aeq_blockwise32_wi4")
    assert len(blockwise) > len(per_channel)  # one scale per 32 inputs, not per channel
    assert low_bit.output_snr_db(dense_file, blockwise, dense_inputs) > low_bit.output_snr_db(
        dense_file, per_channel, dense_inputs
    )


def test_blockwise_needs_inputs_divisible_by_32(float_file):
    with pytest.raises(ValueError, match="not divisible by block size 32"):
        low_bit.quantize_tflite(float_file, "aeq_blockwise32_wi4")  # 1,352 dense inputs


def test_static_int8_has_int8_input_and_stays_accurate(float_file, tiny_data):
    static = low_bit.quantize_tflite(float_file, "aeq_static_wi8_ai8", tiny_data.x_train[:100])
    lite = LiteModel(static)
    assert lite.input_dtype == np.int8
    reference = LiteModel(float_file).evaluate(tiny_data.x_test, tiny_data.y_test)
    assert lite.evaluate(tiny_data.x_test, tiny_data.y_test) >= reference - 0.02


def test_output_snr_db_matches_a_direct_computation(float_file, tiny_data):
    x = tiny_data.x_test[:40]
    int4 = low_bit.quantize_tflite(float_file, "aeq_dynamic_wi4")
    f, q = LiteModel(float_file).predict(x), LiteModel(int4).predict(x)
    expected = 10 * np.log10(np.mean(f**2) / np.mean((f - q) ** 2))
    assert low_bit.output_snr_db(float_file, int4, x) == pytest.approx(expected, abs=0.01)
    assert low_bit.output_snr_db(float_file, float_file, x) == math.inf


def test_sensitivity_and_mixed_recipe(dense_file, dense_inputs):
    rows = low_bit.layer_sensitivity(dense_file, ["fc1", "fc2"], dense_inputs)
    assert [r["layer"] for r in rows] == ["fc1", "fc2"]
    assert all(r["snr_db_int8"] > r["snr_db_int4"] + 12 for r in rows)  # 4 bits ~ 24 dB
    mixed = low_bit.quantize_tflite(
        dense_file, low_bit.mixed_recipe(dense_file, {"fc1": 4, "fc2": 8})
    )
    int4 = low_bit.quantize_tflite(dense_file, "aeq_dynamic_wi4")
    int8 = low_bit.quantize_tflite(dense_file, "aeq_dynamic_wi8")
    assert len(int4) < len(mixed) < len(int8)
    assert abs(len(mixed) - len(int4) - 320 / 2) <= 64  # only fc2's 320 weights are int8


def test_output_snr_db_is_remembered_with_cache(float_file, tiny_data, tmp_root, monkeypatch):
    x = tiny_data.x_test[:40]
    int4 = low_bit.quantize_tflite(float_file, "aeq_dynamic_wi4")
    int8 = low_bit.quantize_tflite(float_file, "aeq_dynamic_wi8")
    want = {q: low_bit.output_snr_db(float_file, q, x) for q in (int4, int8)}
    assert low_bit.output_snr_db(float_file, int4, x, cache=True) == want[int4]
    assert low_bit.output_snr_db(float_file, float_file, x, cache=True) == math.inf
    runs = []
    real = low_bit.quantizer.Quantizer
    monkeypatch.setattr(
        low_bit.quantizer, "Quantizer", lambda *a, **k: runs.append(1) or real(*a, **k)
    )
    assert low_bit.output_snr_db(float_file, int4, x, cache=True) == want[int4]  # read back
    assert low_bit.output_snr_db(float_file, float_file, x, cache=True) == math.inf
    assert runs == []
    assert low_bit.output_snr_db(float_file, int8, x, cache=True) == want[int8]  # other file
    assert low_bit.output_snr_db(float_file, int4, x[:20], cache=True) != want[int4]  # images
    assert low_bit.output_snr_db(float_file, int4, x) == want[int4]  # no cache: runs
    assert len(runs) == 3
