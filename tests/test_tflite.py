"""Conversion to every .tflite kind and LiteRT inference, with clear input errors."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import tflite
from course_lib.compat import keras, tfmot


@pytest.fixture(scope="module")
def converted(tiny_model, tiny_data):
    return {
        kind: tflite.convert(tiny_model, kind, representative_data=tiny_data.x_train)
        for kind in tflite.CONVERSIONS
    }


def test_every_kind_runs_and_stays_accurate(converted, tiny_model, tiny_data):
    keras_acc = float(
        np.mean(tiny_model.predict(tiny_data.x_test, verbose=0).argmax(1) == tiny_data.y_test)
    )
    for kind, content in converted.items():
        accuracy = tflite.LiteModel(content).evaluate(tiny_data.x_test, tiny_data.y_test)
        assert abs(accuracy - keras_acc) <= 0.03, kind


def test_float32_tflite_matches_keras(converted, tiny_model, tiny_data):
    lite = tflite.LiteModel(converted["float32"])
    np.testing.assert_allclose(
        lite.predict(tiny_data.x_test[:50]),
        tiny_model.predict(tiny_data.x_test[:50], verbose=0),
        atol=1e-5,
    )


def test_quantized_files_are_about_four_times_smaller(converted):
    assert len(converted["dynamic"]) < 0.35 * len(converted["float32"])
    assert len(converted["int8"]) < 0.35 * len(converted["float32"])
    assert len(converted["float16"]) < 0.6 * len(converted["float32"])


def test_int8_model_has_int8_io_and_quantizes_inputs_with_its_scale(converted):
    lite = tflite.LiteModel(converted["int8"])
    assert lite.input_dtype == np.int8 and lite.output_dtype == np.int8
    scale, zero_point = lite.input_quantization
    assert scale > 0
    x = np.full((1, 28, 28, 1), 0.5, np.float32)
    expected = np.clip(np.round(0.5 / scale) + zero_point, -128, 127)
    assert lite.prepare_input(x)[0, 0, 0, 0] == expected
    probs = lite.predict(x)
    assert probs.dtype == np.float32 and probs.shape == (1, 10)
    np.testing.assert_allclose(probs.sum(), 1.0, atol=0.05)


def test_float_model_keeps_float_io(converted):
    lite = tflite.LiteModel(converted["float32"])
    assert lite.input_dtype == np.float32 and lite.input_quantization == (0.0, 0)
    assert lite.input_shape == (1, 28, 28, 1)


def test_wrong_input_shape_or_dtype_names_expected_and_given(converted):
    lite = tflite.LiteModel(converted["float32"])
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 28, 28, 1\).*got shape"):
        lite.predict(np.zeros((28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="expects input of dtype float32; got float64"):
        lite.predict(np.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match="differ in length"):
        lite.evaluate(np.zeros((2, 28, 28, 1), np.float32), np.zeros(3))


def test_unknown_kind_and_missing_calibration_data(tiny_model):
    with pytest.raises(ValueError, match="Choose one of: float32, dynamic"):
        tflite.convert(tiny_model, "int4")
    with pytest.raises(ValueError, match="needs representative_data"):
        tflite.convert(tiny_model, "int8")


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((10, 32, 32, 1), np.float32), "shape"),
        (np.zeros((10, 28, 28, 1), np.float64), "float32"),
        (np.zeros((10, 28, 28), np.float32), "shape"),
    ],
)
def test_bad_representative_data_fails_before_conversion(tiny_model, bad, match, monkeypatch):
    from course_lib.compat import tf

    def no_conversion(*args, **kwargs):
        raise AssertionError("conversion started")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model", no_conversion)
    with pytest.raises(ValueError, match=match):
        tflite.convert(tiny_model, "int8", representative_data=bad)


def test_representative_dataset_yields_single_images(tiny_data):
    gen = tflite.representative_dataset(tiny_data.x_train, num_samples=5)
    batches = list(gen())
    assert len(batches) == 5 and batches[0][0].shape == (1, 28, 28, 1)
    with pytest.raises(ValueError, match="num_samples"):
        tflite.representative_dataset(tiny_data.x_train, num_samples=0)


def test_quantization_aware_models_are_detected(tiny_model):
    assert not tflite.is_quantization_aware(tiny_model)
    qat = tfmot.quantization.keras.quantize_model(tiny_model)
    assert tflite.is_quantization_aware(qat)


def test_latency_measures_invoke(converted, tiny_data):
    stats = tflite.LiteModel(converted["float32"], num_threads=2).latency(
        tiny_data.x_test[:1], warmup=2, runs=10
    )
    assert stats.runs == 10 and stats.threads == 2 and 0 < stats.median_us <= stats.p90_us


def test_lite_model_from_file_and_errors(converted, tmp_path):
    path = tflite.save_tflite(converted["float32"], tmp_path / "m.tflite")
    assert tflite.LiteModel(path).content == converted["float32"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]
    with pytest.raises(FileNotFoundError):
        tflite.LiteModel(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="num_threads"):
        tflite.LiteModel(converted["float32"], num_threads=0)


def test_weight_tensors_and_op_names(converted, tiny_model):
    names = tflite.op_names(converted["float32"])
    assert names == ["CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    stored = tflite.weight_tensors(converted["float32"])
    fc = next(v for k, v in stored.items() if "dense" in k and v.ndim == 2)
    np.testing.assert_array_equal(fc, tiny_model.get_layer("dense").get_weights()[0].T)
    int8_fc = next(
        v
        for k, v in tflite.weight_tensors(converted["int8"]).items()
        if "dense" in k and v.ndim == 2
    )
    assert int8_fc.dtype == np.int8


def test_sparse_weights_reports_format_and_densify(tiny_model):
    assert tflite.sparse_weights(tflite.convert(tiny_model)) == []
    sparse_model = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    weights[2] = weights[2] * (np.abs(weights[2]) > np.quantile(np.abs(weights[2]), 0.8))
    sparse_model.set_weights(weights)
    rows = tflite.sparse_weights(tflite.convert(sparse_model, sparse_format=True))
    fc = next(r for r in rows if r["op"] == "FULLY_CONNECTED")
    assert fc["densified"] and fc["block"] == "single values"
    # zeros in whole blocks of 4 inputs of one output (TFLite's 1x4 layout, output rows first):
    # the float32 converter keeps the block format and FULLY_CONNECTED reads it directly
    kernel = tiny_model.get_weights()[2]
    blocks = kernel.reshape(-1, 4, kernel.shape[1])
    norms = np.abs(blocks).sum(axis=1)
    weights[2] = (blocks * (norms > np.quantile(norms, 0.8))[:, None, :]).reshape(kernel.shape)
    sparse_model.set_weights(weights)
    rows = tflite.sparse_weights(tflite.convert(sparse_model, sparse_format=True))
    assert rows == [
        {"tensor": rows[0]["tensor"], "op": "FULLY_CONNECTED", "block": "1x4", "densified": False}
    ]


def test_latency_rounds_pool_their_timings_with_quartiles(converted, tiny_data):
    stats = tflite.LiteModel(converted["float32"]).latency(
        tiny_data.x_test[:1], warmup=1, runs=20, rounds=5
    )
    assert stats.runs == 20 and stats.rounds == 5
    assert 0 < stats.p25_us <= stats.median_us <= stats.p75_us <= stats.p90_us
    assert stats.iqr_us == [round(stats.p25_us, 2), round(stats.p75_us, 2)]
    with pytest.raises(ValueError, match="rounds"):
        tflite.LiteModel(converted["float32"]).latency(tiny_data.x_test[:1], runs=4, rounds=3)


def test_not_a_tflite_file_is_named(tmp_path, tiny_model):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.tflite is empty"):
        tflite.LiteModel(empty)
    keras_file = tmp_path / "model.keras"
    tiny_model.save(keras_file)
    with pytest.raises(ValueError, match=r"model\.keras is not a \.tflite model.*\.keras"):
        tflite.LiteModel(keras_file)
    with pytest.raises(ValueError, match="not a .tflite model"):
        tflite.op_names(b"0123456789abcdef")


def test_nan_or_infinite_inputs_are_refused(converted, tiny_data):
    x = tiny_data.x_test[:3].copy()
    x[1, 0, 0, 0] = np.nan
    for kind in ("float32", "int8"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            tflite.LiteModel(converted[kind]).predict(x)
    x[1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        tflite.LiteModel(converted["float32"]).evaluate(x, tiny_data.y_test[:3])


def test_one_hot_labels_are_detected(converted, tiny_data):
    lite = tflite.LiteModel(converted["float32"])
    one_hot = np.eye(10, dtype=np.float32)[tiny_data.y_test[:5]]
    with pytest.raises(ValueError, match=r"one-hot.*argmax"):
        lite.evaluate(tiny_data.x_test[:5], one_hot)
    right = lite.correct(tiny_data.x_test[:5], tiny_data.y_test[:5])
    assert right.dtype == bool and right.shape == (5,)
    assert lite.evaluate(tiny_data.x_test[:5], tiny_data.y_test[:5]) == right.mean()


def test_int8_calibration_with_nan_raises_instead_of_a_float_model(tiny_model, tiny_data):
    x = tiny_data.x_train[:50].copy()
    x[3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        tflite.convert(tiny_model, "int8", representative_data=x)


def test_calibration_count_error_names_the_parameter_passed(tiny_model, tiny_data):
    with pytest.raises(ValueError, match=r"num_calibration must be in 1\.\.20"):
        tflite.convert(
            tiny_model, "int8", representative_data=tiny_data.x_train[:20], num_calibration=50
        )


def test_numpy_numbers_are_accepted_where_python_numbers_are(converted, tiny_model, tiny_data):
    lite = tflite.LiteModel(converted["float32"], num_threads=np.int64(2))
    assert lite.num_threads == 2
    stats = lite.latency(tiny_data.x_test[:1], warmup=np.int64(1), runs=np.int64(6))
    assert stats.runs == 6
    content = tflite.convert(
        tiny_model, "int8", representative_data=tiny_data.x_train, num_calibration=np.int64(10)
    )
    assert tflite.LiteModel(content).input_dtype == np.int8
