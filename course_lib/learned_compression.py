"""Learn weights that are cheap to code: a rate penalty with a learned density.

Introduced in 08_learned_compression, after Oktay et al. (ICLR 2020), "Scalable model
compression by entropy penalized reparameterization", the method of TensorFlow's
"compression" tutorial, written here in plain tf_keras (``tensorflow-compression`` has no
build for TensorFlow 2.21).

Every weight tensor ``w`` (kernels and biases) is stored as whole numbers ``k`` times a
learned step ``s``: ``w = s * round(w / s)``. Training minimises

    cross-entropy  +  beta * (bits to code every k) / (training images)

The bits come from a learned probability model of ``k`` per tensor: a mixture of a narrow
and a wide logistic around zero. The rounding passes gradients straight through; the bit
count sees ``w / s`` plus uniform noise, a smooth stand-in for rounding (Ballé et al., 2017).
Weights the task does not need drift into the zero bin, which the model then makes cheap:
sparsity is learned, not imposed. :mod:`course_lib.entropy_coding` then codes the ``k``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras, set_seeds, tf
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.entropy_coding import dequantize
from course_lib.training import CachedModel, cached_model, load_entry


def _ste_round(x: tf.Tensor) -> tf.Tensor:
    """Round in the forward pass, pass the gradient straight through in the backward pass."""
    return x + tf.stop_gradient(tf.round(x) - x)


class CodedTensor:
    """One weight tensor stored as ``step * k``, with its learned step and density.

    The variables live on ``layer`` (so Keras trains and tracks them).
    """

    def __init__(
        self, layer: keras.layers.Layer, name: str, value: np.ndarray, step_fraction: float
    ) -> None:
        value = np.asarray(value, np.float32)
        step = max(float(np.std(value)) * step_fraction, 1e-4)  # a zero bias still gets a step
        self.name = name

        def constant(v: Any) -> keras.initializers.Initializer:
            return keras.initializers.Constant(v)

        self.value = layer.add_weight(name=name, shape=value.shape, initializer=constant(value))
        self.log_step = layer.add_weight(
            name=f"{name}_log_step", shape=(), initializer=constant(math.log(step))
        )
        # density of k: pi * logistic(0, narrow) + (1 - pi) * logistic(0, wide), in steps
        self.logit_pi = layer.add_weight(
            name=f"{name}_logit_pi", shape=(), initializer=constant(0.0)
        )
        self.log_scales = layer.add_weight(
            name=f"{name}_log_scales",
            shape=(2,),
            initializer=constant([math.log(0.3), math.log(3.0)]),
        )

    @property
    def step(self) -> tf.Tensor:
        return tf.exp(self.log_step)

    def quantized(self) -> tf.Tensor:
        """``step * round(value / step)``, with straight-through gradients."""
        return _ste_round(self.value / self.step) * self.step

    def probability(self, x: tf.Tensor) -> tf.Tensor:
        """Probability of the bin ``[x - 1/2, x + 1/2)`` under the learned density."""
        pi = tf.sigmoid(self.logit_pi)
        scales = tf.exp(self.log_scales)

        def cdf(t: tf.Tensor) -> tf.Tensor:
            return pi * tf.sigmoid(t / scales[0]) + (1 - pi) * tf.sigmoid(t / scales[1])

        return cdf(x + 0.5) - cdf(x - 0.5)

    def bits(self, noise: bool = True) -> tf.Tensor:
        """Bits to code this tensor under its density: with uniform noise while training,
        at the rounded values otherwise."""
        x = self.value / self.step
        if noise:
            x = x + tf.random.uniform(tf.shape(x), -0.5, 0.5)
        else:
            x = tf.round(x)
        p = self.probability(x)
        return tf.reduce_sum(-tf.math.log(tf.maximum(p, 1e-9))) / math.log(2.0)

    def symbols(self) -> np.ndarray:
        """The whole numbers ``k`` this tensor stores now."""
        return np.rint(self.value.numpy() / np.float32(self.step.numpy())).astype(np.int32)


class CodedLayer(keras.layers.Layer):
    """A Dense or Conv2D layer whose kernel and bias are :class:`CodedTensor` s."""

    def __init__(self, source: keras.layers.Layer, step_fraction: float = 0.5) -> None:
        if not isinstance(source, (keras.layers.Dense, keras.layers.Conv2D)):
            raise TypeError(f"CodedLayer wraps Dense or Conv2D, not {type(source).__name__}")
        if not source.use_bias or not source.built:
            raise ValueError(f"layer {source.name!r} must be built and have a bias")
        super().__init__(name=source.name)
        self.source = source
        self.step_fraction = step_fraction
        self.activation = source.activation

    def build(self, input_shape: Any) -> None:
        kernel, bias = self.source.get_weights()
        self.kernel = CodedTensor(self, "kernel", kernel, self.step_fraction)
        self.bias = CodedTensor(self, "bias", bias, self.step_fraction)
        super().build(input_shape)

    @property
    def coded(self) -> tuple[CodedTensor, CodedTensor]:
        return self.kernel, self.bias

    def call(self, x: tf.Tensor) -> tf.Tensor:
        kernel = self.kernel.quantized()
        if isinstance(self.source, keras.layers.Conv2D):
            y = tf.nn.conv2d(
                x, kernel, strides=self.source.strides, padding=self.source.padding.upper()
            )
        else:
            y = tf.matmul(x, kernel)
        return self.activation(y + self.bias.quantized())


def rate_model(model: keras.Model, step_fraction: float = 0.5) -> keras.Model:
    """Return a copy of a Sequential model with every Dense / Conv2D made a :class:`CodedLayer`.

    Starts from the model's trained weights; each tensor's first step is ``step_fraction``
    times its standard deviation.

    Raises:
        ValueError: not a Sequential model, or no Dense / Conv2D layer; a bad step_fraction.
    """
    if not isinstance(model, keras.Sequential):
        raise ValueError(f"rate_model takes a keras.Sequential model, got {type(model).__name__}")
    if not (np.isfinite(step_fraction) and step_fraction > 0):
        raise ValueError(f"step_fraction must be > 0, got {step_fraction}")
    inputs = keras.Input(model.input_shape[1:], name="image")
    x, wrapped = inputs, 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            layer = CodedLayer(layer, step_fraction)
            wrapped += 1
        x = layer(x)
    if not wrapped:
        raise ValueError(f"model {model.name!r} has no Dense or Conv2D layer to code")
    return keras.Model(inputs, x, name=f"{model.name}_rate")


def coded_tensors(model: keras.Model) -> list[CodedTensor]:
    """Every :class:`CodedTensor` of a :func:`rate_model`, in layer order."""
    return [t for layer in model.layers if isinstance(layer, CodedLayer) for t in layer.coded]


def total_bits(model: keras.Model, noise: bool = False) -> float:
    """Bits to code every weight of a :func:`rate_model` under its learned densities."""
    return float(sum(t.bits(noise) for t in coded_tensors(model)))


@dataclass(frozen=True)
class RateConfig:
    """Settings of :func:`train_rate`.

    Attributes:
        beta: weight of the bit count against the cross-entropy (0 = accuracy only).
        epochs: passes over the training images.
        learning_rate: Adam's first rate; it decays to zero on a cosine.
        batch_size: images per step.
        step_fraction: each tensor's first step, in standard deviations.
        seed: for the noise, the shuffling and TensorFlow's initialisers.
    """

    beta: float = 1.0
    epochs: int = 4
    learning_rate: float = 1e-3
    batch_size: int = 128
    step_fraction: float = 0.5
    seed: int = 42

    def __post_init__(self) -> None:
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1")
        for name in ("learning_rate", "step_fraction"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")


def train_rate(model: keras.Model, data: Dataset, cfg: RateConfig) -> dict[str, list[float]]:
    """Train a :func:`rate_model` on cross-entropy + ``beta`` x bits per training image.

    The model's last layer must output probabilities (softmax), as the course's models do.

    Returns:
        The history per epoch: ``loss`` (cross-entropy), ``bits`` (under the learned
        densities, at the rounded weights), ``nonzero`` and ``val_accuracy``.
    """
    set_seeds(cfg.seed)
    tensors = coded_tensors(model)
    if not tensors:
        raise ValueError("train_rate needs a model from rate_model (no coded tensors found)")
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=cfg.epochs * steps_per_epoch
    )
    optimizer = keras.optimizers.Adam(schedule)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()
    weight = cfg.beta * math.log(2.0) / n  # bits -> nats, per training image
    variables = model.trainable_variables

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = cross_entropy(y, model(x, training=True))
            total = loss + weight * tf.add_n([t.bits() for t in tensors])
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables, strict=True))
        return loss

    batches = (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(n, seed=cfg.seed, reshuffle_each_iteration=True)
        .batch(cfg.batch_size)
        .prefetch(2)
    )
    history: dict[str, list[float]] = {"loss": [], "bits": [], "nonzero": [], "val_accuracy": []}
    for _ in range(cfg.epochs):
        losses = [float(train_step(x, y)) for x, y in batches]
        predictions = model.predict(data.x_val, batch_size=1000, verbose=0)
        history["loss"].append(float(np.mean(losses)))
        history["bits"].append(total_bits(model))
        history["nonzero"].append(float(sum(int(np.count_nonzero(t.symbols())) for t in tensors)))
        history["val_accuracy"].append(float(np.mean(predictions.argmax(1) == data.y_val)))
    return history


def export(rate: keras.Model, like: keras.Model) -> tuple[keras.Model, list[float]]:
    """Return a plain copy of ``like`` holding the rate model's stored values, and the steps.

    Every coded tensor becomes ``dequantize(k, step)`` (:func:`course_lib.entropy_coding.
    dequantize`), so the converted .tflite holds exactly what the coder can rebuild.
    """
    plain = keras.models.clone_model(like)
    plain.set_weights(like.get_weights())
    steps = []
    coded = {layer.name: layer for layer in rate.layers if isinstance(layer, CodedLayer)}
    for layer in plain.layers:
        if layer.name not in coded:
            continue
        values = []
        for tensor in coded[layer.name].coded:
            step = float(np.float32(tensor.step.numpy()))
            values.append(dequantize(tensor.symbols(), step))
            steps.append(step)
        layer.set_weights(values)
    return plain, steps


def compress(base: CachedModel, data: Dataset, model_name: str, cfg: RateConfig) -> CachedModel:
    """Train a rate model from a cached baseline and cache the exported plain model.

    Shown in 08_learned_compression, whose reference cells write the same training loop.
    ``meta`` holds the ``steps`` (for :func:`course_lib.entropy_coding.encode`), the
    history and the training time.
    """

    def create() -> tuple[keras.Model, dict[str, Any]]:
        rate = rate_model(base.model, cfg.step_fraction)
        start = time.perf_counter()
        history = train_rate(rate, data, cfg)
        plain, steps = export(rate, base.model)
        return plain, {
            "steps": steps,
            "history": history,
            "train_seconds": time.perf_counter() - start,
        }

    key_parts = {
        "base": base.path.name,
        "model": model_name,
        **data_identity(data),
        **asdict(cfg),
        "mode": config.mode(),
    }
    return cached_model(f"{model_name}-learned", key_parts, create)


def steps_of(cached: CachedModel) -> Sequence[float]:
    """The steps recorded with a model made by :func:`compress`."""
    return [float(s) for s in cached.meta["steps"]]


def compress_job(base_path: str, model_name: str, cfg: RateConfig, data: Dataset) -> None:
    """:func:`compress` of the cached baseline at ``base_path``, as a call for
    :func:`course_lib.training.train_in_workers` (shown in 08_learned_compression):
    ``partial(compress_job, str(base.path), model_name, cfg)``."""
    compress(load_entry(base_path), data, model_name, cfg)
