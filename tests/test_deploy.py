"""course_lib.deploy: cold start, LiteRT and Keras throughput, core-seconds, process memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from course_lib import deploy, measure, report, tflite, variants
from course_lib.compat import keras

from .test_report import make_result


@pytest.fixture(scope="module")
def float_file(tiny_model) -> bytes:
    return tflite.convert(tiny_model)


def _clock(monkeypatch, durations):
    """Make the timed calls take ``durations`` seconds (measure.time_calls' perf_counter_ns)."""
    ticks = itertools.chain.from_iterable(
        (10**10 * i, 10**10 * i + round(d * 1e9)) for i, d in enumerate(durations)
    )
    monkeypatch.setattr(measure.time, "perf_counter_ns", lambda: next(ticks))


def test_interpreters_with_and_without_xnnpack_agree(float_file, tiny_data):
    x = tiny_data.x_test[:1]
    outputs = []
    for xnnpack in (True, False):
        interpreter = deploy.litert_interpreter(float_file, threads=2, xnnpack=xnnpack)
        interpreter.allocate_tensors()
        ops = [op["op_name"] for op in interpreter._get_ops_details()]
        assert ("DELEGATE" in ops) == xnnpack  # XNNPACK takes the graph over as one node
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)
    expected = tflite.LiteModel(float_file).predict(x)
    np.testing.assert_allclose(outputs[1], expected, atol=1e-5)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        deploy.litert_interpreter(float_file, threads=0)


def test_cold_start_is_the_median_creation_and_allocation_time(float_file, monkeypatch):
    _clock(monkeypatch, [0.002, 0.005, 0.001])
    assert deploy.cold_start_ms(float_file, repeats=3) == pytest.approx(2.0)
    monkeypatch.undo()
    assert 0 < deploy.cold_start_ms(float_file, xnnpack=False, repeats=2) < 5000
    with pytest.raises(ValueError, match="repeats must be >= 2"):
        deploy.cold_start_ms(float_file, repeats=1)


def test_litert_throughput_is_batch_over_the_median_invoke(float_file, tiny_data, monkeypatch):
    _clock(monkeypatch, [0.01, 0.04, 0.02, 0.01, 0.02])
    found = deploy.litert_throughput(float_file, tiny_data.x_test, 8, runs=5)
    # call times 10, 10, 20, 20, 40 ms: median 20, quartiles 10 and 20 (NumPy's linear rule)
    assert found.images_per_s == pytest.approx(400) and found.batch == 8
    assert found.iqr_images_per_s == pytest.approx([400, 800])
    assert found.calls.runs == 5 and found.calls.threads == 2
    monkeypatch.undo()
    assert deploy.litert_throughput(float_file, tiny_data.x_test[:3], 16, runs=2).images_per_s > 0
    for bad in ({"batch": 0}, {"batch": 4, "runs": 1}):
        with pytest.raises(ValueError, match="need batch >= 1 and runs >= 2"):
            deploy.litert_throughput(float_file, tiny_data.x_test, **{"runs": 2, **bad})


def test_batches_repeat_short_inputs():
    x = np.arange(3)
    assert deploy._batch_of(x, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert deploy._batch_of(x, 2).tolist() == [0, 1]


def test_keras_throughput_with_and_without_xla(tiny_model, tiny_data, monkeypatch):
    _clock(monkeypatch, [0.5, 0.1, 0.2, 0.3])
    found = deploy.keras_throughput(tiny_model, tiny_data.x_test, 50, runs=4)
    assert found.images_per_s == pytest.approx(200)  # 50 images / median 0.25 s
    monkeypatch.undo()
    for jit in (False, True):
        assert (
            deploy.keras_throughput(tiny_model, tiny_data.x_test, 8, jit, runs=2).images_per_s > 0
        )
    with pytest.raises(ValueError, match="need batch >= 1 and runs >= 2"):
        deploy.keras_throughput(tiny_model, tiny_data.x_test, 0)


def test_core_seconds_per_million_images():
    assert deploy.core_seconds_per_million(1000.0, 2) == 2000.0
    assert deploy.core_seconds_per_million(4e6, 1) == 0.25
    for ips, threads in ((0.0, 1), (-5.0, 1), (100.0, 0)):
        with pytest.raises(ValueError, match="images_per_second > 0 and threads >= 1"):
            deploy.core_seconds_per_million(ips, threads)


def test_peak_memory_grows_by_at_least_the_weights_of_a_big_model(tmp_path):
    big = keras.Sequential([keras.Input((784,)), keras.layers.Dense(8192), keras.layers.Dense(10)])
    path = tmp_path / "big.tflite"
    path.write_bytes(tflite.convert(big))  # 6.5 M float32 weights: about 26 MB
    floor = deploy.peak_rss_bytes(None)
    loaded = deploy.peak_rss_bytes(path, runs=2)
    assert floor["peak_rss_bytes"] > 10_000_000  # Python + LiteRT: tens of MB
    assert loaded["peak_rss_bytes"] - floor["peak_rss_bytes"] >= path.stat().st_size * 0.9
    assert loaded["before_model_bytes"] <= loaded["peak_rss_bytes"]
    with pytest.raises(FileNotFoundError, match="no model file"):
        deploy.peak_rss_bytes(tmp_path / "missing.tflite")
    (tmp_path / "not.tflite").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="memory probe failed"):
        deploy.peak_rss_bytes(tmp_path / "not.tflite")


