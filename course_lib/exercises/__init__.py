"""Self-checking exercises, one module per chapter.

Usage: ``from course_lib.exercises.baseline import q1``, then ``q1.check()``.

Introduced in 01_baseline.
"""

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

__all__ = [
    "CheckResult",
    "Incorrect",
    "MultipleChoice",
    "NotAttempted",
    "Problem",
    "Text",
    "____",
    "as_number",
    "call_learner",
    "expect_choice",
    "expect_number",
    "is_blank",
    "show",
]
