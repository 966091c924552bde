"""The exercise framework's number and choice checks: NaN never passes, NumPy numbers do."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from course_lib.exercises.core import (
    CheckResult,
    Incorrect,
    MultipleChoice,
    NotAttempted,
    Problem,
    Text,
    ____,
    as_number,
    call_learner,
    expect_choice,
    expect_number,
    is_blank,
    show,
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
    with pytest.raises(TypeError, match="^Broken: answer 'c' is not one of its choices$"):

        class Broken(MultipleChoice):  # noqa: F841
            choices = {"a": "", "b": ""}
            answer = "c"


def test_hint_and_solution_display_themselves(capsys):
    q = Pick()
    assert q.hint() is None and q.solution() is None
    out = capsys.readouterr().out
    assert "Hint" in out and "Solution" in out  # both shown, not only the last expression


# --- What a learner sees: exact verdicts, messages and renderings (mutation testing, issue 13) ---


def test_the_blank_shows_itself_as_four_underscores():
    assert repr(____) == "____"
    assert is_blank(____)
    assert not is_blank("____") and not is_blank(None) and not is_blank(0)


@pytest.mark.parametrize(
    "status, message, text, markdown, truth",
    [
        ("correct", "", "Correct", "**✅ Correct**", True),
        ("correct", "b it is", "Correct: b it is", "**✅ Correct**: b it is", True),
        ("incorrect", "", "Incorrect", "**❌ Incorrect**", False),
        ("incorrect", "`n` = 3 is not right", "Incorrect: `n` = 3 is not right",
         "**❌ Incorrect**: `n` = 3 is not right", False),
        ("not_attempted", "", "Not attempted yet", "**✏️ Not attempted yet**", False),
        ("not_attempted", "replace ____", "Not attempted yet: replace ____",
         "**✏️ Not attempted yet**: replace ____", False),
    ],
)  # fmt: skip
def test_check_result_renders_exactly(status, message, text, markdown, truth):
    result = CheckResult(status, message)
    assert repr(result) == text
    assert result._repr_markdown_() == markdown
    assert bool(result) is truth


def test_text_renders_plain_markdown_and_code():
    hint = Text("Hint", "keep a < b & c")
    assert repr(hint) == "Hint:\nkeep a < b & c"
    assert hint._repr_markdown_() == "**Hint:**\n\nkeep a &lt; b &amp; c"  # escaped, not HTML
    code = Text("Solution", "x = a < b", code=True)
    assert code._repr_markdown_() == "**Solution:**\n\n```python\nx = a < b\n```"


class Twice(Problem):
    variables = ("twice", "unused")
    hint_text = "multiply by two"
    solution_code = "\ndef twice(x):\n    return 2 * x\n\nunused = 0\n"

    def _check(self, twice, unused):
        result = call_learner(twice, 3)
        if result == "skip":
            raise NotAttempted("say a number")
        if result != 6:
            raise Incorrect(f"twice(3) returned {result}, not 6")
        return "well done" if unused == 0 else None


def test_hint_and_solution_blocks_are_exact():
    q = Twice()
    assert q.hint_block() == Text("Hint", "multiply by two")
    # The solution is shown without its leading and trailing blank lines.
    assert q.solution_block() == Text(
        "Solution", "def twice(x):\n    return 2 * x\n\nunused = 0", code=True
    )


def test_show_prints_plain_text_outside_a_notebook(capsys, monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    show(Text("Hint", "a < b"))
    assert capsys.readouterr().out == "Hint:\na < b\n"


def test_show_prints_plain_text_without_ipython(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython -> ImportError
    show(Text("Solution", "x = 1", code=True))
    assert capsys.readouterr().out == "Solution:\nx = 1\n"


def test_show_displays_markdown_in_a_notebook(capsys, monkeypatch):
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # a running kernel
    monkeypatch.setattr(IPython.display, "display", shown.append)
    show(Text("Hint", "a < b"))
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Markdown)
    assert shown[0].data == "**Hint:**\n\na &lt; b"
    assert capsys.readouterr().out == ""


def test_check_verdicts_and_messages():
    q = Twice()
    assert q.check(twice=lambda x: 2 * x, unused=0) == CheckResult("correct", "well done")
    # _check returning None is a correct answer with no message
    assert q.check(twice=lambda x: 2 * x, unused=1) == CheckResult("correct", "")
    assert q.check(twice=lambda x: x + 2, unused=0) == CheckResult(
        "incorrect", "twice(3) returned 5, not 6"
    )
    assert q.check(twice=lambda x: "skip", unused=0) == CheckResult("not_attempted", "say a number")
    assert q.check(twice=lambda x: ____, unused=0) == CheckResult(
        "not_attempted", "your function still returns ____"
    )
    assert q.check(twice=lambda x: 1 / 0, unused=0) == CheckResult(
        "incorrect", "your function raised ZeroDivisionError: division by zero"
    )
    assert q.check(twice=3, unused=0) == CheckResult("incorrect", "expected a function, got int")


def test_check_names_every_blank_and_treats_missing_names_as_blank():
    q = Twice()
    assert q.check(namespace={}) == CheckResult(
        "not_attempted", "replace ____ with your answer for `twice`, `unused`"
    )
    assert q.check(namespace={"twice": lambda x: 2 * x}) == CheckResult(
        "not_attempted", "replace ____ with your answer for `unused`"
    )
    assert q.check(twice=____) == CheckResult(
        "not_attempted", "replace ____ with your answer for `twice`, `unused`"
    )


def test_check_reads_a_namespace_and_only_the_problem_variables():
    q = Twice()
    namespace = {"twice": lambda x: 2 * x, "unused": 0, "other": ____}
    assert q.check(namespace=namespace) == CheckResult("correct", "well done")
    # Answers given directly win over the namespace.
    assert q.check(namespace, twice=lambda x: x, unused=0).status == "incorrect"
    # Extra keyword answers are not passed to _check.
    assert q.check(twice=lambda x: 2 * x, unused=0, other=1)


def test_check_never_raises_even_when_the_checker_crashes():
    class Crashes(Problem):
        variables = ("x",)

        def _check(self, x):
            return {}[x]

    assert Crashes().check(x="key") == CheckResult(
        "incorrect", "checking your answer raised KeyError: 'key'"
    )


def test_call_learner_passes_arguments_and_chains_the_error():
    assert call_learner(lambda a, b: a - b, 5, 2) == 3

    def boom():
        raise ValueError("boom")

    with pytest.raises(Incorrect, match="^your function raised ValueError: boom$") as info:
        call_learner(boom)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(Incorrect, match="^expected a function, got str$"):
        call_learner("twice")
    with pytest.raises(NotAttempted, match="^your function still returns ____$"):
        call_learner(lambda: ____)


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "`x` should be a number, got a bool (True)"),
        (np.bool_(False), "`x` should be a number, got a bool (False)"),
        (np.array(True), "`x` should be a number, got a bool (True)"),
        (np.array([1.0, 2.0]), "`x` should be one number, got an array of shape (2,)"),
        (np.zeros((0,)), "`x` should be one number, got an array of shape (0,)"),
        ("3", "`x` should be a number, got str"),
        ([3], "`x` should be a number, got list"),
        (float("nan"), "`x` is NaN (not a number): check for a division by zero"),
        (-math.inf, "`x` is infinite: check for a division by zero"),
        (np.array([np.inf]), "`x` is infinite: check for a division by zero"),
    ],
)
def test_as_number_messages_are_exact(value, message):
    with pytest.raises(Incorrect) as info:
        as_number("x", value)
    assert str(info.value) == message


def test_as_number_unwraps_one_element_arrays_of_any_shape():
    assert as_number("x", np.array([[2.5]], np.float32)) == 2.5
    assert type(as_number("x", np.int64(7))) is float


def test_expect_number_tolerance_edges_and_message():
    # within the tolerance, the edge included
    assert expect_number("n", 6, 4, rel=0.5) == 6.0
    assert expect_number("n", 1.25, 1, abs_tol=0.25) == 1.25
    # the larger of the two tolerances applies
    assert expect_number("n", 1.25, 1, rel=0.01, abs_tol=0.25) == 1.25
    assert expect_number("n", 6, 4, rel=0.5, abs_tol=0.01) == 6.0
    # relative to the size of a negative expected value
    assert expect_number("n", -4.25, -4, rel=0.1) == -4.25
    assert type(expect_number("n", np.int64(3), 3)) is float
    with pytest.raises(Incorrect) as info:
        expect_number("n", 216651, 216650)
    assert str(info.value) == "`n` = 216,651 is not right"
    with pytest.raises(Incorrect) as info:
        expect_number("n", 6.5, 4, rel=0.5)
    assert str(info.value) == "`n` = 6.5 is not right"
    with pytest.raises(Incorrect) as info:
        expect_number("n", "6", 6)
    assert str(info.value) == "`n` should be a number, got str"


def test_expect_choice_messages_are_exact():
    choices = {"a": "no: a", "B": "", "c": ""}
    with pytest.raises(Incorrect) as info:
        expect_choice("pick", "d", choices, "b")
    assert str(info.value) == "`pick` must be one of 'a', 'B', 'c'"
    # not a string: never one of the choices, even a list holding one
    for value in (["B"], None, 2):
        with pytest.raises(Incorrect) as info:
            expect_choice("pick", value, choices, "b")
        assert str(info.value) == "`pick` must be one of 'a', 'B', 'c'"
    # a wrong choice without feedback names the choice as it is spelled in `choices`
    with pytest.raises(Incorrect) as info:
        expect_choice("pick", " C", choices, "b")
    assert str(info.value) == "'c' is not the best answer"
    with pytest.raises(Incorrect) as info:
        expect_choice("pick", "A ", choices, "b")
    assert str(info.value) == "no: a"
    assert expect_choice("pick", "b", choices, "B") is None


def test_multiple_choice_subclass_reads_its_variable_and_writes_its_solution():
    # Defined here, not at import time, so that __init_subclass__ runs inside the test.
    class Device(MultipleChoice):
        variable = "device"
        choices = {"cpu": "too slow", "edge": ""}
        answer = "Edge"

    q = Device()
    assert q.variables == ("device",)
    assert q.solution_code == "device = 'Edge'"
    assert q.check(device=" EDGE ") == CheckResult("correct", "")
    assert q.check(device="cpu") == CheckResult("incorrect", "too slow")
    assert q.check(device="gpu") == CheckResult(
        "incorrect", "`device` must be one of 'cpu', 'edge'"
    )
    assert q.check(namespace={"device": "edge"})
    assert q.check(namespace={}) == CheckResult(
        "not_attempted", "replace ____ with your answer for `device`"
    )

    class Explained(MultipleChoice):
        choices = {"x": "", "y": ""}
        answer = "x"
        solution_code = "answer = 'x'  # because"

    assert Explained.variables == ("answer",)  # the default variable name
    assert Explained.solution_code == "answer = 'x'  # because"  # kept, not overwritten
