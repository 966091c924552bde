"""Exercises that check themselves: ``q1.check()``, ``q1.hint()``, ``q1.solution()``.

Introduced in 01_baseline, in the style of Kaggle's learntools. The learner fills in the
blanks (``____``) of a marked cell; ``check()`` then reads those names from the notebook
and answers *Correct*, *Incorrect* (with the reason) or *Not attempted yet*. It never
raises, so a notebook with blank exercises still runs top to bottom (and passes nbval).
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class _Blank:
    """The placeholder learners replace; ``check()`` treats it as "not attempted"."""

    def __repr__(self) -> str:
        return "____"


____ = _Blank()
"""Put this where the learner's answer goes: ``target_sparsity = ____``."""


class Incorrect(Exception):  # noqa: N818  (it reads as a verdict: raise Incorrect("why"))
    """Raised by a problem's checker with the reason the answer is wrong."""


class NotAttempted(Exception):  # noqa: N818
    """Raised by a problem's checker when the answer is still blank (e.g. returns ____)."""


_ICONS = {
    "correct": "✅ Correct",
    "incorrect": "❌ Incorrect",
    "not_attempted": "✏️ Not attempted yet",
}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of ``check()``: truthy only when correct; shows itself in a notebook."""

    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        label = _ICONS[self.status].split(" ", 1)[1]
        return f"{label}: {self.message}" if self.message else label

    def _repr_markdown_(self) -> str:
        return f"**{_ICONS[self.status]}**" + (f": {self.message}" if self.message else "")


@dataclass(frozen=True)
class Text:
    """A hint or a solution: Markdown in a notebook, plain text elsewhere."""

    title: str
    body: str
    code: bool = False

    def __repr__(self) -> str:
        return f"{self.title}:\n{self.body}"

    def _repr_markdown_(self) -> str:
        body = f"```python\n{self.body}\n```" if self.code else html.escape(self.body)
        return f"**{self.title}:**\n\n{body}"


def is_blank(value: Any) -> bool:
    """Return True for the ``____`` placeholder."""
    return isinstance(value, _Blank)


class Problem:
    """One exercise. Subclasses set the class attributes and implement :meth:`_check`.

    Attributes:
        variables: names the learner defines in the notebook (read by ``check()``).
        hint_text: a nudge, not the answer.
        solution_code: Python that, run in place of the exercise cell, solves it.
    """

    variables: tuple[str, ...] = ()
    hint_text: str = ""
    solution_code: str = ""

    def _check(self, **values: Any) -> str | None:
        """Raise :class:`Incorrect` (or :class:`NotAttempted`); may return a message."""
        raise NotImplementedError

    def check(self, namespace: dict[str, Any] | None = None, **values: Any) -> CheckResult:
        """Check the learner's answer; never raises.

        Args:
            namespace: where to read the ``variables`` from (default: the caller's globals,
                i.e. the notebook).
            **values: the answers given directly, e.g. ``q1.check(conv_params=320)``.
        """
        if not values:
            if namespace is None:
                namespace = sys._getframe(1).f_globals
            values = {name: namespace.get(name, ____) for name in self.variables}
        blank = [name for name in self.variables if is_blank(values.get(name, ____))]
        if blank:
            names = ", ".join(f"`{n}`" for n in blank)
            return CheckResult("not_attempted", f"replace ____ with your answer for {names}")
        try:
            message = self._check(**{k: values[k] for k in self.variables})
        except NotAttempted as err:
            return CheckResult("not_attempted", str(err))
        except Incorrect as err:
            return CheckResult("incorrect", str(err))
        except Exception as err:  # the learner's code may fail in any way
            reason = f"checking your answer raised {type(err).__name__}: {err}"
            return CheckResult("incorrect", reason)
        return CheckResult("correct", message or "")

    def hint_block(self) -> Text:
        """Return the hint as a :class:`Text` (what :meth:`hint` shows)."""
        return Text("Hint", self.hint_text)

    def solution_block(self) -> Text:
        """Return the solution as a code :class:`Text` (what :meth:`solution` shows)."""
        return Text("Solution", self.solution_code.strip(), code=True)

    def hint(self) -> None:
        """Show a hint. It displays itself, so ``q.hint(); q.solution()`` shows both."""
        show(self.hint_block())

    def solution(self) -> None:
        """Show the solution as code (displays itself, like :meth:`hint`)."""
        show(self.solution_block())


def show(text: Text) -> None:
    """Display a :class:`Text` as Markdown in a notebook, or print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # plain Python without IPython
        print(repr(text))
        return
    if get_ipython() is None:
        print(repr(text))
    else:
        display(Markdown(text._repr_markdown_()))


