"""Conversion to every .tflite kind and LiteRT inference, with clear input errors."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

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


# --- every function, its boundaries and its messages (issue 13, part 3) ---


def _by_hand(content, x):
    """Run LiteRT's interpreter the way 01_baseline does, one image at a time: raw outputs."""
    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for image in x:
        interp.set_tensor(inp["index"], image[None])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0])
    return np.array(rows), inp, out


def test_int8_predict_equals_the_interpreter_by_hand(converted, tiny_data):
    x = tiny_data.x_test[:4]
    scale_in, zp_in = Interpreter(model_content=converted["int8"]).get_input_details()[0][
        "quantization"
    ]
    q = np.clip(np.round(x / scale_in) + zp_in, -128, 127).astype(np.int8)
    raw, _, out = _by_hand(converted["int8"], q)
    scale, zp = out["quantization"]
    lite = tflite.LiteModel(converted["int8"])
    assert lite.output_quantization == (scale, zp) and lite.input_quantization == (scale_in, zp_in)
    np.testing.assert_array_equal(lite.prepare_input(x), q)
    np.testing.assert_allclose(lite.predict(x), (raw.astype(np.float32) - zp) * scale)
    assert lite.prepare_input(q) is q  # already int8: passed through untouched


def test_int8_input_is_clipped_to_the_int8_range(converted):
    lite = tflite.LiteModel(converted["int8"])
    x = np.zeros((2, 28, 28, 1), np.float32)
    x[0], x[1] = 1e6, -1e6
    q = lite.prepare_input(x)
    assert q[0].min() == 127 and q[1].max() == -128


def test_float_predict_equals_the_interpreter_by_hand(converted, tiny_data):
    x = tiny_data.x_test[:3]
    raw, _, _ = _by_hand(converted["float32"], x)
    lite = tflite.LiteModel(converted["float32"])
    np.testing.assert_array_equal(lite.predict(x), raw)
    assert lite.output_quantization == (0.0, 0) and lite.output_dtype == np.float32
    labels = raw.argmax(1)
    assert lite.evaluate(x, labels) == 1.0
    assert lite.evaluate(x, (labels + 1) % 10) == 0.0
    assert lite.evaluate(x[:2], np.array([labels[0], (labels[1] + 1) % 10])) == 0.5
    np.testing.assert_array_equal(lite.correct(x, labels[:, None]), [True, True, True])


def test_label_errors_say_what_is_wrong(converted, tiny_data):
    lite = tflite.LiteModel(converted["float32"])
    x = tiny_data.x_test[:3]
    with pytest.raises(ValueError, match=r"labels of shape \(3, 10\) look one-hot"):
        lite.correct(x, np.eye(10)[:3])
    with pytest.raises(ValueError, match=r"1-D array of class indices, got float32 \(3,\)"):
        lite.correct(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"got int64 \(3, 1, 1\)"):
        lite.correct(x, np.zeros((3, 1, 1), np.int64))
    with pytest.raises(ValueError, match=r"x and y differ in length: 3 vs 2"):
        lite.correct(x, np.zeros(2, np.int64))


def test_prepare_input_messages_in_full(converted):
    lite = tflite.LiteModel(converted["int8"])
    with pytest.raises(ValueError) as err:
        lite.prepare_input(np.zeros((28, 28, 1), np.float32))
    assert str(err.value) == (
        "this .tflite expects input of shape (N, 28, 28, 1) and dtype int8; got shape "
        "(28, 28, 1) (add a batch axis with x[None] for a single image)"
    )
    with pytest.raises(ValueError, match=r"expects input of dtype float32 or int8; got float64$"):
        lite.prepare_input(np.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match="shape"):
        lite.prepare_input(np.zeros((1, 28, 27, 1), np.float32))


