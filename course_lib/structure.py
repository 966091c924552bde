"""Network structure optimization: remove filters and neurons, factorize dense layers.

Introduced in 05_structure, whose reference cells show the body of each technique in plain
tf_keras / NumPy code first (filter norms and the rebuild, the SVD split); the helpers here
do the same for any Sequential model, cached for sweeps. Distillation, the chapter's third
technique, lives in :mod:`course_lib.distillation`. tfmot has no
structured (filter) pruning, so this module rebuilds a physically thinner Keras model and
copies the surviving weights into it.
Works on ``keras.Sequential`` models built from Conv2D, DepthwiseConv2D, SeparableConv2D,
Dense, pooling, Flatten, BatchNormalization, Dropout and activation layers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course_lib.compat import keras
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
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
    Shown in 05_structure (``np.abs(kernel).sum(axis=(0, 1, 2))`` in a reference cell).

    Args:
        model: a built Keras model.
        layer_name: a Conv2D or Dense layer (one norm per output filter / neuron).
        order: 1 for the L1 norm, 2 for the L2 norm.

    Returns:
        An array of ``filters`` (or ``units``) norms.

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

    Shown in 05_structure (``np.sort(np.argsort(l1)[::-1][:keep])`` in a reference cell).
    Ties keep the lower index.

    Raises:
        ValueError: ``keep`` is not in 1..len(norms).
    """
    if not 1 <= keep <= len(norms):
        raise ValueError(f"keep must be in 1..{len(norms)}, got {keep}")
    return np.sort(np.argsort(-np.asarray(norms), kind="stable")[:keep])


def _copy_config(layer: keras.layers.Layer, **changes: Any) -> keras.layers.Layer:
    config = {**layer.get_config(), **changes}
    return layer.__class__.from_config(config)


def remove_filters(
    model: keras.Model, keep: Mapping[str, Sequence[int] | np.ndarray]
) -> keras.Model:
    """Rebuild a Sequential model with only the kept filters (Conv2D) or neurons (Dense).

    The surviving weights are copied, and the layers that read the removed channels shrink
    to match: the next convolution loses input channels, the next dense layer loses input
    rows (after ``Flatten``, the rows of every spatial position), batch norm and depthwise
    layers in between lose the same channels. Shown in 05_structure, where a reference
    cell slices the seed CNN's kernel, bias and dense rows by hand and copies them with
    ``set_weights``.

    Example::

        thin = remove_filters(model, {"conv": strongest(filter_norms(model, "conv"), 8)})

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
        idx = np.asarray(indices)
        if idx.size == 0:
            raise ValueError(f"removing every filter of layer {name!r} leaves nothing to compute")
        if idx.min() < 0 or idx.max() >= width or len(set(idx)) != idx.size:
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
    ``m * n`` to ``rank * (m + n)``, a saving when ``rank < m * n / (m + n)``. Shown in
    05_structure, where a reference cell splits the seed CNN's dense layer as ``U_r S_r``
    and ``V_r^T`` with ``np.linalg.svd`` (the same product; only the split of ``S`` differs).

    Args:
        model: a built ``keras.Sequential`` model.
        layer_name: the Dense layer to replace.
        rank: the number of singular values kept.

    Returns:
        A new model with ``<layer>_u`` (no bias) and ``<layer>_v`` in place of the layer.

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


def _fit_new(model: keras.Model, data: Dataset, cfg: TrainConfig) -> tuple[keras.Model, dict]:
    compile_model(model, cfg.learning_rate)
    start = time.perf_counter()
    history = fit(model, data, cfg, validate=False)  # TrainConfig refuses epochs < 1
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
