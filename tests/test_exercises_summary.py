"""09_summary's exercises: each right answer passes, blanks are not attempted, and each
plausible wrong answer fails with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.exercises import ____
from course_lib.exercises import summary as ex


def _solution(problem):
    namespace: dict = {"np": np}
    exec(problem.solution_code, namespace)
    return {name: namespace[name] for name in problem.variables}


@pytest.mark.parametrize("problem", [ex.q1, ex.q2, ex.q3])
def test_solution_passes_and_blank_is_not_attempted(problem):
    assert problem.check(**_solution(problem))
    assert problem.check(namespace={}).status == "not_attempted"
    blank = {name: ____ for name in problem.variables}
    assert problem.check(**blank).status == "not_attempted"


def test_front_cases_have_a_hand_checked_answer():
    sizes, accuracies = ex._front_cases()[0]
    assert ex._front(sizes, accuracies) == {1, 2}  # (1, 0.80) and (3, 0.95)
    assert ex._front([2.0, 2.0, 1.0], [0.91, 0.92, 0.90]) == {1, 2}


def _strict_front(sizes, accuracies):  # forgets that equal size + higher accuracy dominates
    return [
        i
        for i in range(len(sizes))
        if not any(sizes[j] < sizes[i] and accuracies[j] > accuracies[i] for j in range(len(sizes)))
    ]


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda s, a: list(range(len(s))), "the front is"),  # everything
        (lambda s, a: [int(np.argmax(a))], "the front is"),  # only the most accurate
        (lambda s, a: ex._front([-x for x in s], a), "the front is"),  # larger is better
        (_strict_front, "the front is"),
        (lambda s, a: [s[i] for i in ex._front(s, a)], "not indices"),  # values, not indices
        (lambda s, a: 7, "list of indices"),
    ],
)
def test_pareto_front_wrong_answers(answer, reason):
    result = ex.q1.check(my_pareto_front=answer)
    assert result.status == "incorrect" and reason in result.message, result


@pytest.mark.parametrize(
    "answer,reason",
    [
        (
            lambda es, f: [
                e.result.variant
                for e in es
                if e.int8 and e.within() and e.result.tflite_gzip_bytes <= f
            ],
            "raw .tflite bytes",
        ),
        (
            lambda es, f: [
                e.result.variant for e in es if e.within() and e.result.tflite_bytes <= f
            ],
            "full-int8",
        ),
        (
            lambda es, f: [e.result.variant for e in es if e.int8 and e.result.tflite_bytes <= f],
            "within 0.3 points",
        ),
        (lambda es, f: ["right_small"], "the answer is"),  # ignores the budget
        (lambda es, f: "right_small", "list of variant names"),
    ],
)
def test_flash_candidates_wrong_answers(answer, reason):
    result = ex.q2.check(flash_candidates=answer)
    assert result.status == "incorrect" and reason in result.message, result


def test_flash_pool_answer_by_hand():
    pool = ex._flash_pool()
    assert ex._flash_answer(pool, 16 * 1024) == {"right_small"}
    assert ex._flash_answer(pool, 48 * 1024) == {"right_small", "gzip_small_only"}
    assert ex._flash_answer(pool, 64 * 1024) == {"right_small", "right_large", "gzip_small_only"}


@pytest.mark.parametrize(
    "answer,reason",
    [("a", "zero point"), ("c", "fraction of the dense"), ("d", "accuracy"), ("e", "one of")],
)
def test_sparse_format_wrong_answers(answer, reason):
    result = ex.q3.check(answer=answer)
    assert result.status == "incorrect" and reason in result.message, result
    assert ex.q3.check(answer=" B ")
