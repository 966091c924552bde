"""Knowledge distillation: train a small student on a big teacher's softened predictions.

Introduced in 05_structure, whose reference cells write the same ``Distiller`` with its
custom ``train_step`` in plain tf_keras first; this module keeps the tested, cached version
the chapter uses for its seed-repeated comparisons.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from course_lib.compat import keras, set_seeds, tf
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.models import build_model, with_softmax
from course_lib.training import (
    CachedModel,
    TrainConfig,
    cached_model,
    compile_model,
    faster_steps,
    load_entry,
)


def soft_target_loss(
    teacher_logits: tf.Tensor, student_logits: tf.Tensor, temperature: float
) -> tf.Tensor:
    """Return ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, the batch mean.

    The distillation term of :class:`Distiller`. Keras' ``KLDivergence()(y_true, y_pred)``
    computes ``sum(y_true * log(y_true / y_pred))``: the teacher's probabilities go first,
    as the target the student's must match. A temperature ``T > 1`` softens both
    distributions, and their gradient with respect to the student's logits shrinks as
    ``1 / T^2``; the ``T^2`` factor undoes that, so the soft term keeps its weight against
    the hard one whatever the temperature (Hinton et al., 2015, section 2). Shown in
    05_structure, inside the reference cell's ``train_step``.

    Args:
        teacher_logits, student_logits: ``(batch, classes)`` logits.
        temperature: ``T > 0``.

    Returns:
        A scalar tensor.
    """
    t = float(temperature)
    kl = keras.losses.KLDivergence()
    return t * t * kl(tf.nn.softmax(teacher_logits / t), tf.nn.softmax(student_logits / t))


class Distiller(keras.Model):
    """Train a student on the true labels AND on a teacher's softened predictions.

    Knowledge distillation (Hinton et al., 2015): the loss is
    ``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))``,
    where ``t`` and ``s`` are teacher and student logits and ``T`` a temperature that softens
    both distributions, so the student also learns which wrong classes the teacher finds
    plausible (:func:`soft_target_loss`). Shown in 05_structure, whose reference cell
    writes the same class with its ``train_step``.

    Both models must output logits (see :func:`to_logits` for a model that ends in a
    softmax). ``alpha=1`` trains on the labels alone. The teacher is frozen (inference mode),
    so its logits are the same every epoch: fit on ``x=(images, teacher_logits)`` to give
    them precomputed (what :func:`distill` does) instead of running the teacher on every
    batch; with plain ``x=images`` the teacher runs in ``train_step``.

    Example::

        distiller = Distiller(student, teacher, temperature=4.0, alpha=0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        distiller.fit(x_train, y_train, epochs=10)   # then use `student`
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model | None,
        temperature: float = 4.0,
        alpha: float = 0.5,
    ) -> None:
        super().__init__()
        if not temperature > 0 or not 0 <= alpha <= 1:
            raise ValueError(
                f"need temperature > 0 and 0 <= alpha <= 1, got {temperature}, {alpha}"
            )
        self.student, self.teacher = student, teacher
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.hard_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self) -> list:
        """Loss and accuracy, reset by Keras at every epoch."""
        return [self.loss_tracker, self.accuracy]

    def _teacher_logits(self, x: Any) -> tuple[tf.Tensor, tf.Tensor]:
        if isinstance(x, (tuple, list)):
            images, teacher_logits = x
            return images, teacher_logits
        if self.teacher is None:
            raise ValueError("no teacher: pass x=(images, teacher_logits) to fit")
        return x, self.teacher(x, training=False)

    def train_step(self, data: tuple) -> dict:
        """One update of the student on the combined hard and soft loss."""
        x, y = data
        x, teacher_logits = self._teacher_logits(x)
        with tf.GradientTape() as tape:
            logits = self.student(x, training=True)
            hard = self.hard_loss(y, logits)
            soft = soft_target_loss(teacher_logits, logits, self.temperature)
            loss = self.alpha * hard + (1 - self.alpha) * soft
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables, strict=True))
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data: tuple) -> dict:
        """Evaluate the student alone, on the labels."""
        x, y = data
        if isinstance(x, (tuple, list)):
            x = x[0]
        logits = self.student(x, training=False)
        self.loss_tracker.update_state(self.hard_loss(y, logits))
        self.accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The student's logits."""
        return self.student(x, training=training)


