"""Magnitude masks, m-by-n checks, schedule checks, per-layer targets and prune_and_measure."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import measure, models, pruning, training
from course_lib.compat import keras, tfmot
from course_lib.pruning import PruneConfig

from .conftest import build_tiny_model, same_weights

S = tfmot.sparsity.keras


def test_magnitude_mask_drops_exactly_the_smallest():
    w = np.array([[0.3, -0.05, 0.8], [-0.6, 0.01, -0.2]])
    mask = pruning.magnitude_mask(w, 0.5)
    assert mask.tolist() == [[True, False, True], [True, False, False]]
    big = np.random.default_rng(0).normal(size=(50, 20))
    for sparsity in (0.0, 0.33, 0.9):
        keep = pruning.magnitude_mask(big, sparsity)
        assert np.sum(~keep) == round(sparsity * big.size)
        if 0 < sparsity:
            assert np.abs(big[keep]).min() >= np.abs(big[~keep]).max()


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.5", True])
def test_magnitude_mask_rejects_bad_sparsity(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pruning.magnitude_mask(np.ones(4), bad)


def test_magnitude_mask_rejects_empty_arrays():
    with pytest.raises(ValueError, match="empty"):
        pruning.magnitude_mask(np.array([]), 0.5)


def test_m_by_n_violations_dense_and_conv():
    kernel = np.ones((8, 3))  # (in, out): rows of 8 inputs
    assert pruning.m_by_n_violations(kernel, 2, 4) == 3 * 2
    kernel[[0, 1, 4, 5], :] = 0  # two zeros in each block of 4 inputs
    assert pruning.m_by_n_violations(kernel, 2, 4) == 0
    kernel[0, 0] = 1.0
    assert pruning.m_by_n_violations(kernel, 2, 4) == 1
    conv = np.zeros((3, 3, 4, 2))
    conv[..., :2, :] = 1.0  # 2 of every 4 input channels non-zero
    assert pruning.m_by_n_violations(conv, 2, 4) == 0
    # a single input channel is padded to a block of 4 (3 zeros of padding)
    assert pruning.m_by_n_violations(np.ones((3, 3, 1, 2)), 2, 4) == 0


@pytest.mark.parametrize("m,n", [(5, 4), (-1, 4), (0, 0)])
def test_m_by_n_rejects_bad_blocks(m, n):
    with pytest.raises(ValueError, match="m <= n"):
        pruning.m_by_n_violations(np.ones((4, 4)), m, n)


def test_m_by_n_rejects_other_ranks():
    with pytest.raises(ValueError, match="rank-2 or rank-4"):
        pruning.m_by_n_violations(np.ones(4), 2, 4)


def test_schedule_that_never_prunes_is_caught():
    never = S.ConstantSparsity(0.8, begin_step=0)  # frequency 100
    check = pruning.check_schedule(never, 50)
    assert not check.prunes and check.pruning_steps == []
    assert "never prunes" in str(check)
    with pytest.raises(ValueError, match="never prunes"):
        pruning.require_pruning(never, 50)
    assert pruning.check_schedule(never, 100).pruning_steps == [100]


def test_schedule_check_matches_tfmot_rules():
    ramp = S.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=800, frequency=100)
    check = pruning.check_schedule(ramp, 1000)
    assert check.pruning_steps == [100, 200, 300, 400, 500, 600, 700, 800]
    assert check.reaches_target and check.final_sparsity == pytest.approx(0.8)
    short = pruning.check_schedule(ramp, 450)
    assert short.prunes and not short.reaches_target and "short of the target" in str(short)
    late = S.ConstantSparsity(0.5, begin_step=30, frequency=10, end_step=60)
    assert pruning.check_schedule(late, 100).pruning_steps == [30, 40, 50, 60]
    with pytest.raises(ValueError, match="total_steps"):
        pruning.check_schedule(ramp, 0)


def test_check_schedule_agrees_with_real_training(tiny_data):
    schedule = S.ConstantSparsity(0.6, begin_step=0, frequency=5)
    check = pruning.check_schedule(schedule, 9)
    wrapped = S.prune_low_magnitude(build_tiny_model(), pruning_schedule=schedule)
    training.compile_model(wrapped)
    wrapped.fit(
        tiny_data.x_train[: 9 * 32],
        tiny_data.y_train[: 9 * 32],
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[S.UpdatePruningStep()],
    )
    assert check.pruning_steps == [5]
    assert measure.overall_sparsity(S.strip_pruning(wrapped)) == pytest.approx(0.6, abs=0.01)


def test_polynomial_schedule_always_reaches_its_target():
    for total in (2, 47, 188, 5157):
        check = pruning.check_schedule(pruning.polynomial_schedule(0.9, total), total)
        assert check.reaches_target, (total, check)
    with pytest.raises(ValueError, match="target"):
        pruning.polynomial_schedule(1.0, 100)
    with pytest.raises(ValueError, match="total_steps"):
        pruning.polynomial_schedule(0.5, 1)


def test_prune_config_validates():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        PruneConfig(sparsity={"dense": 1.2})
    with pytest.raises(ValueError, match="m_by_n"):
        PruneConfig(m_by_n=(4, 2))
    with pytest.raises(ValueError, match="names no layer"):
        PruneConfig(sparsity={})


def test_model_without_prunable_layers_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="no layer that can be pruned"):
        pruning.wrap_for_pruning(model, PruneConfig(), 100)


def test_unknown_layer_in_per_layer_targets_is_refused():
    with pytest.raises(ValueError, match="no layers named"):
        pruning.wrap_for_pruning(models.seed_cnn(), PruneConfig(sparsity={"fc9": 0.5}), 100)


def test_wrap_copies_weights_and_wraps_only_named_layers():
    model = models.seed_cnn()
    wrapped = pruning.wrap_for_pruning(model, PruneConfig(sparsity={"dense": 0.5}), 100)
    assert [type(layer).__name__ for layer in wrapped.layers] == [
        "Conv2D",
        "Flatten",
        "PruneLowMagnitude",
    ]
    np.testing.assert_array_equal(
        wrapped.layers[-1].layer.get_weights()[0], model.layers[-1].get_weights()[0]
    )


def test_per_layer_for_total_reaches_the_same_total():
    model = models.seed_cnn()
    targets = pruning.per_layer_for_total(model, {"conv": 0.5}, "dense", 0.9)
    zeros = 0.5 * 288 + targets["dense"] * 216_320
    assert zeros / (288 + 216_320) == pytest.approx(0.9, abs=1e-6)
    with pytest.raises(ValueError, match="not possible"):
        pruning.per_layer_for_total(model, {"dense": 0.0}, "conv", 0.9)
    with pytest.raises(ValueError, match="no prunable kernels named"):
        pruning.per_layer_for_total(model, {"nope": 0.5}, "dense", 0.9)


def test_prune_and_measure_reaches_the_sparsity_and_caches(tmp_root, tiny_data):
    base = training.train_baseline(
        "seed_cnn", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    cfg = PruneConfig(sparsity={"dense": 0.8}, epochs=2)
    result, model = pruning.prune_and_measure(
        base, "dense_80", tiny_data, cfg, model_name="seed_cnn", baseline="base"
    )
    assert result.technique == "pruning" and result.baseline == "base"
    assert result.extra["layer_sparsity"]["dense"] == pytest.approx(0.8, abs=1e-3)
    assert result.extra["layer_sparsity"]["conv"] == 0.0
    assert result.nonzero_params == measure.count_nonzero(model)
    assert result.extra["sparse_format"] is False
    again, _ = pruning.prune_and_measure(
        base,
        "dense_80",
        tiny_data,
        cfg,
        model_name="seed_cnn",
        baseline="base",
        sparse_format=True,
    )
    assert again.extra["fine_tune_seconds"] == result.extra["fine_tune_seconds"]  # cached
    assert again.tflite_bytes < result.tflite_bytes


def test_structured_2_4_pruning_holds_after_training(tmp_root, tiny_data):
    base = training.train_baseline(
        "lenet_300_100", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    _, model = pruning.prune_and_measure(
        base,
        "two_four",
        tiny_data,
        PruneConfig(m_by_n=(2, 4), epochs=1),
        model_name="lenet_300_100",
        baseline="base",
    )
    for name in ("fc1", "fc2", "fc3"):
        assert pruning.m_by_n_violations(model.get_layer(name).get_weights()[0], 2, 4) == 0


def test_layer_sensitivity_restores_weights(tiny_model, tiny_data):
    before = [w.copy() for w in tiny_model.get_weights()]
    curves = pruning.layer_sensitivity(
        tiny_model, ["conv", "dense"], [0.0, 0.99], tiny_data.x_test, tiny_data.y_test
    )
    assert set(curves) == {"conv", "dense"} and curves["dense"][1] < curves["dense"][0]
    for a, b in zip(before, tiny_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no kernel"):
        pruning.layer_sensitivity(tiny_model, ["pool"], [0.5], tiny_data.x_test, tiny_data.y_test)


def test_seed_changes_the_fine_tune_and_has_its_own_cache_entry(tmp_root, tiny_data):
    base = training.train_baseline(
        "seed_cnn", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    runs = {}
    for seed in (1, 2):
        cfg = PruneConfig(sparsity={"dense": 0.5}, epochs=1, seed=seed)
        runs[seed] = pruning.pruned_model(base, "seeded", tiny_data, cfg, model_name="seed_cnn")
    assert runs[1].path != runs[2].path  # same variant name, different key
    assert not runs[1].from_cache and not runs[2].from_cache
    kernels = [r.model.get_layer("dense").get_weights()[0] for r in runs.values()]
    assert not np.array_equal(kernels[0], kernels[1])  # another shuffling order
    again = pruning.pruned_model(
        base,
        "seeded",
        tiny_data,
        PruneConfig(sparsity={"dense": 0.5}, epochs=1, seed=1),
        model_name="seed_cnn",
    )
    assert again.from_cache and again.path == runs[1].path
    np.testing.assert_array_equal(again.model.get_layer("dense").get_weights()[0], kernels[0])


def test_pruning_fine_tune_loops_over_batches_with_the_weights_of_plain_keras(
    tiny_model, tiny_data, looped
):
    """tfmot counts pruning steps inside the compiled step, so 32 batches per call prune
    exactly as one per call does: the same masks at the same steps, the same weights."""
    cfg = PruneConfig(sparsity=0.75, epochs=2, batch_size=8)  # 150 steps, masks every few
    pruned, meta = pruning.fine_tune_pruned(tiny_model, tiny_data, cfg)
    assert looped == [training.STEPS_PER_EXECUTION] and training.STEPS_PER_EXECUTION > 1
    wrapped = training.compile_model(
        pruning.wrap_for_pruning(tiny_model, cfg, meta["steps"]), cfg.learning_rate
    )
    training.set_seeds(cfg.seed)
    wrapped.fit(
        tiny_data.x_train,
        tiny_data.y_train,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        validation_data=(tiny_data.x_val, tiny_data.y_val),
        shuffle=True,
        callbacks=[S.UpdatePruningStep()],
        verbose=0,
    )
    same_weights(pruned, S.strip_pruning(wrapped))
    for name in ("conv", "dense"):  # the schedule did prune, to its target
        kernel = pruned.get_layer(name).get_weights()[0]
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=0.01)
