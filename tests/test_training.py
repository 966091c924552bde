"""Seeded training and the atomic model cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from course_lib import config, training
from course_lib.compat import keras

from .conftest import build_tiny_model


@pytest.mark.parametrize(
    "kwargs,match",
    [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"learning_rate": 0}, "rate")],
)
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        training.TrainConfig(**kwargs)


def test_baseline_config_follows_the_mode(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")
    assert training.baseline_config() == training.TrainConfig(10, 32, 1e-3)
    monkeypatch.setenv("COURSE_FAST", "1")
    assert training.baseline_config().epochs == 2


def test_cache_key_is_stable_and_sensitive(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")
    key = training.cache_key(model="m", epochs=1)
    assert key == training.cache_key(epochs=1, model="m")
    assert key != training.cache_key(model="m", epochs=2)
    monkeypatch.setenv("COURSE_FAST", "1")
    assert key != training.cache_key(model="m", epochs=1)
    with pytest.raises(TypeError):
        training.cache_key(bad=object())


def test_fit_is_deterministic(tiny_data):
    cfg = training.TrainConfig(epochs=1, batch_size=64, seed=3)
    weights = []
    for _ in range(2):
        training.set_seeds(cfg.seed)
        model = training.compile_model(build_tiny_model())
        history = training.fit(model, tiny_data, cfg)
        weights.append(model.get_weights())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_needs_a_compiled_model(tiny_data):
    with pytest.raises(ValueError, match="not compiled"):
        training.fit(build_tiny_model(), tiny_data, training.TrainConfig(epochs=1))


def test_save_model_atomic_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    model = build_tiny_model()
    target = tmp_path / "m.keras"
    with pytest.raises(ValueError, match=".keras"):
        training.save_model_atomic(model, tmp_path / "m.h5")

    def broken_save(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        training.save_model_atomic(model, target)
    assert list(tmp_path.iterdir()) == []


def test_cached_model_trains_once_then_loads(tmp_root):
    calls = []

    def create():
        calls.append(1)
        model = training.compile_model(build_tiny_model())
        return model, {"history": {"loss": [1.0]}, "train_seconds": 0.5}

    first = training.cached_model("tiny", {"v": 1}, create)
    second = training.cached_model("tiny", {"v": 1}, create)
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    assert second.history == {"loss": [1.0]} and second.meta["key_parts"] == {"v": 1}
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.path.parent == tmp_root / "artifacts" / "full" / "models"
    assert json.loads(first.path.with_suffix(".json").read_text())["mode"] == "full"


def test_cache_entry_without_metadata_is_rebuilt(tmp_root):
    def create():
        return training.compile_model(build_tiny_model()), {}

    entry = training.cached_model("tiny", {"v": 2}, create)
    entry.path.with_suffix(".json").unlink()  # as if interrupted between the two writes
    assert not training.cached_model("tiny", {"v": 2}, create).from_cache


def test_cached_model_loads_with_a_custom_scope(tmp_root):
    from course_lib.compat import tfmot

    def create():
        model = tfmot.sparsity.keras.prune_low_magnitude(build_tiny_model())
        return training.compile_model(model), {}

    training.cached_model("pruned", {}, create)
    again = training.cached_model("pruned", {}, create, tfmot.sparsity.keras.prune_scope)
    assert again.from_cache and type(again.model.layers[0]).__name__ == "PruneLowMagnitude"


def test_train_baseline_caches_and_checks_its_inputs(tmp_root, tiny_data):
    cfg = training.TrainConfig(epochs=1, batch_size=128)
    first = training.train_baseline("lenet_300_100", "mnist", cfg, data=tiny_data)
    again = training.train_baseline("lenet_300_100", "mnist", cfg, data=tiny_data)
    assert not first.from_cache and again.from_cache
    assert isinstance(again.model, keras.Model) and len(first.history["loss"]) == 1
    with pytest.raises(ValueError, match="data is 'mnist'"):
        training.train_baseline("seed_cnn", "fashion_mnist", cfg, data=tiny_data)
    with pytest.raises(ValueError, match="Unknown model"):
        training.train_baseline("nope", "mnist", cfg, data=tiny_data)


def test_cached_model_can_cache_weights_only(tmp_root, tiny_data):
    from course_lib.compat import tfmot

    base = training.compile_model(build_tiny_model())

    def rebuild():
        return tfmot.quantization.keras.quantize_model(base)

    def create():
        model = training.compile_model(rebuild())
        model.fit(tiny_data.x_train[:64], tiny_data.y_train[:64], epochs=1, verbose=0)
        return model, {"note": "qat"}

    first = training.cached_model("qat", {"v": 1}, create, rebuild=rebuild)
    second = training.cached_model("qat", {"v": 1}, create, rebuild=rebuild)
    assert first.path.suffix == ".h5" and second.from_cache
    assert second.meta["note"] == "qat"
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_numpy_numbers_key_like_python_numbers():
    assert training.cache_key(s=np.float32(0.1), n=np.int64(3)) == training.cache_key(s=0.1, n=3)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        training.cache_key(x=object())


def test_a_save_killed_part_way_leaves_no_temp_file_for_the_next_run(tmp_root, tiny_data):
    folder = config.artifacts_dir("models")
    dead = folder / ".m-abc.tmp-999999999.keras"  # no such process: its writer was killed
    dead.write_bytes(b"half a model")
    live = folder / f".m-abc.tmp-{os.getpid()}.keras"  # a writer still running: kept
    live.write_bytes(b"in progress")
    training.cached_model("m", {"k": 1}, lambda: (build_tiny_model(), {}), rebuild=None)
    assert not dead.exists() and live.exists()
