"""06_mixed_precision's exercises: each right answer passes, blanks are not attempted, NaN
fails, and each plausible wrong answer fails with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.compat import keras
from course_lib.exercises import ____
from course_lib.exercises import mixed_precision as ex


def _solution(problem):
    namespace: dict = {"np": np, "keras": keras}
    exec(problem.solution_code, namespace)
    return {name: namespace[name] for name in problem.variables}


@pytest.mark.parametrize("problem", [ex.q1, ex.q2, ex.q3])
def test_solution_passes_and_blank_is_not_attempted(problem):
    assert problem.check(**_solution(problem)), problem.check(**_solution(problem))
    assert problem.check(namespace={}).status == "not_attempted"
    assert problem.check(**{n: ____ for n in problem.variables}).status == "not_attempted"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_first_underflow_case_by_hand():
    # 2.9e-8, -2e-8 and 1e-9 are below 2^-25 ~ 2.98e-8; 3.1e-8 and 4e-8 round up to 2^-24
    assert ex._underflow_answer(ex._underflow_cases()[0]) == pytest.approx(3 / 6)


def _below(threshold):
    return lambda v: float(np.mean(np.abs(v[v != 0]) < threshold))


@pytest.mark.parametrize(
    "answer,reason",
    [
        (_below(2.0**-24), "is not right"),  # below the smallest subnormal
        (_below(6.1e-5), "is not right"),  # below the smallest normal
        (lambda v: float(np.mean(v.astype(np.float16) == 0)), "is not right"),  # zeros counted
        (lambda v: 100 * float(np.mean(v[v != 0].astype(np.float16) == 0)), "percentage"),
        (lambda v: int(np.sum(v[v != 0].astype(np.float16) == 0)), "is not right"),  # a count
        (lambda v: float("nan"), "NaN"),
        (lambda v: "half", "should be a number"),
    ],
)
def test_underflows_wrong_answers(answer, reason):
    result = ex.q1.check(underflows=answer)
    assert result.status == "incorrect" and reason in result.message, result


def test_underflows_accepts_numpy_numbers():
    assert ex.q1.check(underflows=lambda v: np.mean(v[v != 0].astype(np.float16) == 0))


@pytest.mark.parametrize(
    "scale,reason",
    [
        (1000, "not a power of two"),
        (2**10, "still subnormal"),
        (2**15, "still subnormal"),  # the LossScaleOptimizer's start is too small here
        (2**23, "overflows"),
        (float("nan"), "NaN"),
        (float("inf"), "infinite"),
        ("65536", "should be a number"),
    ],
)
def test_loss_scale_wrong_answers(scale, reason):
    result = ex.q2.check(loss_scale=scale)
    assert result.status == "incorrect" and reason in result.message, result


@pytest.mark.parametrize("scale", [2**16, np.int64(2**22), np.float32(2**18), 65536.0])
def test_loss_scale_right_answers(scale):
    assert ex.q2.check(loss_scale=scale)


def _model(policy="mixed_float16", last_dtype="float32", restore=True, classes=10):
    def build():
        keras.mixed_precision.set_global_policy(policy)
        try:
            return keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(classes),
                    keras.layers.Activation("softmax", dtype=last_dtype),
                ]
            )
        finally:
            if restore:
                keras.mixed_precision.set_global_policy("float32")

    return build


@pytest.mark.parametrize(
    "build,reason",
    [
        (_model(policy="float32"), "float16 or bfloat16"),  # not mixed at all
        (_model(last_dtype=None), "last layer computes in float16"),  # float16 softmax
        (_model(restore=False), "restore"),
        (_model(classes=5), "output (None, 10)"),
        (lambda: "model", "tf_keras Model"),
    ],
)
def test_mixed_model_wrong_answers(build, reason):
    result = ex.q3.check(build_mixed_model=build)
    assert result.status == "incorrect" and reason in result.message, result
    assert keras.mixed_precision.global_policy().name == "float32"  # the checker restores it


def test_mixed_model_accepts_bfloat16():
    assert ex.q3.check(build_mixed_model=_model(policy="mixed_bfloat16"))
