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
    assert result.extra["target_sparsity"] == {"dense": 0.8} and result.extra["m_by_n"] is None
    assert result.extra["fine_tune_epochs"] == 2 and result.extra["seed"] == 42
    assert result.extra["fine_tune_seconds"] > 0
    # fine-tuning saw 2 epochs of ceil(600 / 32) = 19 batches
    entry = pruning.pruned_model(base, "dense_80", tiny_data, cfg, model_name="seed_cnn")
    assert entry.from_cache and entry.meta["steps"] == 2 * 19
    assert entry.path.name.startswith("seed_cnn-dense_80")
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
    result, model = pruning.prune_and_measure(
        base,
        "two_four",
        tiny_data,
        PruneConfig(m_by_n=(2, 4), epochs=1),
        model_name="lenet_300_100",
        baseline="base",
    )
    assert result.extra["m_by_n"] == [2, 4]
    for name in ("fc1", "fc2", "fc3"):
        assert pruning.m_by_n_violations(model.get_layer(name).get_weights()[0], 2, 4) == 0


def test_layer_sensitivity_restores_weights(tiny_model, tiny_data, tmp_root):
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


# --- pure functions: exact values, boundaries and messages -----------------------------


def test_magnitude_mask_breaks_ties_by_position():
    w = np.tile([1.0, -2.0], 10)  # ten 1s (even positions) tie for the smallest magnitude
    mask = pruning.magnitude_mask(w, 0.25)  # round(0.25 * 20) = 5 dropped: the first five 1s
    assert np.flatnonzero(~mask).tolist() == [0, 2, 4, 6, 8]
    assert mask.dtype == bool and mask.shape == (20,)


def test_magnitude_mask_boundaries():
    w = np.arange(1.0, 7.0).reshape(2, 3)
    assert pruning.magnitude_mask(w, 0.0).all()  # sparsity 0 keeps everything
    assert pruning.magnitude_mask(w, 0.9).tolist() == [[False] * 3, [False, False, True]]
    assert not pruning.magnitude_mask(w, 0.99).any()  # round(5.94) = 6: all six dropped
    assert pruning.magnitude_mask(np.array([5.0]), 0.4).tolist() == [True]  # round(0.4) = 0
    assert pruning.magnitude_mask(np.array([5.0]), 0.6).tolist() == [False]  # round(0.6) = 1
    assert pruning.magnitude_mask([3.0, -1.0], 0.5).tolist() == [True, False]  # a plain list


def test_sparsity_messages_name_the_value():
    with pytest.raises(ValueError, match=r"^sparsity must be a number in \[0, 1\), got '0.5'$"):
        pruning.magnitude_mask(np.ones(4), "0.5")
    with pytest.raises(
        ValueError, match=r"^sparsity must be in \[0, 1\), got 1.0 \(1 would remove everything\)$"
    ):
        pruning.magnitude_mask(np.ones(4), 1.0)
    with pytest.raises(ValueError, match=r"^cannot prune an empty array$"):
        pruning.magnitude_mask(np.zeros((0, 3)), 0.5)


def test_m_by_n_defaults_and_edge_blocks():
    kernel = np.ones((4, 1))
    assert pruning.m_by_n_violations(kernel) == 1  # default 2:4, no zeros in the block
    kernel[[0, 3], 0] = 0.0
    assert pruning.m_by_n_violations(kernel) == 0
    assert pruning.m_by_n_violations(np.ones((8, 2)), 0, 4) == 0  # 0 zeros asked: never fails
    assert pruning.m_by_n_violations(np.ones((8, 2)), 4, 4) == 2 * 2  # every block fails
    assert pruning.m_by_n_violations(np.zeros((8, 2)), 4, 4) == 0  # m == n allowed
    assert pruning.m_by_n_violations(np.ones((3, 2)), 1, 1) == 3 * 2  # n == 1 allowed
    # 5 inputs: blocks [1 1 1 1] and [1 + three padded zeros] -> only the first fails 2:4
    assert pruning.m_by_n_violations(np.ones((5, 1)), 2, 4) == 1
    with pytest.raises(ValueError, match=r"^need 0 <= m <= n and n >= 1, got m=1, n=0$"):
        pruning.m_by_n_violations(np.ones((4, 4)), 1, 0)
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        pruning.m_by_n_violations(np.ones((2, 2, 2)))


