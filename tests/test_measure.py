"""Parameter, zero and MAC counts, file sizes and timing statistics."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from course_lib import measure, models
from course_lib.compat import keras, tfmot

L = keras.layers


def _model(*layers, shape=(10, 10, 4)):
    return keras.Sequential([keras.Input(shape), *layers])


def test_counts_and_sparsity_after_zeroing_weights():
    model = models.seed_cnn()
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[: kernel.shape[0] // 2] = 0.0  # zero half of the dense kernel
    model.get_layer("dense").set_weights([kernel, bias])
    report = {(r.layer, r.weight): r for r in measure.sparsity_report(model)}
    assert report[("dense", "kernel")].zeros == 10816 * 10
    assert report[("dense", "kernel")].sparsity == pytest.approx(0.5)
    assert measure.count_params(model) == 216_650
    # by hand: 288 + 32 (conv) + 216,320 + 10 (dense) parameters; half the dense kernel and
    # every bias (Keras initialises biases to zero) are exact zeros
    assert measure.count_nonzero(model) == 216_650 - 108_160 - (32 + 10)
    kernels = measure.sparsity_report(model, kernels_only=True)
    assert [r.weight for r in kernels] == ["kernel", "kernel"]
    assert measure.overall_sparsity(model) == pytest.approx(108_160 / (288 + 216_320), rel=1e-3)


def test_pruning_wrappers_bookkeeping_is_not_counted():
    model = models.seed_cnn()
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(models.seed_cnn())
    assert measure.count_params(wrapped) == measure.count_params(model) == 216_650
    names = {r.weight for r in measure.sparsity_report(wrapped)}
    assert names == {"kernel", "bias"}


def test_sparsity_report_of_a_weightless_model_is_an_error():
    with pytest.raises(ValueError, match="no weights"):
        measure.sparsity_report(_model(L.Flatten()))


@pytest.mark.parametrize(
    "name,macs",
    [
        ("seed_cnn", 26 * 26 * 32 * 9 + 21_632 * 10),  # 411,008
        ("lenet_300_100", 784 * 300 + 300 * 100 + 100 * 10),  # 266,200
        ("lenet_5", 24 * 24 * 20 * 25 + 8 * 8 * 50 * 500 + 800 * 500 + 500 * 10),  # 2,293,000
    ],
)
def test_model_macs_match_hand_counts(name, macs):
    assert measure.count_macs(models.build_model(name)) == macs


@pytest.mark.parametrize(
    "layer,macs",
    [
        (L.Conv2D(8, 3, padding="same"), 10 * 10 * 8 * 3 * 3 * 4),
        (L.Conv2D(8, 3, strides=2), 4 * 4 * 8 * 9 * 4),
        (L.DepthwiseConv2D(3, padding="same"), 10 * 10 * 4 * 9),
        (L.DepthwiseConv2D(3, padding="same", depth_multiplier=2), 10 * 10 * 8 * 9),
        (L.SeparableConv2D(8, 3, padding="same"), 10 * 10 * 4 * 9 + 10 * 10 * 4 * 8),
        (L.Dense(3), 10 * 10 * 4 * 3),  # applied at every one of the 10x10 positions
        (L.AveragePooling2D(2), 5 * 5 * 4 * 4),
        (L.GlobalAveragePooling2D(), 10 * 10 * 4),
        (L.MaxPooling2D(2), 0),
        (L.BatchNormalization(), 0),
    ],
)
def test_layer_macs_by_hand(layer, macs):
    model = _model(layer)
    assert measure.layer_macs(model.layers[-1]) == macs


def test_unsupported_layer_is_named_in_the_error():
    model = keras.Sequential([keras.Input((5, 3)), L.Conv1D(2, 2, name="my_conv1d")])
    with pytest.raises(ValueError, match="my_conv1d.*Conv1D"):
        measure.count_macs(model)


def test_unbuilt_layer_is_an_error():
    with pytest.raises(ValueError, match="not built"):
        measure.layer_macs(L.Dense(3, name="loose"))


def test_macs_see_through_tfmot_wrappers():
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(models.seed_cnn())
    assert measure.count_macs(wrapped) == 411_008


def test_gzip_size_is_deterministic_and_rewards_zeros(tmp_path):
    zeros = bytes(10_000)
    noise = np.random.default_rng(0).bytes(10_000)
    assert measure.gzip_size(zeros) < 100 < measure.gzip_size(noise)
    # gzip with mtime=0 is reproducible: the same bytes as Python's own call with mtime=0
    assert measure.gzip_size(noise) == len(gzip.compress(noise, compresslevel=9, mtime=0))
    path = tmp_path / "z.bin"
    path.write_bytes(zeros)
    assert measure.gzip_size(path) == measure.gzip_size(zeros)


def test_gzip_and_file_size_errors(tmp_path):
    with pytest.raises(ValueError, match="0..9"):
        measure.gzip_size(b"x", level=10)
    with pytest.raises(FileNotFoundError):
        measure.gzip_size(tmp_path / "missing")


def test_keras_file_size_with_and_without_optimizer(tiny_model):
    with_opt = measure.keras_file_size(tiny_model, include_optimizer=True)
    without = measure.keras_file_size(tiny_model, include_optimizer=False)
    assert without < with_opt
    assert tiny_model.optimizer is not None  # the model itself is left compiled


def test_summarize_times_statistics():
    stats = measure.summarize_times([float(t) for t in range(1, 12)], threads=2)
    assert (stats.median_us, stats.p25_us, stats.p75_us, stats.p90_us) == (6.0, 3.5, 8.5, 10.0)
    assert (stats.runs, stats.rounds) == (11, 1)
    assert stats.threads == 2 and "median 6.0 µs" in str(stats)
    with pytest.raises(ValueError, match="at least 2"):
        measure.summarize_times([1.0])


def test_time_calls_counts_warmup_and_runs():
    calls = []
    stats = measure.time_calls(lambda: calls.append(1), warmup=3, runs=5)
    assert len(calls) == 8 and stats.runs == 5 and stats.median_us >= 0
    with pytest.raises(ValueError, match="runs >= 2"):
        measure.time_calls(lambda: None, runs=1)
    with pytest.raises(ValueError, match="warmup >= 0"):
        measure.time_calls(lambda: None, warmup=-1)