def test_check_images_and_finite_messages(tiny_data):
    x = tiny_data.x_train
    with pytest.raises(
        ValueError,
        match=r"^representative data must have shape \(N, 28, 28, 1\) to match the model "
        r"input; got \(3, 28, 28\)$",
    ):
        tflite.representative_dataset(x[:3, ..., 0], 1, input_shape=(None, 28, 28, 1))
    with pytest.raises(ValueError, match=r"got list$"):
        tflite.representative_dataset([x[0]], 1, input_shape=(None, 28, 28, 1))
    with pytest.raises(ValueError, match=r"got float64 \(convert with x\.astype\('float32'\)\)"):
        tflite.representative_dataset(x[:3].astype(np.float64), 1, input_shape=(None, 28, 28, 1))
    bad = x[:2].copy()
    bad[0] = np.inf
    with pytest.raises(ValueError, match=r"representative data contains 784 NaN or infinite"):
        tflite.representative_dataset(bad, 1, input_shape=(None, 28, 28, 1))
    bad = np.full((2, 40, 40, 1), np.nan, np.float32)
    with pytest.raises(ValueError, match=r"contains 3,200 NaN"):
        tflite.representative_dataset(bad, 1, input_shape=(None, 40, 40, 1))


def test_representative_dataset_picks_distinct_images_reproducibly(tiny_data):
    x = tiny_data.x_train[:8]
    images = [b[0] for b in tflite.representative_dataset(x, num_samples=8)()]
    # all 8 images, each once (a permutation), each with its batch axis
    found = sorted(int(np.flatnonzero((x == img).all(axis=(1, 2, 3)))[0]) for img in images)
    assert found == list(range(8)) and images[0].shape == (1, 28, 28, 1)
    default = [b[0] for b in tflite.representative_dataset(x, 4)()]
    seeded = [b[0] for b in tflite.representative_dataset(x, 4, seed=tflite.config.SEED)()]
    np.testing.assert_array_equal(default, seeded)
    assert len(list(tflite.representative_dataset(tiny_data.x_train)())) == 100  # default
    with pytest.raises(ValueError, match=r"num_samples must be in 1\.\.8, got 9"):
        tflite.representative_dataset(x, num_samples=9)


def test_calibration_count_boundaries(tiny_model, tiny_data, monkeypatch):
    with pytest.raises(ValueError, match=r"num_calibration must be in 1\.\.20 .*got 0"):
        tflite.convert(
            tiny_model, "int8", representative_data=tiny_data.x_train[:20], num_calibration=0
        )
    seen = []
    real = tflite.representative_dataset
    monkeypatch.setattr(
        tflite, "representative_dataset", lambda x, n, *a: seen.append((len(x), n)) or real(x, n)
    )
    content = tflite.convert(tiny_model, "int8", representative_data=tiny_data.x_train[:100])
    assert seen == [(100, 100)]  # default: 100 images, all of these
    assert tflite.LiteModel(content).input_dtype == np.int8


def test_each_kind_stores_its_types(converted):
    def dtypes(kind):
        return {str(v.dtype) for v in tflite.weight_tensors(converted[kind]).values()}

    assert "float16" in dtypes("float16") and "int8" not in dtypes("float16")
    assert "int8" in dtypes("dynamic") and "float16" not in dtypes("dynamic")
    assert tflite.LiteModel(converted["dynamic"]).input_dtype == np.float32
    int16 = Interpreter(model_content=converted["int16x8"]).get_tensor_details()
    assert any(d["dtype"] == np.int16 for d in int16)  # int16 activations
    assert tflite.LiteModel(converted["int16x8"]).input_dtype == np.float32
    assert dtypes("float32") - {"int32"} == {"float32"}  # int32: the reshape's shape


def test_default_kind_is_float32_and_qat_needs_no_calibration(tiny_model, converted):
    assert tflite.op_names(tflite.convert(tiny_model)) == tflite.op_names(converted["float32"])
    qat = tfmot.quantization.keras.quantize_model(tiny_model)
    lite = tflite.LiteModel(tflite.convert(qat, "int8"))  # QAT learned its ranges
    assert lite.input_dtype == lite.output_dtype == np.int8
    stored = tflite.weight_tensors(tflite.convert(qat))  # the float32 kind of a QAT model
    assert any(v.dtype == np.int8 for v in stored.values())  # still has int8 weights


