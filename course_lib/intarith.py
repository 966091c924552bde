"""Integer-only arithmetic of an int8 fully connected layer, as TFLite computes it.

Shown in 03_quantization (section "Compute a layer with integers only"), which defines the
same functions in a cell and checks them bit for bit against LiteRT.

A full-integer .tflite never touches a float at run time. For ``y = x @ W.T + b`` with
int8 ``x`` (scale ``s_x``, zero point ``z_x``), int8 weights (per output channel scale
``s_w[c]``, zero point ``z_w``, 0 in TFLite) and an int8 output (``s_y``, ``z_y``)::

    acc[c]  = sum_k (x_k - z_x) * (W[c, k] - z_w)  + bias[c]        (int32)
            = sum x*W - z_w * sum x - z_x * sum W[c] + K * z_x * z_w + bias[c]
    y_q[c]  = clamp(z_y + round(acc[c] * s_x * s_w[c] / s_y), -128, 127)

where ``bias`` is stored as int32 at scale ``s_x * s_w[c]`` (zero point 0), so it adds
straight into the accumulator. The real factor ``M = s_x * s_w / s_y`` (about 1e-4 to 1)
is applied as a 31-bit fixed-point multiplier and a power-of-two shift (``QuantizeMultiplier``).
Two roundings of that product exist, and bit-exact means matching the one the kernel uses:

- ``"reference"``: gemmlowp's ``SaturatingRoundingDoublingHighMul`` then
  ``RoundingDivideByPOT`` (ties away from zero), as in TFLite's reference kernels;
- ``"ruy"``: the optimized kernels LiteRT runs without a delegate (ruy, on x86 and ARM):
  the same two steps, each rounding ties up (toward +inf), like ARM's ``sqrdmulh`` and
  ``srshl``. The two differ only on values within a hair of a .5 tie.

NumPy for the arithmetic (int64 intermediates, so nothing overflows by accident); the
LiteRT interpreter only to read a layer's stored integers and its int8 inputs and outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """Split a positive real multiplier into a Q31 integer and a power-of-two exponent.

    ``real_multiplier ~= quantized * 2**(shift - 31)`` with ``2**30 <= quantized < 2**31``
    (TFLite's ``QuantizeMultiplier``).

    Args:
        real_multiplier: the factor ``s_x * s_w / s_y`` (float64), > 0.

    Returns:
        ``(quantized_multiplier, shift)``; ``shift`` is negative for factors below 0.5.

    Raises:
        ValueError: a multiplier that is not a finite positive number.
    """
    real = float(real_multiplier)
    if not math.isfinite(real) or real <= 0:
        raise ValueError(f"real_multiplier must be finite and > 0, got {real_multiplier!r}")
    fraction, shift = math.frexp(real)  # real = fraction * 2**shift, 0.5 <= fraction < 1
    quantized = math.floor(fraction * (1 << 31) + 0.5)  # TfLiteRound: half away from zero
    if quantized == 1 << 31:
        quantized //= 2
        shift += 1
    if shift < -31:  # too small to represent: TFLite flushes it to zero
        return 0, 0
    return quantized, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """The high 32 bits of ``2 * a * b``, rounded to nearest (gemmlowp).

    ``a`` and ``b`` are int32 values; the one overflow case, ``a == b == INT32_MIN``,
    saturates to ``INT32_MAX``. Rounding adds ``2**30`` (or ``1 - 2**30`` for a negative
    product) before dividing by ``2**31`` with truncation toward zero.
    """
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C++ "/" truncates
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: int | np.ndarray) -> np.ndarray:
    """``x / 2**exponent`` rounded to nearest, ties away from zero (gemmlowp).

    Args:
        x: int32 values.
        exponent: 0..31.
    """
    x64 = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return (x64 >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(
    x: np.ndarray, quantized_multiplier: int | np.ndarray, shift: int | np.ndarray
) -> np.ndarray:
    """``round(x * real_multiplier)`` in integers only (TFLite's
    ``MultiplyByQuantizedMultiplier``, the default double-rounding version).

    A positive ``shift`` scales ``x`` up first; a negative one divides at the end.
    """
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = np.asarray(x, dtype=np.int64) * (np.int64(1) << left)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(scaled, quantized_multiplier), right
    )


def multiply_by_quantized_multiplier_ruy(
    x: np.ndarray, quantized_multiplier: int | np.ndarray, shift: int | np.ndarray
) -> np.ndarray:
    """``round(x * real_multiplier)`` as ruy's optimized kernels compute it.

    ``high = (x * m + 2**30) >> 31`` (rounding doubling high multiply, ties up), then a
    rounding right shift ``(high + 2**(r - 1)) >> r`` (ties up), with ``r = -shift``; a
    positive ``shift`` scales ``x`` up first.
    """
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = np.asarray(x, dtype=np.int64) * (np.int64(1) << left)
    high = (scaled * np.asarray(quantized_multiplier, dtype=np.int64) + (1 << 30)) >> 31
    nudge = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    return (high + nudge) >> right


ROUNDINGS = {
    "ruy": multiply_by_quantized_multiplier_ruy,
    "reference": multiply_by_quantized_multiplier,
}
"""The requantization roundings :func:`fully_connected_int8` accepts."""


@dataclass(frozen=True)
class FullyConnectedParams:
    """The stored integers and quantization parameters of one int8 FULLY_CONNECTED op.

    Attributes:
        weights: int8, shape ``(units, inputs)`` (TFLite's layout).
        bias: int32, shape ``(units,)``, at scale ``input_scale * weight_scales``.
        input_scale, input_zero_point: of the int8 input tensor.
        weight_scales: one per output unit (or one for the tensor); weight zero point 0.
        output_scale, output_zero_point: of the int8 output tensor.
    """

    weights: np.ndarray
    bias: np.ndarray
    input_scale: float
    input_zero_point: int
    weight_scales: np.ndarray
    output_scale: float
    output_zero_point: int
    weight_zero_point: int = 0


def requantization(params: FullyConnectedParams) -> tuple[np.ndarray, np.ndarray]:
    """Per output unit, the fixed-point ``(multipliers, shifts)`` of ``s_x * s_w / s_y``.

    The scales are float32 in the file and combined in float64, as TFLite does.
    """
    units = params.weights.shape[0]
    scales = np.broadcast_to(np.asarray(params.weight_scales, dtype=np.float64), (units,))
    pairs = [
        quantize_multiplier(
            float(np.float32(params.input_scale))
            * float(s)
            / float(np.float32(params.output_scale))
        )
        for s in scales.astype(np.float32)
    ]
    multipliers = np.array([m for m, _ in pairs], dtype=np.int64)
    shifts = np.array([s for _, s in pairs], dtype=np.int64)
    return multipliers, shifts


def accumulate(x_q: np.ndarray, params: FullyConnectedParams) -> np.ndarray:
    """The int32 accumulators ``sum (x - z_x)(W - z_w) + bias`` of a batch, shape
    ``(batch, units)``, computed from the plain product ``x @ W.T`` and the zero-point
    cross terms.

    Raises:
        ValueError: ``x_q`` is not int8 or its width differs from the weights'.
        OverflowError: an accumulator outside the int32 range.
    """
    x_q = np.asarray(x_q)
    if x_q.dtype != np.int8 or x_q.ndim != 2 or x_q.shape[1] != params.weights.shape[1]:
        raise ValueError(
            f"x_q must be int8 of shape (batch, {params.weights.shape[1]}); "
            f"got {x_q.dtype} {x_q.shape}"
        )
    x = x_q.astype(np.int64)
    w = params.weights.astype(np.int64)
    z_x, z_w = int(params.input_zero_point), int(params.weight_zero_point)
    k = x.shape[1]
    # int32 accumulation; the zero points come out as cross terms of the plain product.
    acc = (
        x @ w.T
        - z_w * x.sum(axis=1, keepdims=True)
        - z_x * w.sum(axis=1)[None, :]
        + k * z_x * z_w
        + params.bias.astype(np.int64)[None, :]
    )
    if np.any((acc < INT32_MIN) | (acc > INT32_MAX)):
        raise OverflowError("the int32 accumulator overflowed")
    return acc


def fully_connected_int8(
    x_q: np.ndarray, params: FullyConnectedParams, rounding: str = "ruy"
) -> np.ndarray:
    """Run an int8 fully connected layer with integer arithmetic only.

    Args:
        x_q: int8 inputs, shape ``(batch, inputs)``.
        params: the layer's stored integers and quantization parameters.
        rounding: ``"ruy"`` (LiteRT's built-in optimized kernels, the default) or
            ``"reference"`` (gemmlowp / TFLite reference kernels); see ``ROUNDINGS``.

    Returns:
        int8 outputs, shape ``(batch, units)``: with ``"ruy"``, the same bits LiteRT's
        built-in FULLY_CONNECTED kernel produces (checked in tests/test_intarith.py).

    Raises:
        ValueError: ``x_q`` is not int8 or its width differs from the weights', or an
            unknown ``rounding``.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {sorted(ROUNDINGS)}, got {rounding!r}")
    acc = accumulate(x_q, params)
    multipliers, shifts = requantization(params)
    y = ROUNDINGS[rounding](acc, multipliers[None, :], shifts[None, :])
    y = y + int(params.output_zero_point)
    return np.clip(y, -128, 127).astype(np.int8)


def _read_params(interpreter: Interpreter, op: dict) -> FullyConnectedParams:
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    x_i, w_i, b_i = (int(t) for t in op["inputs"][:3])
    y_i = int(op["outputs"][0])

    def qparams(index: int) -> tuple[np.ndarray, np.ndarray]:
        p = details[index]["quantization_parameters"]
        return np.asarray(p["scales"], dtype=np.float32), np.asarray(p["zero_points"])

    (s_x, z_x), (s_w, z_w), (s_y, z_y) = qparams(x_i), qparams(w_i), qparams(y_i)
    if details[x_i]["dtype"] != np.int8 or details[w_i]["dtype"] != np.int8:
        raise ValueError("the FULLY_CONNECTED op is not int8: convert with full integer int8")
    weights = interpreter.get_tensor(w_i).copy()
    bias = (  # an all-zero bias may be left out of the file (index -1)
        interpreter.get_tensor(b_i).astype(np.int32)
        if b_i >= 0
        else np.zeros(weights.shape[0], dtype=np.int32)
    )
    return FullyConnectedParams(
        weights=weights,
        bias=bias,
        input_scale=float(s_x[0]),
        input_zero_point=int(z_x[0]),
        weight_scales=s_w,
        output_scale=float(s_y[0]),
        output_zero_point=int(z_y[0]),
        weight_zero_point=int(z_w[0]),
    )


def dense_layer_io(
    model: bytes, images: np.ndarray
) -> tuple[FullyConnectedParams, np.ndarray, np.ndarray]:
    """Run a full-int8 .tflite on images; return its FULLY_CONNECTED layer's params, int8
    inputs and int8 outputs as LiteRT computed them.

    The interpreter runs TFLite's built-in kernels (no XNNPACK delegate) and keeps every
    intermediate tensor (``experimental_preserve_all_tensors=True``), so the layer's input
    (the flattened convolution output) and output can be read after each ``invoke()``.

    Args:
        model: the .tflite bytes of a full-integer model with one FULLY_CONNECTED op.
        images: float32 images, shape ``(N, H, W, C)``; quantized with the input's scale.

    Returns:
        ``(params, x_q, y_q)`` with ``x_q`` int8 ``(N, inputs)`` and ``y_q`` int8
        ``(N, units)``.

    Raises:
        ValueError: the model has no (or more than one) FULLY_CONNECTED op, or it is not int8.
    """
    interpreter = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    if len(ops) != 1:
        raise ValueError(f"expected one FULLY_CONNECTED op, found {len(ops)}")
    params = _read_params(interpreter, ops[0])
    x_i, y_i = int(ops[0]["inputs"][0]), int(ops[0]["outputs"][0])
    inp = interpreter.get_input_details()[0]
    scale, zero_point = inp["quantization"]
    q = np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)
    xs, ys = [], []
    for i in range(len(q)):
        interpreter.set_tensor(inp["index"], q[i : i + 1])
        interpreter.invoke()
        xs.append(interpreter.get_tensor(x_i).reshape(-1).copy())
        ys.append(interpreter.get_tensor(y_i).reshape(-1).copy())
    return params, np.stack(xs), np.stack(ys)
