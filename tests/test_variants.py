"""One call turns a model into a measured Result."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from course_lib import measure, tflite, variants


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
    want = tflite.LiteModel(content).evaluate(tiny_data.x_test, tiny_data.y_test)
    assert variants.tflite_accuracy(content, tiny_data) == want
    stored = list((tmp_root / "artifacts" / "full" / "outputs" / "litert").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text()) == want
    evaluated, timed = [], []
    real_evaluate, real_latency = tflite.LiteModel.evaluate, tflite.LiteModel.latency

    def evaluate(self, x, y):
        evaluated.append(len(x))
        return real_evaluate(self, x, y)

    def latency(self, *args, **kwargs):
        timed.append(1)
        return real_latency(self, *args, **kwargs)

    monkeypatch.setattr(tflite.LiteModel, "evaluate", evaluate)
    monkeypatch.setattr(tflite.LiteModel, "latency", latency)
    for _ in range(2):
        result = variants.measure_tflite(
            content, "tiny", tiny_data, tiny_model, model_name="tiny", technique="none"
        )
        assert result.accuracy == want
    assert evaluated == [] and timed == [1, 1]  # read back; timed on both calls
    # Everything the answer depends on is part of the key: each of these evaluates again
    flipped = dataclasses.replace(
        tiny_data, x_test=tiny_data.x_test[::-1].copy(), y_test=tiny_data.y_test[::-1].copy()
    )
    assert variants.tflite_accuracy(content, flipped) == pytest.approx(want)  # same images
    shifted = dataclasses.replace(tiny_data, y_test=np.roll(tiny_data.y_test, 1))
    assert variants.tflite_accuracy(content, shifted) < want  # labels off by one image
    variants.tflite_accuracy(tflite.convert(tiny_model, "dynamic"), tiny_data)
    variants.tflite_accuracy(content, tiny_data, threads=2)
    monkeypatch.setattr(variants, "cpu_name", lambda: "another CPU")
    variants.tflite_accuracy(content, tiny_data)
    monkeypatch.setattr(variants, "package_version", lambda name: "0.other")
    variants.tflite_accuracy(content, tiny_data)
    assert len(evaluated) == 6
