"""Seeded training and the atomic model cache."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from course_lib import config, training
from course_lib.compat import keras

from .conftest import build_tiny_model, record_faster_steps, same_weights


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


class _BatchCounter(keras.callbacks.Callback):
    """Counts the training batches it is told about (a per-batch hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.batches += 1


def _plain_fit(model: keras.Model, data, epochs: int, batch_size: int, seed: int) -> dict:
    """The reference: Keras' own fit, one batch per call, as training.fit seeds it."""
    training.set_seeds(seed)
    history = model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(data.x_val, data.y_val),
        shuffle=True,
        verbose=0,
    )
    return history.history


def test_fit_loops_over_batches_and_gives_the_weights_of_plain_keras(tiny_data, looped):
    cfg = training.TrainConfig(epochs=2, batch_size=8, seed=3)  # 75 batches: 32 + 32 + 11
    training.set_seeds(cfg.seed)
    model = training.compile_model(build_tiny_model())
    history = training.fit(model, tiny_data, cfg)
    assert looped == [training.STEPS_PER_EXECUTION] and training.STEPS_PER_EXECUTION > 1
    training.set_seeds(cfg.seed)
    reference = training.compile_model(build_tiny_model())
    assert int(reference.steps_per_execution.numpy()) == 1
    expected = _plain_fit(reference, tiny_data, cfg.epochs, cfg.batch_size, cfg.seed)
    same_weights(model, reference)
    assert history == expected  # losses, accuracies and validation too, to the last bit
    # the model keeps its compiled setting: a later plain fit reaches every batch
    assert int(model.steps_per_execution.numpy()) == 1
    assert model.get_compile_config()["steps_per_execution"] is None
    counter = _BatchCounter()
    model.fit(tiny_data.x_train, tiny_data.y_train, batch_size=8, callbacks=[counter], verbose=0)
    assert counter.batches == 75


def test_fit_after_an_earlier_fit_still_trains_on_every_batch(tiny_data, looped):
    """Keras keeps the train and test functions it made: they must be remade for 32."""
    cfg = training.TrainConfig(epochs=1, batch_size=8, seed=5)
    models = []
    for faster in (True, False):
        training.set_seeds(cfg.seed)
        model = training.compile_model(build_tiny_model())
        model.fit(tiny_data.x_train[:64], tiny_data.y_train[:64], batch_size=8, verbose=0)
        model.evaluate(tiny_data.x_val, tiny_data.y_val, batch_size=8, verbose=0)
        if faster:
            history = training.fit(model, tiny_data, cfg)
        else:
            expected = _plain_fit(model, tiny_data, cfg.epochs, cfg.batch_size, cfg.seed)
        models.append(model)
    assert looped == [training.STEPS_PER_EXECUTION]
    same_weights(*models)
    assert history == expected


def test_batch_watchers_and_short_runs_keep_one_batch_per_call(tiny_data, monkeypatch):
    seen = record_faster_steps(monkeypatch)
    cfg = training.TrainConfig(epochs=1, batch_size=8)
    model = training.compile_model(build_tiny_model())
    training.fit(model, tiny_data, cfg)  # 75 batches: too few to pay for the looping trace
    assert seen == [1]
    monkeypatch.setattr(training, "MULTI_STEP_MIN_BATCHES", 1)
    counter = _BatchCounter()
    training.fit(model, tiny_data, cfg, callbacks=[counter])
    assert seen == [1, 1] and counter.batches == 75  # every batch reached the callback
    # even a model compiled to loop runs one batch per call for a batch watcher
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", steps_per_execution=8)
    counter = _BatchCounter()
    training.fit(model, tiny_data, cfg, callbacks=[counter])
    assert seen == [1, 1, 1] and counter.batches == 75
    assert int(model.steps_per_execution.numpy()) == 8  # and is given back its setting


def test_watches_batches_finds_per_batch_hooks_only():
    from course_lib.compat import tfmot
    from course_lib.mixed_precision import ThroughputCallback

    cb = keras.callbacks

    class ValidationBatches(cb.Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

    assert training.watches_batches(ThroughputCallback(32))  # chapter 06 times every batch
    assert training.watches_batches(ValidationBatches())
    assert training.watches_batches(cb.LambdaCallback(on_batch_end=lambda batch, logs: None))
    assert training.watches_batches(_BatchCounter())
    assert not training.watches_batches(cb.LambdaCallback(on_epoch_end=lambda e, logs: None))
    assert not training.watches_batches(cb.EarlyStopping())
    assert not training.watches_batches(cb.Callback())
    # tfmot 0.8 counts pruning steps inside the compiled step, not in this callback; if a
    # release moves it here, fit falls back to one batch per call by itself
    assert not training.watches_batches(tfmot.sparsity.keras.UpdatePruningStep())


def test_faster_steps_needs_a_compiled_model():
    with pytest.raises(ValueError, match="not compiled"):
        with training.faster_steps(build_tiny_model(), 1000):
            pass


def test_is_cached_neither_trains_nor_loads(tmp_root, tiny_data, monkeypatch):
    cfg = training.TrainConfig(epochs=1, batch_size=128)
    job = partial(training.train_baseline_job, "lenet_300_100", cfg)
    assert not training.is_cached(job, tiny_data)
    assert not list((tmp_root / "artifacts" / "full" / "models").glob("*.keras"))  # not trained
    job(tiny_data)
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: pytest.fail("loaded"))
    assert training.is_cached(job, tiny_data)
    assert not training.is_cached(
        partial(training.train_baseline_job, "lenet_300_100", replace(cfg, seed=7)), tiny_data
    )
    monkeypatch.undo()
    assert training.cached_model("x", {}, lambda: (build_tiny_model(), {})).model is not None


def test_load_entry_reads_what_cached_model_wrote(tmp_root, tiny_data):
    cfg = training.TrainConfig(epochs=1, batch_size=128)
    entry = training.train_baseline("lenet_300_100", "mnist", cfg, data=tiny_data)
    loaded = training.load_entry(entry.path)
    assert loaded.from_cache and loaded.path == entry.path and loaded.meta == entry.meta
    for a, b in zip(entry.model.get_weights(), loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="no cached model"):
        training.load_entry(tmp_root / "missing.keras")


def test_train_in_workers_fills_the_cache_in_other_processes(tmp_root, tiny_data):
    cfgs = [training.TrainConfig(epochs=1, batch_size=128, seed=s) for s in (1, 2)]
    jobs = [partial(training.train_baseline_job, "lenet_300_100", c) for c in cfgs]
    jobs[1](tiny_data)  # already cached: skipped
    assert training.train_in_workers(jobs, tiny_data, processes=2) == [0]  # one left: here
    jobs.append(partial(training.train_baseline_job, "lenet_300_100", replace(cfgs[0], seed=3)))
    jobs.append(partial(training.train_baseline_job, "lenet_300_100", replace(cfgs[0], seed=4)))
    assert training.train_in_workers(jobs, tiny_data, processes=2) == [2, 3]
    assert training.train_in_workers(jobs, tiny_data, processes=2) == []
    metas = {}
    for c in [*cfgs, replace(cfgs[0], seed=3), replace(cfgs[0], seed=4)]:
        entry = training.train_baseline("lenet_300_100", "mnist", c, data=tiny_data)
        assert entry.from_cache
        metas[c.seed] = entry.meta
    assert "trained_by" not in metas[1] and "trained_by" not in metas[2]  # trained here
    assert "2 training at once" in metas[3]["trained_by"] == metas[4]["trained_by"]
    with pytest.raises(ValueError, match="processes must be >= 1"):
        training.train_in_workers(jobs, tiny_data, processes=0)
