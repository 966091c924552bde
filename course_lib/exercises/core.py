"""Exercises that check themselves: ``q1.check()``, ``q1.hint()``, ``q1.solution()``.

Introduced in 01_baseline, in the style of Kaggle's learntools. The learner fills in the
blanks (``____``) of a marked cell; ``check()`` then reads those names from the notebook
and answers *Correct*, *Incorrect* (with the reason) or *Not attempted yet*. It never
raises, so a notebook with blank exercises still runs top to bottom (and passes nbval).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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

    def hint(self) -> Text:
        """Return a hint (shown in the notebook)."""
        return Text("Hint", self.hint_text)

    def solution(self) -> Text:
        """Return the solution as code (shown in the notebook)."""
        return Text("Solution", self.solution_code.strip(), code=True)


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


def expect_number(name: str, value: Any, expected: float, rel: float = 0.0) -> None:
    """Check a numeric answer (within relative tolerance ``rel``).

    Raises:
        Incorrect: not a number, or too far from the expected value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Incorrect(f"`{name}` should be a number, got {type(value).__name__}")
    if abs(value - expected) > rel * abs(expected):
        raise Incorrect(f"`{name}` = {value:,} is not right")


def expect_choice(name: str, value: Any, choices: dict[str, str], answer: str) -> None:
    """Check a multiple-choice answer given as one of the ``choices`` keys.

    Raises:
        Incorrect: not one of the choices, or the wrong one (with that choice's feedback).
    """
    if value not in choices:
        raise Incorrect(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}")
    if value != answer:
        raise Incorrect(choices[value])
