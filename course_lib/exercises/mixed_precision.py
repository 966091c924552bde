"""Exercises of 06_mixed_precision: float16 overflow, a loss scale, the float32 layer."""

from __future__ import annotations

import numpy as np

from course_lib.exercises.core import Incorrect, Problem, expect_choice

CANDIDATES = [1e3, 6e4, 6.6e4, 1e5, 3e38]


class Float16Overflow(Problem):
    """Which of ``CANDIDATES`` overflow to inf in float16?"""

    variables = ("overflowing",)
    hint_text = "float16's largest finite value is 65,504. Try np.float16(v) for each."
    solution_code = """
with np.errstate(over="ignore"):  # the overflow is what we are looking for
    overflowing = [v for v in CANDIDATES if np.isinf(np.float16(v))]
"""

    def _check(self, overflowing) -> str:
        with np.errstate(over="ignore"):
            expected = [v for v in CANDIDATES if np.isinf(np.float16(v))]
        given = sorted(float(v) for v in overflowing)
        if 6e4 in given:
            raise Incorrect("60,000 is below float16's maximum of 65,504: it is finite")
        if given != sorted(expected):
            raise Incorrect(f"{given} is not the set of values above 65,504 among the candidates")
        return "6.6e4, 1e5 and 3e38 become inf; 3e38 is fine in float32 and bfloat16."


class ChooseLossScale(Problem):
    """A power-of-two loss scale that lifts 1e-9 to >= 6.1e-5 and keeps 1e-2 below 65,504."""

    variables = ("loss_scale",)
    hint_text = (
        "You need scale >= 6.1e-5 / 1e-9 = 61,000 and scale <= 65,504 / 1e-2 = 6.55 million. "
        "Which powers of two lie in between?"
    )
    solution_code = "loss_scale = 2**16   # 65,536: 1e-9 -> 6.6e-5, 1e-2 -> 655"

    def _check(self, loss_scale) -> str:
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)):
            raise Incorrect("`loss_scale` should be a number")
        if loss_scale <= 0 or not float(np.log2(loss_scale)).is_integer():
            raise Incorrect(f"{loss_scale} is not a power of two (2**k)")
        if 1e-9 * loss_scale < 6.1e-5:
            raise Incorrect(f"1e-9 x {loss_scale:g} = {1e-9 * loss_scale:.2g}: still subnormal")
        if 1e-2 * loss_scale > 65504:
            raise Incorrect(f"1e-2 x {loss_scale:g} = {1e-2 * loss_scale:,.0f} overflows float16")
        return "any power of two from 2**16 to 2**22 works; dynamic scaling finds one for you."


class Float32Layer(Problem):
    """Which layer of the seed CNN must compute in float32 under mixed_float16?"""

    variables = ("answer",)
    hint_text = "Where can a value become so small that float16 rounds it to 0, then log(0)?"
    solution_code = 'answer = "c"'
    choices = {
        "a": "No: convolutions are what float16 speeds up; their weights stay float32 anyway.",
        "b": "No: matrix products are the Tensor Cores' job; they run well in float16.",
        "c": "",
        "d": "No: a float16 softmax rounds small probabilities to 0 and the loss to inf.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "c")
        return "build_for_policy appends Softmax(dtype='float32') for exactly this reason."


q1 = Float16Overflow()
q2 = ChooseLossScale()
q3 = Float32Layer()
