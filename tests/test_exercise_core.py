"""The exercise framework's number and choice checks: NaN never passes, NumPy numbers do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.exercises.core import (
    Incorrect,
    MultipleChoice,
    ____,
    as_number,
    expect_choice,
    expect_number,
)


@pytest.mark.parametrize(
    "value",
    [
        3,
        3.0,
        np.int64(3),
        np.int32(3),
        np.float32(3.0),
        np.float64(3.0),
        np.array(3),
        np.array([3]),
    ],
)
def test_as_number_accepts_python_and_numpy_numbers(value):
    assert as_number("x", value) == 3.0


@pytest.mark.parametrize(
    "value, message",
    [
        (float("nan"), "NaN"),
        (np.float32("nan"), "NaN"),
        (math.inf, "infinite"),
        (-np.inf, "infinite"),
        (True, "bool"),
        (np.bool_(False), "bool"),
        ("3", "str"),
        (None, "NoneType"),
        (np.array([1, 2]), "shape"),
    ],
)
def test_as_number_rejects_what_is_not_one_finite_number(value, message):
    with pytest.raises(Incorrect, match=message):
        as_number("x", value)


def test_expect_number_tolerances():
    assert expect_number("n", np.int64(216650), 216650) == 216650.0
    expect_number("n", 0.0157, 4 / 255, rel=0.005)  # 3 significant figures pass
    with pytest.raises(Incorrect, match="not right"):
        expect_number("n", 0.0156, 4 / 255, rel=0.005)
    expect_number("n", 0.001, 0.0, abs_tol=0.002)
    with pytest.raises(Incorrect, match="not right"):
        expect_number("n", 0.003, 0.0, abs_tol=0.002)
    with pytest.raises(Incorrect, match="NaN"):  # abs(nan - x) > tol is False: must not pass
        expect_number("n", float("nan"), 1.0, rel=10.0)


def test_expect_choice_ignores_case_and_spaces():
    choices = {"a": "no: a", "b": "", "c": "no: c"}
    expect_choice("answer", "B", choices, "b")
    expect_choice("answer", " b ", choices, "b")
    with pytest.raises(Incorrect, match="no: a"):
        expect_choice("answer", "A", choices, "b")
    with pytest.raises(Incorrect, match="must be one of"):
        expect_choice("answer", "d", choices, "b")
    with pytest.raises(Incorrect, match="must be one of"):
        expect_choice("answer", 2, choices, "b")


class Pick(MultipleChoice):
    variable = "pick"
    choices = {"a": "a is wrong because...", "b": ""}
    answer = "b"
    correct_message = "b it is"


def test_multiple_choice_base_class():
    q = Pick()
    assert q.variables == ("pick",)
    assert q.check(pick="B").message == "b it is"
    result = q.check(pick="a")
    assert result.status == "incorrect" and "wrong because" in result.message
    assert q.check(pick=____).status == "not_attempted"
    assert "pick = 'b'" in q.solution_block().body


def test_multiple_choice_answer_must_be_a_choice():
    with pytest.raises(TypeError, match="not one of its choices"):

        class Broken(MultipleChoice):  # noqa: F841
            choices = {"a": "", "b": ""}
            answer = "c"


def test_hint_and_solution_display_themselves(capsys):
    q = Pick()
    assert q.hint() is None and q.solution() is None
    out = capsys.readouterr().out
    assert "Hint" in out and "Solution" in out  # both shown, not only the last expression