def test_weight_tensors_are_the_keras_weights_in_tflite_layout(converted, tiny_model):
    stored = tflite.weight_tensors(converted["float32"])
    kernel, bias, dense_kernel, dense_bias = tiny_model.get_weights()
    floats = [v for v in stored.values() if v.dtype == np.float32]
    assert len(floats) == 4  # two kernels and two biases; the image input is not a weight
    conv = next(v for v in floats if v.ndim == 4)
    np.testing.assert_array_equal(conv, np.transpose(kernel, (3, 0, 1, 2)))  # (out, h, w, in)
    biases = sorted((v for v in floats if v.ndim == 1), key=len)
    np.testing.assert_array_equal(biases[0], bias)
    np.testing.assert_array_equal(biases[1], dense_bias)
    input_name = Interpreter(model_content=converted["float32"]).get_input_details()[0]["name"]
    assert input_name not in stored


def test_read_tflite_checks_the_identifier_at_bytes_4_to_8(tmp_path):
    good = b"\0\0\0\0TFL3" + bytes(8)
    assert tflite.read_tflite(good) == good
    assert tflite.read_tflite(bytearray(good)) == good
    with pytest.raises(ValueError, match="not a .tflite model"):
        tflite.read_tflite(b"TFL3" + bytes(12))
    with pytest.raises(ValueError, match=r"^the given bytes is empty: not a \.tflite model"):
        tflite.read_tflite(b"")
    with pytest.raises(ValueError, match=r"It looks like a zip archive, e\.g\. a \.keras model"):
        tflite.read_tflite(b"PK\x03\x04" + bytes(12))
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(8))
    with pytest.raises(ValueError, match=r"m\.h5 is not a .* It looks like an HDF5 \(\.h5\)"):
        tflite.read_tflite(h5)
    with pytest.raises(ValueError, match=r"identifier\)\.$"):  # no hint for other files
        tflite.read_tflite(b"0123456789abcdef")
    path = tmp_path / "fake.tflite"
    path.write_bytes(good)
    assert tflite.read_tflite(str(path)) == good
    with pytest.raises(ValueError, match=r"fake\.tflite is not"):
        path.write_bytes(bytes(16))
        tflite.read_tflite(path)


def test_save_tflite_returns_the_path(converted, tmp_path):
    path = tflite.save_tflite(converted["float32"], str(tmp_path / "a.tflite"))
    assert path == tmp_path / "a.tflite" and path.read_bytes() == converted["float32"]


def test_lite_model_threads_boundary(converted):
    assert tflite.LiteModel(converted["float32"], num_threads=1).num_threads == 1
    assert tflite.LiteModel(converted["float32"]).num_threads == 1  # default
    with pytest.raises(ValueError, match=r"num_threads must be >= 1, got 0"):
        tflite.LiteModel(converted["float32"], num_threads=0)


def test_latency_times_invoke_on_the_first_image_with_defaults(converted, tiny_data, monkeypatch):
    lite = tflite.LiteModel(converted["float32"], num_threads=3)
    calls = []
    monkeypatch.setattr(tflite, "time_calls", lambda *a, **k: calls.append((a, k)) or "stats")
    assert lite.latency(tiny_data.x_test[:3]) == "stats"
    assert calls == [((lite.interpreter.invoke, 30, 300), {"threads": 3, "rounds": 1})]
    np.testing.assert_array_equal(
        lite.interpreter.get_tensor(lite._input["index"]), tiny_data.x_test[:1]
    )
    lite.latency(tiny_data.x_test[:1], warmup=4, runs=8, rounds=2)
    assert calls[-1] == ((lite.interpreter.invoke, 4, 8), {"threads": 3, "rounds": 2})


def test_sparse_weights_rows_name_the_tensor_and_op(tiny_model):
    sparse_model = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    kernel = weights[2]
    blocks = kernel.reshape(-1, 4, kernel.shape[1])
    norms = np.abs(blocks).sum(axis=1)
    weights[2] = (blocks * (norms > np.quantile(norms, 0.8))[:, None, :]).reshape(kernel.shape)
    sparse_model.set_weights(weights)
    content = tflite.convert(sparse_model, sparse_format=True)
    sparse = [
        d["name"]
        for d in Interpreter(model_content=content).get_tensor_details()
        if d.get("sparsity_parameters")
    ]
    assert tflite.sparse_weights(content) == [
        {"tensor": sparse[0], "op": "FULLY_CONNECTED", "block": "1x4", "densified": False}
    ]


