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


# --- every function, its boundaries and its messages (issue 13, part 3) ---


def test_weight_sparsity_fraction_and_empty_tensor():
    row = measure.WeightSparsity("d", "kernel", (2, 2), 4, 1)
    assert row.sparsity == 0.25
    assert measure.WeightSparsity("d", "kernel", (0,), 0, 0).sparsity == 0.0


def test_sparsity_report_rows_by_hand():
    model = _model(L.Dense(3, name="d"), shape=(2,))
    kernel = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]], np.float32)
    model.get_layer("d").set_weights([kernel, np.array([0.0, 0.0, 5.0], np.float32)])
    rows = measure.sparsity_report(model)
    assert rows == [
        measure.WeightSparsity("d", "kernel", (2, 3), 6, 3),
        measure.WeightSparsity("d", "bias", (3,), 3, 2),
    ]
    assert measure.count_params(model) == 9
    assert measure.count_nonzero(model) == 4
    assert measure.overall_sparsity(model) == 0.5  # default: kernels only, 3 of 6
    assert measure.overall_sparsity(model, kernels_only=False) == 5 / 9


def test_weightless_model_error_names_the_model():
    model = keras.Sequential([keras.Input((2, 2)), L.Flatten()], name="empty_net")
    with pytest.raises(ValueError, match="model 'empty_net' has no weights to report; build"):
        measure.sparsity_report(model)
    batch_norm = _model(L.BatchNormalization(), shape=(3,))  # weights, but no kernel
    assert len(measure.sparsity_report(batch_norm)) == 4
    with pytest.raises(ValueError, match="no weights"):
        measure.sparsity_report(batch_norm, kernels_only=True)


def test_quantization_aware_bookkeeping_is_not_counted():
    # quantize_model adds optimizer_step, *_min and *_max variables: none is a parameter
    qat = tfmot.quantization.keras.quantize_model(models.seed_cnn())
    assert measure.count_params(qat) == 216_650  # 288 + 32 + 216,320 + 10, by hand
    assert {r.weight for r in measure.sparsity_report(qat)} == {"kernel", "bias"}
    assert measure.count_macs(qat) == 411_008  # QuantizeLayer only fake-quantizes: 0 MACs


