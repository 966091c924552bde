"""Network structure optimization: remove filters and neurons, factorize dense layers,
distill a small student from a big teacher.

Introduced in 05_structure. tfmot has no structured (filter) pruning, so this module
rebuilds a physically thinner Keras model and copies the surviving weights into it.
Works on ``keras.Sequential`` models built from Conv2D, DepthwiseConv2D, SeparableConv2D,
Dense, pooling, Flatten, BatchNormalization, Dropout and activation layers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from course_lib.compat import keras, set_seeds, tf
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.models import build_model, with_softmax
from course_lib.training import CachedModel, TrainConfig, cached_model, compile_model, fit

L = keras.layers
_PASS_THROUGH = (
    L.MaxPooling2D,
    L.AveragePooling2D,
    L.Dropout,
    L.Activation,
    L.ReLU,
    L.Softmax,
    L.InputLayer,
)


def _require_sequential(model: keras.Model) -> None:
    if not isinstance(model, keras.Sequential):
        raise ValueError(f"model {model.name!r} is not a keras.Sequential model")


def filter_norms(model: keras.Model, layer_name: str, order: int = 1) -> np.ndarray:
    """Return the L1 (``order=1``) or L2 norm of each output filter / neuron of a layer.

    A filter with a small norm contributes little to the next layer: the usual criterion
    for structured pruning (Li et al., 2017, "Pruning Filters for Efficient ConvNets").

    Raises:
        ValueError: the layer has no kernel, or ``order`` is not 1 or 2.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (L1) or 2 (L2), got {order}")
    layer = model.get_layer(layer_name)
    kernel = getattr(layer, "kernel", None)
    if kernel is None or isinstance(layer, (L.DepthwiseConv2D, L.SeparableConv2D)):
        raise ValueError(
            f"layer {layer_name!r} ({type(layer).__name__}) has no kernel with output filters"
        )
    k = kernel.numpy().reshape(-1, kernel.shape[-1])
    return np.abs(k).sum(axis=0) if order == 1 else np.sqrt((k**2).sum(axis=0))


def strongest(norms: np.ndarray, keep: int) -> np.ndarray:
    """Return the indices of the ``keep`` largest norms, in their original order.

    Raises:
        ValueError: ``keep`` is not in 1..len(norms).
    """
    if not 1 <= keep <= len(norms):
        raise ValueError(f"keep must be in 1..{len(norms)}, got {keep}")
    return np.sort(np.argsort(-np.asarray(norms), kind="stable")[:keep])


def _copy_config(layer: keras.layers.Layer, **changes: Any) -> keras.layers.Layer:
    config = {**layer.get_config(), **changes}
    return layer.__class__.from_config(config)