def test_saved_model_serves_what_the_keras_model_predicts(tiny_model, tiny_data, tmp_path):
    folder = deploy.export_saved_model(tiny_model, tmp_path / "tiny" / "1")
    assert (folder / "saved_model.pb").is_file()
    served = deploy.saved_model_predict(folder, tiny_data.x_test, batch=128)  # 3 calls
    expected = tiny_model.predict(tiny_data.x_test, verbose=0)
    assert served.shape == expected.shape == (300, 10)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    signature = deploy.tf.saved_model.load(str(folder)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.name == "image" and spec.shape.as_list() == [None, 28, 28, 1]
    assert list(signature.structured_outputs) == ["probabilities"]
    with pytest.raises(ValueError, match="not an empty folder"):
        deploy.export_saved_model(tiny_model, folder)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        deploy.saved_model_predict(folder, tiny_data.x_test, batch=0)


def _stats(median):
    return measure.LatencyStats(median, 0.9 * median, 1.2 * median, 1.5 * median, 10, 5, 2)


def test_litert_latency_rounds_are_passed_on(float_file, tiny_data):
    calls = deploy.litert_throughput(float_file, tiny_data.x_test[:1], 1, 1, runs=10, rounds=5)
    assert calls.calls.rounds == 5 and calls.calls.runs == 10 and calls.batch == 1
    with pytest.raises(ValueError, match="rounds must be in"):
        deploy.litert_throughput(float_file, tiny_data.x_test[:1], 1, 1, runs=4, rounds=3)


def _chapter(tmp_root, names=("base", "small")):
    rows = [
        make_result(
            name,
            baseline=None if i == 0 else names[0],
            technique="none" if i == 0 else "quantization",
            extra={"tflite_file": f"{name}.tflite", "dataset": "mnist", "stages": [1, 2]},
        )
        for i, name in enumerate(names)
    ]
    report.write_results("03_quantization", rows, dataset="mnist")
    for name in names:
        path = variants.tflite_path(name, "03_quantization")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"model " + name.encode())
    return rows


def test_course_variants_pair_each_row_with_its_file(tmp_root):
    rows = _chapter(tmp_root)
    found = deploy.course_variants(["03_quantization"])
    assert [s.name for s in found] == ["base", "small"]
    assert [s.result for s in found] == rows
    for s in found:
        assert s.notebook == "03_quantization"
        assert s.path == tmp_root / "artifacts" / "full" / "03_quantization" / f"{s.name}.tflite"
        assert s.path.read_bytes() == b"model " + s.name.encode()
    (tmp_root / "artifacts" / "full" / "03_quantization" / "small.tflite").unlink()
    with pytest.raises(FileNotFoundError, match="small.tflite is missing: run 03_quantization"):
        deploy.course_variants(["03_quantization"])
    with pytest.raises(FileNotFoundError, match="run notebooks/05_structure.ipynb"):
        deploy.course_variants(["05_structure"])


def test_deployment_rows_keep_the_models_numbers_and_add_the_targets(tmp_root):
    _chapter(tmp_root)
    small = deploy.course_variants(["03_quantization"])[1]
    row = deploy.deployment_result(
        small, "mobile", "litert", latency=_stats(40.0), threads=2, batch=1, xnnpack=False,
        load_ms=0.5, peak_rss_bytes=40_000_000,
    )  # fmt: skip
    assert row.variant == "small/mobile/litert/threads=2/batch=1/xnnpack=False"
    assert (row.latency_us, row.latency_iqr_us) == (40.0, [36.0, 48.0])
    assert row.extra["latency_p90_us"] == 60.0
    assert row.extra["source"] == "03_quantization/small"
    assert row.baseline is None and row.extra["source_baseline"] == "base"
    assert "stages" not in row.extra and row.extra["tflite_file"] == "small.tflite"
    source = small.result
    for name in ("accuracy", "accuracy_ci95", "tflite_bytes", "tflite_gzip_bytes", "params"):
        assert getattr(row, name) == getattr(source, name), name
    assert row.is_deployment and not source.is_deployment
    cloud = deploy.deployment_result(small, "cloud", "litert", batch=64, throughput_ips=9e4)
    assert cloud.variant == "small/cloud/litert/batch=64"
    assert (cloud.latency_us, cloud.latency_iqr_us) == (source.latency_us, source.latency_iqr_us)
    report.write_results("07_deployment", [row, cloud])  # no baseline link to resolve
    back = report.load_results("07_deployment").results
    assert [r.variant for r in back] == [row.variant, cloud.variant]
    with pytest.raises(ValueError, match="target must be one of TARGETS"):
        deploy.deployment_result(small, "phone", "litert")
    with pytest.raises(ValueError, match="throughput_ips must be images per second, > 0"):
        deploy.deployment_result(small, "cloud", "litert", batch=1, throughput_ips=0.0)