def test_m_by_n_reads_conv_blocks_along_input_channels():
    conv = np.ones((1, 2, 4, 3))  # (h, w, in, out): 1 * 2 * 3 rows of 4 input channels
    conv[0, 0, :2, 0] = 0.0  # one row holds two zeros
    assert pruning.m_by_n_violations(conv, 2, 4) == 6 - 1
    conv = np.zeros((1, 1, 4, 2))
    conv[0, 0, :, 1] = [1.0, 1.0, 1.0, 0.0]  # output 1: one zero only
    assert pruning.m_by_n_violations(conv, 2, 4) == 1


def test_schedule_check_texts_in_full():
    never = pruning.ScheduleCheck(50, [], 0.0, 0.8)
    assert str(never) == (
        "This schedule never prunes in 50 training steps: tfmot updates the masks only at "
        "steps s >= 1 with (s - begin_step) % frequency == 0 (and s <= end_step). Lower "
        "`frequency` or `begin_step`, or train longer."
    )
    done = pruning.ScheduleCheck(1000, [100, 200, 300, 400], 0.8, 0.8)
    assert (
        str(done)
        == "4 mask updates between steps 100 and 400 of 1000; the last one applies 80.0 % sparsity."
    )
    short = pruning.ScheduleCheck(450, [100, 200, 300, 400], 0.25, 0.8)
    assert str(short) == (
        "4 mask updates between steps 100 and 400 of 450; the last one applies 25.0 % "
        "sparsity, short of the target 80.0 %."
    )


def test_schedule_check_properties():
    assert not pruning.ScheduleCheck(10, [5], 0.0, 0.5).prunes  # an update to 0 % prunes nothing
    assert not pruning.ScheduleCheck(10, [], 0.5, 0.5).prunes
    assert pruning.ScheduleCheck(10, [5], 0.5, 0.5).reaches_target
    assert pruning.ScheduleCheck(10, [5], 0.5 + 5e-7, 0.5).reaches_target  # within 1e-6
    assert not pruning.ScheduleCheck(10, [5], 0.5 + 2e-6, 0.5).reaches_target
    assert not pruning.ScheduleCheck(10, [], 0.0, 0.0).reaches_target  # no update at all


def test_check_schedule_step_rules():
    every = S.ConstantSparsity(0.5, begin_step=0, frequency=1)  # end_step -1: no end
    check = pruning.check_schedule(every, 3)
    assert check.pruning_steps == [1, 2, 3]  # step 0 never comes: the counter starts at 1
    assert check.total_steps == 3 and check.target_sparsity == 0.5
    assert check.final_sparsity == 0.5
    assert pruning.check_schedule(every, 1).pruning_steps == [1]
    ends = S.ConstantSparsity(0.5, begin_step=2, end_step=4, frequency=1)
    assert pruning.check_schedule(ends, 10).pruning_steps == [2, 3, 4]
    assert pruning.check_schedule(ends, 3).pruning_steps == [2, 3]
    ramp = S.PolynomialDecay(0.0, 0.6, begin_step=0, end_step=40, frequency=10, power=1)
    # linear ramp (power 1): at step 20 of 40 tfmot applies half the target
    assert pruning.check_schedule(ramp, 20).final_sparsity == pytest.approx(0.3, abs=1e-6)
    with pytest.raises(ValueError, match=r"^total_steps must be >= 1, got 0$"):
        pruning.check_schedule(every, 0)
    with pytest.raises(ValueError, match="^unsupported schedule int$"):
        pruning.check_schedule(3, 10)


def test_require_pruning_returns_the_check():
    schedule = S.ConstantSparsity(0.5, begin_step=0, frequency=2)
    check = pruning.require_pruning(schedule, 4)
    assert check.pruning_steps == [2, 4] and check.reaches_target


