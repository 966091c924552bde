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
    call_learner,
    expect_choice,
    expect_number,
)


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
