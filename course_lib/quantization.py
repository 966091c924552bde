"""Quantization from first principles: scale, zero point, (de)quantize, and the parameters
the TFLite converter actually chose.

Introduced in 03_quantization. NumPy for the arithmetic; the LiteRT interpreter to read a
.tflite file's quantization parameters. The integer-only arithmetic of a whole int8 layer is in
:mod:`course_lib.intarith`.

Affine (asymmetric) quantization maps a real range ``[min, max]`` onto the integers
``[qmin, qmax]``::

    scale = (max - min) / (qmax - qmin)
    zero_point = round(qmin - min / scale)          # the integer that represents 0.0
    q = clip(round(x / scale) + zero_point, qmin, qmax)
    x ~ (q - zero_point) * scale

Symmetric quantization fixes ``zero_point = 0`` and uses ``scale = max(|min|, |max|) / qmax``
with the "narrow" range ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` (e.g. [-127, 127] for int8). TFLite
quantizes weights symmetrically per output channel and activations asymmetrically per tensor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras, tfmot
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.tflite import plain_interpreter
from course_lib.training import CachedModel, TrainConfig, cached_model, compile_model, fit


def int_range(num_bits: int = 8, narrow: bool = False) -> tuple[int, int]:
    """Return the signed integer range ``(qmin, qmax)`` of ``num_bits`` bits.

    ``narrow=True`` drops the most negative value, so the range is symmetric:
    8 bits -> (-128, 127), narrow -> (-127, 127).

    Raises:
        ValueError: ``num_bits`` outside 2..16.
    """
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or not 2 <= num_bits <= 16:
        raise ValueError(f"num_bits must be an integer in 2..16, got {num_bits!r}")
    qmax = 2 ** (num_bits - 1) - 1
    return (-qmax if narrow else -qmax - 1), qmax


def _int_dtype(num_bits: int) -> type:
    return np.int8 if num_bits <= 8 else np.int16


def affine_params(
    min_val: float | np.ndarray,
    max_val: float | np.ndarray,
    num_bits: int = 8,
    symmetric: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scale, zero_point)`` that map ``[min_val, max_val]`` onto ``num_bits`` integers.

    The range is first widened to include 0, so 0.0 is represented exactly (zero padding and
    ReLU outputs depend on it). Works element-wise on arrays, for per-channel parameters.

    Args:
        min_val, max_val: the real range (scalars or arrays of the same shape).
        num_bits: 2..16.
        symmetric: zero point 0 and the narrow range (TFLite's choice for weights).

    Returns:
        float64 scales and int64 zero points (arrays; 0-d for scalar input).

    Raises:
        ValueError: ``num_bits`` outside 2..16, ``min_val > max_val``, or a NaN or
            infinite bound (a model whose training diverged has no range to quantize).
    """
    if not (np.all(np.isfinite(min_val)) and np.all(np.isfinite(max_val))):
        raise ValueError(
            f"the range must be finite, got min_val={min_val}, max_val={max_val}: NaN or "
            "infinite weights usually mean training diverged (try a lower learning rate)"
        )
    lo = np.minimum(np.asarray(min_val, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(max_val, dtype=np.float64), 0.0)
    if np.any(np.asarray(min_val) > np.asarray(max_val)):
        raise ValueError(f"min_val must not exceed max_val, got {min_val} > {max_val}")
    qmin, qmax = int_range(num_bits, narrow=symmetric)
    if symmetric:
        scale = np.maximum(np.abs(lo), np.abs(hi)) / qmax
        zero_point = np.zeros_like(scale, dtype=np.int64)
    else:
        scale = (hi - lo) / (qmax - qmin)
        zero_point = np.zeros_like(scale, dtype=np.int64)
        nonzero = scale > 0
        zero_point[nonzero] = np.round(qmin - lo[nonzero] / scale[nonzero]).astype(np.int64)
        zero_point = np.clip(zero_point, qmin, qmax)
    scale = np.where(scale > 0, scale, 1.0)  # an all-zero range: any scale represents it
    return scale, zero_point


def _broadcast(param: Any, x: np.ndarray, axis: int | None) -> np.ndarray:
    param = np.asarray(param)
    if axis is None or param.ndim == 0:
        return param
    shape = [1] * x.ndim
    shape[axis] = -1
    return param.reshape(shape)


def quantize(
    x: np.ndarray,
    scale: float | np.ndarray,
    zero_point: int | np.ndarray,
    num_bits: int = 8,
    axis: int | None = None,
    narrow: bool = False,
) -> np.ndarray:
    """Map real values to integers: ``clip(round(x / scale) + zero_point, qmin, qmax)``.

    Args:
        x: real values.
        scale, zero_point: scalars (per-tensor) or 1-D arrays (per-channel along ``axis``).
        num_bits: 2..16 (stored as int8 up to 8 bits, int16 above).
        axis: the channel axis of per-channel parameters.
        narrow: clip to the symmetric range (-127..127 for int8).

    Raises:
        ValueError: ``num_bits`` outside 2..16, or per-channel parameters whose length does
            not match ``x.shape[axis]``.
    """
    qmin, qmax = int_range(num_bits, narrow=narrow)
    x = np.asarray(x, dtype=np.float64)
    scale_arr = np.asarray(scale, dtype=np.float64)
    if axis is not None and scale_arr.ndim == 1 and scale_arr.size != x.shape[axis]:
        raise ValueError(
            f"{scale_arr.size} per-channel scales for axis {axis} of size {x.shape[axis]}"
        )
    s = _broadcast(scale_arr, x, axis)
    z = _broadcast(np.asarray(zero_point, dtype=np.float64), x, axis)
    q = np.round(x / s) + z
    return np.clip(q, qmin, qmax).astype(_int_dtype(num_bits))


def dequantize(
    q: np.ndarray,
    scale: float | np.ndarray,
    zero_point: int | np.ndarray,
    axis: int | None = None,
) -> np.ndarray:
    """Map integers back to real values: ``(q - zero_point) * scale`` (float32)."""
    q = np.asarray(q)
    s = _broadcast(np.asarray(scale, dtype=np.float64), q, axis)
    z = _broadcast(np.asarray(zero_point, dtype=np.float64), q, axis)
    return ((q.astype(np.float64) - z) * s).astype(np.float32)


@dataclass(frozen=True)
class Quantized:
    """A tensor quantized by :func:`quantize_tensor`, with its parameters."""

    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    num_bits: int
    axis: int | None

    def dequantize(self) -> np.ndarray:
        """The real values the integers stand for."""
        return dequantize(self.values, self.scale, self.zero_point, self.axis)


def quantize_tensor(
    w: np.ndarray, num_bits: int = 8, symmetric: bool = True, axis: int | None = None
) -> Quantized:
    """Quantize a whole tensor the way TFLite quantizes weights (by default).

    Args:
        w: the real tensor.
        num_bits: 2..16.
        symmetric: zero point 0, narrow range (TFLite weights) or affine (activations).
        axis: per-channel along this axis (TFLite: the output channel, the LAST axis of a
            Keras kernel), or None for one scale for the whole tensor.
    """
    w = np.asarray(w)
    if axis is None:
        lo, hi = w.min(), w.max()
    else:
        reduce = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
        lo, hi = w.min(axis=reduce), w.max(axis=reduce)
    scale, zero_point = affine_params(lo, hi, num_bits, symmetric)
    values = quantize(w, scale, zero_point, num_bits, axis=axis, narrow=symmetric)
    return Quantized(values, scale, zero_point, num_bits, axis)


def quantization_error(w: np.ndarray, quantized: Quantized) -> dict[str, float]:
    """Return the max absolute and root-mean-square error of a quantized tensor."""
    error = quantized.dequantize() - np.asarray(w, dtype=np.float32)
    return {"max_abs": float(np.abs(error).max()), "rmse": float(np.sqrt(np.mean(error**2)))}


def tflite_quantization(model: bytes | str | Path) -> list[dict[str, Any]]:
    """List every quantized tensor of a .tflite with the scale and zero point stored for it.

    Returns:
        ``[{"name", "shape", "dtype", "scales", "zero_points", "axis"}, ...]``; ``scales``
        has one entry per tensor, or one per channel along ``axis``.
    """
    interpreter = plain_interpreter(model)
    rows = []
    for detail in interpreter.get_tensor_details():
        params = detail["quantization_parameters"]
        if len(params["scales"]) == 0:
            continue
        rows.append(
            {
                "name": detail["name"],
                "shape": tuple(int(d) for d in detail["shape"]),
                "dtype": np.dtype(detail["dtype"]).name,
                "scales": np.asarray(params["scales"], dtype=np.float64),
                "zero_points": np.asarray(params["zero_points"], dtype=np.int64),
                "axis": int(params["quantized_dimension"]),
            }
        )
    return rows


def fixed_quantizer_names(model: keras.Model) -> keras.Model:
    """Name the input quantizers of a QAT Sequential model ``quantize_layer``, ``_1``, ...

    tfmot names each ``QuantizeLayer`` like any unnamed Keras layer, from a counter of the
    whole process (``quantize_layer``, ``quantize_layer_1``, ... in the order QAT models are
    built), and the name reaches the converted file's tensor names. Without this, the same
    weights would convert to other bytes depending on how many QAT models the notebook had
    built before, and a conversion remembered by architecture (``convert(cache=True)``)
    would miss on the next run. A functional model is returned unchanged: its saved graph
    refers to its layers by their names.
    """
    if isinstance(model, keras.Sequential):
        quantizers = [layer for layer in model.layers if type(layer).__name__ == "QuantizeLayer"]
        for i, layer in enumerate(quantizers):
            layer._name = "quantize_layer" + (f"_{i}" if i else "")  # noqa: SLF001
    return model


def quantization_aware_model(
    base: CachedModel,
    data: Dataset,
    epochs: int = 1,
    learning_rate: float = 1e-4,
    name: str = "qat",
    seed: int = config.SEED,
) -> CachedModel:
    """Fine-tune ``base`` with tfmot's fake quantization (QAT); cached like every model.

    Shown in 03_quantization, whose reference cell does the same with
    ``tfmot.quantization.keras.quantize_model``, ``compile`` and ``fit``.

    ``quantize_model`` inserts fake-quant operations that round weights and activations to
    int8 in the forward pass while gradients flow as if they did not (the straight-through
    estimator), so the weights move to values that survive int8. The activation ranges are
    not learned by gradient: each wrapper tracks them as exponential moving averages of the
    batch minimum and maximum during training (weights use their current min and max).
    Convert the result with ``tflite.convert(model, "int8")``; no calibration data is
    needed, because the ranges are stored in the model.

    Args:
        base: the trained float model (from :func:`course_lib.training.train_baseline`).
        data: the dataset to fine-tune on (``data.x_train``).
        epochs, learning_rate: the fine-tune's settings.
        name: a prefix of the cached file's name.
        seed: seeds the shuffling order of the fine-tune (repeat with several seeds to see
            the spread); part of the cache key.

    Only the weights are cached (tfmot's quantization wrappers do not reload from a
    ``.keras`` file), and loaded into a freshly wrapped copy of ``base``.
    """

    def rebuild() -> keras.Model:
        return fixed_quantizer_names(tfmot.quantization.keras.quantize_model(base.model))

    def create() -> tuple[keras.Model, dict[str, Any]]:
        model = compile_model(rebuild(), learning_rate)
        start = time.perf_counter()
        cfg = TrainConfig(epochs=epochs, learning_rate=learning_rate, seed=seed)
        history = fit(model, data, cfg, validate=False)
        return model, {"history": history, "train_seconds": time.perf_counter() - start}

    key = {
        "base": base.path.stem,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seed": seed,
        **data_identity(data),
    }
    return cached_model(f"{name}-{base.path.stem}", key, create, rebuild=rebuild)