@pytest.mark.parametrize(
    "total,end_step,frequency",
    [
        (1000, 600, 30),  # ramp int(0.6 * 1000) = 600, 600 // 20 updates = 30
        (2, 1, 1),  # ramp max(1, int(1.2)) = 1
        (5000, 3000, 100),  # 3000 // 20 = 150, capped at 100
        (50, 30, 1),  # 30 // 20 = 1
        (130, 78, 3),  # ramp 78, 78 // 20 = 3, 78 // 3 * 3 = 78
        (145, 84, 4),  # ramp 87, 87 // 20 = 4, 87 // 4 * 4 = 84
    ],
)
def test_polynomial_schedule_parameters(total, end_step, frequency):
    schedule = pruning.polynomial_schedule(0.7, total)
    assert (schedule.begin_step, schedule.end_step, schedule.frequency) == (0, end_step, frequency)
    assert (schedule.initial_sparsity, schedule.final_sparsity) == (0.0, 0.7)


def test_polynomial_schedule_end_fraction_and_updates():
    full = pruning.polynomial_schedule(0.5, 100, end_fraction=1.0, updates=10)
    assert (full.end_step, full.frequency) == (100, 10)
    odd = pruning.polynomial_schedule(0.5, 100, end_fraction=0.5, updates=3)
    assert (odd.end_step, odd.frequency) == (48, 16)  # 50 // 3 = 16, 50 // 16 * 16 = 48
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"0 < end_fraction <= 1, got 100, "):
            pruning.polynomial_schedule(0.5, 100, end_fraction=bad)
    with pytest.raises(ValueError, match=r"^target must be in \[0, 1\)"):
        pruning.polynomial_schedule(1.0, 100)
    with pytest.raises(ValueError, match=r"^need total_steps >= 2 and 0 < end_fraction <= 1"):
        pruning.polynomial_schedule(0.5, 1)


def test_prune_config_defaults_and_messages():
    from dataclasses import asdict

    assert asdict(PruneConfig()) == {
        "sparsity": 0.9,
        "epochs": 3,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "m_by_n": None,
        "xnnpack_policy": False,
        "end_fraction": 0.6,
        "seed": 42,
    }
    PruneConfig(sparsity=0.0)
    PruneConfig(m_by_n=(1, 2))
    for bad in ((0, 4), (4, 4), (4, 2)):
        with pytest.raises(ValueError, match=rf"^m_by_n needs 0 < m < n, got \({bad[0]}, "):
            PruneConfig(m_by_n=bad)
    with pytest.raises(ValueError, match=r"^sparsity=\{\} names no layer"):
        PruneConfig(sparsity={})
    with pytest.raises(ValueError, match=r"^sparsity must be in \[0, 1\), got 1.0 "):
        PruneConfig(sparsity=1.0)
    with pytest.raises(ValueError, match=r"got 1.2"):
        PruneConfig(sparsity={"conv": 0.5, "dense": 1.2})


def test_wrap_whole_model_and_its_schedule():
    model = models.seed_cnn()
    wrapped = pruning.wrap_for_pruning(model, PruneConfig(sparsity=0.5), 1000)
    assert [layer.name for layer in wrapped.layers] == [
        "prune_low_magnitude_conv",
        "prune_low_magnitude_flatten",
        "prune_low_magnitude_dense",
    ]
    dense = wrapped.get_layer("prune_low_magnitude_dense")
    cfg = dense.pruning_schedule.get_config()["config"]
    assert (cfg["final_sparsity"], cfg["end_step"], cfg["frequency"]) == (0.5, 600, 30)
    np.testing.assert_array_equal(dense.layer.get_weights()[0], model.get_layer("dense").kernel)


def test_wrap_passes_m_by_n_and_skips_layers_at_zero():
    model = models.seed_cnn()
    cfg = PruneConfig(sparsity={"conv": 0.0, "dense": 0.5}, m_by_n=(2, 4))
    wrapped = pruning.wrap_for_pruning(model, cfg, 100)
    assert type(wrapped.layers[0]).__name__ == "Conv2D"  # target 0: stays a plain layer
    assert wrapped.layers[-1].sparsity_m_by_n == (2, 4)
    np.testing.assert_array_equal(wrapped.layers[0].kernel, model.layers[0].kernel)
    plain = pruning.wrap_for_pruning(model, PruneConfig(sparsity={"dense": 0.5}), 100)
    assert plain.layers[-1].sparsity_m_by_n is None


