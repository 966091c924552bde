"""07_deployment's exercises: each right answer passes, blanks are not attempted, and each
plausible wrong answer fails with its reason."""

from __future__ import annotations

import pytest

from course_lib.exercises import ____
from course_lib.exercises import deployment as ex

from .test_exercises_mixed_precision import _solution


@pytest.mark.parametrize("problem", [ex.q1, ex.q2, ex.q3])
def test_solution_passes_and_blank_is_not_attempted(problem):
    assert problem.check(**_solution(problem)), problem.check(**_solution(problem))
    assert problem.check(namespace={}).status == "not_attempted"
    assert problem.check(**{n: ____ for n in problem.variables}).status == "not_attempted"
    returns_blank = {n: (lambda *a: ____) for n in problem.variables}
    assert problem.check(**returns_blank).status == "not_attempted"


def test_fit_cases_by_hand():
    kib = 1024
    # 25 % reserve on 256 KiB / 32 KiB: 196,608 bytes of flash and 24,576 of RAM usable
    assert ex._fits(192 * kib, 24 * kib, 256 * kib, 32 * kib, 0.25)
    assert not ex._fits(200 * kib, 20 * kib, 256 * kib, 32 * kib, 0.25)
    assert not ex._fits(100 * kib, 30 * kib, 256 * kib, 32 * kib, 0.25)
    assert ex._fits(900 * kib, 40 * kib, 1024 * kib, 256 * kib, 0.10)  # 921.6 KiB usable


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda f, a, bf, br, r: f <= bf and a <= br, "expected False, got True"),  # no reserve
        (lambda f, a, bf, br, r: f <= (1 - r) * bf, "expected False, got True"),  # flash only
        (lambda f, a, bf, br, r: a <= (1 - r) * br, "expected False, got True"),  # RAM only
        (lambda f, a, bf, br, r: f < (1 - r) * bf and a < (1 - r) * br, "expected True"),  # <
        (lambda f, a, bf, br, r: f <= r * bf and a <= r * br, "expected True, got False"),
        (lambda f, a, bf, br, r: int(f <= (1 - r) * bf and a <= (1 - r) * br), "return True or"),
    ],
)
def test_fits_board_wrong_answers_fail(answer, reason):
    result = ex.q1.check(fits_board=answer)
    assert result.status == "incorrect" and reason in result.message, result.message


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda ips, t: 1e6 / ips, "gave the wall-clock seconds"),  # threads forgotten
        (lambda ips, t: t * 1e3 / ips, "is not right"),  # per thousand
        (lambda ips, t: t / ips, "is not right"),  # per image
        (lambda ips, t: ips * t / 1e6, "is not right"),  # upside down
        (lambda ips, t: float("nan"), "NaN"),
        (lambda ips, t: "2000", "should be a number"),
    ],
)
def test_core_seconds_wrong_answers_fail(answer, reason):
    result = ex.q2.check(core_seconds_per_million=answer)
    assert result.status == "incorrect" and reason in result.message, result.message


def _linear(allocates, step):
    n = step
    while not allocates(n):
        n += step
    return n


def _doubling_only(allocates, step):
    n = step
    while not allocates(n):
        n *= 2
    return n


def _last_failure(allocates, step):
    """The right search, but returning the last size that failed."""
    return _solution(ex.q3)["smallest_arena"](allocates, step) - step


def _unaligned(allocates, step):
    low, high = 0, step
    while not allocates(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        if allocates(middle):
            high = middle
        else:
            low = middle
    return high


@pytest.mark.parametrize(
    "answer,reason",
    [
        (_linear, "more than"),  # a linear scan: too many tries
        (_doubling_only, "you returned"),  # the first power of two that works
        (_last_failure, "(one that fails)"),
        (_unaligned, "is not a multiple of step"),  # bisects to the byte, not to the step
    ],
)
def test_smallest_arena_wrong_answers_fail(answer, reason):
    result = ex.q3.check(smallest_arena=answer)
    assert result.status == "incorrect" and reason in result.message, result.message