def remove_filters(model: keras.Model, keep: dict[str, Sequence[int]]) -> keras.Model:
    """Rebuild a Sequential model with only the kept filters (Conv2D) or neurons (Dense).

    The surviving weights are copied, and the layers that read the removed channels shrink
    to match: the next convolution loses input channels, the next dense layer loses input
    rows (after ``Flatten``, the rows of every spatial position), batch norm and depthwise
    layers in between lose the same channels.

    Args:
        model: a built ``keras.Sequential`` model.
        keep: ``{layer_name: indices of output channels to keep}``.

    Returns:
        A new, thinner model (not compiled).

    Raises:
        ValueError: not Sequential, an unknown layer, a layer that is not Conv2D / Dense,
            an empty or out-of-range ``keep``, the model's last layer (its outputs are the
            classes), or a layer type in between that cannot follow a channel change (the
            message names it).
    """
    _require_sequential(model)
    names = [layer.name for layer in model.layers]
    for name, indices in keep.items():
        if name not in names:
            raise ValueError(f"no layer named {name!r}; layers: {names}")
        layer = model.get_layer(name)
        if type(layer) not in (L.Conv2D, L.Dense):
            raise ValueError(
                f"cannot remove filters from layer {name!r} of type {type(layer).__name__}; "
                "only Conv2D filters and Dense neurons"
            )
        if name == names[-1]:
            raise ValueError(f"layer {name!r} is the output layer; its units are the classes")
        width = layer.kernel.shape[-1]
        indices = np.asarray(indices)
        if indices.size == 0:
            raise ValueError(f"removing every filter of layer {name!r} leaves nothing to compute")
        if indices.min() < 0 or indices.max() >= width or len(set(indices)) != indices.size:
            raise ValueError(f"indices for layer {name!r} must be distinct and in 0..{width - 1}")
    new_layers, weights = [], []
    kept_in: np.ndarray | None = None  # channels of the previous output that survive
    flat_shape: tuple[int, ...] | None = None  # (H, W, C) seen by Flatten
    for layer in model.layers:
        w = layer.get_weights()
        out_keep = np.asarray(keep[layer.name]) if layer.name in keep else None
        if isinstance(layer, L.SeparableConv2D):
            if kept_in is not None:
                raise ValueError(
                    f"layer {layer.name!r} (SeparableConv2D) cannot follow removed filters"
                )
            new_layers.append(_copy_config(layer))
            weights.append(w)
        elif isinstance(layer, L.DepthwiseConv2D):
            if kept_in is not None:
                w = [w[0][:, :, kept_in, :], *([w[1][kept_in]] if len(w) > 1 else [])]
            new_layers.append(_copy_config(layer))
            weights.append(w)
        elif isinstance(layer, L.Conv2D):
            kernel = w[0] if kept_in is None else w[0][:, :, kept_in, :]
            bias = w[1] if len(w) > 1 else None
            if out_keep is not None:
                kernel = kernel[..., out_keep]
                bias = bias[out_keep] if bias is not None else None
            new_layers.append(_copy_config(layer, filters=kernel.shape[-1]))
            weights.append([kernel] + ([bias] if bias is not None else []))
            kept_in = out_keep
        elif isinstance(layer, L.Dense):
            kernel = w[0]
            if kept_in is not None:
                if flat_shape is not None:
                    h, wd, c = flat_shape
                    kernel = kernel.reshape(h, wd, c, -1)[:, :, kept_in, :]
                    kernel = kernel.reshape(-1, kernel.shape[-1])
                else:
                    kernel = kernel[kept_in]
            bias = w[1] if len(w) > 1 else None
            if out_keep is not None:
                kernel = kernel[:, out_keep]
                bias = bias[out_keep] if bias is not None else None
            new_layers.append(_copy_config(layer, units=kernel.shape[-1]))
            weights.append([kernel] + ([bias] if bias is not None else []))
            kept_in, flat_shape = out_keep, None
        elif isinstance(layer, L.BatchNormalization):
            if kept_in is not None:
                w = [v[kept_in] for v in w]
            new_layers.append(_copy_config(layer))
            weights.append(w)
        elif isinstance(layer, L.Flatten):
            flat_shape = tuple(layer.input_shape[1:])
            new_layers.append(_copy_config(layer))
            weights.append([])
        elif isinstance(layer, (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)):
            new_layers.append(_copy_config(layer))
            weights.append([])
        elif isinstance(layer, _PASS_THROUGH):
            new_layers.append(_copy_config(layer))
            weights.append([])
        else:
            raise ValueError(
                f"layer {layer.name!r} of type {type(layer).__name__} is not supported by "
                "remove_filters"
            )
    thin = keras.Sequential(
        [keras.Input(shape=model.input_shape[1:]), *new_layers], name=f"{model.name}_thin"
    )
    for layer, w in zip(thin.layers, weights, strict=True):
        if w:
            layer.set_weights(w)
    return thin