def test_wrap_messages_name_model_and_layers():
    with pytest.raises(ValueError, match=r"^no layers named \['fc9', 'zz'\] in model 'seed_cnn'$"):
        pruning.wrap_for_pruning(
            models.seed_cnn(), PruneConfig(sparsity={"zz": 0.5, "fc9": 0.5, "dense": 0.5}), 100
        )
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Flatten()], name="flat")
    with pytest.raises(ValueError, match=r"^model 'flat' has no layer that can be pruned"):
        pruning.wrap_for_pruning(flat, PruneConfig(), 100)


def _two_dense(kernel_a, kernel_b=None):
    """Input(2) -> Dense(2, 'a') [-> Dense(2, 'b')], zero biases, given kernels."""
    layers = [keras.Input((2,)), keras.layers.Dense(2, name="a")]
    if kernel_b is not None:
        layers.append(keras.layers.Dense(2, name="b"))
    model = keras.Sequential(layers)
    model.get_layer("a").set_weights([np.asarray(kernel_a, np.float32), np.zeros(2, np.float32)])
    if kernel_b is not None:
        model.get_layer("b").set_weights(
            [np.asarray(kernel_b, np.float32), np.zeros(2, np.float32)]
        )
    return model


def test_per_layer_for_total_by_hand():
    model = _two_dense(np.ones((2, 2)), np.ones((2, 2)))  # two kernels of 4 weights
    # 1/3 of 8 weights = 8/3 zeros, all in 'b': 2/3 of its 4 weights
    assert pruning.per_layer_for_total(model, {}, "b", 1 / 3) == {"b": 0.666667}
    assert pruning.per_layer_for_total(model, {"a": 0.5}, "b", 0.5) == {"a": 0.5, "b": 0.5}
    assert pruning.per_layer_for_total(model, {"a": 0.0}, "b", 0.0) == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match=r"^layer 'b' would need sparsity 1.0000 to reach 0.5; "):
        pruning.per_layer_for_total(model, {"a": 0.0}, "b", 0.5)
    with pytest.raises(ValueError, match="would need sparsity 1.5000"):
        pruning.per_layer_for_total(model, {}, "b", 0.75)
    with pytest.raises(ValueError, match="would need sparsity -0.2500"):
        pruning.per_layer_for_total(model, {"a": 0.75}, "b", 0.25)
    with pytest.raises(ValueError, match=r"^total must be in \[0, 1\)"):
        pruning.per_layer_for_total(model, {}, "b", 1.0)
    with pytest.raises(ValueError, match=r"^sparsity must be in \[0, 1\)"):
        pruning.per_layer_for_total(model, {"a": 1.0}, "b", 0.5)
    with pytest.raises(ValueError, match=r"^no prunable kernels named \['c'\]; have \['a', 'b'\]$"):
        pruning.per_layer_for_total(model, {}, "c", 0.5)


def test_per_layer_for_total_leaves_unnamed_layers_dense():
    model = models.lenet_300_100()  # fc1 784x300, fc2 300x100, fc3 100x10
    sizes = {"fc1": 235_200, "fc2": 30_000, "fc3": 1_000}
    targets = pruning.per_layer_for_total(model, {"fc2": 0.5}, "fc1", 0.8)
    zeros = 0.8 * sum(sizes.values()) - 0.5 * 30_000  # fc3 stays dense
    assert targets == {"fc2": 0.5, "fc1": round(zeros / 235_200, 6)}


def test_layer_sensitivity_by_hand(capsys, tmp_root):
    # outputs x @ K: with K = [[1, .1], [.2, 3]] both classes are reachable
    model = _two_dense([[1.0, 0.1], [0.2, 3.0]])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [1.0, 0.2]], np.float32)
    # full kernel: x @ K = [1, .1], [.2, 3], [1.1, 1.6], [1.04, .7] -> classes 0, 1, 1, 0
    # 75 % sparsity keeps only 3.0: [0, 0], [0, 3], [0, 1.5], [0, .6] -> 0, 1, 1, 1
    y = np.array([0, 1, 1, 0])
    curves = pruning.layer_sensitivity(model, ["a"], [0.0, 0.75], x, y)
    assert curves == {"a": [1.0, 0.75]}
    assert capsys.readouterr().out == ""  # silent: no progress bar per sparsity
    with pytest.raises(ValueError, match=r"^sparsity must be in \[0, 1\)"):
        pruning.layer_sensitivity(model, ["a"], [0.5, 1.0], x, y)
    with pytest.raises(ValueError, match=r"^layer 'nope' has no kernel|No such layer"):
        pruning.layer_sensitivity(model, ["nope"], [0.5], x, y)