class MultipleChoice(Problem):
    """A multiple-choice problem: the learner sets one variable to one of ``choices``.

    Subclasses set ``variable``, ``choices`` (choice -> feedback shown when that wrong choice
    is picked), ``answer`` and optionally ``correct_message``. Answers are compared without
    regard to case or surrounding spaces (``" B "`` is ``"b"``).
    """

    variable: str = "answer"
    choices: dict[str, str] = {}
    answer: str = ""
    correct_message: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.variables = (cls.variable,)
        if cls.choices and cls.answer.lower() not in {c.lower() for c in cls.choices}:
            raise TypeError(f"{cls.__name__}: answer {cls.answer!r} is not one of its choices")
        if not cls.solution_code and cls.answer:
            cls.solution_code = f"{cls.variable} = {cls.answer!r}"

    def _check(self, **values: Any) -> str:
        expect_choice(self.variable, values[self.variable], self.choices, self.answer)
        return self.correct_message


def call_learner(function: Callable[..., Any], *args: Any) -> Any:
    """Call a learner's function; a blank return value means "not attempted".

    Raises:
        NotAttempted: the function returned ``____``.
        Incorrect: the function raised.
    """
    if not callable(function):
        raise Incorrect(f"expected a function, got {type(function).__name__}")
    try:
        result = function(*args)
    except Exception as err:
        raise Incorrect(f"your function raised {type(err).__name__}: {err}") from err
    if is_blank(result):
        raise NotAttempted("your function still returns ____")
    return result


def as_number(name: str, value: Any) -> float:
    """Return a learner's numeric answer as a float, or say why it is not one.

    Accepts Python ``int`` / ``float``, NumPy integer and floating scalars (``np.int64``
    from ``np.prod``, ``np.float32`` scales) and arrays holding exactly one number.

    Raises:
        Incorrect: a bool, a string, ``None``, an array of several numbers, NaN or infinity.
    """
    if isinstance(value, (bool, np.bool_)):
        raise Incorrect(f"`{name}` should be a number, got a bool ({value})")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise Incorrect(f"`{name}` should be one number, got an array of shape {value.shape}")
        value = value.reshape(()).item()
        if isinstance(value, bool):
            raise Incorrect(f"`{name}` should be a number, got a bool ({value})")
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise Incorrect(f"`{name}` should be a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise Incorrect(f"`{name}` is NaN (not a number): check for a division by zero")
    if math.isinf(number):
        raise Incorrect(f"`{name}` is infinite: check for a division by zero")
    return number


def expect_number(
    name: str, value: Any, expected: float, rel: float = 0.0, abs_tol: float = 0.0
) -> float:
    """Check a numeric answer: within ``rel`` (relative) or ``abs_tol`` (absolute) of ``expected``.

    Returns:
        The answer as a float.

    Raises:
        Incorrect: not a finite number (see :func:`as_number`), or too far from ``expected``.
    """
    number = as_number(name, value)
    if abs(number - expected) > max(rel * abs(expected), abs_tol):
        raise Incorrect(f"`{name}` = {number:,.6g} is not right")
    return number


def _norm(choice: Any) -> Any:
    return choice.strip().lower() if isinstance(choice, str) else choice


def expect_choice(name: str, value: Any, choices: dict[str, str], answer: str) -> None:
    """Check a multiple-choice answer given as one of the ``choices`` keys.

    Case and surrounding spaces are ignored: ``"B"``, ``" b "`` and ``"b"`` are the same.

    Raises:
        Incorrect: not one of the choices, or the wrong one (with that choice's feedback).
    """
    keys = {_norm(c): c for c in choices}
    picked = keys.get(_norm(value)) if isinstance(value, str) else None
    if picked is None:
        raise Incorrect(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}")
    if _norm(picked) != _norm(answer):
        raise Incorrect(choices[picked] or f"{picked!r} is not the best answer")
