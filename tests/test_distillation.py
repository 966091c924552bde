"""Distillation: the soft-target loss against hand-computed values, the Distiller's step,
precomputed teacher logits, and the cache (seed in the key)."""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pytest

from course_lib import distillation, models, training
from course_lib.compat import keras, set_seeds, tf

from .conftest import same_weights

L = keras.layers


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Batch mean of sum_k p_k log(p_k / q_k), written out by hand."""
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def test_soft_target_loss_is_t_squared_kl_teacher_first():
    rng = np.random.default_rng(0)
    t_logits = rng.normal(scale=3.0, size=(6, 10)).astype(np.float32)
    s_logits = rng.normal(scale=3.0, size=(6, 10)).astype(np.float32)
    temperature = 3.0
    p = _softmax(t_logits.astype(np.float64) / temperature)
    q = _softmax(s_logits.astype(np.float64) / temperature)
    expected = temperature**2 * _kl(p, q)
    got = float(distillation.soft_target_loss(t_logits, s_logits, temperature))
    assert got == pytest.approx(expected, rel=1e-4)
    assert got != pytest.approx(temperature**2 * _kl(q, p), rel=1e-2)  # swapped KL
    assert got != pytest.approx(_kl(p, q), rel=1e-2)  # no T^2
    # identical logits: nothing to learn from the teacher
    assert float(distillation.soft_target_loss(t_logits, t_logits, 4.0)) == pytest.approx(
        0.0, abs=1e-5
    )


def test_t_squared_keeps_the_soft_gradient_on_the_same_scale():
    rng = np.random.default_rng(1)
    t_logits = rng.normal(size=(8, 10)).astype(np.float32)
    s_logits = tf.constant(rng.normal(size=(8, 10)).astype(np.float32))
    norms = []
    for temperature in (8.0, 16.0):
        with tf.GradientTape() as tape:
            tape.watch(s_logits)
            loss = distillation.soft_target_loss(t_logits, s_logits, temperature)
        norms.append(float(tf.norm(tape.gradient(loss, s_logits))))
    # without T^2 the gradient would shrink 4x from T=8 to T=16; with it, barely at all
    assert norms[1] == pytest.approx(norms[0], rel=0.05)


def _tiny_student() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), L.Dense(3, name="head")], name="student")


def test_train_step_loss_mixes_hard_and_soft_terms_by_alpha():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    teacher = keras.Sequential([keras.Input((4,)), L.Dense(3)], name="teacher")
    student = _tiny_student()
    distiller = distillation.Distiller(student, teacher, temperature=2.0, alpha=0.3)
    distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    s_logits = student(x).numpy().astype(np.float64)
    t_logits = teacher(x).numpy().astype(np.float64)
    hard = float(np.mean(-np.log(_softmax(s_logits)[np.arange(5), y])))
    soft = 4.0 * _kl(_softmax(t_logits / 2.0), _softmax(s_logits / 2.0))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-4)
    # the same step with the teacher's logits given: the same loss
    given = distillation.Distiller(student, None, temperature=2.0, alpha=0.3)
    given.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    logs = given.train_on_batch((x, t_logits.astype(np.float32)), y, return_dict=True)
    assert logs["loss"] == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-4)


def test_the_teacher_stays_frozen_and_the_student_learns():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    teacher = keras.Sequential([keras.Input((4,)), L.Dense(3)], name="teacher")
    before_teacher = [w.copy() for w in teacher.get_weights()]
    student = _tiny_student()
    before_student = student.get_weights()[0].copy()
    distiller = distillation.Distiller(student, teacher)
    distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    distiller.train_on_batch(x, y)
    for w, w0 in zip(teacher.get_weights(), before_teacher, strict=True):
        np.testing.assert_array_equal(w, w0)
    assert not np.allclose(student.get_weights()[0], before_student)


def test_distiller_checks_its_settings_and_needs_a_teacher():
    student = models.build_model("strided_cnn", logits=True)
    with pytest.raises(ValueError, match="temperature"):
        distillation.Distiller(student, student, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation.Distiller(student, student, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distillation.Distiller(student, student, temperature=float("nan"))
    lonely = distillation.Distiller(_tiny_student(), None)
    lonely.compile(optimizer=keras.optimizers.SGD())
    with pytest.raises(ValueError, match="no teacher"):
        lonely.train_on_batch(np.zeros((2, 4), np.float32), np.array([0, 1]))


def test_to_logits_matches_the_softmax_model():
    model = models.seed_cnn()
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    logits = distillation.to_logits(model)
    assert logits.layers[-1].get_config()["activation"] == "linear"
    np.testing.assert_allclose(tf.nn.softmax(logits(x)).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="not Dense"):
        distillation.to_logits(keras.Sequential([keras.Input((2,)), L.Softmax()]))
    with pytest.raises(ValueError, match="not a keras.Sequential"):
        distillation.to_logits(keras.Model(model.inputs, model.outputs))


def test_precomputed_teacher_logits_train_like_the_teacher_in_the_loop(tiny_data):
    teacher = distillation.to_logits(models.seed_cnn())
    x, y = tiny_data.x_train[:96], tiny_data.y_train[:96]
    weights = []
    for given in (False, True):
        set_seeds(7)
        student = models.build_model("strided_cnn", logits=True)
        distiller = distillation.Distiller(student, None if given else teacher, 4.0, 0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        inputs = (x, teacher.predict(x, verbose=0)) if given else x
        set_seeds(7)
        distiller.fit(inputs, y, epochs=1, batch_size=32, shuffle=True, verbose=0)
        weights.append(student.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_distill_alpha_one_equals_label_training_and_seeds_are_cached_apart(tmp_root, tiny_data):
    teacher = training.train_baseline(
        "seed_cnn", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    cfg = training.TrainConfig(epochs=1)
    labels_only = distillation.distill(teacher, "strided_cnn", tiny_data, cfg, alpha=1.0)
    plain = training.train_baseline("strided_cnn", "mnist", cfg, data=tiny_data)
    x = tiny_data.x_test[:20]
    np.testing.assert_allclose(labels_only.model(x).numpy(), plain.model(x).numpy(), atol=1e-5)
    distilled = distillation.distill(teacher, "strided_cnn", tiny_data, cfg, alpha=0.5)
    assert distilled.model.layers[-1].name == "softmax"
    assert not np.allclose(distilled.model(x).numpy(), plain.model(x).numpy())
    again = distillation.distill(teacher, "strided_cnn", tiny_data, cfg, alpha=0.5)
    assert again.from_cache and again.path == distilled.path
    job = partial(distillation.distill_job, str(teacher.path), "strided_cnn", cfg, 4.0, 0.5)
    assert training.is_cached(job, tiny_data)  # the call train_in_workers makes: same entry
    other = dataclasses.replace(cfg, seed=cfg.seed + 2)
    job = partial(distillation.distill_job, str(teacher.path), "strided_cnn", other, 4.0, 0.5)
    assert not training.is_cached(job, tiny_data)
    other_seed = distillation.distill(
        teacher, "strided_cnn", tiny_data, dataclasses.replace(cfg, seed=cfg.seed + 1)
    )
    assert not other_seed.from_cache and other_seed.path != distilled.path
    assert not np.allclose(other_seed.model(x).numpy(), distilled.model(x).numpy())


def test_distill_loops_over_batches_with_the_weights_of_a_plain_distiller_fit(
    tmp_root, tiny_model, tiny_data, looped
):
    teacher = training.CachedModel(tiny_model, tmp_root / "tiny.keras", True)
    cfg = training.TrainConfig(epochs=1, batch_size=8)  # 75 batches: 32 + 32 + 11
    distilled = distillation.distill(teacher, "strided_cnn", tiny_data, cfg, alpha=0.5)
    assert looped == [training.STEPS_PER_EXECUTION] and training.STEPS_PER_EXECUTION > 1
    set_seeds(cfg.seed)
    student = models.build_model("strided_cnn", logits=True)
    distiller = distillation.Distiller(student, None, 4.0, 0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    assert int(distiller.steps_per_execution.numpy()) == 1
    soft = distillation.to_logits(tiny_model).predict(tiny_data.x_train, verbose=0)
    set_seeds(cfg.seed)
    history = distiller.fit(
        (tiny_data.x_train, soft),
        tiny_data.y_train,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=0,
    ).history
    same_weights(distilled.model, student)  # the appended softmax has no weights
    assert distilled.history == {k: [float(v) for v in vals] for k, vals in history.items()}
