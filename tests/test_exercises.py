"""The exercise framework, and every problem with a right, a wrong and a blank answer."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import course_lib.exercises as exercises_pkg
from course_lib import data
from course_lib.compat import tfmot
from course_lib.exercises import (
    Incorrect,
    Problem,
    ____,
    baseline,
    call_learner,
    expect_choice,
    expect_number,
    tour,
)
from course_lib.exercises import combined as combined_ex
from course_lib.exercises import pruning as pruning_ex
from course_lib.exercises import quantization as quant_ex
from course_lib.exercises import structure as structure_ex


class Double(Problem):
    variables = ("double",)
    hint_text = "multiply by two"
    solution_code = "def double(x):\n    return 2 * x"

    def _check(self, double):
        if call_learner(double, 3) != 6:
            raise Incorrect("double(3) should be 6")
        return "well done"


def test_blank_missing_wrong_right_and_crashing_answers():
    q = Double()
    assert q.check(namespace={}).status == "not_attempted"
    assert q.check(double=____).status == "not_attempted"
    assert q.check(double=lambda x: ____).status == "not_attempted"
    wrong = q.check(double=lambda x: x + 2)
    assert wrong.status == "incorrect" and "double(3) should be 6" in repr(wrong) and not wrong
    crash = q.check(double=lambda x: 1 / 0)
    assert crash.status == "incorrect" and "ZeroDivisionError" in crash.message
    right = q.check(double=lambda x: 2 * x)
    assert right and right.message == "well done" and "Correct" in right._repr_markdown_()


def test_check_reads_the_callers_globals():
    global double
    q = Double()
    double = None
    assert q.check().status == "incorrect"  # None is not a function
    double = lambda x: 2 * x  # noqa: E731
    assert q.check()


def test_hint_and_solution_render():
    q = Double()
    assert "multiply" in repr(q.hint_block())
    assert "```python" in q.solution_block()._repr_markdown_()


def test_helpers():
    expect_number("n", 10, 10)
    expect_number("n", 10.4, 10, rel=0.05)
    with pytest.raises(Incorrect, match="should be a number"):
        expect_number("n", "10", 10)
    with pytest.raises(Incorrect, match="is not right"):
        expect_number("n", 11, 10)
    expect_choice("a", "x", {"x": "", "y": "no: because"}, "x")
    with pytest.raises(Incorrect, match="no: because"):
        expect_choice("a", "y", {"x": "", "y": "no: because"}, "x")
    with pytest.raises(Incorrect, match="one of"):
        expect_choice("a", "z", {"x": "", "y": ""}, "x")


def _all_problems():
    for info in pkgutil.iter_modules(exercises_pkg.__path__):
        if info.name == "core":
            continue
        module = importlib.import_module(f"course_lib.exercises.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, Problem):
                yield f"{info.name}.{name}", (obj, module)


ALL = dict(_all_problems())


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_solution_is_accepted_and_every_blank_is_not_attempted(name):
    problem, module = ALL[name]
    namespace = {**vars(module), "np": np, "data": data, "tfmot": tfmot}
    exec(problem.solution_code, namespace)
    assert problem.check(namespace=namespace), problem.check(namespace=namespace)
    assert problem.check(namespace={}).status == "not_attempted"
    assert problem.hint_text


@pytest.mark.parametrize(
    "problem,answer,reason",
    [
        (baseline.q1, {"conv_params": 288, "dense_params": 216_330}, "biases"),
        (baseline.q1, {"conv_params": 320, "dense_params": 250_890}, "26x26"),
        (baseline.q1, {"conv_params": 320, "dense_params": 216_320}, "10 biases"),
        (baseline.q1, {"conv_params": 320, "dense_params": 1}, "not right"),
        (baseline.q2, {"weight_bytes": 216_650}, "4 bytes"),
        (baseline.q2, {"weight_bytes": 216_650 * 8}, "not 8"),
        (baseline.q3, {"answer": "a"}, "same float32"),
        (baseline.q3, {"answer": "d"}, "one of"),
        (tour.q1, {"fast_train_per_class": 30}, "not right"),
        (tour.q2, {"answer": "a"}, "never writes"),
        (tour.q3, {"answer": "b"}, "does not touch"),
        (pruning_ex.q1, {"my_magnitude_mask": lambda w, s: w * (abs(w) > 0.1)}, "boolean"),
        (pruning_ex.q1, {"my_magnitude_mask": lambda w, s: abs(w) > 10}, "should drop"),
        (
            pruning_ex.q1,
            {
                "my_magnitude_mask": lambda w, s: (
                    np.arange(w.size).reshape(w.shape) >= round(s * w.size)
                )
            },
            "rank by |w|",
        ),
        (pruning_ex.q2, {"schedule": tfmot.sparsity.keras.ConstantSparsity(0.8, 1200)}, "never"),
        (
            pruning_ex.q2,
            {"schedule": tfmot.sparsity.keras.PolynomialDecay(0, 0.8, 0, 2000)},
            "short of the target",
        ),
        (pruning_ex.q2, {"schedule": tfmot.sparsity.keras.ConstantSparsity(0.5, 0)}, "not 0.8"),
        (pruning_ex.q2, {"schedule": 0.8}, "pruning schedule"),
        (pruning_ex.q3, {"answer": "a"}, "collapses"),
        (
            quant_ex.q1,
            {
                "my_quantize": lambda x, s, z: np.round(x / s + z).astype(np.int8),
                "my_dequantize": lambda q, s, z: q * s,
            },
            "clip",
        ),
        (
            quant_ex.q1,
            {
                "my_quantize": lambda x, s, z: (x / s + z).astype(np.float32),
                "my_dequantize": lambda q, s, z: q * s,
            },
            "int8",
        ),
        (quant_ex.q2, {"scale_answer": 4 / 256, "zero_point_answer": -64}, "255 steps"),
        (quant_ex.q2, {"scale_answer": 4 / 255, "zero_point_answer": 0}, "not right"),
        (quant_ex.q3, {"answer": "b"}, "dynamic range"),
        (combined_ex.q1, {"pipeline_order": ["cluster", "prune", "pcqat"]}, "prune before"),
        (combined_ex.q1, {"pipeline_order": ["pcqat", "prune", "cluster"]}, "must come last"),
        (combined_ex.q1, {"pipeline_order": ["prune", "ptq"]}, "exactly the three"),
        (combined_ex.q2, {"estimated_bytes": 120_000}, "too much"),
        (combined_ex.q2, {"estimated_bytes": 1_000}, "20 %"),
        (combined_ex.q3, {"answer": "b"}, "1-byte"),
        (structure_ex.q1, {"conv_macs": 26 * 26 * 16 * 9}, "stride 1"),
        (structure_ex.q1, {"conv_macs": 14 * 14 * 16 * 9}, "13x13"),
        (structure_ex.q2, {"keep_indices": [0, 2, 4]}, "WEAKEST"),
        (structure_ex.q2, {"keep_indices": [1, 3]}, "exactly 3"),
        (structure_ex.q2, {"keep_indices": [1, 2, 5]}, "largest norms"),
        (structure_ex.q3, {"rank_answer": 47}, "over the budget"),
        (structure_ex.q3, {"rank_answer": 100}, "not right"),
    ],
)
def test_wrong_answers_get_a_reason(problem, answer, reason):
    result = problem.check(**answer)
    assert result.status == "incorrect" and reason in result.message