def test_steps_per_epoch_and_default_epochs(monkeypatch):
    from types import SimpleNamespace

    data = SimpleNamespace(x_train=np.zeros((65, 1)))
    assert pruning.steps_per_epoch(data, 32) == 3  # ceil(65 / 32)
    assert pruning.steps_per_epoch(data, 65) == 1
    assert pruning.steps_per_epoch(data, 13) == 5
    monkeypatch.setenv("COURSE_FAST", "0")
    assert pruning.default_epochs() == 3
    monkeypatch.setenv("COURSE_FAST", "1")
    assert pruning.default_epochs() == 2


# --- mutation-testing follow-ups: defaults, keys, rounding and timing, by hand ------------


def test_m_by_n_violations_defaults_to_2_in_4():
    kernel = np.array([[1.0], [1.0], [1.0], [0.0], [0.0], [0.0], [0.0], [0.0]])  # (in 8, out 1)
    assert pruning.m_by_n_violations(kernel) == 1  # [1, 1, 1, 0] has one zero of the two
    assert pruning.m_by_n_violations(kernel, 2, 4) == 1


def test_check_schedule_counts_from_begin_step_and_stops_at_end_step():
    sparsity = tfmot.sparsity.keras
    late = sparsity.ConstantSparsity(0.5, begin_step=3, frequency=10)
    assert pruning.check_schedule(late, 30).pruning_steps == [3, 13, 23]  # (s - 3) % 10 == 0
    never = sparsity.ConstantSparsity(0.5, begin_step=0, end_step=0, frequency=1)
    check = pruning.check_schedule(never, 10)  # steps start at 1, after end_step 0
    assert check.pruning_steps == [] and check.final_sparsity == 0.0 and not check.prunes
    third = sparsity.ConstantSparsity(1 / 3, begin_step=0, frequency=1)
    assert pruning.check_schedule(third, 5).final_sparsity == 0.333333  # 6 decimals


def test_fine_tune_pruned_passes_its_settings_and_times_the_fit(monkeypatch, tiny_data):
    calls, rates = [], []
    real_compile = pruning.compile_model

    def spy_compile(model, learning_rate=1e-3):
        rates.append(learning_rate)
        return real_compile(model, learning_rate)

    def stub_fit(model, data, cfg, callbacks=(), verbose=0, validate=True):
        calls.append((cfg, verbose, [type(c).__name__ for c in callbacks], validate))
        return {"loss": [1.0]}

    clock = iter([10.0, 12.5])
    monkeypatch.setattr(pruning, "compile_model", spy_compile)
    monkeypatch.setattr(pruning, "fit", stub_fit)
    monkeypatch.setattr(pruning.time, "perf_counter", lambda: next(clock))
    cfg = PruneConfig(sparsity=0.5, epochs=2, batch_size=100, learning_rate=0.004, seed=7)
    stripped, meta = pruning.fine_tune_pruned(build_tiny_model(), tiny_data, cfg)
    assert rates == [0.004, 0.004]  # the wrapped model and the stripped one
    steps = 2 * 6  # 600 training images in batches of 100, two epochs
    assert meta == {"history": {"loss": [1.0]}, "train_seconds": 2.5, "steps": steps}
    ((train_cfg, verbose, callbacks, validate),) = calls
    assert (train_cfg.epochs, train_cfg.batch_size, train_cfg.seed) == (2, 100, 7)
    assert verbose == 0 and callbacks == ["UpdatePruningStep"] and validate is False
    assert float(stripped.optimizer.learning_rate.numpy()) == pytest.approx(0.004)