def to_logits(model: keras.Model) -> keras.Model:
    """Return a copy of a Sequential classifier whose last Dense layer outputs logits.

    The copy shares nothing with ``model``; its last layer has the same weights and no
    activation, so ``softmax(to_logits(model)(x)) == model(x)``.

    Raises:
        ValueError: not Sequential, or the last layer is not a Dense layer.
    """
    if not isinstance(model, keras.Sequential):
        raise ValueError(f"model {model.name!r} is not a keras.Sequential model")
    last = model.layers[-1]
    if type(last) is not keras.layers.Dense:
        raise ValueError(f"the last layer {last.name!r} is a {type(last).__name__}, not Dense")
    body = [layer.__class__.from_config(layer.get_config()) for layer in model.layers[:-1]]
    head = keras.layers.Dense.from_config({**last.get_config(), "activation": "linear"})
    copy = keras.Sequential(
        [keras.Input(shape=model.input_shape[1:]), *body, head], name=f"{model.name}_logits"
    )
    copy.set_weights(model.get_weights())
    return copy


def teacher_logits(teacher: CachedModel, x: np.ndarray) -> np.ndarray:
    """Return the logits of a (softmax) teacher on ``x``, computed once per process.

    Remembered by the teacher's cache file and the identity of ``x``, so repeated
    distillations (seeds) from the same teacher reuse them.
    """
    key = (str(teacher.path), id(x), x.shape)
    if key not in _TEACHER_LOGITS:
        _TEACHER_LOGITS.clear()  # keep one set: the arrays are as large as the images / 78
        logits = to_logits(teacher.model).predict(x, batch_size=1024, verbose=0)
        _TEACHER_LOGITS[key] = (x, logits)  # holding x keeps id(x) from being reused
    return _TEACHER_LOGITS[key][1]


_TEACHER_LOGITS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def distill(
    teacher: CachedModel,
    student_name: str,
    data: Dataset,
    cfg: TrainConfig,
    temperature: float = 4.0,
    alpha: float = 0.5,
) -> CachedModel:
    """Train a fresh ``student_name`` model (see ``course_lib.models``) with a :class:`Distiller`.

    The teacher's logits on the training images are computed once (:func:`teacher_logits`)
    and fed to the Distiller with the images: the same loss as running the frozen teacher
    in every ``train_step``, for a fraction of the time. ``alpha=1`` ignores the teacher:
    the same student trained on the labels alone (the same weights as
    ``training.train_baseline(student_name, cfg=cfg)``). The seed of ``cfg`` sets the
    student's initial weights and the shuffling order.

    Returns:
        The student with a softmax appended (a normal classifier), cached under the
        teacher, the student, the temperature, alpha, the data's identity and the training
        settings (seed included).

    Raises:
        ValueError: ``temperature`` or ``alpha`` out of range (from :class:`Distiller`).
    """

    def create() -> tuple[keras.Model, dict[str, Any]]:
        set_seeds(cfg.seed)
        student = build_model(student_name, data.input_shape, data.num_classes, logits=True)
        distiller = Distiller(student, None, temperature, alpha)
        distiller.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
        soft = teacher_logits(teacher, data.x_train)
        start = time.perf_counter()
        set_seeds(cfg.seed)
        batches = cfg.epochs * math.ceil(len(data.x_train) / cfg.batch_size)
        with faster_steps(distiller, batches):  # the same weights, sooner
            history = distiller.fit(
                (data.x_train, soft),
                data.y_train,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                shuffle=True,  # no validation pass: nothing reads it (see training.fit)
                verbose=0,
            ).history
        model = compile_model(with_softmax(student), cfg.learning_rate)
        return model, {
            "history": {k: [float(v) for v in vals] for k, vals in history.items()},
            "train_seconds": time.perf_counter() - start,
        }

    key = {
        "teacher": teacher.path.stem,
        "student": student_name,
        "temperature": temperature,
        "alpha": alpha,
        **data_identity(data),
        **cfg.as_dict(),
    }
    return cached_model(f"{student_name}-distilled", key, create)


def distill_job(
    teacher_path: str,
    student_name: str,
    cfg: TrainConfig,
    temperature: float,
    alpha: float,
    data: Dataset,
) -> None:
    """:func:`distill` from the cached teacher at ``teacher_path``, as a call for
    :func:`course_lib.training.train_in_workers` (shown in 05_structure):
    ``partial(distill_job, str(teacher.path), "strided_cnn", cfg, 4.0, 0.5)``."""
    distill(load_entry(teacher_path), student_name, data, cfg, temperature, alpha)