def test_full_integer_means_no_floating_point_tensor_at_all(converted):
    # int8: integer input, weights and output; every other kind keeps float tensors
    # (dynamic range: float activations; float16: float weights; int16x8: float I/O)
    assert tflite.is_full_integer(converted["int8"])
    for kind in ("float32", "dynamic", "float16", "int16x8"):
        assert not tflite.is_full_integer(converted[kind]), kind
    interp = tflite.plain_interpreter(converted["int8"])
    dtypes = {np.dtype(d["dtype"]) for d in interp.get_tensor_details()}
    assert dtypes <= {np.dtype(np.int8), np.dtype(np.int32)}  # what "full integer" means


def _with_buffer_offsets(model) -> bytes:
    converter = tflite.tf.lite.TFLiteConverter.from_keras_model(model)
    converter._experimental_use_buffer_offset = True  # the layout for models over 2 GB
    return converter.convert()


def test_offset_buffers_names_the_tensors_stored_after_the_flatbuffer(converted, tiny_model):
    assert tflite.offset_buffers(converted["float32"]) == []
    assert tflite.offset_buffers(converted["int8"]) == []
    outside = tflite.offset_buffers(_with_buffer_offsets(tiny_model))
    weights = {
        d["name"] for d in tflite.plain_interpreter(converted["float32"]).get_tensor_details()
    }
    assert outside and set(outside) <= weights
    # the large ones are outside: every kernel of the tiny model (its biases may stay inline)
    kernels = [
        n for n in tflite.weight_tensors(converted["float32"]) if "MatMul" in n or "Conv2D" in n
    ]
    assert kernels and all(any(k == o for o in outside) for k in kernels), (kernels, outside)


def test_the_converter_is_deterministic_so_a_stored_file_is_the_file_it_would_make(
    tiny_model, tiny_data
):
    """The premise of ``convert(cache=True)``: the same model and settings, the same bytes."""
    for kind in ("float32", "int8"):
        again = tflite.convert(tiny_model, kind, representative_data=tiny_data.x_train)
        first = tflite.convert(tiny_model, kind, representative_data=tiny_data.x_train)
        assert again == first


def test_cached_conversion_converts_once_and_only_for_the_same_input(
    tmp_root, tiny_model, tiny_data, converted, monkeypatch
):
    calls = []
    real = tflite._convert

    def counting(*args):
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(tflite, "_convert", counting)
    x = tiny_data.x_train
    content = tflite.convert(tiny_model, "int8", representative_data=x, cache=True)
    assert content == converted["int8"] and calls == ["int8"]
    stored = list((tmp_root / "artifacts" / "full" / "outputs" / "tflite").glob("*.bin"))
    assert [p.read_bytes() for p in stored] == [content]
    assert tflite.convert(tiny_model, "int8", representative_data=x, cache=True) == content
    assert calls == ["int8"]  # read back, not converted
    # Anything the converter sees is part of the key: each of these converts again
    tflite.convert(tiny_model, "int8", representative_data=x[::-1].copy(), cache=True)
    tflite.convert(tiny_model, "int8", representative_data=x, num_calibration=50, cache=True)
    tflite.convert(tiny_model, "dynamic", cache=True)
    tflite.convert(tiny_model, "float32", cache=True)
    tflite.convert(tiny_model, "float32", sparse_format=True, cache=True)
    changed = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    weights[-1] = weights[-1] + 1e-3  # one bias
    changed.set_weights(weights)
    tflite.convert(changed, "dynamic", cache=True)
    monkeypatch.setattr(tflite, "package_version", lambda name: "0.0-other")
    tflite.convert(tiny_model, "dynamic", cache=True)
    assert len(calls) == 8
    assert tflite.convert(tiny_model, "dynamic") == converted["dynamic"]  # cache=False: no store
    assert len(calls) == 9 and len(list(stored[0].parent.glob("*.bin"))) == 8


def test_a_model_without_a_config_converts_without_being_stored(
    tmp_root, tiny_model, converted, monkeypatch
):
    def no_config():
        raise NotImplementedError("a layer without get_config")

    monkeypatch.setattr(tiny_model, "to_json", no_config)
    assert tflite.conversion_key(tiny_model, "float32") is None
    assert tflite.convert(tiny_model, "float32", cache=True) == converted["float32"]
    assert not (tmp_root / "artifacts" / "full" / "outputs" / "tflite").exists()