def test_pruned_model_keys_the_cache_by_base_data_and_every_setting(monkeypatch, tiny_data):
    from dataclasses import asdict
    from pathlib import Path
    from types import SimpleNamespace

    from course_lib.data import identity

    seen = []
    monkeypatch.setattr(pruning, "cached_model", lambda name, key, create: seen.append((name, key)))
    base = SimpleNamespace(model=None, path=Path("models/seed_cnn-abc.keras"))
    cfg = PruneConfig(sparsity=0.8)
    pruning.pruned_model(base, "uniform_80", tiny_data, cfg, model_name="seed_cnn")
    assert seen == [
        ("seed_cnn-uniform_80", {"base": "seed_cnn-abc", **identity(tiny_data), **asdict(cfg)})
    ]


def test_prune_and_measure_fills_the_result_fields(monkeypatch, tiny_data):
    from types import SimpleNamespace

    model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(1, use_bias=False, name="d")])
    model.get_layer("d").set_weights([np.array([[0.0], [0.0], [0.0], [1], [2], [3], [4]])])
    entries = iter(
        [
            SimpleNamespace(model=model, meta={"train_seconds": 3.14159}),
            SimpleNamespace(model=model, meta={}),  # a cache entry written without a time
        ]
    )
    monkeypatch.setattr(pruning, "pruned_model", lambda *a, **k: next(entries))
    captured = []
    monkeypatch.setattr(
        pruning, "convert_and_measure", lambda *a, **k: captured.append((a, k)) or "result"
    )
    cfg = PruneConfig(sparsity=0.5, epochs=3, seed=9)
    result, returned = pruning.prune_and_measure(
        None, "v", tiny_data, cfg, model_name="tiny", baseline="b"
    )
    assert result == "result" and returned is model
    ((args, kwargs),) = captured[:1]
    assert args == (model, "v", tiny_data)
    assert kwargs == {
        "model_name": "tiny",
        "technique": "pruning",
        "baseline": "b",
        "sparse_format": False,
        "folder": "02_pruning",
        "sparsity": 0.4286,  # 3 zeros of 7, to 4 decimals (hand count)
        "target_sparsity": 0.5,
        "layer_sparsity": {"d": 0.4286},
        "m_by_n": None,
        "fine_tune_epochs": 3,
        "fine_tune_seconds": 3.1,
        "seed": 9,
    }
    pruning.prune_and_measure(None, "v", tiny_data, cfg, model_name="tiny", baseline="b")
    assert captured[1][1]["fine_tune_seconds"] == 0.0


def test_layer_sensitivity_prints_nothing(capsys, tiny_model, tiny_data, tmp_root):
    pruning.layer_sensitivity(tiny_model, ["dense"], [0.5], tiny_data.x_test, tiny_data.y_test)
    assert capsys.readouterr().out == ""


def test_wrap_for_pruning_passes_the_policy_and_the_ramp(monkeypatch):
    api = tfmot.sparsity.keras
    seen, ramps = [], []
    real_wrap, real_ramp = api.prune_low_magnitude, pruning.polynomial_schedule

    def spy_wrap(layer, **kwargs):
        seen.append(kwargs)
        return real_wrap(layer, **kwargs)

    def spy_ramp(target, total_steps, end_fraction=0.6, updates=20):
        ramps.append((target, total_steps, end_fraction))
        return real_ramp(target, total_steps, end_fraction, updates)

    monkeypatch.setattr(pruning.sparsity_api, "prune_low_magnitude", spy_wrap)
    monkeypatch.setattr(pruning, "polynomial_schedule", spy_ramp)
    cfg = PruneConfig(sparsity={"dense": 0.5}, xnnpack_policy=True, end_fraction=0.3)
    pruning.wrap_for_pruning(build_tiny_model(), cfg, 200)
    assert ramps == [(0.5, 200, 0.3)]
    assert isinstance(seen[0]["pruning_policy"], api.PruneForLatencyOnXNNPack)


def test_wrap_for_pruning_needs_two_steps_for_its_ramp():
    with pytest.raises(
        ValueError, match=r"^need total_steps >= 2 and 0 < end_fraction <= 1, got 1"
    ):
        pruning.wrap_for_pruning(build_tiny_model(), PruneConfig(sparsity=0.5), 1)
