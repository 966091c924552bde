"""Policy scope, formats, throughput, float32 deployment copies, gradients and the bench."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from course_lib import bench, float16, mixed_precision, models, training
from course_lib.compat import keras
from course_lib.mixed_precision import MixedPrecisionWarning, policy_scope


def test_policy_scope_sets_and_restores_even_on_error():
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(RuntimeError, match="boom"):
        with policy_scope("mixed_bfloat16", warn=False):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="float32, mixed_bfloat16, mixed_float16"):
        with policy_scope("mixed_int8"):
            pass
    with pytest.raises(ValueError, match="valid policies"):
        mixed_precision.native_support("float64")


def test_emulated_policy_warns_instead_of_failing(monkeypatch):
    monkeypatch.setattr(mixed_precision, "native_support", lambda p: (False, "no fp16 here"))
    with pytest.warns(MixedPrecisionWarning, match="mixed_float16 will run, but slowly"):
        with policy_scope("mixed_float16"):
            model = mixed_precision.build_for_policy("seed_cnn", "mixed_float16")
    assert model.layers[0].compute_dtype == "float16"
    monkeypatch.setattr(mixed_precision, "native_support", lambda p: (True, "native"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with policy_scope("mixed_float16"):
            pass


def test_native_support_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(mixed_precision, "gpu_compute_capability", lambda: None)
    monkeypatch.setattr(mixed_precision.system, "cpu_flags", lambda: {"avx2"})
    assert mixed_precision.native_support("mixed_float16")[0] is False
    assert mixed_precision.native_support("mixed_bfloat16")[0] is False
    monkeypatch.setattr(mixed_precision.system, "cpu_flags", lambda: {"avx512_bf16"})
    assert mixed_precision.native_support("mixed_bfloat16")[0] is True
    monkeypatch.setattr(mixed_precision, "gpu_compute_capability", lambda: (7, 5))
    assert mixed_precision.native_support("mixed_float16") == (
        True,
        "GPU with compute capability 7.5 (Tensor Cores)",
    )


def test_format_info_matches_ieee_and_bfloat16():
    f16 = float16.format_info("float16")
    assert (f16["exponent_bits"], f16["mantissa_bits"], f16["max"]) == (5, 10, 65504.0)
    assert f16["smallest_normal"] == pytest.approx(6.1035e-5, rel=1e-4)
    bf16 = float16.format_info("bfloat16")
    assert (bf16["exponent_bits"], bf16["mantissa_bits"], bf16["epsilon"]) == (8, 7, 2**-7)
    assert float16.format_info("float32")["epsilon"] == 2**-23
    assert len(float16.format_table().rows) == 3
    with pytest.raises(ValueError, match="choose one of"):
        float16.format_info("float8")


def test_float16_flushes_below_half_the_smallest_subnormal():
    assert float(np.float16(np.nextafter(2.0**-25, 0.0))) == 0.0
    assert float(np.float16(np.nextafter(2.0**-25, 1.0))) == 2.0**-24  # rounds up, not to 0


def test_build_for_policy_keeps_the_softmax_in_float32():
    model = mixed_precision.build_for_policy("seed_cnn", "mixed_float16")
    assert [layer.compute_dtype for layer in model.layers] == [
        "float16",
        "float16",
        "float16",
        "float32",
    ]
    assert all(v.dtype == "float32" for v in model.weights)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_float32_copy_is_exact(tiny_data):
    mixed = mixed_precision.build_for_policy("strided_cnn", "mixed_bfloat16")
    copy = mixed_precision.float32_copy("strided_cnn", mixed)
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)
    for a, b in zip(mixed.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_throughput_callback_leaves_out_the_warm_up(tiny_data):
    model = training.compile_model(models.strided_cnn())
    meter = mixed_precision.ThroughputCallback(batch_size=32, warmup_steps=5)
    model.fit(
        tiny_data.x_train[:320],
        tiny_data.y_train[:320],
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[meter],
    )
    assert meter.steps == 10 and meter.timed_steps == 5 and meter.images_per_second > 0
    short = mixed_precision.ThroughputCallback(batch_size=32, warmup_steps=50)
    model.fit(
        tiny_data.x_train[:64], tiny_data.y_train[:64], batch_size=32, verbose=0, callbacks=[short]
    )
    with pytest.raises(ValueError, match="warm-up"):
        _ = short.images_per_second
    with pytest.raises(ValueError, match="warmup_steps"):
        mixed_precision.ThroughputCallback(batch_size=32, warmup_steps=-1)


def test_mixed_float16_training_uses_a_loss_scale_optimizer():
    model = training.compile_model(mixed_precision.build_for_policy("seed_cnn", "mixed_float16"))
    assert isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer)


def test_loss_scaling_reduces_float16_gradient_error(tiny_data):
    model = models.seed_cnn()
    weights = model.get_weights()
    weights[2] = weights[2] * 0.0  # no signal from the dense kernel ...
    weights[3] = np.eye(10, dtype=np.float32)[3] * 12.0  # ... and a very confident class 3
    x, y = tiny_data.x_test[:64], np.full(64, 3)
    unscaled = float16.float16_gradient_error("seed_cnn", weights, x, y, 1.0)
    scaled = float16.float16_gradient_error("seed_cnn", weights, x, y, 2.0**15)
    by_name = {r["variable"]: r for r in unscaled}
    assert set(by_name) == {"conv/kernel", "conv/bias", "dense/kernel", "dense/bias"}
    dense_unscaled = by_name["dense/kernel"]["relative_error"]
    dense_scaled = next(r for r in scaled if r["variable"] == "dense/kernel")["relative_error"]
    assert dense_scaled < dense_unscaled / 5
    assert all(r["overflow"] == 0.0 for r in scaled)
    huge = float16.float16_gradient_error("seed_cnn", weights, x, y, 2.0**60)
    assert any(r["overflow"] > 0 and r["relative_error"] == float("inf") for r in huge)
    assert max(r["largest_scaled"] for r in huge) > 65504


def test_gradient_error_is_zero_not_nan_when_there_is_no_gradient(tiny_data):
    weights = models.seed_cnn().get_weights()
    x = np.zeros((8, 28, 28, 1), np.float32)  # no input: the conv kernel gets no gradient
    rows = float16.float16_gradient_error("seed_cnn", weights, x, np.zeros(8, int), 1.0)
    conv = next(r for r in rows if r["variable"] == "conv/kernel")
    assert conv["relative_error"] == 0.0 and conv["lost"] == 0.0


def test_seed_runs_train_one_model_per_policy_and_seed(tiny_data, monkeypatch):
    calls = []

    def fake_train(model_name, policy, data, cfg, warmup_steps=20):
        calls.append((policy, cfg.seed, cfg.epochs))
        return training.CachedModel(None, None, False, {"train_images_per_s": 100.0 + cfg.seed})

    monkeypatch.setattr(mixed_precision, "train_with_policy", fake_train)
    right = np.array([True, True, False, True])
    monkeypatch.setattr(mixed_precision, "deployed_correct", lambda *a: right)
    runs = mixed_precision.seed_runs(tiny_data, "seed_cnn", ("float32", "mixed_bfloat16"), (7, 8))
    epochs = mixed_precision.benchmark_configs()["seed_cnn"].epochs
    assert calls == [
        ("float32", 7, epochs),
        ("float32", 8, epochs),
        ("mixed_bfloat16", 7, epochs),
        ("mixed_bfloat16", 8, epochs),
    ]
    assert runs["mixed_bfloat16"] == {"accuracy": [0.75, 0.75], "images_per_s": [107.0, 108.0]}
    with pytest.raises(ValueError, match="valid policies"):
        mixed_precision.seed_runs(tiny_data, "seed_cnn", ("mixed_int8",))
    with pytest.raises(ValueError, match="no benchmark settings"):
        mixed_precision.seed_runs(tiny_data, "resnet")


def test_benchmark_refuses_unknown_inputs(tiny_data):
    with pytest.raises(ValueError, match="no benchmark settings"):
        mixed_precision.benchmark(tiny_data, ("resnet",))
    with pytest.raises(ValueError, match="valid policies"):
        mixed_precision.benchmark(tiny_data, ("seed_cnn",), ("mixed_int4",))


def test_bench_command_writes_a_result_file(tmp_root, tmp_path, monkeypatch):
    out = tmp_path / "mixed_precision-test.json"
    status = bench.main(
        [
            "mixed_precision",
            "--fast",
            "--models",
            "seed_cnn",
            "--policies",
            "float32",
            "mixed_bfloat16",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "mixed_precision" and payload["mode"] == "fast"
    assert payload["device_kind"] in ("cpu", "gpu") and payload["device"]
    records = payload["results"]
    assert [r["policy"] for r in records] == ["float32", "mixed_bfloat16"]
    for r in records:
        assert r["technique"] == "mixed_precision" and r["train_images_per_s"] > 0
        assert {"device", "policy", "train_images_per_s"} <= set(r)
    runs = bench.load_bench("mixed_precision", tmp_path)
    assert runs[0]["results"][1].extra["policy"] == "mixed_bfloat16"


def test_probe_measures_a_positive_throughput_and_refuses_too_little_data(tiny_data):
    speed = mixed_precision.probe_throughput("seed_cnn", "float32", tiny_data, batch_size=16)
    assert speed > 0
    with pytest.raises(ValueError, match="needs 11200 training images"):  # 1600 x (5 + 2)
        mixed_precision.probe_throughput("seed_cnn", "float32", tiny_data, batch_size=1600)
    with pytest.raises(ValueError, match="valid policies"):
        mixed_precision.probe_throughput("seed_cnn", "float8", tiny_data)


def fake_probe_clock(monkeypatch, durations):
    """Make the probe's model a fake whose batches take ``durations`` seconds on a fake clock;
    return the iterator, to count the batches the probe left untrained."""
    left = iter(durations)
    clock = [0.0]

    class FakeModel:
        def train_on_batch(self, x, y):
            clock[0] += next(left)

    monkeypatch.setattr(mixed_precision, "compile_model", lambda model, *a, **k: FakeModel())
    monkeypatch.setattr(mixed_precision, "build_for_policy", lambda name, policy: None)
    monkeypatch.setattr(mixed_precision.time, "perf_counter", lambda: clock[0])
    return left


def test_probe_takes_the_median_batch_so_one_delayed_batch_does_not_count(tiny_data, monkeypatch):
    """A fake clock: the warm-up batches take 5 s, then 0.01 s each, one of them 1 s."""
    fake_probe_clock(monkeypatch, [5.0, 5.0, 0.01, 0.01, 1.0, 0.01, 0.01])
    speed = mixed_precision.probe_throughput("seed_cnn", "float32", tiny_data, batch_size=16)
    assert speed == pytest.approx(16 / 0.01)  # a mean would give 16 / 0.208 = 77 images/s


def test_probe_stops_once_most_batches_are_slower_than_decided_below(tiny_data, monkeypatch):
    """16 images per batch: 1 s is 16 images/s, 0.1 s is 160 images/s; the line is 50."""
    left = fake_probe_clock(monkeypatch, [5.0, 5.0, 1.0, 0.1, 1.0, 1.0, 0.1])
    speed = mixed_precision.probe_throughput(
        "seed_cnn", "float32", tiny_data, batch_size=16, decided_below=50.0
    )
    assert speed == pytest.approx(16 / 1.0)  # median of the four timed: 1, 0.1, 1, 1
    assert list(left) == [0.1]  # the fifth timed batch was not needed
    # two slow batches of five are not a majority: all five run, and the median is fast
    left = fake_probe_clock(monkeypatch, [5.0, 5.0, 1.0, 0.1, 1.0, 0.1, 0.1])
    speed = mixed_precision.probe_throughput(
        "seed_cnn", "float32", tiny_data, batch_size=16, decided_below=50.0
    )
    assert speed == pytest.approx(16 / 0.1) and list(left) == []
    with pytest.raises(ValueError, match="decided_below must be a positive speed"):
        mixed_precision.probe_throughput("seed_cnn", "float32", tiny_data, decided_below=0.0)


def test_affordable_policies_keeps_float32_and_drops_what_is_over_the_limit(tiny_data, monkeypatch):
    speeds = {"float32": 1000.0, "mixed_bfloat16": 500.0, "mixed_float16": 20.0}
    asked = {}

    def probe(name, policy, data, decided_below=None):
        asked[policy] = decided_below
        return speeds[policy]

    monkeypatch.setattr(mixed_precision, "probe_throughput", probe)
    kept, probes = mixed_precision.affordable_policies(tiny_data, ("seed_cnn",), limit=10.0)
    # float32 is timed in full; every other policy may stop once it is under 1000 / 10
    assert asked == {"float32": None, "mixed_bfloat16": 100.0, "mixed_float16": 100.0}
    assert kept == {"seed_cnn": ("float32", "mixed_bfloat16")}  # 2x slower kept, 50x not
    by_policy = {p["policy"]: p for p in probes}
    assert by_policy["mixed_float16"]["trained"] is False
    assert by_policy["mixed_float16"]["vs_float32"] == pytest.approx(0.02)
    assert by_policy["mixed_bfloat16"]["trained"] is True
    kept_all, _ = mixed_precision.affordable_policies(tiny_data, ("seed_cnn",), limit=100.0)
    assert kept_all["seed_cnn"] == ("float32", "mixed_bfloat16", "mixed_float16")