@pytest.mark.parametrize(
    "layer,macs",
    [
        (L.Conv2D(8, 3, padding="same", groups=2), 10 * 10 * 8 * 3 * 3 * (4 // 2)),
        (L.Conv2D(6, (3, 1)), 8 * 10 * 6 * 3 * 1 * 4),
        (L.SeparableConv2D(8, 3, depth_multiplier=2), 8 * 8 * 4 * 2 * 9 + 8 * 8 * 8 * 8),
        (L.DepthwiseConv2D((1, 3)), 10 * 8 * 4 * 1 * 3),
        (L.AveragePooling2D(3, strides=1), 8 * 8 * 4 * 9),
        (L.AveragePooling2D((2, 1)), 5 * 10 * 4 * 2),
        (L.Flatten(), 0),
        (L.ReLU(), 0),
        (L.ZeroPadding2D(1), 0),
        (L.GlobalMaxPooling2D(), 0),
    ],
)
def test_more_layer_macs_by_hand(layer, macs):
    assert measure.layer_macs(_model(layer).layers[-1]) == macs


def test_dense_macs_on_a_sequence_and_a_vector():
    seq = keras.Sequential([keras.Input((5, 3)), L.Dense(4)])
    assert measure.layer_macs(seq.layers[-1]) == 5 * 3 * 4  # at every one of 5 positions
    vec = keras.Sequential([keras.Input((7,)), L.Dense(2)])
    assert measure.layer_macs(vec.layers[-1]) == 7 * 2


def test_layer_mac_errors_name_the_layer():
    with pytest.raises(ValueError, match="layer 'loose' is not built; build the model first"):
        measure.layer_macs(L.Dense(3, name="loose"))
    model = keras.Sequential([keras.Input((5, 3)), L.Conv1D(2, 2, name="c1")])
    with pytest.raises(
        ValueError,
        match=r"layer 'c1' of type Conv1D is not supported by the MAC counter \(supported: Conv2D",
    ):
        measure.layer_macs(model.layers[-1])


def test_macs_report_rows_by_hand():
    rows = measure.macs_report(tfmot.sparsity.keras.prune_low_magnitude(models.seed_cnn()))
    assert rows == [
        {"layer": "conv", "type": "Conv2D", "params": 320, "macs": 26 * 26 * 32 * 9},
        {"layer": "flatten", "type": "Flatten", "params": 0, "macs": 0},
        {"layer": "dense", "type": "Dense", "params": 216_330, "macs": 21_632 * 10},
    ]


def test_as_bytes_accepts_bytes_like_and_paths(tmp_path):
    assert measure.as_bytes(b"ab") == b"ab"
    assert measure.as_bytes(bytearray(b"ab")) == b"ab"
    assert measure.as_bytes(memoryview(b"ab")) == b"ab"
    assert type(measure.as_bytes(bytearray(b"ab"))) is bytes
    path = tmp_path / "f.bin"
    path.write_bytes(b"xyz")
    assert measure.as_bytes(path) == b"xyz" and measure.as_bytes(str(path)) == b"xyz"
    with pytest.raises(FileNotFoundError, match=r"missing\.bin does not exist"):
        measure.as_bytes(tmp_path / "missing.bin")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        measure.as_bytes(str(tmp_path))  # a folder is not a file


@pytest.mark.parametrize("level", [0, 1, 9])
def test_gzip_size_levels_match_pythons_gzip(level):
    text = b"pruned weights " * 200 + bytes(range(256))
    assert measure.gzip_size(text, level=level) == len(
        gzip.compress(text, compresslevel=level, mtime=0)
    )


def test_gzip_size_default_level_is_9():
    text = bytes(range(256)) * 3 + b"abcabcabd" * 300
    assert measure.gzip_size(text) == len(gzip.compress(text, compresslevel=9, mtime=0))
    assert len(gzip.compress(text, compresslevel=9)) != len(gzip.compress(text, compresslevel=1))


@pytest.mark.parametrize("level", [-1, 10])
def test_gzip_level_out_of_range_is_named(level):
    with pytest.raises(ValueError, match=rf"gzip level must be in 0\.\.9, got {level}"):
        measure.gzip_size(b"x", level=level)


def test_keras_file_size_default_leaves_the_optimizer_out(tiny_model, tmp_path):
    uncompiled = keras.models.clone_model(tiny_model)  # never compiled: no optimizer state
    uncompiled.set_weights(tiny_model.get_weights())
    uncompiled.save(tmp_path / "plain.keras")
    plain = (tmp_path / "plain.keras").stat().st_size
    assert abs(measure.keras_file_size(tiny_model) - plain) < 64  # only timestamps may differ
    assert measure.keras_file_size(tiny_model) < measure.keras_file_size(
        tiny_model, include_optimizer=True
    )
    assert abs(measure.keras_file_size(uncompiled, include_optimizer=True) - plain) < 64


def _stats(rounds=1, threads=1):
    return measure.LatencyStats(1234.56, 1000.0, 1500.04, 2000.0, 10, rounds, threads)


def test_latency_stats_text_singular_and_plural():
    assert str(_stats()) == (
        "median 1,234.6 µs (IQR 1,000.0-1,500.0), p90 2,000.0 µs (10 runs in 1 round, 1 thread)"
    )
    assert str(_stats(rounds=2, threads=2)).endswith("(10 runs in 2 rounds, 2 threads)")
    assert str(_stats(rounds=3, threads=4)).endswith("(10 runs in 3 rounds, 4 threads)")


def test_latency_stats_iqr_is_rounded_to_two_decimals():
    assert measure.LatencyStats(5.0, 1.23456, 7.891, 9.0, 4, 1, 1).iqr_us == [1.23, 7.89]


def test_summarize_times_two_values_and_defaults():
    stats = measure.summarize_times([30.0, 10.0])
    # by hand: median 20; quartiles interpolate 10 + 0.25*20 and 10 + 0.75*20; p90 index
    # round(0.9 * 1) = 1 of the sorted list
    assert (stats.median_us, stats.p25_us, stats.p75_us, stats.p90_us) == (20.0, 15.0, 25.0, 30.0)
    assert (stats.runs, stats.rounds, stats.threads) == (2, 1, 1)
    assert measure.summarize_times([1.0, 2.0, 3.0], threads=4, rounds=3).rounds == 3
    p90 = measure.summarize_times([float(t) for t in range(21)]).p90_us
    assert p90 == 18.0  # round(0.9 * 20) = 18


@pytest.mark.parametrize("times", [[], [5.0]])
def test_summarize_times_needs_two_timings(times):
    with pytest.raises(ValueError, match=f"need at least 2 timings, got {len(times)}"):
        measure.summarize_times(times)


def test_time_calls_rounds_warm_up_each_round_and_time_only_the_calls(monkeypatch):
    events = []
    clock = iter(range(0, 10**9, 1500))  # every reading 1.5 µs after the previous one

    def fake_ns():
        events.append("t")
        return next(clock)

    monkeypatch.setattr(measure, "time", type("T", (), {"perf_counter_ns": staticmethod(fake_ns)}))
    stats = measure.time_calls(lambda: events.append("f"), warmup=2, runs=7, threads=3, rounds=3)
    # 7 runs in 3 rounds: 3 + 2 + 2, each round after its own 2 warm-up calls
    rounds = ["ff" + "tft" * n for n in (3, 2, 2)]
    assert "".join(events) == "".join(rounds)
    assert (stats.runs, stats.rounds, stats.threads) == (7, 3, 3)
    assert stats.median_us == stats.p90_us == 1.5  # (end - start) / 1000 ns


def test_time_calls_defaults_and_boundaries():
    calls = []
    stats = measure.time_calls(lambda: calls.append(1))
    assert len(calls) == 10 + 100 and (stats.runs, stats.rounds, stats.threads) == (100, 1, 1)
    calls.clear()
    measure.time_calls(lambda: calls.append(1), warmup=0, runs=2)  # smallest allowed
    assert len(calls) == 2
    assert measure.time_calls(lambda: None, runs=4, rounds=2).rounds == 2  # runs // 2: allowed
    with pytest.raises(ValueError, match=r"need runs >= 2 and warmup >= 0, got 1 and 10"):
        measure.time_calls(lambda: None, runs=1)
    with pytest.raises(ValueError, match=r"got 100 and -1"):
        measure.time_calls(lambda: None, warmup=-1)
    with pytest.raises(ValueError, match=r"rounds must be in \[1, runs // 2 = 2\], got 3"):
        measure.time_calls(lambda: None, runs=4, rounds=3)
    with pytest.raises(ValueError, match=r"got 0"):
        measure.time_calls(lambda: None, runs=4, rounds=0)
