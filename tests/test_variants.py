"""One call turns a model into a measured Result."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest

from course_lib import measure, tflite, training, variants


def test_measure_tflite_fills_every_field(tmp_root, tiny_model, tiny_data):
    content = tflite.convert(tiny_model)
    result = variants.measure_tflite(
        content,
        "tiny_float32",
        tiny_data,
        tiny_model,
        model_name="tiny",
        technique="none",
        folder="99_test",
        note="hello",
    )
    assert result.tflite_bytes == len(content)
    assert result.tflite_gzip_bytes == measure.gzip_size(content) < len(content)
    assert result.accuracy == tflite.LiteModel(content).evaluate(tiny_data.x_test, tiny_data.y_test)
    assert result.params == tiny_model.count_params()
    assert result.nonzero_params == measure.count_nonzero(tiny_model)
    assert result.macs == measure.count_macs(tiny_model)
    assert 0 < result.latency_us <= result.extra["latency_p90_us"]
    assert result.extra["note"] == "hello"
    saved = tmp_root / "artifacts" / "full" / "99_test" / "tiny_float32.tflite"
    assert saved.read_bytes() == content


def test_convert_and_measure_int8_calibrates_on_training_data(
    tmp_root, tiny_model, tiny_data, monkeypatch
):
    seen = []

    def spy(model, kind, representative_data=None, **kwargs):
        seen.append(representative_data)
        assert kwargs["cache"] is True  # the measuring helpers remember their conversions
        return tflite.convert(model, kind, representative_data=representative_data, **kwargs)

    monkeypatch.setattr(variants, "convert", spy)
    result = variants.convert_and_measure(
        tiny_model,
        "tiny_int8",
        tiny_data,
        model_name="tiny",
        technique="quantization",
        kind="int8",
        baseline="tiny_float32",
    )
    assert result.extra["conversion"] == "int8" and result.baseline == "tiny_float32"
    assert result.accuracy > 0.5
    # calibrating on the test images would leak them into the model being tested
    assert len(seen) == 1 and seen[0] is tiny_data.x_train


def test_unknown_technique_is_rejected(tmp_root, tiny_model, tiny_data):
    with pytest.raises(ValueError, match="technique"):
        variants.convert_and_measure(
            tiny_model, "x", tiny_data, model_name="tiny", technique="wizardry"
        )


def test_accuracy_is_remembered_by_content_and_latency_is_measured_every_time(
    tmp_root, tiny_model, tiny_data, monkeypatch
):
    content = tflite.convert(tiny_model)
    lite = tflite.LiteModel(content)
    want = lite.evaluate(tiny_data.x_test, tiny_data.y_test)
    assert variants.tflite_accuracy(content, tiny_data) == want
    stored = list((tmp_root / "artifacts" / "full" / "outputs" / "litert").glob("*.npy"))
    assert len(stored) == 1  # the top-1 class of every test image, read by the interpreter
    np.testing.assert_array_equal(np.load(stored[0]), lite.predict(tiny_data.x_test).argmax(-1))
    predicted, timed = [], []
    real_predict, real_latency = tflite.LiteModel.predict, tflite.LiteModel.latency

    def predict(self, x):
        predicted.append(len(x))
        return real_predict(self, x)

    def latency(self, *args, **kwargs):
        timed.append(1)
        return real_latency(self, *args, **kwargs)

    monkeypatch.setattr(tflite.LiteModel, "predict", predict)
    monkeypatch.setattr(tflite.LiteModel, "latency", latency)
    for _ in range(2):
        result = variants.measure_tflite(
            content, "tiny", tiny_data, tiny_model, model_name="tiny", technique="none"
        )
        assert result.accuracy == want
    assert predicted == [] and timed == [1, 1]  # read back; timed on both calls
    np.testing.assert_array_equal(
        variants.tflite_correct(content, tiny_data),
        real_predict(lite, tiny_data.x_test).argmax(-1) == tiny_data.y_test,
    )
    # The labels are applied to the stored predictions: other labels, no new run
    shifted = dataclasses.replace(tiny_data, y_test=np.roll(tiny_data.y_test, 1))
    assert variants.tflite_accuracy(content, shifted) < want  # labels off by one image
    assert predicted == []
    # Everything the predictions depend on is part of the key: each of these runs again
    flipped = dataclasses.replace(
        tiny_data, x_test=tiny_data.x_test[::-1].copy(), y_test=tiny_data.y_test[::-1].copy()
    )
    assert variants.tflite_accuracy(content, flipped) == pytest.approx(want)  # same images
    variants.tflite_accuracy(tflite.convert(tiny_model, "dynamic"), tiny_data)
    variants.tflite_accuracy(content, tiny_data, threads=2)
    monkeypatch.setattr(variants, "cpu_name", lambda: "another CPU")
    variants.tflite_accuracy(content, tiny_data)
    monkeypatch.setattr(variants, "package_version", lambda name: "0.other")
    variants.tflite_accuracy(content, tiny_data)
    assert len(predicted) == 5


def test_tflite_correct_refuses_labels_of_another_length(tmp_root, tiny_model, tiny_data):
    short = dataclasses.replace(tiny_data, y_test=tiny_data.y_test[:-1])
    with pytest.raises(ValueError, match="^300 test images but 299 labels$"):
        variants.tflite_correct(tflite.convert(tiny_model), short)


def test_keras_predictions_are_remembered_by_weights_and_images(
    tmp_root, tiny_model, tiny_data, monkeypatch
):
    x = tiny_data.x_test
    want = tiny_model.predict(x, verbose=0).argmax(axis=-1)
    model = training.copy_model(tiny_model)
    calls = []
    real = model.predict
    monkeypatch.setattr(model, "predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(variants.keras_predictions(model, x), want)
    stored = list((tmp_root / "artifacts" / "full" / "outputs" / "keras").glob("*.npy"))
    assert len(stored) == 1 and calls == [1]
    np.testing.assert_array_equal(variants.keras_predictions(model, x), want)  # read back
    assert calls == [1]
    variants.keras_predictions(model, x[::-1].copy())  # other images
    variants.keras_predictions(model, x, batch_size=7)  # another batch size
    monkeypatch.setattr(variants, "gpu_names", lambda: ["a GPU"])  # another device
    variants.keras_predictions(model, x)
    model.set_weights([w * 0.5 for w in model.get_weights()])  # other weights
    variants.keras_predictions(model, x)
    assert len(calls) == 5


def test_tflite_gzip_size_is_measure_gzip_size_remembered(tmp_root, monkeypatch):
    content = bytes(range(256)) * 40
    want = len(gzip.compress(content, 9, mtime=0))
    assert variants.tflite_gzip_size(content) == want
    monkeypatch.setattr(variants, "gzip_size", lambda c: pytest.fail("not read back"))
    assert variants.tflite_gzip_size(content) == want
    monkeypatch.setattr(variants, "gzip_size", lambda c: -1)
    assert variants.tflite_gzip_size(content + b"!") == -1  # other bytes: computed