def factorize_dense(model: keras.Model, layer_name: str, rank: int) -> keras.Model:
    """Replace a Dense layer by two: ``inputs x rank`` then ``rank x units`` (truncated SVD).

    ``W = U S V^T`` keeps the ``rank`` largest singular values: the first layer gets
    ``U sqrt(S)`` (no bias, no activation), the second ``sqrt(S) V^T`` with the original bias
    and activation. At full rank the outputs are unchanged; the parameters drop from
    ``m * n`` to ``rank * (m + n)``, a saving when ``rank < m * n / (m + n)``.

    Raises:
        ValueError: not Sequential, the layer is not Dense (the message names it), or
            ``rank`` is not in 1..min(m, n).
    """
    _require_sequential(model)
    layer = model.get_layer(layer_name)
    if type(layer) is not L.Dense:
        raise ValueError(f"layer {layer_name!r} is a {type(layer).__name__}, not a Dense layer")
    kernel, *bias = layer.get_weights()
    m, n = kernel.shape
    if not 1 <= rank <= min(m, n):
        raise ValueError(
            f"rank for layer {layer_name!r} must be in 1..{min(m, n)} (its kernel is {m}x{n}), "
            f"got {rank}"
        )
    u, s, vt = np.linalg.svd(kernel.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    first_w = (u[:, :rank] * root).astype(np.float32)
    second_w = (root[:, None] * vt[:rank]).astype(np.float32)
    new_layers, weights = [], []
    for old in model.layers:
        if old is layer:
            first = L.Dense(rank, use_bias=False, name=f"{layer_name}_u")
            second = _copy_config(old, name=f"{layer_name}_v")
            new_layers += [first, second]
            weights += [[first_w], [second_w, *bias]]
        else:
            new_layers.append(_copy_config(old))
            weights.append(old.get_weights())
    factored = keras.Sequential(
        [keras.Input(shape=model.input_shape[1:]), *new_layers],
        name=f"{model.name}_rank{rank}",
    )
    for new, w in zip(factored.layers, weights, strict=True):
        if w:
            new.set_weights(w)
    return factored


class Distiller(keras.Model):
    """Train a student on the true labels AND on a teacher's softened predictions.

    Knowledge distillation (Hinton et al., 2015): the loss is
    ``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))``,
    where ``t`` and ``s`` are teacher and student logits and ``T`` a temperature that softens
    both distributions, so the student also learns which wrong classes the teacher finds
    plausible. ``T^2`` keeps the soft term's gradients on the scale of the hard one.

    Both models must output logits (see :func:`to_logits` for a model that ends in a
    softmax). ``alpha=1`` trains on the labels alone, with the same code path: the fair
    "from scratch" comparison.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        temperature: float = 4.0,
        alpha: float = 0.5,
    ) -> None:
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(
                f"need temperature > 0 and 0 <= alpha <= 1, got {temperature}, {alpha}"
            )
        self.student, self.teacher = student, teacher
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.hard_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.soft_loss = keras.losses.KLDivergence()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self) -> list:
        """Loss and accuracy, reset by Keras at every epoch."""
        return [self.loss_tracker, self.accuracy]

    def train_step(self, data: tuple) -> dict:
        """One update of the student on the combined hard and soft loss."""
        x, y = data
        teacher_logits = self.teacher(x, training=False)
        t = self.temperature
        with tf.GradientTape() as tape:
            logits = self.student(x, training=True)
            hard = self.hard_loss(y, logits)
            soft = self.soft_loss(tf.nn.softmax(teacher_logits / t), tf.nn.softmax(logits / t))
            loss = self.alpha * hard + (1 - self.alpha) * t * t * soft
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables, strict=True))
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data: tuple) -> dict:
        """Evaluate the student alone, on the labels."""
        x, y = data
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
    _require_sequential(model)
    last = model.layers[-1]
    if type(last) is not L.Dense:
        raise ValueError(f"the last layer {last.name!r} is a {type(last).__name__}, not Dense")
    body = [_copy_config(layer) for layer in model.layers[:-1]]
    head = _copy_config(last, activation="linear")
    copy = keras.Sequential(
        [keras.Input(shape=model.input_shape[1:]), *body, head], name=f"{model.name}_logits"
    )
    copy.set_weights(model.get_weights())
    return copy


def _fit_new(model: keras.Model, data: Dataset, cfg: TrainConfig) -> tuple[keras.Model, dict]:
    compile_model(model, cfg.learning_rate)
    start = time.perf_counter()
    history = fit(model, data, cfg) if cfg.epochs > 0 else {}
    return model, {"history": history, "train_seconds": time.perf_counter() - start}


def thin_and_fine_tune(
    base: CachedModel,
    layer_name: str,
    keep_count: int,
    data: Dataset,
    cfg: TrainConfig,
    order: int = 1,
) -> CachedModel:
    """Keep the ``keep_count`` strongest filters of a layer (by L1/L2 norm), then fine-tune.

    Cached under the base model, the layer, the count, the norm and the training settings.
    """
    keep = strongest(filter_norms(base.model, layer_name, order), keep_count)
    key = {
        "base": base.path.stem,
        "layer": layer_name,
        "keep": keep_count,
        "order": order,
        **data_identity(data),
        **cfg.as_dict(),
    }
    return cached_model(
        f"{base.model.name}-{layer_name}-keep{keep_count}",
        key,
        lambda: _fit_new(remove_filters(base.model, {layer_name: keep}), data, cfg),
    )


def low_rank_and_fine_tune(
    base: CachedModel, layer_name: str, rank: int, data: Dataset, cfg: TrainConfig
) -> CachedModel:
    """Factorize a Dense layer to ``rank`` (:func:`factorize_dense`), then fine-tune; cached."""
    key = {
        "base": base.path.stem,
        "layer": layer_name,
        "rank": rank,
        **data_identity(data),
        **cfg.as_dict(),
    }
    return cached_model(
        f"{base.model.name}-{layer_name}-rank{rank}",
        key,
        lambda: _fit_new(factorize_dense(base.model, layer_name, rank), data, cfg),
    )


def distill(
    teacher: CachedModel,
    student_name: str,
    data: Dataset,
    cfg: TrainConfig,
    temperature: float = 4.0,
    alpha: float = 0.5,
) -> CachedModel:
    """Train a fresh ``student_name`` model (see ``course_lib.models``) with a :class:`Distiller`.

    ``alpha=1`` ignores the teacher: the same student trained on the labels alone.
    Returns the student with a softmax appended (a normal classifier), cached under the
    teacher, the student, the temperature, alpha, the data size and the training settings.
    """

    def create() -> tuple[keras.Model, dict[str, Any]]:
        set_seeds(cfg.seed)
        student = build_model(student_name, data.input_shape, data.num_classes, logits=True)
        distiller = Distiller(student, to_logits(teacher.model), temperature, alpha)
        distiller.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
        start = time.perf_counter()
        history = fit(distiller, data, cfg)
        model = compile_model(with_softmax(student), cfg.learning_rate)
        return model, {
            "history": history,
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
