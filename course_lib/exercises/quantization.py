"""Exercises of 03_quantization: (de)quantize, scale and zero point, choose a variant."""

from __future__ import annotations

import numpy as np

from course_lib.exercises.core import (
    Incorrect,
    Problem,
    call_learner,
    expect_choice,
    expect_number,
)
from course_lib.quantization import affine_params, dequantize, quantize


class QuantizeDequantize(Problem):
    """Write ``my_quantize(x, scale, zero_point)`` (int8) and ``my_dequantize(q, ...)``."""

    variables = ("my_quantize", "my_dequantize")
    hint_text = (
        "q = round(x / scale) + zero_point, clipped to [-128, 127] and stored as np.int8; "
        "dequantize with (q - zero_point) * scale. Convert q to a wider type before "
        "subtracting, or int8 arithmetic will overflow."
    )
    solution_code = """
def my_quantize(x, scale, zero_point):
    q = np.round(x / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def my_dequantize(q, scale, zero_point):
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)
"""

    def _check(self, my_quantize, my_dequantize) -> str:
        x = np.array([-2.0, -0.513, 0.0, 0.263, 1.004, 3.9, 10.0])  # no value on a .5 tie
        scale, zero_point = 0.02, -30
        q = np.asarray(call_learner(my_quantize, x, scale, zero_point))
        expected = quantize(x, scale, zero_point)
        if q.dtype != np.int8:
            raise Incorrect(f"my_quantize should return int8 values, got {q.dtype}")
        if not np.array_equal(q, expected):
            raise Incorrect(
                f"my_quantize(x={x.tolist()}, scale=0.02, zero_point=-30) gave {q.tolist()}, "
                f"expected {expected.tolist()}: round, add the zero point, clip to [-128, 127]"
            )
        back = np.asarray(call_learner(my_dequantize, expected, scale, zero_point))
        if not np.allclose(back, dequantize(expected, scale, zero_point), atol=1e-6):
            raise Incorrect(f"my_dequantize gave {back.tolist()}: use (q - zero_point) * scale")
        return "values outside the range are clipped: 10.0 came back as " + f"{back[-1]:.2f}."


class ScaleAndZeroPoint(Problem):
    """Scale and zero point of int8 affine quantization for the range [-1.0, 3.0]."""

    variables = ("scale_answer", "zero_point_answer")
    hint_text = (
        "int8 has 255 steps from -128 to 127: scale = (max - min) / 255. The zero point is "
        "the integer that stands for 0.0: round(-128 - min / scale)."
    )
    solution_code = """
scale_answer = (3.0 - (-1.0)) / 255          # 0.0157 per step
zero_point_answer = round(-128 - (-1.0) / scale_answer)   # -64
"""

    def _check(self, scale_answer, zero_point_answer) -> str:
        scale, zero_point = affine_params(-1.0, 3.0)
        if isinstance(scale_answer, (int, float)) and abs(scale_answer - 4 / 256) < 1e-9:
            raise Incorrect("`scale_answer`: 256 values make 255 steps, so divide by 255")
        expect_number("scale_answer", scale_answer, float(scale), rel=1e-4)
        expect_number("zero_point_answer", zero_point_answer, int(zero_point))
        return "check: -1.0 maps to -128, 0.0 to -64, 3.0 to 127."


class ChooseForDevice(Problem):
    """Pick the variant for a microcontroller with int8-only kernels and no floating point."""

    variables = ("answer",)
    hint_text = "Which variant computes every layer, input and output in integers?"
    solution_code = 'answer = "c"'
    choices = {
        "a": "No: float16 weights are turned back into float32 and computed in floating point.",
        "b": "No: dynamic range keeps activations in float32; only the weights are int8.",
        "c": "",
        "d": "No: 16x8 needs int16 kernels for every op, which many int8-only runtimes lack.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "c")
        return (
            "full-integer int8 (ptq_int8 or qat_int8) is the variant that TFLite Micro, "
            "CMSIS-NN and int8 NPUs run end to end."
        )


q1 = QuantizeDequantize()
q2 = ScaleAndZeroPoint()
q3 = ChooseForDevice()
