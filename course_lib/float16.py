"""Number formats and gradients in float16: what mixed precision computes with.

Introduced in 06_mixed_precision: the format table (bits, range, precision of float32,
float16 and bfloat16), and the gradients of a model computed under ``mixed_float16`` with
and without loss scaling, compared with float32. The reference cells of 06 compute the same
gradients in plain tf_keras.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from course_lib.compat import keras, tf
from course_lib.mixed_precision import build_for_policy
from course_lib.report import Table


def format_info(dtype: str) -> dict[str, Any]:
    """Bits, range and precision of ``float32``, ``float16`` or ``bfloat16``.

    Raises:
        ValueError: another dtype.
    """
    types = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
    if dtype not in types:
        raise ValueError(f"unknown format {dtype!r}; choose one of {', '.join(types)}")
    info = ml_dtypes.finfo(types[dtype])
    return {
        "format": dtype,
        "bits": int(info.bits),
        "exponent_bits": int(info.nexp),
        "mantissa_bits": int(info.nmant),
        "max": float(info.max),
        "smallest_normal": float(info.smallest_normal),
        "smallest_subnormal": float(info.smallest_subnormal),
        "epsilon": float(info.eps),
        "decimal_digits": int(info.precision),
    }


def format_table() -> Table:
    """The three formats side by side (bits, largest value, smallest values, epsilon)."""
    rows = []
    for name in ("float32", "float16", "bfloat16"):
        f = format_info(name)
        rows.append(
            [
                name,
                f"1 + {f['exponent_bits']} + {f['mantissa_bits']}",
                f"{f['max']:.4g}",
                f"{f['smallest_normal']:.3g}",
                f"{f['smallest_subnormal']:.3g}",
                f"{f['epsilon']:.3g}",
                f"~{f['decimal_digits']}",
            ]
        )
    return Table(
        [
            "format",
            "sign+exp+mantissa",
            "largest",
            "min normal",
            "min subnormal",
            "epsilon",
            "digits",
        ],
        rows,
    )


def float16_gradient_error(
    model_name: str,
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    loss_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """Compare gradients computed under ``mixed_float16`` with float32 ones, per variable.

    Shown in 06_mixed_precision, whose reference cell computes the dense kernel's gradient
    the same way in plain tf_keras. The loss is multiplied by ``loss_scale`` before
    differentiation and the gradients are divided by it afterwards, which is what
    ``LossScaleOptimizer`` does. Small float16 gradients that underflow to 0 without scaling
    survive with it, as long as the scale is large enough and no gradient overflows.

    Returns:
        ``[{"variable", "shape", "relative_error", "lost", "overflow", "largest_scaled"},
        ...]``: the L1 error relative to the float32 gradient (inf when an entry overflowed;
        0 when both gradients are all zero), the fraction of its non-zero entries that
        became 0, the fraction that became inf or NaN, and the largest float32 gradient
        times the loss scale (above 65,504 it cannot be stored in float16).
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def gradients(policy: str, scale: float) -> tuple[list[np.ndarray], keras.Model]:
        model = build_for_policy(model_name, policy)
        model.set_weights(weights)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True)) * scale
        return [
            g.numpy().astype(np.float64) / scale
            for g in tape.gradient(loss, model.trainable_variables)
        ], model

    reference, model = gradients("float32", 1.0)
    low, _ = gradients("mixed_float16", loss_scale)
    rows = []
    for variable, g32, g16 in zip(model.trainable_variables, reference, low, strict=True):
        nonzero = g32 != 0
        finite = np.isfinite(g16)
        total = np.abs(g32).sum()
        if not finite.all():
            error = float("inf")
        elif total == 0:  # nothing to compare with: exact when float16 is all zero too
            error = 0.0 if not g16.any() else float("inf")
        else:
            error = float(np.abs(g16 - g32).sum() / total)
        rows.append(
            {
                "variable": variable.name.split(":")[0],
                "shape": tuple(g32.shape),
                "relative_error": error,
                "lost": float(np.mean(g16[nonzero] == 0)) if nonzero.any() else 0.0,
                "overflow": float(np.mean(~finite)),
                "largest_scaled": float(np.abs(g32).max() * loss_scale),
            }
        )
    return rows
